//! [`Task`]: the queue consumer loop.

use crate::entry::{Entry, InFlight};
use crate::pipeline::{Counters, Parts, Pipeline};
use crate::router::route;
use gochat_core::config::TaskConfig;
use gochat_core::hash::FastMap;
use gochat_core::queue::{Receipt, Received};
use gochat_core::{Peers, Queue, Sessions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long one `receive` waits before looking at the shutdown signal again.
const RECEIVE_WAIT: Duration = Duration::from_millis(500);
/// Pause after the queue or the routing failed (Redis away), before trying again.
const BACKEND_RETRY: Duration = Duration::from_millis(200);
/// At shutdown, how long undelivered entries are still retried before they are left in the
/// queue (unacknowledged, for another worker to claim).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Receipts acknowledged in one call.
const ACK_BATCH: usize = 1024;

/// One queue consumer. It takes entries, routes each to the connect servers holding its
/// recipients, and hands each server its part through that server's [`Pipeline`] (in queue
/// order, retried with backoff). An entry is acknowledged only once every server has taken
/// its part, or has died (its presence lease lapsed: its users reconnect elsewhere). Until
/// then it stays pending in the queue, so a worker that dies leaves it to be claimed by
/// another. An entry handed out more than `max_deliveries` times is dead-lettered.
///
/// With a single worker, deliveries reach each connect server in queue order; a slow or
/// frozen server delays only its own pipeline (up to `max_in_flight` entries), not the
/// others'.
pub struct Task {
    config: TaskConfig,
    queue: Arc<dyn Queue>,
    sessions: Arc<dyn Sessions>,
    peers: Arc<Peers>,
    counters: Arc<Counters>,
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
            counters: Arc::default(),
        }
    }

    /// Delivery counters of this worker (delivered, retried, let go).
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Consume until `shutdown` fires; then give what is in hand [`SHUTDOWN_GRACE`] to be
    /// delivered and acknowledge what was.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.config.max_in_flight.max(1)));
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acknowledge(self.queue.clone(), done_rx));
        let pipelines = TaskTracker::new();
        let abandon = CancellationToken::new();
        let mut senders: FastMap<String, mpsc::UnboundedSender<Parts>> = FastMap::default();
        let in_flight = InFlight::default();
        let depth = tokio::spawn(report_depth(self.queue.clone(), shutdown.clone()));

        while !shutdown.is_cancelled() {
            // A place for at least one entry first (at the in-flight bound, wait), then for
            // as many more as are free, up to a batch. Only this loop takes places, so the
            // free ones cannot go meanwhile.
            let mut places = tokio::select! {
                s = slots.clone().acquire_owned() => match s { Ok(s) => s, Err(_) => break },
                _ = shutdown.cancelled() => break,
            };
            let more = slots.available_permits().min(self.config.batch.max(1) - 1);
            if let Ok(extra) = slots.clone().try_acquire_many_owned(more as u32) {
                places.merge(extra);
            }
            let room = places.num_permits();
            let batch = tokio::select! {
                b = self.queue.receive(&self.config.consumer, room, RECEIVE_WAIT) => b,
                _ = shutdown.cancelled() => break,
            };
            let received = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("task: receive failed: {e}");
                    tokio::time::sleep(BACKEND_RETRY).await;
                    continue;
                }
            };
            let again = received.iter().filter(|r| r.deliveries > 1).count();
            gochat_core::metrics::metrics()
                .queue_redelivered
                .inc_by(again as u64);
            // A copy of an entry this worker is still retrying (the queue handed it out again
            // after its claim-idle time) is already being taken care of.
            let received: Vec<Received> = received
                .into_iter()
                .filter(|r| !in_flight.holds(&r.receipt))
                .collect();
            let received = self.dead_letter_the_hopeless(received).await;
            if received.is_empty() {
                continue;
            }
            let Some(routes) = self.route(&received, &shutdown).await else {
                break; // shutting down; the batch stays pending
            };
            // One place per entry (the queue hands out at most `room`); the rest go back.
            let mut entries: Vec<Arc<Entry>> = Vec::with_capacity(received.len());
            for (r, &parts) in received.iter().zip(&routes.parts_per_entry) {
                let place = match places.split(1) {
                    Some(p) => p,
                    None => break, // more than `room` entries: the extras stay pending
                };
                entries.push(Arc::new(Entry::new(
                    r.receipt,
                    parts,
                    done_tx.clone(),
                    place,
                    in_flight.clone(),
                )));
            }
            drop(places);
            for (server, deliveries) in routes.by_server {
                let parts: Parts = deliveries
                    .into_iter()
                    .filter_map(|(d, i)| Some((d, entries.get(i)?.clone())))
                    .collect();
                self.pipeline(&mut senders, &pipelines, &abandon, &server)
                    .send(parts)
                    .unwrap_or_else(|e| {
                        // The pipeline idled out between the lookup and the send: a new one.
                        senders.remove(&server);
                        let _ = self
                            .pipeline(&mut senders, &pipelines, &abandon, &server)
                            .send(e.0);
                    });
            }
        }

        // Stop taking work; give the pipelines their grace, then abandon what is left.
        drop(senders);
        pipelines.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, pipelines.wait())
            .await
            .is_err()
        {
            tracing::warn!("task: undelivered entries left in the queue for another worker");
            abandon.cancel();
            pipelines.wait().await;
        }
        drop(done_tx);
        depth.abort();
        let _ = acker.await;
    }

    /// The sender of `server`'s pipeline, starting one if there is none.
    fn pipeline<'a>(
        &self,
        senders: &'a mut FastMap<String, mpsc::UnboundedSender<Parts>>,
        tasks: &TaskTracker,
        abandon: &CancellationToken,
        server: &str,
    ) -> &'a mpsc::UnboundedSender<Parts> {
        if senders.get(server).is_none_or(|s| s.is_closed()) {
            let (tx, rx) = mpsc::unbounded_channel();
            let p = Pipeline {
                server: server.to_owned(),
                peers: self.peers.clone(),
                sessions: self.sessions.clone(),
                counters: self.counters.clone(),
                abandon: abandon.clone(),
            };
            tasks.spawn(p.run(rx));
            senders.insert(server.to_owned(), tx);
        }
        &senders[server]
    }

    /// Entries handed out too often go to the dead letters instead of being tried again.
    async fn dead_letter_the_hopeless(&self, received: Vec<Received>) -> Vec<Received> {
        let max = self.config.max_deliveries.max(1);
        let (keep, hopeless): (Vec<_>, Vec<_>) =
            received.into_iter().partition(|r| r.deliveries <= max);
        if !hopeless.is_empty() {
            let entries: Vec<(Receipt, String)> = hopeless
                .iter()
                .map(|r| {
                    tracing::error!(
                        "task: delivery {} handed out {} times without success; dead-lettered",
                        r.delivery.id,
                        r.deliveries
                    );
                    (
                        r.receipt,
                        format!("handed out {} times without being delivered", r.deliveries),
                    )
                })
                .collect();
            match self.queue.dead_letter(&entries).await {
                Ok(()) => {
                    let m = gochat_core::metrics::metrics();
                    m.queue_dead_lettered.inc_by(entries.len() as u64);
                }
                Err(e) => {
                    tracing::warn!("task: dead-lettering failed (they come back later): {e}")
                }
            }
        }
        keep
    }

    /// Route a batch, retrying while Sessions is unreachable; `None` if shutdown came first.
    async fn route(&self, received: &[Received], shutdown: &CancellationToken) -> Option<Routed> {
        loop {
            match route(self.sessions.as_ref(), received).await {
                Ok(r) => return Some(r),
                Err(e) => {
                    tracing::warn!("task: routing failed, retrying: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(BACKEND_RETRY) => {}
                        _ = shutdown.cancelled() => return None,
                    }
                }
            }
        }
    }
}

