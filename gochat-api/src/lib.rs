//! # gochat-api
//!
//! The api layer: gochat's REST API (PROTOCOL.md §1) — every route `POST` with a JSON
//! body, every answer HTTP 200 with `{"code","data","message"}` and CORS headers — plus our
//! web chat page, embedded in the binary.

pub mod envelope;
mod handlers;
pub mod request;
pub mod router;
mod server;
pub mod site;

pub use server::{Api, State};
pub use site::PageConfig;
