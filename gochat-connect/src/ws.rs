//! The WebSocket transport: `/ws` upgrade (fastwebsockets' handshake), the auth frame, then a
//! reader task (our sans-IO frame decoder over a small buffer) and the writer loop of
//! pre-encoded frames.

use crate::admission::{BAD_AUTH, admit, release};
use crate::channel::{Channel, CloseReason, Framing};
use crate::server::Inner;
use crate::writer::{self, LastSeen, Liveness, Wire};
use bytes::Bytes;
use bytes::BytesMut;
use fastwebsockets::upgrade;
use gochat_core::protocol::auth::decode_auth;
use gochat_core::protocol::ws::{
    self as frames, ClientFrame, WsFrameError, close, decode_client_frame, opcode,
};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf};

type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// The layout of WebSocket frames for the writer.
const WIRE: fn() -> Wire = || Wire {
    ping: frames::ping_frame(),
    close: |r| Some(frames::close_frame(r.code, r.reason)),
};

fn plain(status: StatusCode, body: &'static str) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    Ok(resp)
}

/// The HTTP handler of the WebSocket listener.
pub(crate) async fn handle(
    mut req: Request<Incoming>,
    inner: Arc<Inner>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/ws" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the WebSocket endpoint is /ws\n",
        );
    }
    let allowed = &inner.config.allowed_origins;
    if !allowed.is_empty() {
        let origin = req
            .headers()
            .get(hyper::header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        if !origin.is_some_and(|o| allowed.iter().any(|a| a == o)) {
            return plain(StatusCode::FORBIDDEN, "origin not allowed\n");
        }
    }
    if inner.open.load(Ordering::Relaxed) >= inner.config.max_connections {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "connection limit reached\n",
        );
    }
    let Ok((resp, fut)) = upgrade::upgrade(&mut req) else {
        return plain(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade\n");
    };
    let task_inner = inner.clone();
    inner.tasks.spawn(async move {
        task_inner.open.fetch_add(1, Ordering::Relaxed);
        match fut.await {
            Ok(ws) => session(ws.into_inner(), &task_inner).await,
            Err(e) => tracing::debug!("ws: upgrade failed: {e}"),
        }
        task_inner.open.fetch_sub(1, Ordering::Relaxed);
    });
    Ok(resp.map(|_| Full::default()))
}

/// Reads whole client frames with a buffer sized to what is in flight: a few hundred bytes
/// while idle (fastwebsockets' own reader keeps 8 KiB per connection).
struct FrameReader {
    r: ReadHalf<Upgraded>,
    buf: BytesMut,
    max_payload: usize,
}

/// Bytes asked of the socket per read while nothing bigger is pending.
const READ_CHUNK: usize = 256;

enum ReadError {
    Closed,
    Frame(WsFrameError),
}

impl FrameReader {
    async fn next(&mut self) -> Result<ClientFrame, ReadError> {
        loop {
            match decode_client_frame(&mut self.buf, self.max_payload) {
                Ok(Some(f)) => {
                    // Give back a buffer grown for a big frame once it is drained.
                    if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
                        self.buf = BytesMut::new();
                    }
                    return Ok(f);
                }
                Ok(None) => {}
                Err(e) => return Err(ReadError::Frame(e)),
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            match self.r.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(ReadError::Closed),
                Ok(_) => {}
            }
        }
    }
}

/// One connection from handshake to close.
async fn session(io: Upgraded, inner: &Arc<Inner>) {
    let (r, mut w) = tokio::io::split(io);
    // Outbound frames are pre-encoded bytes written straight to `w`; inbound ones are
    // decoded by our sans-IO decoder.
    let mut inbound = FrameReader {
        r,
        buf: BytesMut::new(),
        max_payload: inner.config.max_frame_bytes,
    };
    let first = tokio::time::timeout(inner.config.auth_timeout(), first_text(&mut inbound)).await;
    let auth = match first {
        Ok(Ok(Some(text))) => decode_auth(&text).map_err(|_| BAD_AUTH),
        Ok(Ok(None)) => return, // closed before authenticating
        Ok(Err(ReadError::Frame(WsFrameError::TooBig(_)))) => Err(TOO_BIG),
        Ok(Err(ReadError::Frame(_))) => Err(PROTOCOL_ERROR),
        Ok(Err(ReadError::Closed)) => return,
        Err(_) => Err(CloseReason {
            code: close::POLICY,
            reason: "no auth frame in time",
        }),
    };
    let admitted = match auth {
        Ok(auth) => admit(inner, auth, Framing::WebSocket).await,
        Err(r) => Err(r),
    };
    let (ch, mut rx) = match admitted {
        Ok(a) => a,
        Err(reason) => {
            let _ = w
                .write_all(&frames::close_frame(reason.code, reason.reason))
                .await;
            let _ = w.shutdown().await;
            return;
        }
    };

    let last_seen = Arc::new(LastSeen::default());
    let reader = tokio::spawn(read_loop(inbound, ch.clone(), last_seen.clone()));
    let live = Liveness {
        ping_every: inner.config.ping_interval(),
        idle_timeout: inner.config.idle_timeout(),
    };
    writer::run(
        &mut w,
        &mut rx,
        &ch,
        &WIRE(),
        live,
        &last_seen,
        &inner.shutdown,
    )
    .await;
    reader.abort();
    release(inner, &ch).await;
}

/// Close reason for an inbound frame over `max_frame_bytes`.
const TOO_BIG: CloseReason = CloseReason {
    code: close::TOO_BIG,
    reason: "frame over the size limit",
};

/// Close reason for bytes that are not a valid client frame.
const PROTOCOL_ERROR: CloseReason = CloseReason {
    code: 1002,
    reason: "malformed frame",
};

/// The first complete text message's payload (an unfragmented text frame); `None` if the
/// peer closed first.
async fn first_text(inbound: &mut FrameReader) -> Result<Option<Bytes>, ReadError> {
    loop {
        let frame = inbound.next().await?;
        match frame.opcode {
            opcode::TEXT => return Ok(Some(frame.payload)),
            opcode::CLOSE => return Ok(None),
            _ => {}
        }
    }
}

/// Read until the peer closes or errs. Every frame counts as a sign of life; pings are
/// answered through the writer; later text frames (including a second auth frame) are
/// ignored: gochat's clients send nothing else over the WebSocket.
async fn read_loop(mut inbound: FrameReader, ch: Arc<Channel>, last_seen: Arc<LastSeen>) {
    loop {
        match inbound.next().await {
            Ok(frame) => {
                last_seen.touch();
                match frame.opcode {
                    opcode::PING => ch.push(frames::pong_frame(&frame.payload)),
                    opcode::CLOSE => {
                        ch.close(CloseReason {
                            code: close::NORMAL,
                            reason: "",
                        });
                        return;
                    }
                    _ => {}
                }
            }
            Err(ReadError::Frame(WsFrameError::TooBig(_))) => {
                ch.close(TOO_BIG);
                return;
            }
            Err(ReadError::Frame(e)) => {
                tracing::debug!("ws: user {}: {e}", ch.user_id);
                ch.close(PROTOCOL_ERROR);
                return;
            }
            Err(ReadError::Closed) => {
                ch.close(CloseReason {
                    code: close::NORMAL,
                    reason: "",
                });
                return;
            }
        }
    }
}
