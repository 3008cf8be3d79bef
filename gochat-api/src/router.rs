//! Request dispatch: CORS preflight, the web page, the REST routes, and gochat's answer to
//! everything else. Generic over the body type so tests call it without a socket.

use crate::envelope::{self, Body, with_cors};
use crate::handlers;
use crate::request::Fields;
use crate::state::State;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response};
use std::convert::Infallible;

/// Answer one request.
pub async fn handle<B>(req: Request<B>, state: &State) -> Result<Response<Body>, Infallible>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = req.uri().path();
    if req.method() == Method::OPTIONS {
        return Ok(with_cors(Response::new(Full::default())));
    }
    if req.method() == Method::GET {
        if let Some(resp) = operator(path, state).await {
            return Ok(resp);
        }
        return Ok(crate::site::page(path, &state.page_config).unwrap_or_else(envelope::bad_url));
    }
    let route = match (req.method(), handlers::route(path)) {
        (&Method::POST, Some(route)) => route,
        _ => return Ok(envelope::bad_url()),
    };
    // Per-address limits, before the body is even read: a client over one costs nothing.
    let client = state.limits.client(&req);
    if let Some(ip) = client {
        let over = match path {
            "/user/login" => state.limits.login(ip),
            "/user/register" => state.limits.register(ip),
            _ => Ok(()),
        };
        if let Err(msg) = over {
            return Ok(envelope::fail(&msg));
        }
    }
    let login = path == "/user/login";
    let limit = state.config.max_body_bytes;
    let wait = state.config.body_timeout();
    let activity = req
        .extensions()
        .get::<gochat_core::http::Activity>()
        .cloned();
    let body =
        match tokio::time::timeout(wait, Limited::new(req.into_body(), limit).collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Ok(envelope::fail(&format!(
                    "request body is over {limit} bytes"
                )));
            }
            Ok(Err(e)) => return Ok(envelope::fail(&format!("could not read request body: {e}"))),
            Err(_) => {
                return Ok(envelope::fail(&format!(
                    "request body not received within {wait:?}"
                )));
            }
        };
    // The body is in: from here on this is a request to answer, not a socket to evict.
    if let Some(a) = activity {
        a.busy();
    }
    let fields = match Fields::parse(&body) {
        Ok(f) => f,
        Err(msg) => return Ok(envelope::fail(&msg)),
    };
    let logic = match state.logic.get().await {
        Ok(l) => l,
        Err(f) => return Ok(envelope::fault(&f)),
    };
    let (resp, ok) = handlers::answer(route, &fields, logic.as_ref()).await;
    if let (true, true, Some(ip)) = (login, ok, client) {
        state.limits.login_ok(ip);
    }
    Ok(resp)
}

/// `/metrics`, `/healthz`, and `/readyz` (ready when a logic instance can be called).
async fn operator(path: &str, state: &State) -> Option<Response<Body>> {
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return None;
    }
    let logic = state.logic.clone();
    let ready: gochat_core::ops::Readiness = std::sync::Arc::new(move || {
        let logic = logic.clone();
        Box::pin(async move { logic.get().await.map(|_| ()).map_err(|f| f.to_string()) })
    });
    let resp = gochat_core::ops::answer(path, &ready).await?;
    Some(resp.map(|s| Full::new(Bytes::from(s))))
}

/// The site listener only serves the page (gochat kept its front-end on its own port).
pub async fn handle_site<B>(req: Request<B>, state: &State) -> Result<Response<Body>, Infallible> {
    if req.method() == Method::GET
        && let Some(resp) = crate::site::page(req.uri().path(), &state.page_config)
    {
        return Ok(resp);
    }
    let mut resp = Response::new(Full::new(Bytes::from_static(b"not found\n")));
    *resp.status_mut() = hyper::StatusCode::NOT_FOUND;
    Ok(resp)
}
