//! [`MemoryQueue`]: the embedded, in-process queue.

use super::{Queue, Receipt, Received};
use crate::Result;
use crate::config::QueueConfig;
use crate::model::Delivery;
use async_trait::async_trait;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

/// An in-process queue. Durable only for the life of the process (that is the embedded
/// trade-off); at-least-once within it.
///
/// Bound: `capacity` deliveries, ready plus unacknowledged. At the bound `publish` waits
/// for an acknowledgement to make room (backpressure on the API, never a silent drop).
pub struct MemoryQueue {
    /// Ready and pending entries. A `std` mutex: every section is a few map operations
    /// with no `.await` inside.
    state: Mutex<State>,
    /// One permit per free slot; `publish` takes one, `ack` gives it back.
    space: Semaphore,
    /// Wakes receivers when something is published.
    published: Notify,
    /// How long a handed-out delivery may stay unacknowledged before it is handed out again.
    claim_idle: Duration,
    /// Entries moved to the dead letters so far.
    dead_lettered: AtomicU64,
}

/// Dead letters kept in memory; older ones are dropped first (they are counted and logged).
pub const DEAD_LETTERS_KEPT: usize = 1024;

#[derive(Default)]
struct State {
    next_seq: u64,
    ready: VecDeque<(u64, Delivery)>,
    /// Handed out, not acknowledged: seq → (delivery, when handed out, times handed out).
    pending: BTreeMap<u64, (Delivery, Instant, u32)>,
    /// The newest dead letters, with why they failed.
    dead: VecDeque<(Delivery, String)>,
}

impl MemoryQueue {
    /// A queue with the given bound and claim-idle time.
    pub fn new(config: &QueueConfig) -> Self {
        Self {
            state: Mutex::default(),
            space: Semaphore::new(config.capacity.max(1)),
            published: Notify::new(),
            claim_idle: config.claim_idle(),
            dead_lettered: AtomicU64::new(0),
        }
    }

    /// The dead letters kept, oldest first, with their reasons.
    pub fn dead_letters(&self) -> Vec<(Delivery, String)> {
        self.lock().dead.iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves only plain collections behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self, max: usize) -> Vec<Received> {
        let now = Instant::now();
        let mut st = self.lock();
        let mut out = Vec::new();
        // Stale pending entries first: they are older than anything ready.
        let stale: Vec<u64> = st
            .pending
            .iter()
            .filter(|(_, (_, at, _))| now.duration_since(*at) >= self.claim_idle)
            .map(|(seq, _)| *seq)
            .take(max)
            .collect();
        for seq in stale {
            if let Some(entry) = st.pending.get_mut(&seq) {
                entry.1 = now;
                entry.2 += 1;
                out.push(Received {
                    receipt: Receipt(0, seq),
                    delivery: entry.0.clone(),
                    deliveries: entry.2,
                });
            }
        }
        while out.len() < max {
            let Some((seq, delivery)) = st.ready.pop_front() else {
                break;
            };
            st.pending.insert(seq, (delivery.clone(), now, 1));
            out.push(Received {
                receipt: Receipt(0, seq),
                delivery,
                deliveries: 1,
            });
        }
        out
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn publish(&self, delivery: Delivery) -> Result<()> {
        self.space
            .acquire()
            .await
            .map_err(|_| crate::Error::Closed)?
            .forget();
        {
            let mut st = self.lock();
            let seq = st.next_seq;
            st.next_seq += 1;
            st.ready.push_back((seq, delivery));
        }
        self.published.notify_waiters();
        Ok(())
    }

    async fn receive(&self, _consumer: &str, max: usize, wait: Duration) -> Result<Vec<Received>> {
        let deadline = Instant::now() + wait;
        loop {
            // Register interest before looking, so a publish between the look and the wait
            // is not missed.
            let notified = self.published.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.take(max.max(1));
            if !got.is_empty() {
                return Ok(got);
            }
            // Wake for a publish, the deadline, or the next pending entry going stale.
            let next_stale = self
                .lock()
                .pending
                .values()
                .map(|(_, at, _)| *at + self.claim_idle)
                .min();
            let until = next_stale.map_or(deadline, |s| s.min(deadline));
            if tokio::time::timeout_at(until, notified).await.is_err() && Instant::now() >= deadline
            {
                return Ok(self.take(max.max(1)));
            }
        }
    }

    async fn ack(&self, receipts: &[Receipt]) -> Result<()> {
        let freed = {
            let mut st = self.lock();
            receipts
                .iter()
                .filter(|r| st.pending.remove(&r.1).is_some())
                .count()
        };
        self.space.add_permits(freed);
        Ok(())
    }

    async fn dead_letter(&self, entries: &[(Receipt, String)]) -> Result<()> {
        let freed = {
            let mut st = self.lock();
            let mut freed = 0;
            for (receipt, reason) in entries {
                if let Some((delivery, _, _)) = st.pending.remove(&receipt.1) {
                    tracing::error!("queue: delivery {} dead-lettered: {reason}", delivery.id);
                    if st.dead.len() >= DEAD_LETTERS_KEPT {
                        st.dead.pop_front();
                    }
                    st.dead.push_back((delivery, reason.clone()));
                    freed += 1;
                }
            }
            freed
        };
        self.dead_lettered
            .fetch_add(freed as u64, Ordering::Relaxed);
        self.space.add_permits(freed);
        Ok(())
    }

    fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }

    async fn depth(&self) -> Result<super::Depth> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let pending = s.pending.len() as u64;
        Ok(super::Depth {
            held: s.ready.len() as u64 + pending,
            pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::queue as suite;

    #[tokio::test]
    async fn conformance() {
        suite::run_all(|cfg| async move { MemoryQueue::new(&cfg) }).await;
    }

    #[tokio::test]
    async fn publish_waits_at_the_bound_until_an_ack() {
        let q = std::sync::Arc::new(MemoryQueue::new(&QueueConfig {
            capacity: 2,
            claim_idle_ms: 60_000,
        }));
        q.publish(suite::delivery(1)).await.unwrap();
        q.publish(suite::delivery(2)).await.unwrap();
        let q2 = q.clone();
        let third = tokio::spawn(async move { q2.publish(suite::delivery(3)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished(), "publish must wait at the bound");
        let got = q.receive("c", 10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 2);
        q.ack(&[got[0].receipt]).await.unwrap();
        third.await.unwrap().unwrap();
    }
}
