//! The client-facing wire protocol (PROTOCOL.md), sans-IO: pure functions over bytes, so
//! they are unit-tested and fuzzed without sockets and shared by every transport.
//!
//! - [`push`]: the JSON objects pushed to clients (op 2 private, 3 room, 4 count, 5 roster).
//! - [`auth`]: the client's auth frame (`{"authToken":…,"roomId":…}`).
//! - [`tcp`]: gochat's `v1` length-prefixed TCP framing.
//! - [`ws`]: pre-encoded server-to-client WebSocket frames (encode once, write to many).
//! - [`time`]: the `YYYY-MM-DD HH:MM:SS` timestamps in room messages.
//! - [`v2`]: protocol v2 — commands, op-10 replies, stored messages, join/leave events.

pub mod auth;
pub mod push;
pub mod tcp;
pub mod time;
pub mod v2;
pub mod ws;
