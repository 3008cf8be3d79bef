//! The web chat page, embedded in the binary (plain HTML/CSS/JS, no build step), and the
//! small JSON config it reads to find the API and the WebSocket.

use crate::envelope::{Body, with_cors};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use serde::Serialize;

const INDEX_HTML: &str = include_str!("../site/index.html");
const APP_JS: &str = include_str!("../site/app.js");
const STYLE_CSS: &str = include_str!("../site/style.css");

/// What the page needs to find the rest of the system. Hosts are never baked in: the page
/// combines these ports with the host it was loaded from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageConfig {
    /// Port of the REST API.
    pub api_port: u16,
    /// Port of the WebSocket endpoint.
    pub ws_port: u16,
    /// Path of the WebSocket endpoint.
    pub ws_path: String,
    /// A full WebSocket URL overriding the derived one (behind a proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws_url: Option<String>,
    /// The room the page joins.
    pub room_id: i64,
}

/// What the page may load and who may frame it: its own scripts and styles only (it renders
/// every message with `textContent`, and even an injected script would not run), fetches and
/// WebSockets to any host (the API and the WebSocket are on other ports, or behind a
/// `ws_url`), never inside a frame.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' http: https: ws: wss:; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'; object-src 'none'";

fn asset(ty: &'static str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ty));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    with_cors(resp)
}

/// The page asset at `path`, if there is one.
pub fn page(path: &str, config: &Bytes) -> Option<Response<Body>> {
    Some(match path {
        "/" | "/index.html" => asset(
            "text/html; charset=utf-8",
            Bytes::from_static(INDEX_HTML.as_bytes()),
        ),
        "/app.js" => asset(
            "text/javascript; charset=utf-8",
            Bytes::from_static(APP_JS.as_bytes()),
        ),
        "/style.css" => asset(
            "text/css; charset=utf-8",
            Bytes::from_static(STYLE_CSS.as_bytes()),
        ),
        "/config.json" => asset("application/json", config.clone()),
        _ => return None,
    })
}
