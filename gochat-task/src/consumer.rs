//! [`Task`]: the queue consumer loop.

use crate::router::route;
use gochat_core::config::TaskConfig;
use gochat_core::model::Delivery;
use gochat_core::queue::Receipt;
use gochat_core::{Peers, Queue, Sessions};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long one `receive` waits before looking at the shutdown signal again.
const RECEIVE_WAIT: Duration = Duration::from_millis(500);
/// Attempts per connect server before a batch's deliveries to it are given up on.
const ATTEMPTS: u32 = 3;

/// One queue consumer: takes batches, routes each delivery to the connect servers holding
/// its recipients, and acknowledges the batch only once every server has taken its part
/// (so a worker that dies mid-batch leaves it to be claimed by another).
///
/// Batches are handled one after another, so with a single worker deliveries reach each
/// connect server in queue order.
pub struct Task {
    config: TaskConfig,
    queue: Arc<dyn Queue>,
    sessions: Arc<dyn Sessions>,
    peers: Arc<Peers>,
}

impl Task {
    /// A consumer over the given backends.
    pub fn new(
        config: TaskConfig,
        queue: Arc<dyn Queue>,
        sessions: Arc<dyn Sessions>,
        peers: Arc<Peers>,
    ) -> Self {
        Self {
            config,
            queue,
            sessions,
            peers,
        }
    }

    /// Consume until `shutdown` fires; the batch in hand is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let batch = tokio::select! {
                b = self.queue.receive(&self.config.consumer, self.config.batch, RECEIVE_WAIT) => b,
                _ = shutdown.cancelled() => break,
            };
            match batch {
                Ok(batch) if batch.is_empty() => {}
                Ok(batch) => {
                    let (receipts, deliveries): (Vec<Receipt>, Vec<Delivery>) =
                        batch.into_iter().map(|r| (r.receipt, r.delivery)).unzip();
                    self.handle(deliveries).await;
                    if let Err(e) = self.queue.ack(&receipts).await {
                        tracing::warn!("task: ack failed, the batch will be redelivered: {e}");
                    }
                }
                Err(e) => {
                    tracing::warn!("task: receive failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Deliver one batch to every server it concerns, servers in parallel.
    pub async fn handle(&self, deliveries: Vec<Delivery>) {
        let routes = match route(self.sessions.as_ref(), deliveries).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("task: routing failed, batch dropped: {e}");
                return;
            }
        };
        let sends = routes
            .into_iter()
            .map(|(server, batch)| self.send(server, batch));
        futures::future::join_all(sends).await;
    }

    async fn send(&self, server: String, batch: Vec<Delivery>) {
        for attempt in 1..=ATTEMPTS {
            let client = match self.peers.connect(&server).await {
                Ok(Some(c)) => c,
                // Not registered: the server left or died; its users are gone with it.
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("task: cannot reach {server}: {e}");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    continue;
                }
            };
            match client.deliver(batch.clone()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!("task: deliver to {server} failed (attempt {attempt}): {e}");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
            }
        }
        tracing::error!("task: gave up on {} deliveries to {server}", batch.len());
    }
}
