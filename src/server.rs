//! [`Server`]: any subset of gochat's layers in this process, on whichever backends you give
//! it — all four on the embedded defaults is the standalone gochat.

use crate::layer::Layers;
use crate::layer::api::ApiHandle;
use crate::layer::connect::ConnectHandle;
use crate::layer::logic::{LogicBackends, LogicHandle};
use crate::layer::task::TaskHandle;
use gochat_connect::Connect;
use gochat_core::config::{StoreBackend, StoreConfig};
use gochat_core::{
    Config, LocalTransport, MemoryQueue, MemoryRegistry, MemorySessions, Peers, Queue, Registry,
    Sessions, Store, Transport,
};
use gochat_logic::Logic;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

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
    /// The logic layer runs here but no store was given and the configured backend is
    /// compiled out (its feature is off).
    #[error(
        "store.backend = {0:?} is compiled out of this build: enable the `{0}` feature or call .store(…)"
    )]
    NoStore(&'static str),
    /// The answer threads (`[runtime] answer_threads`) could not be started.
    #[error("cannot start the answer threads")]
    AnswerThreads(#[source] std::io::Error),
}

/// The store `config` names (`store.backend`), opened and migrated: what a logic layer
/// would use, for tools such as the import.
pub async fn open_store(config: &StoreConfig) -> Result<Arc<dyn Store>, Error> {
    match config.backend {
        #[cfg(feature = "sqlite")]
        StoreBackend::Sqlite => Ok(Arc::new(gochat_core::SqliteStore::open(
            &config.sqlite_path(),
        )?)),
        #[cfg(feature = "postgres")]
        StoreBackend::Postgres => Ok(Arc::new(gochat_core::PostgresStore::connect(config).await?)),
        #[allow(unreachable_patterns)]
        other => Err(Error::NoStore(backend_feature(other))),
    }
}

fn backend_feature(b: StoreBackend) -> &'static str {
    match b {
        StoreBackend::Sqlite => "sqlite",
        StoreBackend::Postgres => "postgres",
    }
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
    pub(crate) answer_runtime: Option<tokio::runtime::Handle>,
}

/// Running layers. [`Server::shutdown`] stops all of them, and what they started.
pub struct Server {
    api: Option<ApiHandle>,
    connect: Option<ConnectHandle>,
    task: Option<TaskHandle>,
    logic: Option<LogicHandle>,
    registry: Arc<dyn Registry>,
    transport: Arc<dyn Transport>,
    /// Stopped last: the layers' requests and readers ran there.
    answers: Option<crate::answers::AnswerThreads>,
}

pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

