//! The nouns every layer shares.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A user's numeric id (SQLite INTEGER, so `i64`).
pub type UserId = i64;
/// A room's numeric id. `-1` ([`NO_ROOM`]) means "in no room".
pub type RoomId = i64;
/// The room gochat's web page (and ours) opens in. An auth frame without a `roomId` joins
/// room 0, as in gochat.
pub const DEFAULT_ROOM: RoomId = 1;
/// The room id a client sends to receive private messages only.
pub const NO_ROOM: RoomId = -1;

/// A registered user as the outside world sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable numeric id.
    pub id: UserId,
    /// Unique login name.
    pub name: String,
}

/// A user row as stored, with its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable numeric id.
    pub id: UserId,
    /// Unique login name.
    pub name: String,
    /// PHC-format argon2id hash, or a legacy 40-hex-char SHA-1 from an imported gochat database.
    pub password_hash: String,
}

impl UserRecord {
    /// The public part of the row.
    pub fn user(&self) -> User {
        User {
            id: self.id,
            name: self.name.clone(),
        }
    }
}

/// One open connection's place in a room, as recorded in [`Sessions`](crate::Sessions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The connect server holding the connection.
    pub server_id: String,
    /// Whose connection it is.
    pub user_id: UserId,
    /// The user's name, so a roster needs no Store lookup.
    pub user_name: String,
    /// The room joined, or [`NO_ROOM`].
    pub room_id: RoomId,
}

/// Who a [`Delivery`] is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// Every connection of one user.
    User(UserId),
    /// Every connection in one room (op 3, 4, 5, 11, 12).
    Room(RoomId),
    /// A private message (op 2): every connection of the recipient, and the sender's other
    /// protocol-v2 connections (their inbox holds it too).
    Conversation {
        /// The sender.
        from: UserId,
        /// The recipient.
        to: UserId,
    },
    /// The connections of one user that authenticated with one token (to close them).
    Token {
        /// Whose connections.
        user_id: UserId,
        /// The token they authenticated with.
        token: String,
    },
}

/// What a [`Delivery`] carries, which decides who among the target's connections gets it and
/// how: messages go out as they come, rosters and counts are coalesced per room, events
/// reach v2 connections only, closes close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PushKind {
    /// A chat message (op 2 or op 3).
    Message,
    /// A room's roster (op 5). One published because a member left goes to v1 connections
    /// only (v2 connections get an op-12 event instead); one asked for, to everyone.
    Roster {
        /// Published because a member left.
        on_leave: bool,
    },
    /// A room's online count (op 4).
    Count,
    /// A join or leave event (op 11, 12): v2 connections only.
    Event,
    /// Close the target's connections (its payload is empty).
    Close(SessionEnd),
}

/// Why a session's connections are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionEnd {
    /// The user logged out with this token.
    LoggedOut,
    /// A later login of the same user revoked this token.
    Revoked,
}

/// A stored message's identity, which protocol-v2 pushes carry: its id and its seq in each
/// log (absent when history is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The message id (`msgId`).
    pub msg_id: i64,
    /// Its seq in the room, or (private) in the sender's inbox.
    pub seq: Option<u64>,
    /// Private: its seq in the recipient's inbox.
    pub peer_seq: Option<u64>,
}

/// The connection a push came from (a v2 post, a join), so it is spared its own echo of a
/// private message and its own join event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The connect server holding it.
    pub server_id: String,
    /// Its channel id on that server.
    pub channel_id: u64,
}

/// One unit of work handed from logic to task through the [`Queue`](crate::Queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Snowflake id (a message's own id): unique, and the same on every redelivery, so that
    /// a connect server can drop a copy it has already handled.
    pub id: i64,
    /// Who receives it.
    pub target: Target,
    /// What it is.
    pub kind: PushKind,
    /// The JSON push object exactly as v1 clients receive it (encoded once, by logic).
    pub payload: Bytes,
    /// For a stored message: what v2 pushes append to the payload.
    pub stamp: Option<Stamp>,
    /// The connection it came from, if any.
    pub origin: Option<Origin>,
}

impl Delivery {
    /// A delivery with no stamp and no origin.
    pub fn new(id: i64, target: Target, kind: PushKind, payload: impl Into<Bytes>) -> Self {
        Self {
            id,
            target,
            kind,
            payload: payload.into(),
            stamp: None,
            origin: None,
        }
    }
}

/// A log of stored messages: a room's, or a user's inbox (every private message they sent
/// or received). Each has its own `seq`: 1, 2, 3… one per stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Log {
    /// A room's messages.
    Room(RoomId),
    /// A user's private messages, both directions.
    Inbox(UserId),
}

/// A message to store: a room message, or a private one (`to` set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Its snowflake id (`msgId` on the wire).
    pub id: i64,
    /// The room it was posted to (a private message echoes one too).
    pub room_id: RoomId,
    /// Who sent it.
    pub from: User,
    /// The recipient of a private message; `None` for a room message.
    pub to: Option<User>,
    /// The text.
    pub msg: String,
    /// When it was posted, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The sender's idempotency key: a repeat within the dedup window is not stored again.
    pub client_id: Option<String>,
}

/// What storing a message gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// Its id (the first post's, for a repeated client id).
    pub msg_id: i64,
    /// Its seq in the room, or — private — in the sender's inbox.
    pub seq: u64,
    /// Private: its seq in the recipient's inbox (equal to `seq` for a message to oneself);
    /// 0 for a room message.
    pub peer_seq: u64,
    /// When it was first posted (ms since the epoch).
    pub created_ms: i64,
    /// Whether this repeats an earlier post's client id (nothing new was stored).
    pub duplicate: bool,
}

/// A stored message as read back from one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Its id.
    pub msg_id: i64,
    /// Its seq in the log it was read from.
    pub seq: u64,
    /// The room it was posted to.
    pub room_id: RoomId,
    /// Sender.
    pub from: User,
    /// Recipient of a private message.
    pub to: Option<User>,
    /// The text.
    pub msg: String,
    /// When it was posted (ms since the epoch).
    pub created_ms: i64,
}

/// Which part of a log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Range {
    /// The newest messages.
    Latest,
    /// The oldest messages with a seq above this.
    Since(u64),
    /// The newest messages with a seq below this.
    Before(u64),
}

/// Messages of one log, in ascending seq order, and whether more remain beyond them in the
/// direction asked (after the page for `Since`, before it for `Before` and `Latest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// The messages, oldest first.
    pub messages: Vec<StoredMessage>,
    /// Whether the log holds more in the direction asked.
    pub more: bool,
}
