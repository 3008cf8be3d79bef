//! Durable users (message history will live here too).
//!
//! # Contract
//! - A write that returned `Ok` survives a restart of the process (for a file-backed store).
//! - Names are unique, compared byte for byte; `create_user` on a taken name fails with
//!   [`Error::NameTaken`](crate::Error::NameTaken) and changes nothing.
//! - Ids are positive, assigned by the store, never reused.
//! - Calls never block the async runtime: blocking work runs off its worker threads.

#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use crate::Result;
use crate::model::{User, UserId, UserRecord};
use async_trait::async_trait;

/// The durable user store (see the module docs for the contract).
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
}
