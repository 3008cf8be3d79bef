//! [`Shared`]: what every connection of one connect server shares.

use crate::hub::Hub;
use gochat_core::Peers;
use gochat_core::config::ConnectConfig;
use gochat_core::net::Admission;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use tokio::sync::{RwLock, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The state of one connect server, behind an `Arc` that every connection task holds.
pub(crate) struct Shared {
    pub(crate) config: ConnectConfig,
    /// Every authenticated connection, for fan-out.
    pub(crate) hub: Arc<Hub>,
    /// Where logic is (admission, release, presence, posts go there).
    pub(crate) peers: Arc<Peers>,
    /// Channel ids, unique per server.
    pub(crate) next_id: AtomicU64,
    /// `max_connections`: long connections (WebSocket and TCP), from accept to close.
    pub(crate) connections: Arc<Admission>,
    /// `max_handshakes`: HTTP connections on the WebSocket listener before they upgrade.
    pub(crate) handshakes: Arc<Admission>,
    /// `[limits]` per client address.
    pub(crate) addresses: crate::addresses::AddressLimits,
    /// `admissions_in_flight`: admissions and releases talking to logic now. Taken before
    /// the presence gate, so a re-assertion never waits behind connections still queued.
    pub(crate) admissions: Semaphore,
    /// Joins and leaves hold it shared; re-asserting the whole presence holds it alone, so
    /// that the snapshot of the hub and what logic records never disagree (a leave racing
    /// a re-assertion would otherwise cancel out a live connection's presence).
    pub(crate) presence_gate: RwLock<()>,
    /// Set when a join or leave may not have reached logic: the next presence renewal
    /// re-asserts everything instead.
    pub(crate) presence_dirty: AtomicBool,
    /// Owns every listener, connection and background task.
    pub(crate) tasks: TaskTracker,
    /// Fired to close every connection with 1001 and stop the listeners.
    pub(crate) shutdown: CancellationToken,
}
