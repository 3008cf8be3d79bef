//! The raw TCP transport: gochat's `v1` frames carrying JSON. `op 6` authenticates and
//! joins (like the WebSocket auth frame); `op 3` posts `msg` to a room as the session's
//! user, only on an authenticated connection. Pushes go out as the same JSON, one per frame,
//! with a `ping msg` frame as keep-alive. Any malformed frame closes that connection alone.

use crate::admission::{BAD_AUTH, admit, release};
use crate::channel::{Channel, CloseReason, Framing};
use crate::server::Inner;
use crate::writer::{self, LastSeen, Liveness, Wire};
use bytes::{Bytes, BytesMut};
use gochat_core::protocol::auth::decode_auth;
use gochat_core::protocol::tcp::{self, FrameError, PING_PAYLOAD, decode_frame};
use gochat_core::protocol::ws::close;
use gochat_core::rpc::RoomPushRequest;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Operation code of the TCP auth frame.
pub const OP_AUTH: i64 = 6;
/// Operation code of a TCP room post.
pub const OP_POST: i64 = 3;

/// Why a TCP connection was closed (TCP has no close frame; these show in logs and tests).
pub const BAD_FRAME: CloseReason = CloseReason {
    code: close::POLICY,
    reason: "malformed v1 frame",
};
/// An op 3 before op 6.
pub const NOT_AUTHENTICATED: CloseReason = CloseReason {
    code: close::POLICY,
    reason: "op 3 before op 6",
};
/// A payload that is not a JSON object with an integer `op`.
pub const BAD_JSON: CloseReason = CloseReason {
    code: close::POLICY,
    reason: "payload is not a JSON object with an integer op",
};

fn wire() -> Wire {
    Wire {
        // PING_PAYLOAD is 8 bytes, far under the frame limit.
        ping: tcp::encode_frame(PING_PAYLOAD).unwrap_or_default(),
        close: |_| None,
    }
}

/// Reads whole frames off a byte stream (a partial frame waits for more bytes).
struct FrameReader<R> {
    r: R,
    buf: BytesMut,
    max_payload: usize,
}

enum ReadError {
    Closed,
    Frame(FrameError),
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    async fn next(&mut self) -> Result<Bytes, ReadError> {
        loop {
            match decode_frame(&mut self.buf, self.max_payload) {
                Ok(Some(payload)) => return Ok(payload),
                Ok(None) => {}
                Err(e) => return Err(ReadError::Frame(e)),
            }
            match self.r.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(ReadError::Closed),
                Ok(_) => {}
            }
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

/// Accept TCP connections until shutdown.
pub(crate) async fn serve(listener: TcpListener, inner: Arc<Inner>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = inner.shutdown.cancelled() => return,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("tcp accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if inner.open.load(Ordering::Relaxed) >= inner.config.max_connections {
            continue; // dropped: over the connection limit
        }
        let _ = stream.set_nodelay(true);
        let task_inner = inner.clone();
        inner.tasks.spawn(async move {
            task_inner.open.fetch_add(1, Ordering::Relaxed);
            session(stream, &task_inner).await;
            task_inner.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn session(stream: TcpStream, inner: &Arc<Inner>) {
    let (r, mut w) = stream.into_split();
    let mut frames = FrameReader {
        r,
        buf: BytesMut::new(),
        max_payload: inner.config.tcp_max_payload_bytes,
    };
    let auth = tokio::time::timeout(inner.config.auth_timeout(), async {
        loop {
            let payload = frames.next().await.map_err(|_| BAD_FRAME)?;
            match parse(&payload) {
                Some((OP_AUTH, _)) => return decode_auth(&payload).map_err(|_| BAD_AUTH),
                Some((OP_POST, _)) => return Err(NOT_AUTHENTICATED),
                Some(_) => {} // other ops mean nothing before authentication
                None => return Err(BAD_JSON),
            }
        }
    })
    .await
    .unwrap_or(Err(CloseReason {
        code: close::POLICY,
        reason: "no auth frame in time",
    }));
    let admitted = match auth {
        Ok(auth) => admit(inner, auth, Framing::Tcp).await,
        Err(r) => Err(r),
    };
    let (ch, mut rx) = match admitted {
        Ok(a) => a,
        Err(reason) => {
            tracing::debug!("tcp: connection refused: {}", reason.reason);
            let _ = w.shutdown().await;
            return;
        }
    };
    let last_seen = Arc::new(LastSeen::default());
    let reader = tokio::spawn(read_loop(
        frames,
        ch.clone(),
        last_seen.clone(),
        inner.clone(),
    ));
    let live = Liveness {
        ping_every: inner.config.ping_interval(),
        idle_timeout: inner.config.idle_timeout(),
    };
    writer::run(
        &mut w,
        &mut rx,
        &ch,
        &wire(),
        live,
        &last_seen,
        &inner.shutdown,
    )
    .await;
    reader.abort();
    release(inner, &ch).await;
}

/// After authentication: posts go to logic as this connection's session; a later op 6 is
/// ignored; anything malformed closes the connection.
async fn read_loop(
    mut frames: FrameReader<tokio::net::tcp::OwnedReadHalf>,
    ch: Arc<Channel>,
    last_seen: Arc<LastSeen>,
    inner: Arc<Inner>,
) {
    loop {
        let payload = match frames.next().await {
            Ok(p) => p,
            Err(ReadError::Closed) => {
                ch.close(CloseReason {
                    code: close::NORMAL,
                    reason: "",
                });
                return;
            }
            Err(ReadError::Frame(e)) => {
                tracing::debug!("tcp: user {}: {e}", ch.user_id);
                ch.close(BAD_FRAME);
                return;
            }
        };
        last_seen.touch();
        match parse(&payload) {
            Some((OP_POST, frame)) => post(&inner, &ch, &frame).await,
            Some(_) => {} // op 6 again, keep-alives, unknown ops: nothing to do
            None => {
                ch.close(BAD_JSON);
                return;
            }
        }
    }
}

/// Post `msg` to the frame's room (the connection's room if it names none) as the session's
/// user; `fromUserId` and the like in the frame are ignored.
async fn post(inner: &Inner, ch: &Channel, frame: &serde_json::Map<String, serde_json::Value>) {
    let Some(msg) = frame.get("msg").and_then(|m| m.as_str()) else {
        return;
    };
    let room_id = frame
        .get("roomId")
        .and_then(|r| r.as_i64())
        .filter(|r| *r != 0)
        .unwrap_or(ch.room_id);
    let req = RoomPushRequest {
        token: ch.token.clone(),
        room_id,
        msg: msg.to_owned(),
    };
    let outcome = match inner.peers.logic().await {
        Ok(logic) => logic.push_room(req).await.map_err(|f| f.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = outcome {
        tracing::info!("tcp: post by user {} refused: {e}", ch.user_id);
    }
}
