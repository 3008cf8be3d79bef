//! The WebSocket transport: `/ws` upgrade, the auth frame, then a reader task and the
//! writer loop (fastwebsockets' `read_frame` is not cancel-safe, so reading never sits in a
//! `select!`; it has a task of its own).

use crate::admission::{BAD_AUTH, admit, release};
use crate::channel::{Channel, CloseReason, Framing};
use crate::server::Inner;
use crate::writer::{self, LastSeen, Liveness, Wire};
use bytes::Bytes;
use fastwebsockets::{OpCode, Role, WebSocketError, WebSocketRead, upgrade};
use gochat_core::protocol::auth::decode_auth;
use gochat_core::protocol::ws::{self as frames, close};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncWriteExt, ReadHalf};

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

/// One connection from handshake to close.
async fn session(io: Upgraded, inner: &Arc<Inner>) {
    let (r, mut w) = tokio::io::split(io);
    // Outbound frames are pre-encoded bytes written straight to `w`; fastwebsockets only
    // parses (and unmasks) inbound frames, so its write half is a sink that is never used.
    let (mut rd, _) = fastwebsockets::after_handshake_split(r, tokio::io::sink(), Role::Server);
    // fastwebsockets refuses payloads >= the limit; ours is inclusive.
    rd.set_max_message_size(inner.config.max_frame_bytes + 1);
    rd.set_auto_pong(false);
    rd.set_auto_close(false);

    let first = tokio::time::timeout(inner.config.auth_timeout(), first_text(&mut rd)).await;
    let auth = match first {
        Ok(Ok(Some(text))) => decode_auth(&text).map_err(|_| BAD_AUTH),
        Ok(Ok(None)) => return, // closed before authenticating
        Ok(Err(WebSocketError::FrameTooLarge)) => Err(TOO_BIG),
        Ok(Err(_)) => return,
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
    let reader = tokio::spawn(read_loop(rd, ch.clone(), last_seen.clone()));
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

/// The first text frame's payload; `None` if the peer closed first.
async fn first_text(
    rd: &mut WebSocketRead<ReadHalf<Upgraded>>,
) -> Result<Option<Vec<u8>>, WebSocketError> {
    loop {
        let frame = rd
            .read_frame::<_, WebSocketError>(&mut |_| async { Ok(()) })
            .await?;
        match frame.opcode {
            OpCode::Text => return Ok(Some(frame.payload.to_vec())),
            OpCode::Close => return Ok(None),
            _ => {}
        }
    }
}

/// Read until the peer closes or errs. Every frame counts as a sign of life; pings are
/// answered through the writer; later text frames (including a second auth frame) are
/// ignored: gochat's clients send nothing else over the WebSocket.
async fn read_loop(
    mut rd: WebSocketRead<ReadHalf<Upgraded>>,
    ch: Arc<Channel>,
    last_seen: Arc<LastSeen>,
) {
    loop {
        match rd
            .read_frame::<_, WebSocketError>(&mut |_| async { Ok(()) })
            .await
        {
            Ok(frame) => {
                last_seen.touch();
                match frame.opcode {
                    OpCode::Ping => ch.push(frames::pong_frame(&frame.payload)),
                    OpCode::Close => {
                        ch.close(CloseReason {
                            code: close::NORMAL,
                            reason: "",
                        });
                        return;
                    }
                    _ => {}
                }
            }
            Err(WebSocketError::FrameTooLarge) => {
                ch.close(TOO_BIG);
                return;
            }
            Err(e) => {
                tracing::debug!("ws: user {} read ended: {e}", ch.user_id);
                ch.close(CloseReason {
                    code: close::NORMAL,
                    reason: "",
                });
                return;
            }
        }
    }
}
