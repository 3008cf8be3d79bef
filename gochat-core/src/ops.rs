//! The operator's endpoints of a process: `GET /metrics` (Prometheus text), `/healthz`
//! (the process runs) and `/readyz` (its backends answer and it is registered, as `ready`
//! says), served on their own address (`--metrics-addr`) for the layer binaries; the api
//! layer answers the same paths on its own address.

use crate::http::{HttpLimits, serve};
use crate::net::Admission;
use futures::future::BoxFuture;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Whether the process is ready: `Err` says what is not.
pub type Readiness = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<String> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

/// The answer to an operator's `GET path`, if it is one of theirs.
pub async fn answer(path: &str, ready: &Readiness) -> Option<Response<String>> {
    Some(match path {
        "/metrics" => text(
            StatusCode::OK,
            crate::metrics::CONTENT_TYPE,
            crate::metrics::render(),
        ),
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => match ready().await {
            Ok(()) => text(StatusCode::OK, "text/plain", "ready\n".into()),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        _ => return None,
    })
}

/// Serve the operator's endpoints on `listener` until `shutdown`.
pub async fn serve_ops(listener: TcpListener, ready: Readiness, shutdown: CancellationToken) {
    let handler =
        move |req: Request<hyper::body::Incoming>| {
            let ready = ready.clone();
            async move {
                let path = req.uri().path().to_owned();
                Ok::<_, Infallible>(answer(&path, &ready).await.unwrap_or_else(|| {
                    text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into())
                }))
            }
        };
    let limits = HttpLimits {
        admission: Admission::new(64),
        header_timeout: Duration::from_secs(10),
        tls: None,
    };
    let tasks = TaskTracker::new();
    serve(listener, handler, limits, shutdown, tasks.clone()).await;
    tasks.close();
    tasks.wait().await;
}
