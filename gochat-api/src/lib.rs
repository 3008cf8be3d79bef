//! # gochat-api
//!
//! The api layer: gochat's REST API (PROTOCOL.md §1) — every route `POST` with a JSON
//! body, every answer HTTP 200 with `{"code","data","message"}` and CORS headers — plus our
//! web chat page, embedded in the binary.
//!
//! [`router::handle`] answers one request whatever its body type, so a test (or an
//! embedding with its own HTTP stack) calls it directly, with a [`State`] over any
//! [`LogicService`](gochat_core::rpc::LogicService).

pub mod envelope;
pub mod handlers;
pub mod limits;
pub mod request;
pub mod router;
mod server;
pub mod site;
mod state;

pub use server::Api;
pub use site::PageConfig;
pub use state::{LogicRef, State};
