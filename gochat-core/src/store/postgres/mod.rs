//! [`PostgresStore`]: users and message history in PostgreSQL, shared by every logic
//! instance of a cluster (tokio-postgres, pooled by deadpool-postgres).

mod appender;
mod history;
mod schema;

use super::{Retention, Store};
use crate::config::{StoreConfig, valid_schema_name};
use crate::model::{Log, NewMessage, Page, Range, Stored, User, UserId, UserRecord};
use crate::{Error, Result};
use appender::Appender;
use async_trait::async_trait;
use deadpool_postgres::ClientWrapper as Client;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;

pub use schema::VERSION as SCHEMA_VERSION;

/// A PostgreSQL-backed store. Every process of a cluster may open the same database: seqs
/// are assigned under the row lock of each log's head, so they stay dense and unique however
/// many instances append to one room. Appends are batched (see `appender.rs`); every call
/// fails with "did not answer in time" after `store.timeout_secs` rather than hang when the
/// server is down, and the pool reconnects by itself when it is back.
///
/// The tables live in their own schema (`store.postgres_schema`), created and migrated at
/// start (versioned in `schema_version`; concurrent starts serialise on an advisory lock).
#[derive(Clone)]
pub struct PostgresStore {
    db: Arc<Db>,
    appender: Arc<Appender>,
}

/// The pool and what every call needs with it.
pub(super) struct Db {
    pool: Pool,
    /// host:port/database, for errors.
    at: String,
    timeout: Duration,
}

/// A pooled connection that goes back to the pool only when it is known to be in a clean
/// state: a call cancelled by its timeout, or failed on the connection itself, drops it.
pub(super) struct Conn {
    object: Option<Object>,
    keep: bool,
}

impl Conn {
    pub(super) fn client(&self) -> &Client {
        self.object.as_ref().expect("present until drop")
    }

    /// Return it to the pool when dropped.
    pub(super) fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.keep
            && let Some(o) = self.object.take()
        {
            drop(Object::take(o));
        }
    }
}

impl Db {
    pub(super) async fn conn(&self) -> Result<Conn> {
        let object = self.pool.get().await.map_err(|e| Error::PostgresPool {
            at: self.at.clone(),
            why: crate::error::with_causes(&e),
        })?;
        Ok(Conn {
            object: Some(object),
            keep: false,
        })
    }

    /// `work`, failing with a timeout after `store.timeout_secs`.
    pub(super) async fn timed<T>(
        &self,
        what: &'static str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| {
                tracing::warn!(
                    "PostgreSQL at {}: {what} took over {:?}",
                    self.at,
                    self.timeout
                );
                Error::Timeout("PostgreSQL")
            })?
    }

    /// Run `f` on a pooled connection, within the timeout.
    async fn run<T>(&self, f: impl AsyncFnOnce(&Client) -> Result<T>) -> Result<T> {
        self.timed("call", async {
            let mut conn = self.conn().await?;
            let r = f(conn.client()).await;
            if !matches!(&r, Err(Error::Postgres(e)) if e.as_db_error().is_none()) {
                conn.keep();
            }
            r
        })
        .await
    }
}

/// A log as stored: (kind, key).
pub(super) fn log_key(log: Log) -> (i16, i64) {
    match log {
        Log::Room(r) => (0, r),
        Log::Inbox(u) => (1, u),
    }
}

impl PostgresStore {
    /// Connect with the `[store]` settings (`postgres_url`, `postgres_schema`, `pool_size`,
    /// `timeout_secs`), creating and migrating the schema.
    pub async fn connect(cfg: &StoreConfig) -> Result<Self> {
        Self::open(
            &cfg.postgres_url,
            &cfg.postgres_schema,
            cfg.pool_size,
            Duration::from_secs(cfg.timeout_secs),
        )
        .await
    }