/// Routes of a batch: per server its deliveries (each with the index of its entry), and per
/// entry how many servers it goes to.
pub struct Routed {
    /// Server → (delivery, entry index), in queue order.
    pub by_server: crate::router::Routes<usize>,
    /// Parts of each entry, by index.
    pub parts_per_entry: Vec<usize>,
}

/// Every second until shutdown, what the queue holds, for the metrics.
async fn report_depth(queue: Arc<dyn Queue>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if let Ok(d) = queue.depth().await {
            let m = gochat_core::metrics::metrics();
            m.queue_held.set(d.held as i64);
            m.queue_pending.set(d.pending as i64);
        }
    }
}

/// Acknowledge finished entries in batches until every entry and pipeline is gone.
async fn acknowledge(queue: Arc<dyn Queue>, mut done: mpsc::UnboundedReceiver<Receipt>) {
    let mut batch = Vec::with_capacity(ACK_BATCH);
    while done.recv_many(&mut batch, ACK_BATCH).await > 0 {
        match queue.ack(&batch).await {
            Ok(()) => {
                let m = gochat_core::metrics::metrics();
                m.queue_acked.inc_by(batch.len() as u64);
            }
            // Not fatal: unacknowledged entries are delivered again and connect drops the
            // copies it has seen.
            Err(e) => tracing::warn!("task: ack of {} entries failed: {e}", batch.len()),
        }
        batch.clear();
    }
}
