//! The logic → task hand-off.
//!
//! # Contract
//! - **At-least-once.** A delivery whose `publish` returned `Ok` is handed to some consumer's
//!   `receive` until one of them acknowledges it or moves it to the dead letters. A delivery
//!   that is received but not acknowledged within the backend's claim-idle time is handed
//!   out again, to any consumer (its original consumer is presumed dead or stuck), with
//!   [`Received::deliveries`] counting the hand-outs.
//! - **Who deduplicates.** Nobody in the queue or in task: a redelivered entry is delivered
//!   again. Connect servers drop a delivery whose [`Delivery::id`] they handled recently (a
//!   bounded window, `connect.dedup_window`), so a redelivery does not reach a client twice;
//!   protocol-v2 clients can also tell a copy by its `seq`.
//! - **Poison entries.** An entry that cannot be decoded is never handed out: the backend
//!   moves it to its dead letters with the reason and carries on with the rest. A consumer
//!   moves an entry there itself ([`Queue::dead_letter`]) when it fails for good.
//! - **Order.** Deliveries are handed out in publish order. With one consumer, and no
//!   redelivery, they are processed in that order; several consumers share the stream and
//!   may interleave.
//! - **Bounded.** Each backend documents its bound and what `publish` does at it.
//! - `receive` waits at most `wait` for the first delivery, then returns what it has (maybe
//!   nothing). It is safe to cancel: a cancelled `receive` loses nothing.

mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use memory::MemoryQueue;
#[cfg(feature = "redis")]
pub use redis::{RedisQueue, RedisQueueConfig};

use crate::Result;
use crate::model::Delivery;
use async_trait::async_trait;
use std::time::Duration;

/// Identifies one handed-out delivery for [`Queue::ack`]. Two integers, so that a Redis
/// stream id (`ms-seq`) fits without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Receipt(pub u64, pub u64);

/// A delivery handed to a consumer, with the receipt that acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Pass to [`Queue::ack`] once the delivery is done.
    pub receipt: Receipt,
    /// What to deliver.
    pub delivery: Delivery,
    /// How many times this entry has been handed out, this time included (1 the first time).
    pub deliveries: u32,
}

/// A durable, acknowledged hand-off of deliveries (see the module docs for the contract).
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Append a delivery. `Ok` means it will be handed out until acknowledged.
    async fn publish(&self, delivery: Delivery) -> Result<()>;

    /// Up to `max` deliveries for `consumer`, waiting at most `wait` for the first.
    async fn receive(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Received>>;

    /// Mark deliveries done; unknown or already-acknowledged receipts are ignored.
    async fn ack(&self, receipts: &[Receipt]) -> Result<()>;

    /// Take handed-out entries out of the queue for good, keeping each with the reason it
    /// failed in the backend's dead letters (bounded; the oldest go first). Unknown
    /// receipts are ignored.
    async fn dead_letter(&self, entries: &[(Receipt, String)]) -> Result<()>;

    /// Entries moved to the dead letters since this queue value was made (by this process).
    fn dead_lettered(&self) -> u64;

    /// How much the queue holds now (for the metrics).
    async fn depth(&self) -> Result<Depth>;
}

/// What a queue holds at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Entries not yet acknowledged: waiting to be handed out, or handed out.
    pub held: u64,
    /// Of those, handed out to a consumer and not yet acknowledged.
    pub pending: u64,
}
