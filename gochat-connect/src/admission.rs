//! Admitting an authenticated connection and releasing it, the same for every transport.

use crate::channel::{Channel, CloseReason, Framing};
use crate::server::Inner;
use bytes::Bytes;
use gochat_core::model::Presence;
use gochat_core::protocol::auth::AuthFrame;
use gochat_core::protocol::ws::close;
use gochat_core::rpc::{ConnectRequest, Fault};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// Close reason for a frame that is not an auth frame.
pub const BAD_AUTH: CloseReason = CloseReason {
    code: close::POLICY,
    reason: "first frame must be {\"authToken\":…,\"roomId\":…}",
};
/// Close reason for a token logic does not know.
pub const UNKNOWN_TOKEN: CloseReason = CloseReason {
    code: close::POLICY,
    reason: "unknown or expired authToken",
};
/// Close reason when logic cannot be reached.
pub const UNAVAILABLE: CloseReason = CloseReason {
    code: 1011,
    reason: "service unavailable",
};

/// Ask logic to admit a connection; on success it is in the hub and receiving pushes.
pub async fn admit(
    inner: &Arc<Inner>,
    auth: AuthFrame,
    framing: Framing,
) -> Result<(Arc<Channel>, mpsc::Receiver<Bytes>), CloseReason> {
    let logic = inner.peers.logic().await.map_err(|e| {
        tracing::warn!("connect: no logic instance: {e}");
        UNAVAILABLE
    })?;
    let user = logic
        .connect(ConnectRequest {
            token: auth.auth_token.clone(),
            room_id: auth.room_id,
            server_id: inner.config.server_id.clone(),
        })
        .await
        .map_err(|f| match f {
            Fault::Session => UNKNOWN_TOKEN,
            f => {
                tracing::warn!("connect: logic refused a connection: {f}");
                UNAVAILABLE
            }
        })?;
    let (ch, rx) = Channel::new(
        inner.next_id.fetch_add(1, Ordering::Relaxed),
        user.id,
        user.name,
        auth.room_id,
        auth.auth_token,
        framing,
        inner.config.channel_queue,
    );
    let ch = Arc::new(ch);
    inner.hub.put(ch.clone());
    Ok((ch, rx))
}

/// Take a closed connection out of the hub and tell logic (which updates presence and
/// pushes the room's new roster).
pub async fn release(inner: &Arc<Inner>, ch: &Channel) {
    inner.hub.remove(ch);
    let presence = Presence {
        server_id: inner.config.server_id.clone(),
        user_id: ch.user_id,
        user_name: ch.user_name.clone(),
        room_id: ch.room_id,
    };
    match inner.peers.logic().await {
        Ok(logic) => {
            if let Err(e) = logic.disconnect(presence).await {
                tracing::warn!(
                    "connect: disconnect of user {} not recorded: {e}",
                    ch.user_id
                );
            }
        }
        Err(e) => tracing::warn!(
            "connect: disconnect of user {} not recorded: {e}",
            ch.user_id
        ),
    }
}
