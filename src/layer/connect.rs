//! Starting the connect layer: its listeners, its presence (asserted before it takes any
//! connection), its RPC endpoint for task, its registration.

use super::Registration;
use crate::Error;
use crate::server::bind;
use gochat_connect::Connect;
use gochat_core::config::Config;
use gochat_core::registry::Kind;
use gochat_core::{Peers, Registry, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a starting connect server waits for a logic instance to appear (in a cluster,
/// connect may start before logic).
const STARTUP_LOGIC_WAIT: Duration = Duration::from_secs(30);
/// Pause between two tries to reach logic at start.
const STARTUP_RETRY: Duration = Duration::from_millis(250);

/// A running connect server.
pub(crate) struct ConnectHandle {
    pub(crate) connect: Connect,
    pub(crate) ws_addr: SocketAddr,
    pub(crate) tcp_addrs: Vec<SocketAddr>,
    /// Where its RPC service listens (in a cluster; `None` in process).
    pub(crate) rpc_addr: Option<String>,
    pub(crate) registration: Registration,
    /// Closes the connections (1001) and stops the listeners.
    edge: CancellationToken,
    /// Stops the RPC endpoint, once the connections are gone.
    rpc: CancellationToken,
}

pub(crate) async fn start(
    cfg: &Config,
    peers: Arc<Peers>,
    registry: Arc<dyn Registry>,
    transport: Arc<dyn Transport>,
    in_process: bool,
    answers: Option<tokio::runtime::Handle>,
) -> Result<ConnectHandle, Error> {
    let ws_listener = bind(cfg.connect.ws_addr).await?;
    let ws_addr = crate::server::local_addr(&ws_listener)?;
    let mut tcp_listeners = Vec::new();
    let mut tcp_addrs = Vec::new();
    for a in &cfg.connect.tcp_addrs {
        let l = bind(*a).await?;
        tcp_addrs.push(crate::server::local_addr(&l)?);
        tcp_listeners.push(l);
    }
    let edge = CancellationToken::new();
    let rpc = CancellationToken::new();
    let connect = Connect::with_limits(cfg.connect.clone(), &cfg.limits, peers, edge.clone())
        .answering_on(answers);
    // Replaces whatever a previous run of this server id left in presence, and takes the
    // presence lease, before the first connection is accepted.
    assert_presence(&connect).await?;
    let bind_to = if in_process {
        cfg.connect.server_id.clone()
    } else {
        cfg.connect.rpc_addr.to_string()
    };
    let addr = transport
        .serve_connect(&bind_to, connect.service(), rpc.clone())
        .await?;
    let rpc_addr = (!in_process).then(|| addr.clone());
    let registration = Registration::new(
        registry,
        Kind::Connect,
        connect.server_id().to_owned(),
        addr,
    )
    .await?;
    let tls = gochat_core::tls::acceptor(&cfg.tls)?;
    connect.serve_wss(ws_listener, tls.clone());
    for l in tcp_listeners {
        connect.serve_tcps(l, tls.clone().filter(|_| cfg.tls.tcp));
    }
    Ok(ConnectHandle {
        connect,
        ws_addr,
        tcp_addrs,
        rpc_addr,
        registration,
        edge,
        rpc,
    })
}

/// Assert the (empty) presence of a new server, waiting for a logic instance to appear.
async fn assert_presence(connect: &Connect) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + STARTUP_LOGIC_WAIT;
    loop {
        match connect.sync_presence().await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                tracing::error!("connect {}: {e}", connect.server_id());
                return Err(Error::NoLogic(STARTUP_LOGIC_WAIT));
            }
            Err(e) => {
                tracing::info!("connect {}: waiting for logic ({e})", connect.server_id());
                tokio::time::sleep(STARTUP_RETRY).await;
            }
        }
    }
}

impl ConnectHandle {
    /// Leave the registry first (task stops routing here), then close every connection
    /// with 1001 and release it, then stop the RPC endpoint.
    pub(crate) async fn stop(self) {
        self.registration.leave().await;
        self.edge.cancel();
        self.connect.wait().await;
        self.rpc.cancel();
    }
}
