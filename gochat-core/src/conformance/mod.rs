//! Conformance suites: one per backend trait, generic over a factory, so that every
//! backend — the embedded ones here, Redis and etcd ones, or a user's own — is held to the
//! same contract by the very same assertions. Enabled in this crate's tests and, for other
//! crates' backends, by the `testing` feature.
//!
//! Each factory call must return a fresh, isolated backend (a new stream, key prefix or
//! database), so suites can run concurrently against one server.
#![allow(clippy::unwrap_used, missing_docs)]

pub mod queue;
pub mod registry;
pub mod sessions;
pub mod store;
