//! [`Server`]: any subset of gochat's layers in this process, on whichever backends you give
//! it — all four on the embedded defaults is the standalone gochat.

use crate::layers::Layers;
use gochat_api::{Api, PageConfig};
use gochat_connect::Connect;
use gochat_core::model::DEFAULT_ROOM;
use gochat_core::registry::{Instance, Kind};
use gochat_core::{
    Config, LocalTransport, MemoryQueue, MemoryRegistry, MemorySessions, Peers, Queue, Registry,
    Sessions, SqliteStore, Store, Transport,
};
use gochat_logic::Logic;
use gochat_task::Task;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a starting connect server waits for a logic instance to appear.
const WAIT_FOR_LOGIC: Duration = Duration::from_secs(30);

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A backend failed to open or answer.
    #[error(transparent)]
    Core(#[from] gochat_core::Error),
    /// The logic layer could not start.
    #[error(transparent)]
    Logic(#[from] gochat_logic::Error),
    /// A connect server found no logic instance to register with.
    #[error("no logic instance answered within {0:?}")]
    NoLogic(Duration),
}

/// Configures and starts a [`Server`]. Every backend defaults to the embedded one; a
/// setter swaps it.
#[must_use]
pub struct ServerBuilder {
    pub(crate) config: Config,
    pub(crate) layers: Layers,
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) sessions: Option<Arc<dyn Sessions>>,
    pub(crate) queue: Option<Arc<dyn Queue>>,
    pub(crate) registry: Option<Arc<dyn Registry>>,
    pub(crate) transport: Option<Arc<dyn Transport>>,
}

/// Running layers.
pub struct Server {
    api_addr: Option<SocketAddr>,
    ws_addr: Option<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    site_addr: Option<SocketAddr>,
    /// Stops the edges first (api, connect: they still need logic to release connections).
    edge_shutdown: CancellationToken,
    /// Then the core (logic's RPC service, task, the presence reconciler).
    core_shutdown: CancellationToken,
    api: Option<Api>,
    connect: Option<Connect>,
    core_tasks: TaskTracker,
    logic: Option<Arc<Logic>>,
    registry: Arc<dyn Registry>,
    /// What this process put in the registry, taken out again at shutdown.
    registered: Vec<(Kind, String)>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

fn local_addr(l: &TcpListener) -> Result<SocketAddr, Error> {
    Ok(l.local_addr().map_err(gochat_core::Error::Io)?)
}

impl ServerBuilder {
    /// The configuration (addresses, limits, data directory). Default: [`Config::default`].
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Which layers to run. Default: [`Layers::ALL`].
    pub fn layers(mut self, layers: Layers) -> Self {
        self.layers = layers;
        self
    }

