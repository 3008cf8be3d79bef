//! [`SqliteStore`]: users, message history and (for [`SqliteSessions`](crate::sessions::SqliteSessions))
//! the standalone sessions in one SQLite file (bundled SQLite, WAL journal).

mod checkpoint;
mod connection;
mod heads;
mod history;
mod hot;
mod retention;
mod schema;
mod staging;
mod writer;

use super::{Retention, Store};
use crate::model::{Log, NewMessage, Page, Range, Stored, User, UserId, UserRecord};
use crate::{Error, Result};
use async_trait::async_trait;
use checkpoint::Checkpointer;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use writer::Writer;

/// Connections kept for reads (WAL lets them read while the writer writes).
const READERS: usize = 2;

/// A SQLite-backed store. Writes go to one writer thread that commits whatever is waiting
/// in one transaction (group commit); reads use a small pool of connections from
/// `spawn_blocking`, so the async workers never block. WAL with `synchronous = NORMAL`: a
/// committed write survives a crash of the process (not a power loss of the host in the
/// last moments before a checkpoint — the usual WAL trade-off).
///
/// Several processes may open the same file (every write transaction is `IMMEDIATE`, and
/// the writer forgets the log heads it keeps in memory once another connection committed),
/// though one process writes fastest.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    _checkpointer: Checkpointer,
    /// `rusqlite::Connection` is `Send` but not `Sync`; each mutex is only taken on a
    /// blocking thread, never across an `.await`.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// A throwaway database's file, removed when the store goes.
    temp: Option<PathBuf>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(path) = &self.temp {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl SqliteStore {
    /// Open (creating if needed, and migrating) the database file at `path`, and its parent
    /// directory.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_at(path, None)
    }

    /// A private, throwaway database (for tests and embeddings that keep nothing): a file in
    /// the temporary directory, removed when the store is dropped.
    pub fn in_memory() -> Result<Self> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "gochat-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        Self::open_at(&path, Some(path.clone()))
    }

    fn open_at(path: &Path, temp: Option<PathBuf>) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let write = connection::open(path)?;
        schema::migrate(&write)?;
        // Rows a previous run left staged; the writer merges them as it merges new ones.
        let staged: i64 = write.query_row("SELECT count(*) FROM inbox_staged", [], |r| r.get(0))?;
        // The checkpointer thread checkpoints instead (see checkpoint.rs).
        write.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoints = connection::open(path)?;
        let readers = (0..READERS)
            .map(|_| Ok(Mutex::new(connection::open(path)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Writer::start(write, staged as usize)?,
                _checkpointer: Checkpointer::start(checkpoints)?,
                readers,
                next_reader: AtomicUsize::new(0),
                temp,
            }),
        })
    }

    /// Run `f` on a reader connection, off the async workers.
    async fn read_with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let guard = inner.readers[i].lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await?
    }

    /// Record `user`'s current login (replacing the previous one), until `expires_ms`.
    pub(crate) async fn save_login(&self, user: &User, token: &str, expires_ms: i64) -> Result<()> {
        let (user, token) = (user.clone(), token.to_owned());
        self.inner
            .writer
            .write(move |c, _| {
                c.prepare_cached(
                    "INSERT INTO sessions (user_id, user_name, token, expires_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (user_id) DO UPDATE SET user_name = excluded.user_name,
                       token = excluded.token, expires_ms = excluded.expires_ms",
                )?
                .execute(params![user.id, user.name, token, expires_ms])?;
                Ok(())
            })
            .await
    }

    /// Forget a login by its token.
    pub(crate) async fn delete_login(&self, token: &str) -> Result<()> {
        let token = token.to_owned();
        self.inner
            .writer
            .write(move |c, _| {
                c.prepare_cached("DELETE FROM sessions WHERE token = ?1")?
                    .execute(params![token])?;
                Ok(())
            })
            .await
    }

    /// Every login still valid at `now_ms`: (token, user, expires_ms).
    pub(crate) async fn live_logins(&self, now_ms: i64) -> Result<Vec<(String, User, i64)>> {
        self.read_with(move |c| {
            let rows = c
                .prepare("SELECT token, user_id, user_name, expires_ms FROM sessions WHERE expires_ms > ?1")?
                .query_map(params![now_ms], |r| {
                    Ok((
                        r.get(0)?,
                        User {
                            id: r.get(1)?,
                            name: r.get(2)?,
                        },
                        r.get(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, name: &str, password_hash: &str) -> Result<User> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.inner
            .writer
            .write(move |c, _| {
                let inserted = c
                    .prepare_cached(
                        "INSERT INTO users (name, password_hash) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                    )?
                    .execute(params![name, hash])?;
                if inserted == 0 {
                    return Err(Error::NameTaken);
                }
                Ok(User {
                    id: c.last_insert_rowid(),
                    name: name.clone(),
                })
            })
            .await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let name = name.to_owned();
        self.read_with(move |c| {
            Ok(
                c.prepare_cached("SELECT id, name, password_hash FROM users WHERE name = ?1")?
                    .query_row(params![name], |r| {
                        Ok(UserRecord {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            password_hash: r.get(2)?,
                        })
                    })
                    .optional()?,
            )
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        self.read_with(move |c| {
            Ok(
                c.prepare_cached("SELECT id, name FROM users WHERE id = ?1")?
                    .query_row(params![id], |r| {
                        Ok(User {
                            id: r.get(0)?,
                            name: r.get(1)?,
                        })
                    })
                    .optional()?,
            )
        })
        .await
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<bool> {
        let hash = password_hash.to_owned();
        self.inner
            .writer
            .write(move |c, _| {
                Ok(
                    c.prepare_cached("UPDATE users SET password_hash = ?1 WHERE id = ?2")?
                        .execute(params![hash, id])?
                        == 1,
                )
            })
            .await
    }

    async fn import_user(&self, id: UserId, name: &str, password_hash: &str) -> Result<()> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.inner
            .writer
            .write(move |c, _| {
                // AUTOINCREMENT keeps later ids above the largest ever inserted, this one too.
                let inserted = c
                    .prepare_cached(
                        "INSERT INTO users (id, name, password_hash) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![id, name, hash])?;
                if inserted == 0 {
                    return Err(Error::NameTaken);
                }
                Ok(())
            })
            .await
    }

    async fn append(&self, message: NewMessage, dedup_window: Duration) -> Result<Stored> {
        let window = dedup_window.as_millis() as i64;
        self.inner
            .writer
            .write(move |c, batch| history::append(c, batch, &message, window))
            .await
    }

    async fn read(&self, log: Log, range: Range, limit: usize) -> Result<Page> {
        self.read_with(move |c| history::read(c, log, range, limit))
            .await
    }

    async fn last_seq(&self, log: Log) -> Result<u64> {
        self.read_with(move |c| history::last_seq(c, log)).await
    }

    async fn prune(&self, retention: Retention) -> Result<u64> {
        let now = now_ms();
        self.inner
            .writer
            .write(move |c, batch| retention::prune(c, batch, &retention, now))
            .await
    }
}

#[cfg(test)]
mod tests;
