//! [`Channel`]: one authenticated long connection, as the rest of the server sees it.

use bytes::Bytes;
use gochat_core::model::{RoomId, UserId};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Why the server closes a connection: a close code and a reason (PROTOCOL.md, **ext**).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    /// WebSocket close code (see `gochat_core::protocol::ws::close`).
    pub code: u16,
    /// Short human-readable reason.
    pub reason: &'static str,
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
    /// Frames dropped because the queue was full (0 unless it was kicked for it).
    dropped: AtomicU64,
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
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Queue a frame. A full queue kicks the channel as a slow consumer; a closed one is
    /// ignored (the connection is already going away).
    pub fn push(&self, frame: Bytes) {
        match self.tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.close(CloseReason {
                    code: gochat_core::protocol::ws::close::SLOW_CONSUMER,
                    reason: "slow consumer: outbound queue full",
                });
            }
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
}
