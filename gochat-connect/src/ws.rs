//! The WebSocket transport: the `/ws` upgrade (fastwebsockets' handshake) and [`WsCodec`],
//! our sans-IO frame decoder over a small buffer. The session itself is `session.rs`.

use crate::channel::Framing;
use crate::close::{self, CloseReason};
use crate::codec::{AfterAuth, Codec, Inbound, PreAuth};
use crate::session;
use crate::state::Shared;
use crate::writer::Wire;
use bytes::{Bytes, BytesMut};
use fastwebsockets::upgrade;
use gochat_core::protocol::auth::decode_auth;
use gochat_core::protocol::ws::{self as frames, WsFrameError, decode_client_frame, opcode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, ReadHalf};

type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

fn plain(status: StatusCode, body: &'static str) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    Ok(resp)
}

/// Count a connection refused before its handshake.
pub(crate) fn refused(reason: crate::close::CloseReason) {
    let m = gochat_core::metrics::metrics();
    m.refused(reason.reason_label());
    if reason == close::ADDRESS_LIMIT {
        m.limited("connections_per_ip");
    }
}

/// The HTTP handler of the WebSocket listener: `/ws` upgrades, anything else is refused.
/// A connection that finds the server full (and no unauthenticated one to evict) is
/// upgraded and closed at once with 1013, so the client learns why.
pub(crate) async fn handle(
    mut req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/ws" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the WebSocket endpoint is /ws\n",
        );
    }
    let allowed = &shared.config.allowed_origins;
    if !allowed.is_empty() {
        let origin = req
            .headers()
            .get(hyper::header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        if !origin.is_some_and(|o| allowed.iter().any(|a| a == o)) {
            return plain(StatusCode::FORBIDDEN, "origin not allowed\n");
        }
    }
    // A complete upgrade request: not to be evicted while it is answered.
    gochat_core::http::mark_busy(&req);
    let Ok((resp, upgrading)) = upgrade::upgrade(&mut req) else {
        return plain(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade\n");
    };
    let by_address = match gochat_core::http::peer_of(&req) {
        Some(peer) => shared.addresses.admit(peer.ip()),
        None => Ok(None),
    };
    let ticket = shared.connections.admit();
    let task_shared = shared.clone();
    shared.spawn_session(async move {
        let io = match upgrading.await {
            Ok(ws) => ws.into_inner(),
            Err(e) => {
                tracing::debug!("ws: upgrade failed: {e}");
                return;
            }
        };
        let (r, mut w) = tokio::io::split(io);
        let Ok(_counted) = by_address else {
            refused(close::ADDRESS_LIMIT);
            return session::goodbye(&mut w, &WsCodec::wire(), close::ADDRESS_LIMIT).await;
        };
        match ticket {
            Some(ticket) => {
                let codec = WsCodec {
                    r,
                    buf: BytesMut::new(),
                    max_payload: task_shared.config.max_frame_bytes,
                };
                session::run(codec, w, ticket, task_shared).await;
            }
            None => {
                refused(close::SERVER_FULL);
                session::goodbye(&mut w, &WsCodec::wire(), close::SERVER_FULL).await
            }
        }
    });
    Ok(resp.map(|_| Full::default()))
}

/// Reads whole client frames with a buffer sized to what is in flight: a few hundred bytes
/// while idle (fastwebsockets' own reader keeps 8 KiB per connection). Fragmented messages
/// are not reassembled: gochat's clients send single-frame text messages of a few hundred
/// bytes, and a continuation frame is a sign of life and nothing more.
pub(crate) struct WsCodec {
    r: ReadHalf<Upgraded>,
    buf: BytesMut,
    max_payload: usize,
}

/// Bytes asked of the socket per read while nothing bigger is pending.
const READ_CHUNK: usize = 256;

impl Codec for WsCodec {
    const FRAMING: Framing = Framing::WebSocket;

    async fn next(&mut self) -> Result<Inbound, CloseReason> {
        loop {
            match decode_client_frame(&mut self.buf, self.max_payload) {
                Ok(Some(f)) => {
                    // Give back a buffer grown for a big frame once it is drained.
                    if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
                        self.buf = BytesMut::new();
                    }
                    return Ok(match f.opcode {
                        opcode::TEXT => Inbound::Text(f.payload),
                        opcode::PING => Inbound::Ping(f.payload),
                        opcode::CLOSE => Inbound::Close,
                        _ => Inbound::Other,
                    });
                }
                Ok(None) => {}
                Err(WsFrameError::TooBig(_)) => return Err(close::TOO_BIG),
                Err(e) => {
                    tracing::debug!("ws: {e}");
                    return Err(close::MALFORMED_FRAME);
                }
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            match self.r.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(close::PEER_CLOSED),
                Ok(_) => {}
            }
        }
    }

    /// The first text frame is the auth frame.
    fn pre_auth(payload: &[u8]) -> PreAuth {
        match decode_auth(payload) {
            Ok(a) => PreAuth::Auth(a),
            Err(_) => PreAuth::Refuse(close::BAD_AUTH),
        }
    }

    /// gochat's WebSocket clients send nothing after the auth frame; a second auth frame
    /// (which corrupted gochat's room list) is ignored like anything else.
    fn after_auth(_payload: &[u8]) -> AfterAuth {
        AfterAuth::Ignore
    }

    fn pong(payload: &[u8]) -> Option<Bytes> {
        Some(frames::pong_frame(payload))
    }

    fn set_max_payload(&mut self, max: usize) {
        self.max_payload = self.max_payload.max(max);
    }

    fn wire() -> Wire {
        Wire {
            ping: frames::ping_frame(),
            close: |r| Some(frames::close_frame(r.code, r.reason)),
        }
    }
}
