//! Which layer instances exist, and at which RPC address.
//!
//! # Contract
//! - `register` lists an instance (replacing any with the same kind and id) until
//!   `deregister`, or until the registering process dies: a distributed backend holds the
//!   entry under a lease that lapses within its TTL when nobody keeps it alive.
//! - `list` is a snapshot; it may lag a registration or a death by up to the backend's
//!   propagation delay (memory: none; etcd: the lease TTL for a death).
//! - `watch` yields the full, current list of a kind each time it changes, starting with the
//!   current one; it is sorted by id.
//! - Addresses are what a peer dials (`host:port`, never `0.0.0.0`), or an in-process name.

#[cfg(feature = "etcd")]
mod etcd;
mod memory;

#[cfg(feature = "etcd")]
pub use etcd::{EtcdRegistry, EtcdRegistryConfig};
pub use memory::MemoryRegistry;

use crate::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The kinds of instance that serve RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// A logic instance (serves `LogicRpc`).
    Logic,
    /// A connect server (serves `ConnectRpc`).
    Connect,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Logic => "logic",
            Kind::Connect => "connect",
        })
    }
}

/// One registered instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Instance {
    /// What it serves.
    pub kind: Kind,
    /// Unique among instances of its kind (a connect server's `server_id`).
    pub id: String,
    /// Where to reach it.
    pub addr: String,
}

/// The instance directory (see the module docs for the contract).
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// List `instance` until deregistered or dead.
    async fn register(&self, instance: Instance) -> Result<()>;

    /// Remove an instance; removing one that is not listed is not an error.
    async fn deregister(&self, kind: Kind, id: &str) -> Result<()>;

    /// The instances of a kind, sorted by id.
    async fn list(&self, kind: Kind) -> Result<Vec<Instance>>;

    /// The list of a kind, now and after each change.
    async fn watch(&self, kind: Kind) -> Result<watch::Receiver<Vec<Instance>>>;

    /// Stop the backend's own tasks (lease keep-alives, watches); instances still listed
    /// lapse within the TTL. Default: nothing to stop.
    async fn close(&self) {}
}
