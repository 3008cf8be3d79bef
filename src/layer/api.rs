//! Starting the api layer: the REST listener and, if enabled, the page-only listener.

use crate::Error;
use crate::server::{bind, local_addr};
use gochat_api::{Api, LogicRef, PageConfig, State};
use gochat_core::Peers;
use gochat_core::config::Config;
use gochat_core::model::DEFAULT_ROOM;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A running api layer.
pub(crate) struct ApiHandle {
    api: Api,
    pub(crate) addr: SocketAddr,
    pub(crate) site_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
}

/// Start the api layer. `ws_port` is the WebSocket port the page should use: the one just
/// bound when connect runs in this process, else the configured one (a load balancer or any
/// connect server).
pub(crate) async fn start(
    cfg: &Config,
    peers: Arc<Peers>,
    ws_port: u16,
    answers: Option<tokio::runtime::Handle>,
) -> Result<ApiHandle, Error> {
    let listener = bind(cfg.api.addr).await?;
    let addr = local_addr(&listener)?;
    let site_listener = match cfg.api.site {
        true => Some(bind(cfg.api.site_addr).await?),
        false => None,
    };
    let site_addr = site_listener.as_ref().map(local_addr).transpose()?;
    let page = PageConfig {
        api_port: addr.port(),
        ws_port,
        ws_path: "/ws".into(),
        ws_url: cfg.api.public_ws_url.clone(),
        room_id: DEFAULT_ROOM,
    };
    let shutdown = CancellationToken::new();
    let state = State::new(cfg.api.clone(), LogicRef::Peers(peers), &page).with_limits(&cfg.limits);
    let tls = gochat_core::tls::acceptor(&cfg.tls)?;
    let api = Api::new(state, shutdown.clone())
        .with_tls(tls)
        .answering_on(answers);
    api.serve(listener);
    if let Some(l) = site_listener {
        api.serve_site(l);
    }
    Ok(ApiHandle {
        api,
        addr,
        site_addr,
        shutdown,
    })
}

impl ApiHandle {
    /// Stop accepting; in-flight requests finish.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.api.wait().await;
    }
}