    /// Connect to `url`, keeping the tables in `schema` (created if missing), with at most
    /// `pool_size` connections; every call gives up after `timeout`.
    pub async fn open(
        url: &str,
        schema: &str,
        pool_size: usize,
        timeout: Duration,
    ) -> Result<Self> {
        if !valid_schema_name(schema) {
            return Err(Error::InvalidConfig(format!(
                "store.postgres_schema {schema:?} must be a lowercase identifier"
            )));
        }
        let mut pg: tokio_postgres::Config = url.parse().map_err(|e| {
            Error::InvalidConfig(format!("store.postgres_url {url:?} does not parse: {e}"))
        })?;
        pg.options(format!("-c search_path={schema}"))
            .application_name("gochat")
            .connect_timeout(timeout);
        let at = describe(&pg);
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| Error::PostgresPool {
                at: at.clone(),
                why: e.to_string(),
            })?;
        let db = Arc::new(Db { pool, at, timeout });
        {
            let mut conn = db.conn().await?;
            let object = conn.object.as_mut().expect("present");
            db.timed("migrate", schema::migrate(object, schema)).await?;
            conn.keep();
        }
        Ok(Self {
            appender: Arc::new(Appender::start(db.clone())),
            db,
        })
    }

    /// Where it is connected (host:port/database), for logs.
    pub fn address(&self) -> &str {
        &self.db.at
    }
}

fn describe(pg: &tokio_postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", pg.get_dbname().unwrap_or("postgres"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_user(&self, name: &str, password_hash: &str) -> Result<User> {
        self.db
            .run(async |c| {
                let s = c
                    .prepare_cached(
                        "INSERT INTO users (name, password_hash) VALUES ($1, $2)
                         ON CONFLICT (name) DO NOTHING RETURNING id",
                    )
                    .await?;
                match c.query_opt(&s, &[&name, &password_hash]).await? {
                    Some(row) => Ok(User {
                        id: row.get(0),
                        name: name.to_owned(),
                    }),
                    None => Err(Error::NameTaken),
                }
            })
            .await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        self.db
            .run(async |c| {
                let s = c
                    .prepare_cached("SELECT id, name, password_hash FROM users WHERE name = $1")
                    .await?;
                Ok(c.query_opt(&s, &[&name]).await?.map(|r| UserRecord {
                    id: r.get(0),
                    name: r.get(1),
                    password_hash: r.get(2),
                }))
            })
            .await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        self.db
            .run(async |c| {
                let s = c
                    .prepare_cached("SELECT id, name FROM users WHERE id = $1")
                    .await?;
                Ok(c.query_opt(&s, &[&id]).await?.map(|r| User {
                    id: r.get(0),
                    name: r.get(1),
                }))
            })
            .await
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<bool> {
        self.db
            .run(async |c| {
                let s = c
                    .prepare_cached("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .await?;
                Ok(c.execute(&s, &[&password_hash, &id]).await? == 1)
            })
            .await
    }

    async fn import_user(&self, id: UserId, name: &str, password_hash: &str) -> Result<()> {
        self.db
            .run(async |c| {
                let inserted = c
                    .execute(
                        "INSERT INTO users (id, name, password_hash) VALUES ($1, $2, $3)",
                        &[&id, &name, &password_hash],
                    )
                    .await;
                match inserted {
                    Err(e) if is_unique_violation(&e) => return Err(Error::NameTaken),
                    r => r?,
                };
                // Later registrations must not collide with imported ids.
                c.execute(
                    "SELECT setval(pg_get_serial_sequence('users', 'id'),
                                   (SELECT max(id) FROM users))",
                    &[],
                )
                .await?;
                Ok(())
            })
            .await
    }

    async fn append(&self, message: NewMessage, dedup_window: Duration) -> Result<Stored> {
        self.appender.append(message, dedup_window).await
    }

    async fn read(&self, log: Log, range: Range, limit: usize) -> Result<Page> {
        self.db
            .run(async |c| history::read(c, log, range, limit).await)
            .await
    }

    async fn last_seq(&self, log: Log) -> Result<u64> {
        self.db.run(async |c| history::last_seq(c, log).await).await
    }

    async fn prune(&self, retention: Retention) -> Result<u64> {
        let now = now_ms();
        self.db
            .run(async |c| history::prune(c, &retention, now).await)
            .await
    }
}

#[cfg(test)]
mod tests;
