//! [`LocalTransport`]: layers in one process call each other directly.

use super::Transport;
use crate::hash::FastDashMap;
use crate::rpc::{ConnectService, LogicService};
use crate::{Error, Result};
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Layers in one process: a "client" is the served service itself (`Arc<dyn …>`), so an
/// in-process call is a plain async call — no channel, no task, no serialisation.
/// Addresses are names (`local:<kind>/<id>`). A service is unreachable once its shutdown
/// token fires.
#[derive(Default)]
pub struct LocalTransport {
    logic: FastDashMap<String, (Arc<dyn LogicService>, CancellationToken)>,
    connect: FastDashMap<String, (Arc<dyn ConnectService>, CancellationToken)>,
}

impl LocalTransport {
    /// An empty transport.
    pub fn new() -> Self {
        Self::default()
    }
}

fn local_addr(kind: &str, bind: &str) -> Result<String> {
    if bind.is_empty() {
        return Err(Error::BadAddress(bind.into()));
    }
    Ok(format!(
        "local:{kind}/{}",
        bind.trim_start_matches(&format!("local:{kind}/"))
    ))
}

/// Serve `service` under the local address made of `kind` and `bind`.
fn register<S: ?Sized>(
    map: &FastDashMap<String, (Arc<S>, CancellationToken)>,
    kind: &str,
    bind: &str,
    service: Arc<S>,
    shutdown: CancellationToken,
) -> Result<String> {
    let addr = local_addr(kind, bind)?;
    map.insert(addr.clone(), (service, shutdown));
    Ok(addr)
}

/// The service served at `addr`, unless it is unknown or shut down.
fn find<S: ?Sized>(
    map: &FastDashMap<String, (Arc<S>, CancellationToken)>,
    addr: &str,
) -> Result<Arc<S>> {
    match map.get(addr) {
        Some(e) if !e.1.is_cancelled() => Ok(e.0.clone()),
        _ => Err(Error::BadAddress(addr.into())),
    }
}

#[async_trait]
impl Transport for LocalTransport {
    async fn serve_logic(
        &self,
        bind: &str,
        service: Arc<dyn LogicService>,
        shutdown: CancellationToken,
    ) -> Result<String> {
        register(&self.logic, "logic", bind, service, shutdown)
    }

    async fn serve_connect(
        &self,
        bind: &str,
        service: Arc<dyn ConnectService>,
        shutdown: CancellationToken,
    ) -> Result<String> {
        register(&self.connect, "connect", bind, service, shutdown)
    }

    async fn logic(&self, addr: &str) -> Result<Arc<dyn LogicService>> {
        find(&self.logic, addr)
    }

    async fn connect(&self, addr: &str) -> Result<Arc<dyn ConnectService>> {
        find(&self.connect, addr)
    }
}
