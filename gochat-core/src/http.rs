//! The HTTP/1 server shared by the api and connect layers (hyper, with upgrades so WebSocket
//! handshakes work on the same connections), on the shared [`accept_loop`].
//!
//! Every connection holds a place under the listener's [`Admission`]. Until a handler says
//! the request is real work ([`Activity::busy`], once its body is in), the connection is
//! evictable, so that when the listener is full the one idle the longest makes room for a
//! new one — a slowloris header or a body that never comes cannot hold a place against a
//! real user. A client must send each request's headers within `header_timeout` (also the
//! keep-alive idle time: hyper starts the timer whenever it waits for a request).

use crate::net::{Admission, Ticket, accept_loop};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long an in-flight request may run on after shutdown before its connection is cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// In every request's extensions: lets the handler mark its connection as doing real work,
/// not to be evicted until the response is sent.
#[derive(Clone)]
pub struct Activity(Arc<Ticket>);

impl Activity {
    /// The request is real work (its body is in, say): keep the connection until answered.
    pub fn busy(&self) {
        self.0.set_evictable(false);
    }
}

/// In every request's extensions: the address of the socket it came over.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// The address `req` came from, if it came through [`serve`].
pub fn peer_of<B>(req: &Request<B>) -> Option<std::net::SocketAddr> {
    req.extensions().get::<PeerAddr>().map(|p| p.0)
}

/// Mark the connection of `req` busy, if it came through [`serve`].
pub fn mark_busy<B>(req: &Request<B>) {
    if let Some(a) = req.extensions().get::<Activity>() {
        a.busy();
    }
}

/// The limits of one HTTP listener.
#[derive(Clone)]
pub struct HttpLimits {
    /// Its connection limit.
    pub admission: Arc<Admission>,
    /// How long a client may take to send a request's headers (and idle between requests),
    /// and to finish a TLS handshake.
    pub header_timeout: Duration,
    /// TLS on this listener, if any.
    pub tls: Option<crate::tls::Acceptor>,
}

/// Accept connections on `listener` and serve each with `handler` until `shutdown` fires.
/// Each connection is a task on `tasks`, so the caller can wait for them to finish. A
/// connection that finds the listener full (and nothing idle to evict) is closed at once;
/// the server keeps serving everyone else.
pub async fn serve<F, Fut, B>(
    listener: TcpListener,
    handler: F,
    limits: HttpLimits,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn_tasks = tasks.clone();
    let stop = shutdown.clone();
    accept_loop(
        listener,
        Some(limits.admission.clone()),
        shutdown,
        move |stream, peer, ticket| {
            let Some(ticket) = ticket else {
                tracing::debug!("http: listener full, refusing {peer}");
                return; // dropping the stream closes it
            };
            let ticket = Arc::new(ticket);
            ticket.set_evictable(true);
            let handler = handler.clone();
            let in_request = ticket.clone();
            // The handler marks the request busy once it is real work; after the response the
            // connection is evictable again — unless it switched protocols (it is leaving
            // hyper for a WebSocket).
            let service = service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(Activity(in_request.clone()));
                req.extensions_mut().insert(PeerAddr(peer));
                let answer = handler(req);
                let t = in_request.clone();
                async move {
                    let resp = answer.await?;
                    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                        t.set_evictable(true);
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let shutdown = stop.clone();
            let header_timeout = limits.header_timeout;
            let tls = limits.tls.clone();
            conn_tasks.spawn(async move {
                let Some(tls) = tls else {
                    return drive(
                        TokioIo::new(stream),
                        service,
                        header_timeout,
                        ticket,
                        shutdown,
                        peer,
                    )
                    .await;
                };
                match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
                    Ok(Ok(s)) => {
                        drive(
                            TokioIo::new(s),
                            service,
                            header_timeout,
                            ticket,
                            shutdown,
                            peer,
                        )
                        .await
                    }
                    Ok(Err(e)) => tracing::debug!("http: TLS handshake with {peer} failed: {e}"),
                    Err(_) => tracing::debug!("http: TLS handshake with {peer} timed out"),
                }
            });
        },
    )
    .await
}

/// Serve one connection (plain or TLS) until it ends, is evicted, or shutdown.
async fn drive<I, S, B>(
    io: I,
    service: S,
    header_timeout: Duration,
    ticket: Arc<Ticket>,
    shutdown: CancellationToken,
    peer: std::net::SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = ticket.evicted() => {
            tracing::debug!("http: evicted idle connection from {peer}");
        }
        _ = shutdown.cancelled() => {
            // Let an in-flight request finish; an upgraded socket has left hyper
            // already and has its own shutdown handling.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}
