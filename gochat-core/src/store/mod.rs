//! Durable users and message history.
//!
//! # Contract
//! - A write that returned `Ok` is durable: it survives a crash (`kill -9`) and a restart of
//!   the process (for a file-backed store: of the host too, up to the backend's sync policy).
//! - **Users.** Names are unique, compared byte for byte; `create_user` on a taken name fails
//!   with [`Error::NameTaken`](crate::Error::NameTaken) and changes nothing. Ids are
//!   positive, assigned by the store, never reused.
//! - **Seqs.** Every [`Log`] (a room, a user's inbox) numbers its messages 1, 2, 3…: `append`
//!   gives each message the next seq of its log atomically with storing it, so no two
//!   messages of a log share a seq and there is no gap among the stored ones, however many
//!   writers append to one log at once. Seqs are never reused, even after retention removed
//!   the oldest messages (the oldest seq left may then be above 1).
//! - **Private messages** are stored in both inboxes, the sender's and the recipient's, with a
//!   seq in each ([`Stored::seq`], [`Stored::peer_seq`]); a message to oneself is stored once.
//! - **Idempotency.** An append whose `client_id` the same sender used within `dedup_window`
//!   stores nothing and returns the first append's result with `duplicate` set.
//! - **Reading.** `read` pages a log in ascending seq order (see [`Range`] and [`Page`]).
//! - **Retention.** `prune` removes, a bounded number at a time, messages past the limits of
//!   [`Retention`]; it may run while others write.
//! - Calls never block the async runtime: blocking work runs off its worker threads.

#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

#[cfg(feature = "sqlite")]
mod gochat_import;

#[cfg(feature = "sqlite")]
pub use gochat_import::{GochatUser, read_gochat_users};

#[cfg(feature = "postgres")]
mod postgres;

#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION};

use crate::Result;
use crate::model::{Log, NewMessage, Page, Range, Stored, User, UserId, UserRecord};
use async_trait::async_trait;
use std::time::Duration;

/// What `prune` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Messages kept per log, newest first; 0 keeps all.
    pub max_per_log: u64,
    /// Messages older than this go; `None` keeps them forever.
    pub max_age: Option<Duration>,
    /// Client ids remembered for deduplication this long.
    pub dedup_window: Duration,
    /// Most rows removed by one call (so writes are never held up for long).
    pub batch: usize,
}

/// The durable store (see the module docs for the contract).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Insert a user; fails with `NameTaken` if the name exists.
    async fn create_user(&self, name: &str, password_hash: &str) -> Result<User>;

    /// Find a user (with its password hash) by name.
    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>>;

    /// Find a user by id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>>;

    /// Replace a user's password hash (used to upgrade legacy hashes). Returns whether the
    /// user exists.
    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<bool>;

    /// Insert a user with a given id (importing another system's users); fails with
    /// `NameTaken` if the name or the id exists. Later `create_user` ids stay above it.
    async fn import_user(&self, id: UserId, name: &str, password_hash: &str) -> Result<()> {
        let _ = (id, name, password_hash);
        Err(crate::Error::Unsupported("importing users with their ids"))
    }

    /// Store a message in its log(s), assigning its seq(s).
    async fn append(&self, message: NewMessage, dedup_window: Duration) -> Result<Stored>;

    /// Up to `limit` messages of a log.
    async fn read(&self, log: Log, range: Range, limit: usize) -> Result<Page>;

    /// The newest seq of a log (0 when it never had a message).
    async fn last_seq(&self, log: Log) -> Result<u64>;

    /// Remove up to `retention.batch` rows past the retention limits; returns how many were
    /// removed (call again until 0).
    async fn prune(&self, retention: Retention) -> Result<u64>;
}
