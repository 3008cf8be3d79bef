//! [`Channel`]: one authenticated long connection, as the rest of the server sees it.

use crate::close::{self, CloseReason};
use bytes::Bytes;
use gochat_core::model::{Presence, RoomId, UserId};
use std::sync::OnceLock;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a connection's frames are laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// WebSocket text frames.
    WebSocket,
    /// gochat's `v1` TCP frames.
    Tcp,
}

/// One open connection. Pushes are queued on `tx` (bounded); a full queue means the client
/// does not read fast enough, and it is closed rather than allowed to stall a room.
pub struct Channel {
    /// Unique per server, to tell a user's connections apart.
    pub id: u64,
    /// Whose connection.
    pub user_id: UserId,
    /// Their name (for presence).
    pub user_name: String,
    /// The room joined, or `NO_ROOM`.
    pub room_id: RoomId,
    /// The token it authenticated with (logout closes exactly these).
    pub token: String,
    /// Wire layout of its frames.
    pub framing: Framing,
    /// Frames waiting for the writer.
    tx: mpsc::Sender<Bytes>,
    /// Fired to make the writer close the connection.
    kick: CancellationToken,
    /// Set once, by whoever kicks first.
    reason: OnceLock<CloseReason>,
}

impl Channel {
    /// A channel and the receiving end of its queue (capacity `queue`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        user_id: UserId,
        user_name: String,
        room_id: RoomId,
        token: String,
        framing: Framing,
        queue: usize,
    ) -> (Self, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        (
            Self {
                id,
                user_id,
                user_name,
                room_id,
                token,
                framing,
                tx,
                kick: CancellationToken::new(),
                reason: OnceLock::new(),
            },
            rx,
        )
    }

    /// Queue a frame. A full queue kicks the channel as a slow consumer; a closed one is
    /// ignored (the connection is already going away).
    pub fn push(&self, frame: Bytes) {
        match self.tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.close(close::SLOW_CONSUMER),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Ask the writer to close the connection with `reason` (the first reason wins).
    pub fn close(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.kick.cancel();
    }

    /// Resolves once the channel has been asked to close.
    pub async fn closed(&self) {
        self.kick.cancelled().await
    }

    /// Whether the channel has been asked to close.
    pub fn is_closed(&self) -> bool {
        self.kick.is_cancelled()
    }

    /// Why it was asked to close, if it was.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.reason.get().copied()
    }

    /// This connection's presence as recorded by logic, on server `server_id`.
    pub fn presence(&self, server_id: &str) -> Presence {
        Presence {
            server_id: server_id.to_owned(),
            user_id: self.user_id,
            user_name: self.user_name.clone(),
            room_id: self.room_id,
        }
    }
}
