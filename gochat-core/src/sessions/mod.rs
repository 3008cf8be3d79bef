//! Session tokens and presence, shared by every logic instance.
//!
//! # Contract
//! - **Tokens.** `login` stores a token for `ttl` and revokes that user's previous login
//!   token (single login): afterwards `get` of the old token is `None`. `get` of an expired
//!   or logged-out token is `None`. `logout` removes a token and says whose it was.
//! - **Presence** is counted per connection: `join` and `leave` of the same [`Presence`]
//!   pair up, and a user stays in a room (and on a server) while any connection of theirs
//!   does. Rosters and counts are of distinct users. `leave` of something never joined is a
//!   no-op, so a repeated disconnect is harmless.
//! - **Presence is a lease.** Each connect server holds a lease on its presence: it calls
//!   `renew_server` every few seconds, and when that answers `false` (the lease lapsed, was
//!   never taken, or the backend lost its data) it calls `sync_server` with the complete list
//!   of its live connections, which replaces whatever was recorded for it. `expire_servers`
//!   (run periodically by logic) forgets the presence of every server whose lease lapsed,
//!   so a server that died disappears within its TTL, and a live one that was forgotten by
//!   mistake re-appears at its next renewal.
//! - `drop_server` forgets every presence of one server at once, lease included.
//! - Every multi-key update is atomic: a concurrent reader sees it whole or not at all.

mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemorySessions;
#[cfg(feature = "redis")]
pub use redis::{RedisSessions, RedisSessionsConfig};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteSessions;

use crate::Result;
use crate::model::{Presence, RoomId, User, UserId};
use async_trait::async_trait;
use std::time::Duration;

/// Tokens and presence (see the module docs for the contract).
#[async_trait]
pub trait Sessions: Send + Sync + 'static {
    /// Store `token` for `user` for `ttl`, revoking the user's previous login token, which is
    /// returned.
    async fn login(&self, token: &str, user: &User, ttl: Duration) -> Result<Option<String>>;

    /// The user a live token belongs to.
    async fn get(&self, token: &str) -> Result<Option<User>>;

    /// Remove a token; returns whose it was, or `None` if it was not live.
    async fn logout(&self, token: &str) -> Result<Option<User>>;

    /// Record one more connection of a user, on a server, in a room. `true` when it is the
    /// user's first connection in that room (a join others may be told about).
    async fn join(&self, presence: &Presence) -> Result<bool>;

    /// Record that one such connection closed (or left the room). `true` when it was the
    /// user's last connection in that room.
    async fn leave(&self, presence: &Presence) -> Result<bool>;

    /// Distinct users in a room, by id.
    async fn roster(&self, room: RoomId) -> Result<Vec<User>>;

    /// How many distinct users a room holds: what [`roster`](Self::roster) would return,
    /// without building it (backends answer from a counter; a room of 100 000 is 3 MB of
    /// roster).
    async fn room_size(&self, room: RoomId) -> Result<usize> {
        Ok(self.roster(room).await?.len())
    }

    /// Connect servers holding at least one connection in a room, sorted.
    async fn room_servers(&self, room: RoomId) -> Result<Vec<String>>;

    /// Connect servers holding at least one connection of a user, sorted.
    async fn user_servers(&self, user: UserId) -> Result<Vec<String>>;

    /// [`user_servers`](Self::user_servers) of each of `users`, in their order: what a task
    /// worker asks for a batch of private messages, in one round trip where the backend
    /// can make it one.
    async fn users_servers(&self, users: &[UserId]) -> Result<Vec<Vec<String>>> {
        let mut out = Vec::with_capacity(users.len());
        for &user in users {
            out.push(self.user_servers(user).await?);
        }
        Ok(out)
    }

    /// Forget every presence recorded for a connect server, and its lease.
    async fn drop_server(&self, server_id: &str) -> Result<()>;

    /// Replace everything recorded for `server_id` by `presences` (one entry per open
    /// connection and room) and take its lease for `ttl`.
    async fn sync_server(
        &self,
        server_id: &str,
        presences: &[Presence],
        ttl: Duration,
    ) -> Result<()>;

    /// Extend a server's lease by `ttl`. `false` when there was no lease to extend (it lapsed
    /// or was never taken): the server must `sync_server`.
    async fn renew_server(&self, server_id: &str, ttl: Duration) -> Result<bool>;

    /// Whether a server's lease is current.
    async fn server_alive(&self, server_id: &str) -> Result<bool>;

    /// Forget the presence of every server whose lease lapsed; returns their ids, sorted.
    async fn expire_servers(&self) -> Result<Vec<String>>;
}
