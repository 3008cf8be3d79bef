//! The logic → task hand-off.
//!
//! # Contract
//! - **At-least-once.** A delivery whose `publish` returned `Ok` is handed to some consumer's
//!   `receive` until one of them acknowledges it. A delivery that is received but not
//!   acknowledged within the backend's claim-idle time is handed out again, to any consumer
//!   (its original consumer is presumed dead). Consumers deduplicate by [`Delivery::id`].
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
}
