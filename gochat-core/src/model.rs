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
    /// Every connection of one user (private message, op 2).
    User(UserId),
    /// Every connection in one room (op 3, 4, 5).
    Room(RoomId),
    /// The connections of one user that authenticated with one token (to close them).
    Token {
        /// Whose connections.
        user_id: UserId,
        /// The token they authenticated with.
        token: String,
    },
}

/// What a [`Delivery`] carries. Connect treats each kind its own way: messages go out as
/// they come, rosters and counts are coalesced per room, closes close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PushKind {
    /// A chat message (op 2 or op 3).
    Message,
    /// A room's roster (op 5). Connect sends at most one per room per coalescing interval.
    Roster,
    /// A room's online count (op 4). Coalesced like rosters.
    Count,
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

/// One unit of work handed from logic to task through the [`Queue`](crate::Queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Snowflake id: unique, and the same on every redelivery, so that a connect server can
    /// drop a copy it has already handled.
    pub id: i64,
    /// Who receives it.
    pub target: Target,
    /// What it is.
    pub kind: PushKind,
    /// The JSON push object exactly as clients receive it (encoded once, by logic).
    pub payload: Bytes,
}
