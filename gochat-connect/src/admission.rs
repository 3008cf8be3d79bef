//! Admitting an authenticated connection through logic and releasing it, the same for every
//! transport. Both hold the presence gate shared, so a re-assertion of the whole presence
//! never interleaves with them.

use crate::channel::{Channel, Framing};
use crate::close::{self, CloseReason};
use crate::state::Shared;
use bytes::Bytes;
use gochat_core::protocol::auth::AuthFrame;
use gochat_core::rpc::{ConnectRequest, Fault};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// An admitted connection: in the hub, its presence recorded. Release it with
/// [`Admitted::release`]; if it is dropped instead (its session panicked), it is released
/// in the background.
pub(crate) struct Admitted {
    ch: Arc<Channel>,
    shared: Arc<Shared>,
    released: bool,
}

/// Ask logic to admit a connection; on success it is in the hub and receiving pushes.
pub(crate) async fn admit(
    shared: &Arc<Shared>,
    auth: AuthFrame,
    framing: Framing,
) -> Result<(Admitted, mpsc::Receiver<Bytes>), CloseReason> {
    let _gate = shared.presence_gate.read().await;
    let logic = shared.peers.logic().await.map_err(|e| {
        tracing::warn!("connect: no logic instance: {e}");
        close::UNAVAILABLE
    })?;
    let user = logic
        .connect(ConnectRequest {
            token: auth.auth_token.clone(),
            room_id: auth.room_id,
            server_id: shared.config.server_id.clone(),
        })
        .await
        .map_err(|f| match f {
            Fault::Session => close::UNKNOWN_TOKEN,
            f => {
                // The join may have been recorded though its answer was lost.
                shared.presence_dirty.store(true, Ordering::Relaxed);
                tracing::warn!("connect: logic refused a connection: {f}");
                close::UNAVAILABLE
            }
        })?;
    let (ch, rx) = Channel::new(
        shared.next_id.fetch_add(1, Ordering::Relaxed),
        user.id,
        user.name,
        auth.room_id,
        auth.auth_token,
        framing,
        shared.config.channel_queue,
    );
    let ch = Arc::new(ch);
    shared.hub.put(ch.clone());
    Ok((
        Admitted {
            ch,
            shared: shared.clone(),
            released: false,
        },
        rx,
    ))
}

impl Admitted {
    /// The connection as the hub holds it.
    pub(crate) fn channel(&self) -> &Arc<Channel> {
        &self.ch
    }

    /// Take the connection out of the hub and tell logic (which updates presence and the
    /// room's roster).
    pub(crate) async fn release(mut self) {
        self.released = true;
        release(&self.shared, &self.ch).await;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if !self.released {
            let (shared, ch) = (self.shared.clone(), self.ch.clone());
            self.shared
                .tasks
                .spawn(async move { release(&shared, &ch).await });
        }
    }
}

async fn release(shared: &Shared, ch: &Channel) {
    let _gate = shared.presence_gate.read().await;
    shared.hub.remove(ch);
    let presence = ch.presence(&shared.config.server_id);
    let outcome = match shared.peers.logic().await {
        Ok(logic) => logic.disconnect(presence).await.map_err(|f| f.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = outcome {
        shared.presence_dirty.store(true, Ordering::Relaxed);
        tracing::warn!(
            "connect: disconnect of user {} not recorded (presence will be re-asserted): {e}",
            ch.user_id
        );
    }
}
