//! How one layer reaches another.
//!
//! # Contract
//! - `serve_*` makes a service reachable and returns the address peers dial (which the
//!   caller then puts in the [`Registry`](crate::Registry)); it stops serving when
//!   `shutdown` is cancelled.
//! - `logic` / `connect` return a client for an address. Clients are shared and reused; a
//!   call on a peer that is gone fails with [`Fault::Unavailable`](crate::rpc::Fault), and a
//!   later dial reaches the peer again once it is back.
//! - Calls between processes carry a deadline (10 s); a call past it fails rather than
//!   hangs. In-process calls are plain async calls into the service.

mod local;
mod peers;
mod tcp;

pub use local::LocalTransport;
pub use peers::Peers;
pub use tcp::TcpTransport;

use crate::Result;
use crate::rpc::{ConnectService, LogicService};
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The plumbing between layers (see the module docs for the contract).
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Serve a logic instance at `bind`; returns the address to register.
    async fn serve_logic(
        &self,
        bind: &str,
        service: Arc<dyn LogicService>,
        shutdown: CancellationToken,
    ) -> Result<String>;

    /// Serve a connect server at `bind`; returns the address to register.
    async fn serve_connect(
        &self,
        bind: &str,
        service: Arc<dyn ConnectService>,
        shutdown: CancellationToken,
    ) -> Result<String>;

    /// A client for the logic instance at `addr`.
    async fn logic(&self, addr: &str) -> Result<Arc<dyn LogicService>>;

    /// A client for the connect server at `addr`.
    async fn connect(&self, addr: &str) -> Result<Arc<dyn ConnectService>>;

    /// Wait for the transport's own tasks (accept loops, connections) to end, once every
    /// service's shutdown token has fired. Default: nothing to wait for.
    async fn close(&self) {}
}
