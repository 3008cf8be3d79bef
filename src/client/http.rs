//! REST calls over one kept-alive HTTP/1.1 connection per client: POST a JSON body, read
//! gochat's envelope, return `data` or the refusal. A broken connection is replaced on the
//! next call.

use super::ClientError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Longest a call may take.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest reply accepted.
const MAX_REPLY: usize = 1 << 20;

/// The REST endpoint and the connection to it (shared by clones of a client; calls take
/// turns on it, as HTTP/1.1 does).
#[derive(Debug, Clone)]
pub struct Rest {
    api: SocketAddr,
    tls: Option<super::Tls>,
    conn: Arc<Mutex<Option<SendRequest<Full<Bytes>>>>>,
}

impl Rest {
    pub fn new(api: SocketAddr, tls: Option<super::Tls>) -> Self {
        Self {
            api,
            tls,
            conn: Arc::new(Mutex::new(None)),
        }
    }

    /// The same endpoint, on a connection of its own (none opened yet).
    pub fn reopened(&self) -> Self {
        Self::new(self.api, self.tls.clone())
    }

    /// POST `body` to `path` and return the envelope's `data` (code 0), or the refusal.
    pub async fn call(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let reply = tokio::time::timeout(TIMEOUT, self.post(path, body.to_string()))
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

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let stream = TcpStream::connect(self.api).await?;
        let stream = super::tls::wrap(stream, self.api, self.tls.as_ref()).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        // The connection future does the I/O; it ends when the sender is dropped or the
        // server closes.
        tokio::spawn(conn);
        Ok(sender)
    }

    async fn post(&self, path: &str, body: String) -> Result<Bytes, ClientError> {
        let mut slot = self.conn.lock().await;
        // One retry on a fresh connection: a kept-alive one may have been closed by the
        // server since the last call.
        for attempt in 0..2 {
            let mut sender = match slot.take() {
                Some(s) if !s.is_closed() => s,
                _ => self.connect().await?,
            };
            if sender.ready().await.is_err() {
                continue;
            }
            let req = Request::post(path)
                .header(hyper::header::HOST, self.api.to_string())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.clone())))
                .map_err(|e| ClientError::Http(e.to_string()))?;
            let resp = match sender.send_request(req).await {
                Ok(r) => r,
                Err(e) if attempt == 0 && e.is_canceled() => continue,
                Err(e) => return Err(ClientError::Http(e.to_string())),
            };
            if !resp.status().is_success() {
                return Err(ClientError::Http(format!("{path}: HTTP {}", resp.status())));
            }
            let body = Limited::new(resp.into_body(), MAX_REPLY)
                .collect()
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?
                .to_bytes();
            *slot = Some(sender);
            return Ok(body);
        }
        Err(ClientError::Http(format!(
            "{path}: connection to {} kept failing",
            self.api
        )))
    }
}
