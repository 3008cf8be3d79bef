//! [`Channel`]: one authenticated long connection, as the rest of the server sees it.

use crate::close::{self, CloseReason};
use crate::outbox::{Outbox, Outgoing, outbox};
use bytes::Bytes;
use gochat_core::model::{NO_ROOM, Presence, RoomId, UserId};
use gochat_core::protocol::{tcp, ws};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::OnceLock;
use tokio_util::sync::CancellationToken;

/// How a connection's frames are laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// WebSocket text frames.
    WebSocket,
    /// gochat's `v1` TCP frames.
    Tcp,
}

impl Framing {
    /// The largest payload one frame of this layout carries.
    pub fn max_payload(self) -> usize {
        match self {
            Framing::WebSocket => usize::MAX,
            Framing::Tcp => tcp::MAX_PAYLOAD,
        }
    }

    /// `payload` in one frame of this layout (`None` if too big for a TCP frame).
    pub fn frame(self, payload: &[u8]) -> Option<Bytes> {
        match self {
            Framing::WebSocket => Some(ws::text_frame(payload)),
            Framing::Tcp => tcp::encode_frame(payload).ok(),
        }
    }
}

/// A log whose live messages a v2 connection holds back while its replay is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldKey {
    /// A room's messages.
    Room(RoomId),
    /// The user's private messages.
    Inbox,
}

/// Live frames held per log, with their seqs: present while that log replays.
type Held = HashMap<HoldKey, Vec<(u64, Bytes)>>;

/// One open connection. Pushes are queued on `tx` (bounded); a full queue means the client
/// does not read fast enough, and it is closed rather than allowed to stall a room.
pub struct Channel {
    /// Unique per server, to tell a user's connections apart.
    pub id: u64,
    /// Whose connection.
    pub user_id: UserId,
    /// Their name (for presence).
    pub user_name: String,
    /// The token it authenticated with (logout closes exactly these).
    pub token: String,
    /// Wire layout of its frames.
    pub framing: Framing,
    /// Protocol version: 1 (gochat's clients, byte for byte) or 2 (`"v":2`: stored
    /// messages with their seqs, commands, several rooms).
    pub version: u8,
    /// Rooms it is in: a v1 connection at most one, fixed at auth; a v2 one any number.
    /// Changed only together with the hub's index (see `Hub::join_room`).
    rooms: Mutex<Vec<RoomId>>,
    /// Live messages held back while a replay of their log is written (v2), so that the
    /// replay and the live stream meet with no gap and no duplicate.
    held: Mutex<Held>,
    /// Per log, the highest seq a replay sent: a live message at or below it was in the
    /// replay already (it was stored before the replay read the store, and delivered after
    /// the replay was written) and is dropped.
    replayed: Mutex<HashMap<HoldKey, u64>>,
    /// Frames waiting for the writer (its capacity is also the most held back per log).
    outbox: Outbox,
    /// Fired to make the writer close the connection.
    kick: CancellationToken,
    /// Set once, by whoever kicks first.
    reason: OnceLock<CloseReason>,
}

