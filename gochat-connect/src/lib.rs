//! # gochat-connect
//!
//! The connect layer: holds the long connections (WebSocket on `/ws`), authenticates them
//! with their first frame through logic, and fans pushes out to them.
//!
//! - [`Hub`] → [`Bucket`] → [`Channel`]: connections sharded over a fixed number of buckets
//!   by a stable hash of the user id, indexed by room and by user.
//! - Each channel has a bounded outbound queue; a client that does not read is closed
//!   (1013) and never stalls a room. Its writer drains the queue into one `writev`.
//! - A push is framed once per wire layout and the same bytes go to every channel.
//! - [`Connect`] ties it together; its [`service`](Connect::service) is what task calls.

mod admission;
pub mod bucket;
pub mod channel;
pub mod hub;
mod server;
pub mod tcp;
mod writer;
mod ws;

pub use bucket::Bucket;
pub use channel::{Channel, CloseReason, Framing};
pub use hub::Hub;
pub use server::Connect;
