//! [`Server`]: every layer of gochat in one process, on whichever backends you give it.

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
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
}

/// Configures and starts a [`Server`]. Every backend defaults to the embedded one; a
/// setter swaps it.
#[must_use]
pub struct ServerBuilder {
    config: Config,
    store: Option<Arc<dyn Store>>,
    sessions: Option<Arc<dyn Sessions>>,
    queue: Option<Arc<dyn Queue>>,
    registry: Option<Arc<dyn Registry>>,
    transport: Option<Arc<dyn Transport>>,
}

/// A running gochat: api, logic, task and connect in this process.
pub struct Server {
    api_addr: SocketAddr,
    ws_addr: SocketAddr,
    site_addr: Option<SocketAddr>,
    /// Stops the edges first (api, connect: they still need logic to release connections).
    edge_shutdown: CancellationToken,
    /// Then the core (logic's RPC service, task).
    core_shutdown: CancellationToken,
    api: Api,
    connect: Connect,
    core_tasks: TaskTracker,
    logic: Arc<Logic>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

impl ServerBuilder {
    /// The configuration (addresses, limits, data directory). Default: [`Config::default`].
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
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

    /// The transport between layers. Default: [`LocalTransport`].
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Open the backends, bind every listener and start serving.
    pub async fn start(self) -> Result<Server, Error> {
        let cfg = self.config;
        let store = match self.store {
            Some(s) => s,
            None => Arc::new(SqliteStore::open(&cfg.store.sqlite_path())?),
        };
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

        // logic
        let logic = Arc::new(Logic::new(
            cfg.logic.clone(),
            store,
            sessions.clone(),
            queue.clone(),
        )?);
        if cfg.logic.demo_users {
            logic.ensure_demo_users().await?;
        }
        let logic_addr = transport
            .serve_logic(&cfg.logic.instance_id, logic.clone(), core_shutdown.clone())
            .await?;
        registry
            .register(Instance {
                kind: Kind::Logic,
                id: cfg.logic.instance_id.clone(),
                addr: logic_addr,
            })
            .await?;
        let peers = Arc::new(Peers::new(registry.as_ref(), transport.clone()).await?);

        // connect
        let ws_listener = bind(cfg.connect.ws_addr).await?;
        let ws_addr = ws_listener.local_addr().map_err(gochat_core::Error::Io)?;
        let connect = Connect::new(cfg.connect.clone(), peers.clone(), edge_shutdown.clone());
        let connect_addr = transport
            .serve_connect(
                connect.server_id(),
                connect.service(),
                core_shutdown.clone(),
            )
            .await?;
        registry
            .register(Instance {
                kind: Kind::Connect,
                id: connect.server_id().to_owned(),
                addr: connect_addr,
            })
            .await?;
        connect.serve_ws(ws_listener);

        // task
        let core_tasks = TaskTracker::new();
        let task = Task::new(cfg.task.clone(), queue, sessions, peers.clone());
        core_tasks.spawn(task.run(core_shutdown.clone()));

        // api
        let api_listener = bind(cfg.api.addr).await?;
        let api_addr = api_listener.local_addr().map_err(gochat_core::Error::Io)?;
        let site_listener = match cfg.api.site {
            true => Some(bind(cfg.api.site_addr).await?),
            false => None,
        };
        let site_addr = match &site_listener {
            Some(l) => Some(l.local_addr().map_err(gochat_core::Error::Io)?),
            None => None,
        };
        let page = PageConfig {
            api_port: api_addr.port(),
            ws_port: ws_addr.port(),
            ws_path: "/ws".into(),
            ws_url: cfg.api.public_ws_url.clone(),
            room_id: DEFAULT_ROOM,
        };
        let api = Api::new(cfg.api.clone(), peers, page, edge_shutdown.clone());
        api.serve(api_listener);
        if let Some(l) = site_listener {
            api.serve_site(l);
        }

        Ok(Server {
            api_addr,
            ws_addr,
            site_addr,
            edge_shutdown,
            core_shutdown,
            api,
            connect,
            core_tasks,
            logic,
        })
    }
}

impl Server {
    /// A builder with the embedded defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            config: Config::default(),
            store: None,
            sessions: None,
            queue: None,
            registry: None,
            transport: None,
        }
    }

    /// Where the REST API (and the page) listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where the WebSocket endpoint (`/ws`) listens.
    pub fn ws_addr(&self) -> SocketAddr {
        self.ws_addr
    }

    /// Where the page-only site listener is, if enabled.
    pub fn site_addr(&self) -> Option<SocketAddr> {
        self.site_addr
    }

    /// The logic layer, to call it directly from the embedding program.
    pub fn logic(&self) -> Arc<Logic> {
        self.logic.clone()
    }

    /// The connect server (connection counts, the hub).
    pub fn connect(&self) -> &Connect {
        &self.connect
    }

    /// Stop gracefully: stop accepting, close every connection with 1001 (and release its
    /// presence), finish in-flight requests and the batch in hand, then return.
    pub async fn shutdown(self) {
        self.edge_shutdown.cancel();
        tokio::join!(self.connect.wait(), self.api.wait());
        self.core_shutdown.cancel();
        self.core_tasks.close();
        self.core_tasks.wait().await;
    }
}