pub(crate) fn local_addr(l: &TcpListener) -> Result<SocketAddr, Error> {
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

    /// Users and history. Default: `SqliteStore` in `config.store.data_dir` (which then also
    /// holds the sessions, unless [`sessions`](Self::sessions) gives others).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Sessions and presence. Default: `SqliteSessions` beside the default store (a restart
    /// logs nobody out); [`MemorySessions`] with a store of your own.
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

    /// Run REST requests and long connections' readers on `runtime`, one the embedding
    /// program owns, instead of threads the server starts (`[runtime] answer_threads`).
    /// It must outlive the server.
    pub fn answer_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.answer_runtime = Some(runtime);
        self
    }

    /// The store and the sessions: as given, or the embedded ones — one SQLite file holding
    /// users, history and (so that a restart logs nobody out) the sessions.
    async fn open_store_and_sessions(
        &mut self,
    ) -> Result<(Arc<dyn Store>, Arc<dyn Sessions>), Error> {
        if let Some(store) = self.store.take() {
            let sessions = self
                .sessions
                .take()
                .unwrap_or_else(|| Arc::new(MemorySessions::new()));
            return Ok((store, sessions));
        }
        match self.config.store.backend {
            StoreBackend::Postgres => self.open_postgres().await,
            StoreBackend::Sqlite => self.open_sqlite().await,
        }
    }

    #[cfg(feature = "sqlite")]
    async fn open_sqlite(&mut self) -> Result<(Arc<dyn Store>, Arc<dyn Sessions>), Error> {
        let store = gochat_core::SqliteStore::open(&self.config.store.sqlite_path())?;
        let sessions: Arc<dyn Sessions> = match self.sessions.take() {
            Some(s) => s,
            None => Arc::new(gochat_core::sessions::SqliteSessions::open(store.clone()).await?),
        };
        Ok((Arc::new(store), sessions))
    }

    #[cfg(not(feature = "sqlite"))]
    async fn open_sqlite(&mut self) -> Result<(Arc<dyn Store>, Arc<dyn Sessions>), Error> {
        Err(Error::NoStore("sqlite"))
    }

    /// PostgreSQL holds users and history; sessions are the cluster's (Redis), or — in one
    /// process — in memory (a restart logs everyone out).
    #[cfg(feature = "postgres")]
    async fn open_postgres(&mut self) -> Result<(Arc<dyn Store>, Arc<dyn Sessions>), Error> {
        let store = gochat_core::PostgresStore::connect(&self.config.store).await?;
        tracing::info!(at = store.address(), "store: PostgreSQL");
        let sessions = self
            .sessions
            .take()
            .unwrap_or_else(|| Arc::new(MemorySessions::new()));
        Ok((Arc::new(store), sessions))
    }

    #[cfg(not(feature = "postgres"))]
    async fn open_postgres(&mut self) -> Result<(Arc<dyn Store>, Arc<dyn Sessions>), Error> {
        Err(Error::NoStore("postgres"))
    }

    /// Open the backends, bind every listener of the chosen layers and start serving.
    pub async fn start(mut self) -> Result<Server, Error> {
        self.config.validate()?;
        if let Some(limit) = gochat_core::net::descriptor_limit() {
            crate::budget::fit(&mut self.config, self.layers, limit);
        }
        let layers = self.layers;
        let in_process = self.transport.is_none();
        let store = match layers.logic {
            true => Some(self.open_store_and_sessions().await?),
            false => None,
        };
        let sessions = match &store {
            Some((_, sessions)) => sessions.clone(),
            None => self
                .sessions
                .clone()
                .unwrap_or_else(|| Arc::new(MemorySessions::new())),
        };
        let queue = self
            .queue
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryQueue::new(&self.config.queue)));
        let registry = self
            .registry
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryRegistry::new()));
        let transport = self
            .transport
            .clone()
            .unwrap_or_else(|| Arc::new(LocalTransport::new()));
        // Only the api and connect layers answer clients; a logic or task process alone
        // has nothing to put on answer threads, and an embedder's runtime replaces them.
        let answers = match self.answer_runtime.is_none() && (layers.api || layers.connect) {
            true => crate::answers::AnswerThreads::start(self.config.runtime.answer_threads)
                .map_err(Error::AnswerThreads)?,
            false => None,
        };
        let answer_runtime = self
            .answer_runtime
            .clone()
            .or_else(|| answers.as_ref().and_then(|a| a.handle()));
        let cfg = &self.config;
        let logic = match store {
            Some((store, _)) => {
                let backends = LogicBackends {
                    store,
                    sessions: sessions.clone(),
                    queue: queue.clone(),
                    registry: registry.clone(),
                    transport: transport.clone(),
                };
                Some(crate::layer::logic::start(cfg, backends, in_process).await?)
            }
            None => None,
        };
        let peers = Arc::new(Peers::new(registry.as_ref(), transport.clone()).await?);
        let connect = if layers.connect {
            Some(
                crate::layer::connect::start(
                    cfg,
                    peers.clone(),
                    registry.clone(),
                    transport.clone(),
                    in_process,
                    answer_runtime.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        let task = layers
            .task
            .then(|| crate::layer::task::start(cfg, queue, sessions, peers.clone()));
        let api = if layers.api {
            let ws_port = connect
                .as_ref()
                .map_or(cfg.connect.ws_addr.port(), |c| c.ws_addr.port());
            Some(crate::layer::api::start(cfg, peers, ws_port, answer_runtime).await?)
        } else {
            None
        };
        Ok(Server {
            api,
            connect,
            task,
            logic,
            registry,
            transport,
            answers,
        })
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
            answer_runtime: None,
        }
    }

    /// Where the REST API (and the page) listens, if the api layer runs here.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().map(|a| a.addr)
    }

    /// Where the WebSocket endpoint (`/ws`) listens, if the connect layer runs here.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.connect.as_ref().map(|c| c.ws_addr)
    }

    /// Where the raw TCP listeners are (none if disabled or no connect layer here).
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        self.connect.as_ref().map_or(&[], |c| &c.tcp_addrs)
    }

    /// Where the page-only site listener is, if enabled.
    pub fn site_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().and_then(|a| a.site_addr)
    }

    /// Where the logic layer's RPC service listens, when it serves other processes.
    pub fn logic_rpc_addr(&self) -> Option<&str> {
        self.logic.as_ref().and_then(|l| l.rpc_addr.as_deref())
    }

    /// Where the connect server's RPC service listens, when it serves other processes.
    pub fn connect_rpc_addr(&self) -> Option<&str> {
        self.connect.as_ref().and_then(|c| c.rpc_addr.as_deref())
    }

    /// Whether every layer here can serve (`/readyz`): logic's store answers and it is
    /// registered, connect is registered, api finds a logic instance. `Err` says what not.
    pub async fn ready(&self) -> Result<(), String> {
        if let Some(l) = &self.logic {
            l.logic.ready().await?;
            l.registration.check().await?;
        }
        if let Some(c) = &self.connect {
            c.registration.check().await?;
        }
        if self.api.is_some() && self.logic.is_none() {
            let logic = self
                .registry
                .list(gochat_core::registry::Kind::Logic)
                .await
                .map_err(|e| format!("registry: {e}"))?;
            if logic.is_empty() {
                return Err("no logic instance registered".into());
            }
        }
        Ok(())
    }

    /// The logic layer, to call it directly from the embedding program.
    pub fn logic(&self) -> Option<Arc<Logic>> {
        self.logic.as_ref().map(|l| l.logic.clone())
    }

    /// The connect server (connection counts, the hub).
    pub fn connect(&self) -> Option<&Connect> {
        self.connect.as_ref().map(|c| &c.connect)
    }

    /// Stop gracefully: the edges first (a connect server leaves the registry, stops
    /// accepting, closes every connection with 1001 and releases it; api finishes its
    /// requests), then the queue consumer (the batch in hand), then logic, which the edges
    /// needed until the end; last the transport's and the registry's own tasks.
    pub async fn shutdown(self) {
        let connect = async {
            if let Some(c) = self.connect {
                c.stop().await;
            }
        };
        let api = async {
            if let Some(a) = self.api {
                a.stop().await;
            }
        };
        tokio::join!(connect, api);
        if let Some(t) = self.task {
            t.stop().await;
        }
        if let Some(l) = self.logic {
            l.stop().await;
        }
        self.transport.close().await;
        self.registry.close().await;
        drop(self.answers);
    }
}
