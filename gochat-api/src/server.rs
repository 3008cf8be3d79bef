//! [`Api`]: the REST API listener and the site listener.

use crate::state::State;
use gochat_core::http::HttpLimits;
use gochat_core::net::Admission;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The api layer. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    state: Arc<State>,
    /// Owns the listeners and their connections.
    tasks: TaskTracker,
    /// Fired to stop the listeners (in-flight requests finish).
    shutdown: CancellationToken,
    /// HTTPS on every listener, when set.
    tls: Option<gochat_core::tls::Acceptor>,
    /// Where the listeners and their requests run, when not on the caller's runtime.
    answers: Option<tokio::runtime::Handle>,
}

impl Api {
    /// An api layer over `state`, stopping when `shutdown` fires.
    pub fn new(state: State, shutdown: CancellationToken) -> Self {
        Self {
            state: Arc::new(state),
            tasks: TaskTracker::new(),
            shutdown,
            tls: None,
            answers: None,
        }
    }

    /// The same api layer serving HTTPS (`[tls]`) on the listeners it is given from now on.
    pub fn with_tls(mut self, tls: Option<gochat_core::tls::Acceptor>) -> Self {
        self.tls = tls;
        self
    }

    /// The same api layer running the listeners it is given from now on, and their
    /// requests, on `runtime` (a runtime of their own: see `[runtime] answer_threads`), or
    /// on the caller's for `None`.
    pub fn answering_on(mut self, runtime: Option<tokio::runtime::Handle>) -> Self {
        self.answers = runtime;
        self
    }

    /// Serve the REST API (and the page) on `listener` until shutdown.
    pub fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let handler = move |req| {
            let state = state.clone();
            async move { crate::router::handle(req, &state).await }
        };
        self.spawn(listener, handler, self.state.config.max_connections);
    }

    /// Serve only the page on `listener` (gochat's site port) until shutdown.
    pub fn serve_site(&self, listener: TcpListener) {
        let state = self.state.clone();
        let handler = move |req| {
            let state = state.clone();
            async move { crate::router::handle_site(req, &state).await }
        };
        self.spawn(listener, handler, self.state.config.site_max_connections);
    }

    fn spawn<F, Fut>(&self, listener: TcpListener, handler: F, max_connections: usize)
    where
        F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<
                Output = Result<hyper::Response<crate::envelope::Body>, std::convert::Infallible>,
            > + Send
            + 'static,
    {
        let limits = HttpLimits {
            admission: Admission::new(max_connections),
            header_timeout: self.state.config.header_timeout(),
            tls: self.tls.clone(),
        };
        let serve = gochat_core::http::serve(
            listener,
            handler,
            limits,
            self.shutdown.clone(),
            self.tasks.clone(),
        );
        // Each connection's task is spawned by `serve`, on the runtime it runs on.
        match &self.answers {
            Some(runtime) => self.tasks.spawn_on(serve, runtime),
            None => self.tasks.spawn(serve),
        };
    }

    /// After shutdown has fired: wait for the listeners and in-flight requests to finish.
    pub async fn wait(&self) {
        self.shutdown.cancelled().await;
        self.tasks.close();
        self.tasks.wait().await;
    }
}
