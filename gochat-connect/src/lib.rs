//! # gochat-connect
//!
//! The connect layer: holds the long connections (WebSocket on `/ws`, gochat's raw TCP),
//! authenticates them with their first frame through logic, and fans pushes out to them.
//!
//! - [`Connect`] ties it together; its [`service`](Connect::service) is what task calls.
//! - One session driver (`session.rs`) runs every connection — auth, admission, reader,
//!   writer, release — over a small codec per transport (`ws.rs`, `tcp.rs`).
//! - [`Hub`] → [`Bucket`] → [`Channel`]: connections sharded over a fixed number of buckets
//!   by a stable hash of the user id, indexed by room and by user.
//! - Each channel has a bounded outbound queue; a client that does not read is closed
//!   (1013) and never stalls a room. Its writer drains the queue into one `writev`; a
//!   v2 command's reply is written at once by the reader when the writer is not mid-write
//!   (`sink.rs`), instead of waiting for the writer's turn behind a fan-out round.
//! - A push is framed once per wire layout and the same bytes go to every channel; a
//!   redelivered one is dropped; rosters and counts are coalesced per room.
//! - The server's presence is a lease it renews, re-asserting every live connection after
//!   any outage (`presence.rs`).
//!
//! Every reason a connection is closed for is in [`close`].

mod addresses;
mod admission;
pub mod bucket;
pub mod channel;
pub mod close;
mod coalesce;
mod codec;
mod commands;
mod dedup;
pub mod hub;
mod outbox;
mod presence;
mod replay;
mod server;
mod session;
mod sink;
mod state;
pub mod tcp;
mod writer;
mod ws;

pub use bucket::Bucket;
pub use channel::{Channel, Framing, HoldKey};
pub use close::CloseReason;
pub use hub::Hub;
pub use outbox::Outgoing;
pub use server::Connect;
