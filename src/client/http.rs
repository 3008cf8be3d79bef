//! One REST call: POST a JSON body, read gochat's envelope, return `data` or the refusal.

use super::ClientError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Longest a call may take.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest reply accepted.
const MAX_REPLY: usize = 1 << 20;

/// POST `body` to `path` and return the envelope's `data` (code 0), or the refusal.
pub async fn call(
    api: SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, ClientError> {
    let reply = tokio::time::timeout(TIMEOUT, post(api, path, body.to_string()))
        .await
        .map_err(|_| ClientError::Http(format!("{path}: no reply in {TIMEOUT:?}")))??;
    let envelope: serde_json::Value = serde_json::from_slice(&reply)
        .map_err(|e| ClientError::Protocol(format!("{path}: {e}")))?;
    match envelope["code"].as_i64() {
        Some(0) => Ok(envelope["data"].clone()),
        Some(code) => Err(ClientError::Refused {
            code,
            message: envelope["message"].as_str().unwrap_or_default().to_owned(),
        }),
        None => Err(ClientError::Protocol(format!(
            "{path}: not a gochat envelope: {envelope}"
        ))),
    }
}

async fn post(api: SocketAddr, path: &str, body: String) -> Result<Bytes, ClientError> {
    let stream = TcpStream::connect(api).await?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    // The connection future does the I/O; it ends with the request, when `sender` is dropped.
    let driver = tokio::spawn(conn);
    let req = Request::post(path)
        .header(hyper::header::HOST, api.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(ClientError::Http(format!("{path}: HTTP {}", resp.status())));
    }
    let body = Limited::new(resp.into_body(), MAX_REPLY)
        .collect()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?
        .to_bytes();
    drop(sender);
    driver.abort();
    Ok(body)
}
