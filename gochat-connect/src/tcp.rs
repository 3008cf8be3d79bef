//! The raw TCP transport: gochat's `v1` frames carrying JSON, as [`TcpCodec`]. `op 6`
//! authenticates and joins (like the WebSocket auth frame); `op 3` posts `msg` to a room as
//! the session's user, only on an authenticated connection. Pushes go out as the same JSON,
//! one per frame, with a `ping msg` frame as keep-alive. Any malformed frame closes that
//! connection alone.

use crate::channel::Framing;
use crate::close::{self, CloseReason};
use crate::codec::{AfterAuth, Codec, Inbound, PreAuth};
use crate::session;
use crate::state::Shared;
use crate::writer::Wire;
use bytes::{Bytes, BytesMut};
use gochat_core::net::accept_loop;
use gochat_core::protocol::auth::decode_auth;
use gochat_core::protocol::tcp::{self, PING_PAYLOAD, decode_frame};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;

/// Operation code of the TCP auth frame.
pub const OP_AUTH: i64 = 6;
/// Operation code of a TCP room post.
pub const OP_POST: i64 = 3;

/// Accept TCP connections until shutdown. A connection that finds the server full (and no
/// unauthenticated one to evict) is closed at once.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<gochat_core::tls::Acceptor>,
) {
    let admission = shared.connections.clone();
    let shutdown = shared.shutdown.clone();
    accept_loop(
        listener,
        Some(admission),
        shutdown,
        move |stream, peer, ticket| {
            let Some(ticket) = ticket else {
                tracing::debug!("tcp: {}: {peer}", close::SERVER_FULL.reason);
                crate::ws::refused(close::SERVER_FULL);
                return; // dropping the stream closes it
            };
            let Ok(counted) = shared.addresses.admit(peer.ip()) else {
                tracing::debug!("tcp: {}: {peer}", close::ADDRESS_LIMIT.reason);
                crate::ws::refused(close::ADDRESS_LIMIT);
                return;
            };
            let max_payload = shared.config.tcp_max_payload_bytes;
            let task_shared = shared.clone();
            // Two tasks of their own shape, so that a plain connection's task does not
            // carry a TLS session's future (a task is as big as its largest state).
            let Some(tls) = tls.clone() else {
                shared.spawn_session(async move {
                    let _counted = counted; // uncounted when the connection ends
                    let (r, w) = stream.into_split();
                    let codec = TcpCodec::new(r, max_payload);
                    session::run(codec, w, ticket, task_shared).await
                });
                return;
            };
            shared.spawn_session(async move {
                let _counted = counted;
                // The handshake counts against the auth deadline; boxed, as it is over soon.
                let wait = task_shared.config.auth_timeout();
                match Box::pin(tokio::time::timeout(wait, tls.accept(stream))).await {
                    Ok(Ok(s)) => {
                        let (r, w) = tokio::io::split(s);
                        session::run(TcpCodec::new(r, max_payload), w, ticket, task_shared).await
                    }
                    Ok(Err(e)) => tracing::debug!("tcp: TLS handshake with {peer} failed: {e}"),
                    Err(_) => tracing::debug!("tcp: TLS handshake with {peer} timed out"),
                }
            });
        },
    )
    .await
}

/// Reads whole `v1` frames off the socket (a partial frame waits for more bytes).
pub(crate) struct TcpCodec<R> {
    r: R,
    buf: BytesMut,
    max_payload: usize,
}

impl<R> TcpCodec<R> {
    fn new(r: R, max_payload: usize) -> Self {
        Self {
            r,
            buf: BytesMut::new(),
            max_payload,
        }
    }
}

/// A client frame: its op and the whole JSON object.
fn parse(payload: &[u8]) -> Option<(i64, serde_json::Map<String, serde_json::Value>)> {
    match serde_json::from_slice(payload) {
        Ok(serde_json::Value::Object(m)) => Some((m.get("op")?.as_i64()?, m)),
        _ => None,
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> Codec for TcpCodec<R> {
    const FRAMING: Framing = Framing::Tcp;

    async fn next(&mut self) -> Result<Inbound, CloseReason> {
        loop {
            match decode_frame(&mut self.buf, self.max_payload) {
                Ok(Some(payload)) => return Ok(Inbound::Text(payload)),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!("tcp: {e}");
                    return Err(close::BAD_TCP_FRAME);
                }
            }
            match self.r.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(close::PEER_CLOSED),
                Ok(_) => {}
            }
        }
    }

    fn pre_auth(payload: &[u8]) -> PreAuth {
        match parse(payload) {
            Some((OP_AUTH, _)) => match decode_auth(payload) {
                Ok(a) => PreAuth::Auth(a),
                Err(_) => PreAuth::Refuse(close::BAD_AUTH),
            },
            Some((OP_POST, _)) => PreAuth::Refuse(close::NOT_AUTHENTICATED),
            Some(_) => PreAuth::Skip, // other ops mean nothing before authentication
            None => PreAuth::Refuse(close::BAD_JSON),
        }
    }

    /// Posts go to the frame's room (the connection's if it names none or 0), as the
    /// session's user: `fromUserId` and the like in the frame are ignored. A later op 6,
    /// keep-alives and unknown ops mean nothing.
    fn after_auth(payload: &[u8]) -> AfterAuth {
        match parse(payload) {
            Some((OP_POST, frame)) => match frame.get("msg").and_then(|m| m.as_str()) {
                Some(msg) => AfterAuth::Post {
                    room: frame
                        .get("roomId")
                        .and_then(|r| r.as_i64())
                        .filter(|r| *r != 0),
                    msg: msg.to_owned(),
                },
                None => AfterAuth::Ignore,
            },
            Some(_) => AfterAuth::Ignore,
            None => AfterAuth::Refuse(close::BAD_JSON),
        }
    }

    fn pong(_payload: &[u8]) -> Option<Bytes> {
        None
    }

    fn set_max_payload(&mut self, max: usize) {
        self.max_payload = self.max_payload.max(max);
    }

    fn wire() -> Wire {
        Wire {
            // PING_PAYLOAD is 8 bytes, far under the frame limit.
            ping: tcp::encode_frame(PING_PAYLOAD).unwrap_or_default(),
            close: |_| None,
        }
    }
}