impl Channel {
    /// A v1 channel in `room_id` (or none, [`NO_ROOM`]) and the receiving end of its queue
    /// (capacity `queue`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        user_id: UserId,
        user_name: String,
        room_id: RoomId,
        token: String,
        framing: Framing,
        queue: usize,
    ) -> (Self, Outgoing) {
        let (outbox, rx) = outbox(queue);
        let rooms = if room_id == NO_ROOM {
            Vec::new()
        } else {
            vec![room_id]
        };
        (
            Self {
                id,
                user_id,
                user_name,
                token,
                framing,
                version: 1,
                rooms: Mutex::new(rooms),
                held: Mutex::default(),
                replayed: Mutex::default(),
                outbox,
                kick: CancellationToken::new(),
                reason: OnceLock::new(),
            },
            rx,
        )
    }

    /// The same channel speaking protocol v2.
    pub fn v2(mut self) -> Self {
        self.version = 2;
        self
    }

    /// Queue a frame. A full queue kicks the channel as a slow consumer; a closed one is
    /// ignored (the connection is already going away).
    pub fn push(&self, frame: Bytes) {
        if self.outbox.push(frame).is_err() {
            self.close(close::SLOW_CONSUMER);
        }
    }

    /// Queue a live stored message of log `key` with seq `seq` — or hold it back while that
    /// log replays.
    pub fn push_live(&self, frame: Bytes, key: HoldKey, seq: u64) {
        let mut held = self.held.lock();
        match held.get_mut(&key) {
            Some(buf) if buf.len() >= self.outbox.capacity() => {
                drop(held);
                self.close(close::SLOW_CONSUMER);
            }
            Some(buf) => buf.push((seq, frame)),
            None => {
                drop(held);
                if self.replayed.lock().get(&key).is_some_and(|r| seq <= *r) {
                    return; // sent by the replay
                }
                self.push(frame);
            }
        }
    }

    /// Start holding back live messages of `key` (a replay of it is about to be read).
    pub fn hold(&self, key: HoldKey) {
        self.held.lock().entry(key).or_default();
    }

    /// The replay of `key` is written up to `replayed` (the highest seq it sent, or where it
    /// started): queue the held messages past it, in the order they came, and go live.
    pub fn release(&self, key: HoldKey, replayed: u64) {
        let mut held = self.held.lock();
        let mut floor = self.replayed.lock();
        let f = floor.entry(key).or_insert(0);
        *f = (*f).max(replayed);
        drop(floor);
        if let Some(buf) = held.remove(&key) {
            // Pushed under the lock, so no live message overtakes the held ones.
            for (seq, frame) in buf {
                if seq > replayed {
                    self.push(frame);
                }
            }
        }
    }

    /// The rooms it is in.
    pub fn rooms(&self) -> Vec<RoomId> {
        self.rooms.lock().clone()
    }

    /// Whether it is in `room`.
    pub fn in_room(&self, room: RoomId) -> bool {
        self.rooms.lock().contains(&room)
    }

    /// How many rooms it is in.
    pub fn room_count(&self) -> usize {
        self.rooms.lock().len()
    }

    /// The first room it joined (where a v1 TCP post without a room goes), or [`NO_ROOM`].
    pub fn first_room(&self) -> RoomId {
        self.rooms.lock().first().copied().unwrap_or(NO_ROOM)
    }

    /// Record that it joined `room` (only the hub calls this, with its index).
    pub(crate) fn add_room(&self, room: RoomId) -> bool {
        let mut rooms = self.rooms.lock();
        if rooms.contains(&room) {
            return false;
        }
        rooms.push(room);
        true
    }

    /// Record that it left `room` (only the hub calls this, with its index).
    pub(crate) fn remove_room(&self, room: RoomId) -> bool {
        let mut rooms = self.rooms.lock();
        let before = rooms.len();
        rooms.retain(|r| *r != room);
        rooms.len() != before
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

    /// One presence of this connection in `room` on server `server_id`.
    pub fn presence_in(&self, server_id: &str, room: RoomId) -> Presence {
        Presence {
            server_id: server_id.to_owned(),
            user_id: self.user_id,
            user_name: self.user_name.clone(),
            room_id: room,
        }
    }

    /// Every presence this connection holds, as logic records it: a v1 connection one (its
    /// room, or no room); a v2 connection one without a room (it is reachable for private
    /// messages whatever rooms it is in) and one per room.
    pub fn presences(&self, server_id: &str) -> Vec<Presence> {
        let rooms = self.rooms();
        let mut out = Vec::with_capacity(rooms.len() + 1);
        if self.version >= 2 || rooms.is_empty() {
            out.push(self.presence_in(server_id, NO_ROOM));
        }
        out.extend(rooms.into_iter().map(|r| self.presence_in(server_id, r)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(queue: usize) -> (Channel, Outgoing) {
        let (c, rx) = Channel::new(1, 1, "a".into(), 1, "t".into(), Framing::WebSocket, queue);
        (c.v2(), rx)
    }

    fn drain(rx: &Outgoing) -> Vec<Bytes> {
        std::iter::from_fn(|| rx.try_recv()).collect()
    }

    #[test]
    fn held_messages_follow_the_replay_without_gap_or_duplicate() {
        let (c, rx) = ch(16);
        c.hold(HoldKey::Room(1));
        // Live messages 5, 6, 7 arrive while the replay (up to 6) is being read.
        for seq in [5u64, 6, 7] {
            c.push_live(Bytes::from(format!("live {seq}")), HoldKey::Room(1), seq);
        }
        c.push_live(Bytes::from_static(b"inbox"), HoldKey::Inbox, 1);
        assert_eq!(
            drain(&rx),
            [Bytes::from_static(b"inbox")],
            "other logs flow"
        );
        for seq in [5, 6] {
            c.push(Bytes::from(format!("replay {seq}")));
        }
        c.release(HoldKey::Room(1), 6);
        // Stored before the replay read it, delivered after: already sent.
        c.push_live(Bytes::from_static(b"live 5 late"), HoldKey::Room(1), 5);
        c.push_live(Bytes::from_static(b"live 8"), HoldKey::Room(1), 8);
        assert_eq!(
            drain(&rx),
            ["replay 5", "replay 6", "live 7", "live 8"].map(|s| Bytes::from(s.to_owned()))
        );
    }

    #[test]
    fn too_much_held_closes_as_a_slow_consumer() {
        let (c, _rx) = ch(2);
        c.hold(HoldKey::Inbox);
        for seq in 1..=3 {
            c.push_live(Bytes::new(), HoldKey::Inbox, seq);
        }
        assert_eq!(c.close_reason(), Some(close::SLOW_CONSUMER));
    }

    #[test]
    fn presences_of_v1_and_v2_connections() {
        let (v1, _r) = Channel::new(1, 7, "u".into(), 3, "t".into(), Framing::Tcp, 1);
        assert_eq!(
            v1.presences("c")
                .iter()
                .map(|p| p.room_id)
                .collect::<Vec<_>>(),
            [3]
        );
        let (v2, _r2) = ch(1);
        assert!(v2.add_room(9));
        assert!(!v2.add_room(9), "already in");
        assert_eq!(
            v2.presences("c")
                .iter()
                .map(|p| p.room_id)
                .collect::<Vec<_>>(),
            [NO_ROOM, 1, 9]
        );
        assert!(v2.remove_room(1));
        assert_eq!(v2.first_room(), 9);
    }
}
