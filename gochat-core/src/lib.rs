//! # gochat-core
//!
//! What every gochat layer shares: snowflake [`ids`], the [`model`], the client wire
//! [`protocol`] (sans-IO), the [`config`], and the five pluggable backends, each a trait
//! documented as a contract with an embedded default:
//!
//! | trait | embedded default |
//! |---|---|
//! | [`Queue`] | [`MemoryQueue`] |
//! | [`Registry`] | [`MemoryRegistry`] |
//! | [`Store`] | `SqliteStore` (feature `sqlite`, on by default) |
//! | [`Sessions`] | [`MemorySessions`] |
//! | [`Transport`] | [`LocalTransport`] (in-process: the service itself, called directly) |
//!
//! and the RPC definitions between layers ([`rpc`]).
//!
//! ```
//! use gochat_core::protocol::push::encode_count;
//! assert_eq!(encode_count(2), br#"{"count":2,"op":4}"#);
//! ```

pub mod config;
pub mod error;
pub mod hash;
pub mod http;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod net;
pub mod ops;
pub mod protocol;
pub mod queue;
#[cfg(feature = "redis")]
mod redis_util;
pub mod registry;
pub mod rpc;
pub mod sessions;
pub mod store;
pub mod tls;
pub mod transport;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;

pub use config::Config;
pub use error::{Error, Result};
pub use queue::{MemoryQueue, Queue};
pub use registry::{MemoryRegistry, Registry};
pub use sessions::{MemorySessions, Sessions};
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::Store;
pub use transport::{LocalTransport, Peers, TcpTransport, Transport};
