//! [`Api`]: the REST API listener and the site listener.

use crate::site::PageConfig;
use bytes::Bytes;
use gochat_core::Peers;
use gochat_core::config::ApiConfig;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Most simultaneous HTTP connections per listener.
const MAX_HTTP_CONNECTIONS: usize = 16_384;

/// Shared by every request.
pub struct State {
    pub(crate) config: ApiConfig,
    /// Where logic is.
    pub(crate) peers: Arc<Peers>,
    /// `/config.json`, serialised once.
    pub(crate) page_config: Bytes,
}

/// The api layer. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    state: Arc<State>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Api {
    /// An api layer calling the logic instances in `peers`, serving `page` to browsers.
    pub fn new(
        config: ApiConfig,
        peers: Arc<Peers>,
        page: PageConfig,
        shutdown: CancellationToken,
    ) -> Self {
        // Serialising a struct of numbers and strings cannot fail.
        let page_config = Bytes::from(serde_json::to_vec(&page).unwrap_or_default());
        Self {
            state: Arc::new(State {
                config,
                peers,
                page_config,
            }),
            tasks: TaskTracker::new(),
            shutdown,
        }
    }

    /// The shared request state (to call [`crate::router::handle`] directly in tests).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Serve the REST API (and the page) on `listener` until shutdown.
    pub fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let handler = move |req| {
            let state = state.clone();
            async move { crate::router::handle(req, &state).await }
        };
        self.spawn(listener, handler);
    }

    /// Serve only the page on `listener` (gochat's site port) until shutdown.
    pub fn serve_site(&self, listener: TcpListener) {
        let state = self.state.clone();
        let handler = move |req| {
            let state = state.clone();
            async move { crate::router::handle_site(req, &state).await }
        };
        self.spawn(listener, handler);
    }

    fn spawn<F, Fut>(&self, listener: TcpListener, handler: F)
    where
        F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<
                Output = Result<hyper::Response<crate::envelope::Body>, std::convert::Infallible>,
            > + Send
            + 'static,
    {
        self.tasks.spawn(gochat_core::http::serve(
            listener,
            handler,
            MAX_HTTP_CONNECTIONS,
            self.shutdown.clone(),
            self.tasks.clone(),
        ));
    }

    /// After shutdown has fired: wait for the listeners and in-flight requests to finish.
    pub async fn wait(&self) {
        self.shutdown.cancelled().await;
        self.tasks.close();
        self.tasks.wait().await;
    }
}
