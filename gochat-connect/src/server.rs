//! [`Connect`]: a connect server — its hub, its listeners, its connections' lifetimes.

use crate::hub::Hub;
use crate::writer::SHUTTING_DOWN;
use gochat_core::Peers;
use gochat_core::config::ConnectConfig;
use gochat_core::rpc::ConnectService;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A connect server. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Connect {
    inner: Arc<Inner>,
}

/// What every connection of a server shares.
pub(crate) struct Inner {
    pub(crate) config: ConnectConfig,
    pub(crate) hub: Arc<Hub>,
    /// Where logic is (admission and release go there).
    pub(crate) peers: Arc<Peers>,
    /// Channel ids.
    pub(crate) next_id: AtomicU64,
    /// Open long connections, for `max_connections` (hyper's own count ends at upgrade).
    pub(crate) open: AtomicUsize,
    /// Owns every listener and connection task.
    pub(crate) tasks: TaskTracker,
    /// Fired to close every connection with 1001.
    pub(crate) shutdown: CancellationToken,
}

impl Connect {
    /// A connect server that asks the logic instances in `peers` to admit connections, and
    /// closes everything when `shutdown` fires.
    pub fn new(config: ConnectConfig, peers: Arc<Peers>, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                hub: Arc::new(Hub::new(config.buckets)),
                config,
                peers,
                next_id: AtomicU64::new(1),
                open: AtomicUsize::new(0),
                tasks: TaskTracker::new(),
                shutdown,
            }),
        }
    }

    /// This server's id (what presence records and the registry lists).
    pub fn server_id(&self) -> &str {
        &self.inner.config.server_id
    }

    /// The service task calls to deliver pushes here.
    pub fn service(&self) -> Arc<dyn ConnectService> {
        self.inner.hub.clone()
    }

    /// Long connections open now, authenticated or not (upgraded and not yet closed).
    pub fn open_connections(&self) -> usize {
        self.inner.open.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The hub (for statistics and tests).
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Serve WebSocket connections (path `/ws`) on `listener` until shutdown.
    pub fn serve_ws(&self, listener: TcpListener) {
        let inner = self.inner.clone();
        let handler = move |req| crate::ws::handle(req, inner.clone());
        self.inner.tasks.spawn(gochat_core::http::serve(
            listener,
            handler,
            self.inner.config.max_connections,
            self.inner.shutdown.clone(),
            self.inner.tasks.clone(),
        ));
    }

    /// Serve raw TCP connections (gochat's `v1` framing) on `listener` until shutdown.
    pub fn serve_tcp(&self, listener: TcpListener) {
        self.inner
            .tasks
            .spawn(crate::tcp::serve(listener, self.inner.clone()));
    }

    /// After shutdown has fired: wait until every listener has stopped and every connection
    /// has sent its close frame and been released.
    pub async fn wait(&self) {
        self.inner.shutdown.cancelled().await;
        self.inner.hub.close_all(SHUTTING_DOWN);
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}
