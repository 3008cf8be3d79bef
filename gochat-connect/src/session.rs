//! One long connection from accept to close, the same for every transport: the auth frame
//! within the auth timeout → admission through logic → a reader task and the writer loop →
//! release. The transport only supplies a [`Codec`].

use crate::admission::{self, Entered};
use crate::channel::{Channel, Framing, HoldKey};
use crate::close::{self, CloseReason};
use crate::codec::{AfterAuth, Codec, Inbound, PreAuth};
use crate::sink::Sink;
use crate::state::Shared;
use crate::writer::{self, LastSeen, Liveness, Wire};
use gochat_core::model::RoomId;
use gochat_core::net::Ticket;
use gochat_core::protocol::auth::AuthFrame;
use gochat_core::rpc::RoomPushRequest;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// How long a goodbye (close frame) may take to write to a connection refused at the door.
const GOODBYE_GRACE: Duration = Duration::from_secs(1);

/// Run one connection to its end. `ticket` is its place under `connect.max_connections`:
/// until it authenticates it may be evicted to make room for another.
pub(crate) async fn run<C, W>(mut codec: C, mut w: W, ticket: Ticket, shared: Arc<Shared>)
where
    C: Codec,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Every step before and after the writer's loop is boxed: a task's future is as big as
    // its largest state for the connection's whole life, and inlined, the auth wait and
    // the RPCs to logic made an idle connection's task twice its size.
    ticket.set_evictable(true);
    let auth = Box::pin(async {
        tokio::select! {
            r = tokio::time::timeout(shared.config.auth_timeout(), read_auth(&mut codec)) => {
                r.unwrap_or(Err(close::AUTH_TIMEOUT))
            }
            _ = ticket.evicted() => Err(close::EVICTED),
            _ = shared.shutdown.cancelled() => Err(close::SHUTTING_DOWN),
        }
    })
    .await;
    ticket.set_evictable(false);
    let admitted = match auth {
        Ok(auth) => Box::pin(admission::admit(&shared, auth, C::FRAMING)).await,
        Err(reason) => Err(reason.into()),
    };
    let Entered {
        admitted,
        rx,
        replays,
    } = match admitted {
        Ok(a) => a,
        Err(refused) => {
            gochat_core::metrics::metrics().refused(refused.reason.reason_label());
            if refused.reason != close::PEER_CLOSED {
                tracing::debug!("connect: refused a connection: {}", refused.reason.reason);
            }
            // A v2 client is told why in an op-10 reply before the close.
            if let Some(reply) = refused.reply.and_then(|r| C::FRAMING.frame(&r)) {
                let _ = Box::pin(tokio::time::timeout(GOODBYE_GRACE, w.write_all(&reply))).await;
            }
            Box::pin(goodbye(&mut w, &C::wire(), refused.reason)).await;
            return;
        }
    };
    let ch = admitted.channel().clone();
    let transport = match C::FRAMING {
        Framing::WebSocket => "ws",
        Framing::Tcp => "tcp",
    };
    let metrics = gochat_core::metrics::metrics();
    metrics.admitted(transport);
    if ch.version >= 2 {
        codec.set_max_payload(shared.config.v2_max_frame_bytes);
    }
    let last_seen = Arc::new(LastSeen::default());
    let sink = Arc::new(Sink::new(w, rx));
    let reader = shared.spawn_answering(read_loop(
        codec,
        ch.clone(),
        sink.clone(),
        last_seen.clone(),
        shared.clone(),
        replays,
    ));
    let live = Liveness {
        ping_every: shared.config.ping_interval(),
        idle_timeout: shared.config.idle_timeout(),
    };
    writer::run(&sink, &ch, &C::wire(), live, &last_seen, &shared.shutdown).await;
    reader.abort();
    let reason = ch.close_reason().unwrap_or(close::PEER_CLOSED);
    metrics.closed(transport, reason.reason_label());
    Box::pin(admitted.release()).await;
    drop(ticket);
}

