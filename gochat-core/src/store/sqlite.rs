//! [`SqliteStore`]: users in a SQLite file (bundled SQLite, WAL journal).

use super::Store;
use crate::model::{User, UserId, UserRecord};
use crate::{Error, Result};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A SQLite-backed store. One connection behind a mutex, used only from
/// `spawn_blocking`: SQLite serialises writers anyway, and user lookups are rare next to
/// message traffic (they happen at login, register and connect).
#[derive(Clone)]
pub struct SqliteStore {
    /// `rusqlite::Connection` is `Send` but not `Sync`; the mutex is only ever taken on a
    /// blocking thread, never across an `.await`.
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL DEFAULT (unixepoch())
);
";

impl SqliteStore {
    /// Open (creating if needed) the database file at `path`, and its parent directory.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Self::init(Connection::open(path)?)
    }

    /// A private in-memory database (for tests and throwaway embeddings).
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        // WAL lets readers proceed during a write; NORMAL sync is durable across a process
        // crash (not across power loss of the last transaction), the usual WAL trade-off.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, name: &str, password_hash: &str) -> Result<User> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.with(move |c| {
            let inserted = c.execute(
                "INSERT INTO users (name, password_hash) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                params![name, hash],
            )?;
            if inserted == 0 {
                return Err(Error::NameTaken);
            }
            Ok(User {
                id: c.last_insert_rowid(),
                name,
            })
        })
        .await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let name = name.to_owned();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT id, name, password_hash FROM users WHERE name = ?1",
                params![name],
                |r| {
                    Ok(UserRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        password_hash: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT id, name FROM users WHERE id = ?1",
                params![id],
                |r| {
                    Ok(User {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<bool> {
        let hash = password_hash.to_owned();
        self.with(move |c| {
            Ok(c.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![hash, id],
            )? == 1)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance_in_memory() {
        crate::conformance::store::run_all(|| SqliteStore::in_memory().unwrap()).await;
    }

    #[tokio::test]
    async fn conformance_on_a_file_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/gochat.db");
        crate::conformance::store::run_all(|| {
            let p = dir.path().join(format!("{}.db", rand_name()));
            SqliteStore::open(&p).unwrap()
        })
        .await;
        let id = {
            let s = SqliteStore::open(&path).unwrap();
            s.create_user("persist", "h").await.unwrap().id
        };
        let s = SqliteStore::open(&path).unwrap();
        let u = s.user_by_name("persist").await.unwrap().unwrap();
        assert_eq!((u.id, u.password_hash.as_str()), (id, "h"));
        assert!(matches!(
            s.create_user("persist", "x").await,
            Err(Error::NameTaken)
        ));
    }

    fn rand_name() -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        format!("s{}", N.fetch_add(1, Ordering::Relaxed))
    }
}
