//! # gochat
//!
//! An instant-messaging server in the shape of Go's *gochat*: private messages and room
//! broadcasts over long-lived WebSocket connections, through four layers — api, logic,
//! task, connect — that run together in one process (this crate's [`Server`]) or apart.
//! gochat's own web and TCP clients work against it unchanged.
//!
//! ```no_run
//! # async fn run() -> Result<(), gochat::Error> {
//! let server = gochat::Server::builder().start().await?; // api :7070, ws :7000, page :8080
//! println!("open http://{}/", server.api_addr().expect("the api layer runs"));
//! tokio::signal::ctrl_c().await.ok();
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Each layer is its own crate, re-exported here: [`core`], [`logic`], [`task`],
//! [`connect`], [`api`]. Features: `client` (on by default) adds `gochat::client`, a Rust
//! client; `sqlite` (on by default) the embedded store; `cli` (on by default) the `gochat`
//! binary; `distributed` the Redis and etcd backends and the four layer binaries.

mod answers;
mod budget;
#[cfg(feature = "client")]
pub mod client;
// docs/client-guide.md, here so that its example is compiled with the doctests.
#[cfg(all(doctest, feature = "client"))]
#[doc = include_str!("../docs/client-guide.md")]
pub mod client_guide {}
#[cfg(feature = "distributed")]
mod cluster;
/// Importing users from other systems.
#[cfg(feature = "sqlite")]
pub mod import;
mod layer;
mod server;

pub use gochat_api as api;
pub use gochat_connect as connect;
pub use gochat_core as core;
pub use gochat_core::Config;
pub use gochat_logic as logic;
pub use gochat_task as task;
pub use layer::Layers;
pub use server::{Error, Server, ServerBuilder, open_store};

/// The README's code blocks, compiled as doc tests so the quick start cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
