//! [`Shared`]: what every connection of one connect server shares.

use crate::hub::Hub;
use gochat_core::Peers;
use gochat_core::config::ConnectConfig;
use gochat_core::net::Admission;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use tokio::runtime::Handle;
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
    /// The runtime the server was made on: connections' writers and the fan-out.
    pub(crate) main: Handle,
    /// The listeners and connections' readers, when they run on a runtime of their own.
    pub(crate) answers: OnceLock<Handle>,
}

impl Shared {
    /// Spawn what reads from clients — a listener, or a connection's reader with the
    /// commands it runs — on the answer runtime if there is one. There a command is not
    /// queued behind a fan-out's writers, and the sockets, accepted there, are registered
    /// with its I/O driver: a busy main runtime polls its own only every so many tasks,
    /// which kept a post waiting ~2 ms before it was read.
    pub(crate) fn spawn_answering<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match self.answers.get() {
            Some(runtime) => self.tasks.spawn_on(task, runtime),
            None => self.tasks.spawn(task),
        }
    }

    /// Spawn a connection's session (its admission, then its writer) on the main runtime.
    pub(crate) fn spawn_session<F>(&self, session: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn_on(session, &self.main);
    }
}