/// Close a connection that never got in: the close frame (if the transport has one and
/// the peer did not close first), then shut the socket.
pub(crate) async fn goodbye<W: AsyncWrite + Unpin>(w: &mut W, wire: &Wire, reason: CloseReason) {
    let _ = tokio::time::timeout(GOODBYE_GRACE, async {
        if reason != close::PEER_CLOSED
            && let Some(frame) = (wire.close)(reason)
        {
            w.write_all(&frame).await?;
        }
        w.shutdown().await
    })
    .await;
}

/// Read until the auth frame; anything else that is fatal ends the connection.
async fn read_auth<C: Codec>(codec: &mut C) -> Result<AuthFrame, CloseReason> {
    loop {
        match codec.next().await? {
            Inbound::Text(payload) => match C::pre_auth(&payload) {
                PreAuth::Auth(a) => return Ok(a),
                PreAuth::Skip => {}
                PreAuth::Refuse(r) => return Err(r),
            },
            Inbound::Close => return Err(close::PEER_CLOSED),
            Inbound::Ping(_) | Inbound::Other => {}
        }
    }
}

/// After authentication: first the replays a v2 client asked for; then every message is a
/// sign of life, pings are answered through the writer, a v2 connection's frames are
/// commands, a v1 TCP connection's posts go to logic as its session; anything fatal closes.
async fn read_loop<C: Codec, W: AsyncWrite + Unpin>(
    mut codec: C,
    ch: Arc<Channel>,
    sink: Arc<Sink<W>>,
    last_seen: Arc<LastSeen>,
    shared: Arc<Shared>,
    replays: Vec<(HoldKey, u64)>,
) {
    if !replays.is_empty() {
        // Replay is bulk work (store reads, then many frames), like a fan-out: it runs on
        // the main runtime with the writers, not on the answer thread, where 10 000
        // reconnecting clients' replays would queue every command behind them. This
        // connection's commands are read once its replay is done. A replay that panicked
        // or was cancelled may have left gaps: the connection closes, and the client's
        // reconnect asks for them again.
        let (s, c) = (shared.clone(), ch.clone());
        let replay = async move { crate::replay::at_auth(&s, &c, replays).await };
        if shared.tasks.spawn_on(replay, &shared.main).await.is_err() {
            ch.close(close::UNAVAILABLE);
            return;
        }
    }
    loop {
        let inbound = match codec.next().await {
            Ok(i) => i,
            Err(reason) => {
                ch.close(reason);
                return;
            }
        };
        last_seen.touch();
        match inbound {
            Inbound::Ping(payload) => {
                if let Some(pong) = C::pong(&payload) {
                    ch.push(pong);
                }
            }
            Inbound::Close => {
                ch.close(close::PEER_CLOSED);
                return;
            }
            Inbound::Text(payload) if ch.version >= 2 => {
                // Boxed, like admission: the reader waits on the socket far longer.
                if let Err(reason) = Box::pin(crate::commands::handle(&shared, &ch, &payload)).await
                {
                    ch.close(reason);
                    return;
                }
                // The reply is queued: written now, unless the writer is mid-write, rather
                // than when the writer's turn comes.
                sink.write_now(&ch);
            }
            Inbound::Text(payload) => match C::after_auth(&payload) {
                AfterAuth::Ignore => {}
                AfterAuth::Post { room, msg } => Box::pin(post(&shared, &ch, room, msg)).await,
                AfterAuth::Refuse(reason) => {
                    ch.close(reason);
                    return;
                }
            },
            Inbound::Other => {}
        }
    }
}

/// Post `msg` as the connection's user, to `room` or the connection's own room.
async fn post(shared: &Shared, ch: &Channel, room: Option<RoomId>, msg: String) {
    let req = RoomPushRequest {
        token: ch.token.clone(),
        room_id: room.unwrap_or(ch.first_room()),
        msg,
        ..RoomPushRequest::default()
    };
    let outcome = match shared.peers.logic().await {
        Ok(logic) => logic.push_room(req).await.map_err(|f| f.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = outcome {
        tracing::info!("connect: post by user {} refused: {e}", ch.user_id);
    }
}