    /// The user store. Default: [`SqliteStore`] in `config.store.data_dir`.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Sessions and presence. Default: [`MemorySessions`].
    pub fn sessions(mut self, sessions: Arc<dyn Sessions>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// The logic → task queue. Default: [`MemoryQueue`].
    pub fn queue(mut self, queue: Arc<dyn Queue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The instance registry. Default: [`MemoryRegistry`].
    pub fn registry(mut self, registry: Arc<dyn Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The transport between layers. Default: [`LocalTransport`]; with any other transport
    /// the RPC services listen on `logic.rpc_addr` and `connect.rpc_addr`.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Open the backends, bind every listener of the chosen layers and start serving.
    pub async fn start(self) -> Result<Server, Error> {
        let cfg = self.config;
        let layers = self.layers;
        let in_process = self.transport.is_none();
        let sessions = self
            .sessions
            .unwrap_or_else(|| Arc::new(MemorySessions::new()));
        let queue = self
            .queue
            .unwrap_or_else(|| Arc::new(MemoryQueue::new(&cfg.queue)));
        let registry = self
            .registry
            .unwrap_or_else(|| Arc::new(MemoryRegistry::new()));
        let transport = self
            .transport
            .unwrap_or_else(|| Arc::new(LocalTransport::new()));
        let edge_shutdown = CancellationToken::new();
        let core_shutdown = CancellationToken::new();
        let core_tasks = TaskTracker::new();
        let mut registered = Vec::new();

        let logic = if layers.logic {
            let store = match self.store {
                Some(s) => s,
                None => Arc::new(SqliteStore::open(&cfg.store.sqlite_path())?),
            };
            let logic = Arc::new(Logic::new(
                cfg.logic.clone(),
                store,
                sessions.clone(),
                queue.clone(),
            )?);
            if cfg.logic.demo_users {
                logic.ensure_demo_users().await?;
            }
            let bind = if in_process {
                cfg.logic.instance_id.clone()
            } else {
                cfg.logic.rpc_addr.to_string()
            };
            let addr = transport
                .serve_logic(&bind, logic.clone(), core_shutdown.clone())
                .await?;
            let id = cfg.logic.instance_id.clone();
            registry
                .register(Instance {
                    kind: Kind::Logic,
                    id: id.clone(),
                    addr,
                })
                .await?;
            registered.push((Kind::Logic, id));
            core_tasks.spawn(gochat_logic::reconcile_presence(
                registry.clone(),
                sessions.clone(),
                core_shutdown.clone(),
            ));
            Some(logic)
        } else {
            None
        };

        let peers = Arc::new(Peers::new(registry.as_ref(), transport.clone()).await?);

        let mut tcp_addrs = Vec::new();
        let (connect, ws_addr) = if layers.connect {
            let ws_listener = bind(cfg.connect.ws_addr).await?;
            let ws_addr = local_addr(&ws_listener)?;
            let mut tcp_listeners = Vec::new();
            for a in &cfg.connect.tcp_addrs {
                let l = bind(*a).await?;
                tcp_addrs.push(local_addr(&l)?);
                tcp_listeners.push(l);
            }
            let connect = Connect::new(cfg.connect.clone(), peers.clone(), edge_shutdown.clone());
            // Forget whatever a previous run of this server id left in presence.
            reset_presence(&peers, connect.server_id()).await?;
            let bind = if in_process {
                cfg.connect.server_id.clone()
            } else {
                cfg.connect.rpc_addr.to_string()
            };
            let addr = transport
                .serve_connect(&bind, connect.service(), core_shutdown.clone())
                .await?;
            let id = connect.server_id().to_owned();
            registry
                .register(Instance {
                    kind: Kind::Connect,
                    id: id.clone(),
                    addr,
                })
                .await?;
            registered.push((Kind::Connect, id));
            connect.serve_ws(ws_listener);
            for l in tcp_listeners {
                connect.serve_tcp(l);
            }
            (Some(connect), Some(ws_addr))
        } else {
            (None, None)
        };

        if layers.task {
            let task = Task::new(cfg.task.clone(), queue, sessions, peers.clone());
            core_tasks.spawn(task.run(core_shutdown.clone()));
        }

        let (api, api_addr, site_addr) = if layers.api {
            let api_listener = bind(cfg.api.addr).await?;
            let api_addr = local_addr(&api_listener)?;
            let site_listener = match cfg.api.site {
                true => Some(bind(cfg.api.site_addr).await?),
                false => None,
            };
            let site_addr = site_listener.as_ref().map(local_addr).transpose()?;
            let page = PageConfig {
                api_port: api_addr.port(),
                // In a cluster the page's WebSocket port is the configured one (a load
                // balancer or any connect server); in-process it is the one just bound.
                ws_port: ws_addr.map_or(cfg.connect.ws_addr.port(), |a| a.port()),
                ws_path: "/ws".into(),
                ws_url: cfg.api.public_ws_url.clone(),
                room_id: DEFAULT_ROOM,
            };
            let api = Api::new(cfg.api.clone(), peers, page, edge_shutdown.clone());
            api.serve(api_listener);
            if let Some(l) = site_listener {
                api.serve_site(l);
            }
            (Some(api), Some(api_addr), site_addr)
        } else {
            (None, None, None)
        };

        Ok(Server {
            api_addr,
            ws_addr,
            tcp_addrs,
            site_addr,
            edge_shutdown,
            core_shutdown,
            api,
            connect,
            core_tasks,
            logic,
            registry,
            registered,
        })
    }
}

/// Ask logic to forget a connect server's old presence, waiting for a logic instance to
/// appear (in a cluster, connect may start first).
async fn reset_presence(peers: &Peers, server_id: &str) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_LOGIC;
    loop {
        let outcome = match peers.logic().await {
            Ok(logic) => logic
                .reset_server(server_id.to_owned())
                .await
                .map_err(|f| f.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                tracing::error!("connect {server_id}: {e}");
                return Err(Error::NoLogic(WAIT_FOR_LOGIC));
            }
            Err(e) => {
                tracing::info!("connect {server_id}: waiting for logic ({e})");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

impl Server {
    /// A builder with every layer on the embedded defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            config: Config::default(),
            layers: Layers::ALL,
            store: None,
            sessions: None,
            queue: None,
            registry: None,
            transport: None,
        }
    }

    /// Where the REST API (and the page) listens, if the api layer runs here.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// Where the WebSocket endpoint (`/ws`) listens, if the connect layer runs here.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
    }

    /// Where the raw TCP listeners are (none if disabled or no connect layer here).
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// Where the page-only site listener is, if enabled.
    pub fn site_addr(&self) -> Option<SocketAddr> {
        self.site_addr
    }

    /// The logic layer, to call it directly from the embedding program.
    pub fn logic(&self) -> Option<Arc<Logic>> {
        self.logic.clone()
    }

    /// The connect server (connection counts, the hub).
    pub fn connect(&self) -> Option<&Connect> {
        self.connect.as_ref()
    }

    async fn leave_registry(&self, kind: Kind) {
        for (k, id) in self.registered.iter().filter(|(k, _)| *k == kind) {
            if let Err(e) = self.registry.deregister(*k, id).await {
                tracing::warn!("leaving the registry as {k} {id} failed: {e}");
            }
        }
    }

    /// Stop gracefully: leave the registry, stop accepting, close every connection with 1001
    /// (releasing its presence), finish in-flight requests and the batch in hand.
    pub async fn shutdown(self) {
        // A connect server leaves the registry first, so task stops routing to it; logic
        // leaves only after the edges are done, because releasing connections needs it.
        self.leave_registry(Kind::Connect).await;
        self.edge_shutdown.cancel();
        let connect = async {
            if let Some(c) = &self.connect {
                c.wait().await;
            }
        };
        let api = async {
            if let Some(a) = &self.api {
                a.wait().await;
            }
        };
        tokio::join!(connect, api);
        self.leave_registry(Kind::Logic).await;
        self.core_shutdown.cancel();
        self.core_tasks.close();
        self.core_tasks.wait().await;
    }
}
