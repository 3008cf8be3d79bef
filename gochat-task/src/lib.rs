//! # gochat-task
//!
//! The task layer: consumes the [`Queue`](gochat_core::Queue), finds which connect servers
//! hold each delivery's recipients (through [`Sessions`](gochat_core::Sessions) and the
//! [`Registry`](gochat_core::Registry)), calls them, and acknowledges after delivery. Run
//! any number of [`Task`]s on one queue; they share its consumer group.

mod consumer;
pub mod router;

pub use consumer::Task;
