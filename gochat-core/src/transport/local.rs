//! [`LocalTransport`]: tarpc over in-process channels — no sockets, no serialisation.

use super::Transport;
use crate::rpc::{
    ConnectRpc, ConnectRpcClient, ConnectRpcServer, ConnectService, Dial, LogicRpc, LogicRpcClient,
    LogicRpcServer, LogicService, RemoteConnect, RemoteLogic,
};
use crate::{Error, Result};
use async_trait::async_trait;
use dashmap::DashMap;
use futures::StreamExt;
use std::sync::Arc;
use tarpc::server::{BaseChannel, Channel};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Layers in one process, reached through tarpc's in-process channel transport: the same
/// request/response path (and deadlines) as over TCP, minus the socket and bincode.
/// Addresses are names (`local:<kind>/<id>`).
#[derive(Default)]
pub struct LocalTransport {
    logic: DashMap<String, (Arc<dyn LogicService>, CancellationToken)>,
    connect: DashMap<String, (Arc<dyn ConnectService>, CancellationToken)>,
    /// Owns the server half of every channel handed out; each stops with its service's
    /// shutdown token.
    tasks: TaskTracker,
}

impl LocalTransport {
    /// An empty transport.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wait for every served channel to finish (after their shutdown tokens fire).
    pub async fn wait(&self) {
        self.tasks.close();
        self.tasks.wait().await;
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

#[async_trait]
impl Transport for LocalTransport {
    async fn serve_logic(
        &self,
        bind: &str,
        service: Arc<dyn LogicService>,
        shutdown: CancellationToken,
    ) -> Result<String> {
        let addr = local_addr("logic", bind)?;
        self.logic.insert(addr.clone(), (service, shutdown));
        Ok(addr)
    }

    async fn serve_connect(
        &self,
        bind: &str,
        service: Arc<dyn ConnectService>,
        shutdown: CancellationToken,
    ) -> Result<String> {
        let addr = local_addr("connect", bind)?;
        self.connect.insert(addr.clone(), (service, shutdown));
        Ok(addr)
    }

    async fn logic(&self, addr: &str) -> Result<Arc<dyn LogicService>> {
        let (service, shutdown) = self
            .logic
            .get(addr)
            .map(|e| (e.0.clone(), e.1.clone()))
            .ok_or_else(|| Error::BadAddress(addr.into()))?;
        let tasks = self.tasks.clone();
        let dial: Dial<LogicRpcClient> = Box::new(move || {
            let (client_side, server_side) = tarpc::transport::channel::unbounded();
            let requests = BaseChannel::with_defaults(server_side)
                .execute(LogicRpcServer(service.clone()).serve());
            tasks.spawn(serve_until(requests, shutdown.clone(), tasks.clone()));
            let client = LogicRpcClient::new(tarpc::client::Config::default(), client_side).spawn();
            Box::pin(async move { Ok(client) })
        });
        Ok(Arc::new(RemoteLogic::new(addr, dial)))
    }

    async fn connect(&self, addr: &str) -> Result<Arc<dyn ConnectService>> {
        let (service, shutdown) = self
            .connect
            .get(addr)
            .map(|e| (e.0.clone(), e.1.clone()))
            .ok_or_else(|| Error::BadAddress(addr.into()))?;
        let tasks = self.tasks.clone();
        let dial: Dial<ConnectRpcClient> = Box::new(move || {
            let (client_side, server_side) = tarpc::transport::channel::unbounded();
            let requests = BaseChannel::with_defaults(server_side)
                .execute(ConnectRpcServer(service.clone()).serve());
            tasks.spawn(serve_until(requests, shutdown.clone(), tasks.clone()));
            let client =
                ConnectRpcClient::new(tarpc::client::Config::default(), client_side).spawn();
            Box::pin(async move { Ok(client) })
        });
        Ok(Arc::new(RemoteConnect::new(addr, dial)))
    }
}

/// Run each request of one channel as its own task until the client hangs up or the
/// service shuts down.
pub(crate) async fn serve_until<S, F>(requests: S, shutdown: CancellationToken, tasks: TaskTracker)
where
    S: futures::Stream<Item = F> + Send,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let run = requests.for_each(|response| {
        tasks.spawn(response);
        async {}
    });
    tokio::select! {
        _ = run => {}
        _ = shutdown.cancelled() => {}
    }
}
