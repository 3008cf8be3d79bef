//! # gochat-task
//!
//! The task layer: consumes the [`Queue`](gochat_core::Queue), finds the connect servers
//! holding each delivery's recipients through [`Sessions`](gochat_core::Sessions), and
//! hands each server its part through a per-server pipeline — in queue order, retried with
//! backoff — acknowledging an entry only when every server has taken it (or died).
//! Entries that can never be delivered go to the queue's dead letters.

mod consumer;
mod entry;
pub mod pipeline;
pub mod router;

pub use consumer::{Routed, Task};
pub use pipeline::Counters;
