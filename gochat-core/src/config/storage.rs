//! What is kept and where: `[history]`, `[store]`, `[queue]`, `[cluster]`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[history]`: what is stored, and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Store messages (history, replay, idempotent posts). `false` is gochat's behaviour:
    /// nothing stored, v2 pushes carry no `seq`, `since` and op 9 are refused. Default true.
    pub enabled: bool,
    /// Messages kept per room and per inbox, the newest; 0 keeps all. Default 10 000.
    pub max_per_room: u64,
    /// Days a message is kept; 0 keeps them forever. Default 30.
    pub max_age_days: u64,
    /// Largest page of op 9 and `/push/history`. Default 200.
    pub page_limit: usize,
    /// Page size when a request names none. Default 50.
    pub default_page: usize,
    /// Seconds a client `id` of a post is remembered: a repeat within it is not stored
    /// again. Default 600.
    pub dedup_window_secs: u64,
    /// Seconds between two retention passes (each in small steps that never hold up
    /// writes). Default 300.
    pub prune_interval_secs: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_per_room: 10_000,
            max_age_days: 30,
            page_limit: 200,
            default_page: 50,
            dedup_window_secs: 600,
            prune_interval_secs: 300,
        }
    }
}

impl HistoryConfig {
    /// [`Self::dedup_window_secs`] as a duration.
    pub fn dedup_window(&self) -> Duration {
        Duration::from_secs(self.dedup_window_secs)
    }
    /// [`Self::prune_interval_secs`] as a duration.
    pub fn prune_interval(&self) -> Duration {
        Duration::from_secs(self.prune_interval_secs)
    }
    /// The retention limits, for `Store::prune`.
    pub fn retention(&self) -> crate::store::Retention {
        crate::store::Retention {
            max_per_log: self.max_per_room,
            max_age: (self.max_age_days > 0)
                .then(|| Duration::from_secs(self.max_age_days * 86_400)),
            dedup_window: self.dedup_window(),
            batch: 1000,
        }
    }
}

/// Which [`Store`](crate::store::Store) a process opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// `SqliteStore`: one file in `store.data_dir` (standalone, or one host).
    Sqlite,
    /// `PostgresStore` at `store.postgres_url` (a cluster across hosts).
    Postgres,
}

/// Whether `name` is a PostgreSQL identifier that needs no quoting (and so cannot inject).
pub fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `"sqlite"` (default) or `"postgres"`.
    pub backend: StoreBackend,
    /// Directory holding `gochat.db` (SQLite). Default `./data`.
    pub data_dir: PathBuf,
    /// PostgreSQL connection URL (`postgres://user:password@host:port/database`, or
    /// key=value form). Default `postgres://postgres@127.0.0.1:5432/postgres`.
    pub postgres_url: String,
    /// The PostgreSQL schema (namespace) gochat's tables live in, created if missing.
    /// Default `gochat`.
    pub postgres_schema: String,
    /// Connections in the pool of each process. Default 16.
    pub pool_size: usize,
    /// Longest wait for a connection or a statement before a call fails with "store
    /// unavailable". Default 5.
    pub timeout_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sqlite,
            data_dir: PathBuf::from("data"),
            postgres_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            postgres_schema: "gochat".into(),
            pool_size: 16,
            timeout_secs: 5,
        }
    }
}

impl StoreConfig {
    /// The SQLite file inside [`Self::data_dir`].
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("gochat.db")
    }
}

/// `[queue]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Deliveries held (ready plus unacknowledged) before `publish` waits. Default 65 536.
    pub capacity: usize,
    /// Milliseconds an unacknowledged delivery waits before another consumer may claim it.
    /// Default 30 000.
    pub claim_idle_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 65_536,
            claim_idle_ms: 30_000,
        }
    }
}

impl QueueConfig {
    /// [`Self::claim_idle_ms`] as a duration.
    pub fn claim_idle(&self) -> Duration {
        Duration::from_millis(self.claim_idle_ms)
    }
}

/// `[cluster]`: shared infrastructure of the distributed mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Redis holding the queue and the sessions. Default `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// Prefix of every Redis key (queue stream included). Default `gochat:`.
    pub redis_prefix: String,
    /// etcd endpoints holding the registry. Default `["http://127.0.0.1:2379"]`.
    pub etcd_endpoints: Vec<String>,
    /// Prefix of every etcd key. Default `gochat/`.
    pub etcd_prefix: String,
    /// Registry lease TTL in seconds: a dead instance disappears within this. Default 10.
    pub lease_ttl_secs: u64,
    /// Host others dial to reach this process's RPC services when they listen on an
    /// unspecified address (`0.0.0.0`). Default `127.0.0.1`.
    pub advertise_host: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "gochat:".into(),
            etcd_endpoints: vec!["http://127.0.0.1:2379".into()],
            etcd_prefix: "gochat/".into(),
            lease_ttl_secs: 10,
            advertise_host: "127.0.0.1".into(),
        }
    }
}

impl ClusterConfig {
    /// [`Self::lease_ttl_secs`] as a duration.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs)
    }
}
