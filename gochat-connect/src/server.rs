//! [`Connect`]: a connect server — its hub, its listeners, its connections' lifetimes.

use crate::close;
use crate::hub::Hub;
use crate::state::Shared;
use gochat_core::Peers;
use gochat_core::config::{ConnectConfig, LimitsConfig};
use gochat_core::http::HttpLimits;
use gochat_core::net::Admission;
use gochat_core::rpc::{ConnectService, Fault};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{RwLock, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A connect server. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Connect {
    shared: Arc<Shared>,
}

impl Connect {
    /// A connect server that asks the logic instances in `peers` to admit connections, and
    /// closes everything when `shutdown` fires. Starts its background work at once: the
    /// presence lease and the roster coalescer.
    pub fn new(config: ConnectConfig, peers: Arc<Peers>, shutdown: CancellationToken) -> Self {
        Self::with_limits(config, &LimitsConfig::default(), peers, shutdown)
    }

    /// [`Connect::new`] with the per-address limits of `limits` instead of the defaults.
    pub fn with_limits(
        config: ConnectConfig,
        limits: &LimitsConfig,
        peers: Arc<Peers>,
        shutdown: CancellationToken,
    ) -> Self {
        let shared = Arc::new(Shared {
            addresses: crate::addresses::AddressLimits::new(limits),
            hub: Arc::new(Hub::from_config(&config)),
            connections: Admission::new(config.max_connections),
            handshakes: Admission::new(config.max_handshakes),
            admissions: Semaphore::new(config.admissions_in_flight.max(1)),
            config,
            peers,
            next_id: AtomicU64::new(1),
            presence_gate: RwLock::new(()),
            presence_dirty: AtomicBool::new(false),
            tasks: TaskTracker::new(),
            shutdown,
            main: Handle::current(),
            answers: OnceLock::new(),
        });
        shared
            .tasks
            .spawn(shared.hub.clone().run_coalescer(shared.shutdown.clone()));
        shared.tasks.spawn(crate::presence::keep(shared.clone()));
        Self { shared }
    }

    /// The same server running its listeners (accept, WebSocket upgrade) and each
    /// connection's reader — with the commands it runs — on `runtime` (a runtime of their
    /// own: see `[runtime] answer_threads`), or all on the current runtime for `None`.
    /// Writers, replays and the fan-out stay on the runtime the server was made on. Set
    /// before serving; a second runtime is ignored.
    pub fn answering_on(self, runtime: Option<Handle>) -> Self {
        if let Some(r) = runtime {
            let _ = self.shared.answers.set(r);
        }
        self
    }

    /// This server's id (what presence records and the registry lists).
    pub fn server_id(&self) -> &str {
        &self.shared.config.server_id
    }

    /// The service task calls to deliver pushes here.
    pub fn service(&self) -> Arc<dyn ConnectService> {
        self.shared.hub.clone()
    }

    /// Long connections open now, authenticated or not.
    pub fn open_connections(&self) -> usize {
        self.shared.connections.in_use()
    }

    /// The limit of long connections (as configured, or lowered to fit the descriptors).
    pub fn connection_limit(&self) -> usize {
        self.shared.connections.limit()
    }

    /// The hub (for statistics and tests).
    pub fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    /// Assert this server's live connections as its whole presence now (at start this
    /// clears whatever a previous run under the same id left behind).
    pub async fn sync_presence(&self) -> Result<(), Fault> {
        crate::presence::sync(&self.shared).await
    }

    /// Serve WebSocket connections (path `/ws`) on `listener` until shutdown.
    pub fn serve_ws(&self, listener: TcpListener) {
        self.serve_wss(listener, None)
    }

    /// Serve WebSocket connections on `listener`, over TLS when `tls` is given (`wss://`).
    pub fn serve_wss(&self, listener: TcpListener, tls: Option<gochat_core::tls::Acceptor>) {
        let shared = self.shared.clone();
        let handler = move |req| crate::ws::handle(req, shared.clone());
        let limits = HttpLimits {
            admission: self.shared.handshakes.clone(),
            header_timeout: self.shared.config.handshake_timeout(),
            tls,
        };
        self.shared.spawn_answering(gochat_core::http::serve(
            listener,
            handler,
            limits,
            self.shared.shutdown.clone(),
            self.shared.tasks.clone(),
        ));
    }

    /// Serve raw TCP connections (gochat's `v1` framing) on `listener` until shutdown.
    pub fn serve_tcp(&self, listener: TcpListener) {
        self.serve_tcps(listener, None)
    }

    /// Serve raw TCP connections on `listener`, inside TLS when `tls` is given.
    pub fn serve_tcps(&self, listener: TcpListener, tls: Option<gochat_core::tls::Acceptor>) {
        self.shared
            .spawn_answering(crate::tcp::serve(listener, self.shared.clone(), tls));
    }

    /// After shutdown has fired: wait until every listener has stopped and every connection
    /// has sent its close frame and been released.
    pub async fn wait(&self) {
        self.shared.shutdown.cancelled().await;
        self.shared.hub.close_all(close::SHUTTING_DOWN);
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}
