//! [`Pipeline`]: the deliveries for one connect server, sent in queue order, each batch
//! retried with backoff until the server takes it — or is gone for good.
//!
//! "Gone for good" is decided by the server's presence lease, not by the registry: a
//! server missing from etcd for a moment (a lease blip, etcd restarting) still holds its
//! users, and deliveries wait for it; a server whose presence lease lapsed has died, its
//! users will reconnect elsewhere, and what was meant for it is let go (and counted).

use crate::entry::Entry;
use gochat_core::model::Delivery;
use gochat_core::{Peers, Sessions};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// First pause after a failed delivery; doubles up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_millis(50);
/// Longest pause between two attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(2);
/// Deliveries merged into one call to a connect server.
pub const MERGE_MAX: usize = 1024;
/// A pipeline with nothing to send for this long ends (it is made again when needed).
pub const IDLE_END: Duration = Duration::from_secs(60);
/// A server that is alive (its lease holds) but refuses a batch for this long is given up
/// on for that batch: its entries stay unacknowledged, to be claimed again later (and
/// dead-lettered after `task.max_deliveries` hand-outs).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// How sending one batch ended.
enum Outcome {
    /// The server took it.
    Delivered,
    /// The server died; the batch is let go (acknowledged).
    ServerDead,
    /// Retried for [`GIVE_UP_AFTER`]; left unacknowledged for a later claim.
    GaveUp,
    /// The worker is stopping; left unacknowledged.
    Abandoned,
}

/// Deliveries for one server, each with the entry it belongs to.
pub type Parts = Vec<(Delivery, Arc<Entry>)>;

/// Counters shared by a worker's pipelines.
#[derive(Default)]
pub struct Counters {
    /// Deliveries handed to connect servers.
    pub delivered: AtomicU64,
    /// Failed attempts (each retried).
    pub retries: AtomicU64,
    /// Deliveries let go because their server died.
    pub abandoned_dead_server: AtomicU64,
    /// Deliveries left unacknowledged after [`GIVE_UP_AFTER`] of failures.
    pub given_up: AtomicU64,
}

/// What one pipeline task needs.
pub struct Pipeline {
    pub(crate) server: String,
    pub(crate) peers: Arc<Peers>,
    pub(crate) sessions: Arc<dyn Sessions>,
    pub(crate) counters: Arc<Counters>,
    /// Fired when the worker stops waiting for stuck servers (after its shutdown grace):
    /// what is still undelivered stays unacknowledged in the queue.
    pub(crate) abandon: CancellationToken,
}

impl Pipeline {
    /// Send what arrives on `rx`, in order, until the worker drops the sender or the
    /// pipeline idles out.
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<Parts>) {
        loop {
            let first = tokio::select! {
                p = rx.recv() => p,
                _ = tokio::time::sleep(IDLE_END) => None,
            };
            let Some(mut parts) = first else { return };
            while parts.len() < MERGE_MAX {
                match rx.try_recv() {
                    Ok(more) => parts.extend(more),
                    Err(_) => break,
                }
            }
            match self.send(&parts).await {
                Outcome::Delivered | Outcome::ServerDead => {
                    for (_, entry) in &parts {
                        entry.part_done();
                    }
                }
                // Dropping the parts drops this server's hold on their entries, which then
                // are never acknowledged: they stay in the queue for a later claim.
                Outcome::GaveUp => {}
                Outcome::Abandoned => return,
            }
        }
    }

    /// Deliver one merged batch.
    async fn send(&self, parts: &Parts) -> Outcome {
        let batch: Vec<Delivery> = parts.iter().map(|(d, _)| d.clone()).collect();
        let mut pause = RETRY_FIRST;
        let started = tokio::time::Instant::now();
        loop {
            let failure = match self.peers.connect(&self.server).await {
                Ok(Some(client)) => match tokio::select! {
                    r = client.deliver(batch.clone()) => r,
                    _ = self.abandon.cancelled() => return Outcome::Abandoned,
                } {
                    Ok(()) => {
                        self.counters
                            .delivered
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        return Outcome::Delivered;
                    }
                    Err(f) => f.to_string(),
                },
                Ok(None) => "not in the registry".to_owned(),
                Err(e) => e.to_string(),
            };
            if self.is_dead().await {
                tracing::warn!(
                    "task: connect server {} died; {} deliveries to it let go (its users reconnect)",
                    self.server,
                    batch.len()
                );
                self.counters
                    .abandoned_dead_server
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return Outcome::ServerDead;
            }
            if started.elapsed() >= GIVE_UP_AFTER {
                tracing::error!(
                    "task: {} refused {} deliveries for {GIVE_UP_AFTER:?}; leaving them in the queue: {failure}",
                    self.server,
                    batch.len()
                );
                self.counters
                    .given_up
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return Outcome::GaveUp;
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "task: delivering {} to {} failed, retrying in {pause:?}: {failure}",
                batch.len(),
                self.server
            );
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.abandon.cancelled() => return Outcome::Abandoned,
            }
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// Whether the server's presence lease lapsed. When Sessions cannot say (it is down
    /// too), the server is presumed alive: waiting is safe, letting go is not.
    async fn is_dead(&self) -> bool {
        matches!(self.sessions.server_alive(&self.server).await, Ok(false))
    }
}
