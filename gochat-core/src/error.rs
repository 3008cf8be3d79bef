//! The core crate's error type.

/// What can go wrong inside a backend or the plumbing between layers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SQLite store failed.
    #[cfg(feature = "sqlite")]
    #[error("sqlite store")]
    Sqlite(#[from] rusqlite::Error),
    /// A batch of SQLite writes, this one among them, failed to commit.
    #[cfg(feature = "sqlite")]
    #[error("sqlite commit")]
    CommitFailed(#[source] std::sync::Arc<rusqlite::Error>),
    /// A socket or file operation failed.
    #[error("i/o")]
    Io(#[from] std::io::Error),
    /// The configuration file could not be parsed.
    #[error("configuration")]
    Config(#[from] toml::de::Error),
    /// The configuration parsed but makes no sense; says which field and why.
    #[error("configuration: {0}")]
    InvalidConfig(String),
    /// A user name is already registered.
    #[error("user name already taken")]
    NameTaken,
    /// No instance of that kind with that id is registered.
    #[error("no {kind} instance is registered{}", id.as_deref().map(|i| format!(" as {i}")).unwrap_or_default())]
    NoInstance {
        /// The instance kind looked up.
        kind: crate::registry::Kind,
        /// The id looked up, if one was named.
        id: Option<String>,
    },
    /// The address given to a transport is not one it can serve or dial.
    #[error("bad address {0:?}")]
    BadAddress(String),
    /// The backend was shut down.
    #[error("backend closed")]
    Closed,
    /// Redis failed or answered something unexpected.
    #[cfg(feature = "redis")]
    #[error("redis")]
    Redis(#[from] redis::RedisError),
    /// Redis could not be reached at an address.
    #[cfg(feature = "redis")]
    #[error("redis at {url}")]
    RedisAt {
        /// The URL tried.
        url: String,
        /// Why.
        #[source]
        source: redis::RedisError,
    },
    /// etcd failed.
    #[cfg(feature = "etcd")]
    #[error("etcd")]
    Etcd(#[from] etcd_client::Error),
    /// etcd could not be reached at its endpoints.
    #[cfg(feature = "etcd")]
    #[error("etcd at {}", endpoints.join(","))]
    EtcdAt {
        /// The endpoints tried.
        endpoints: Vec<String>,
        /// Why.
        #[source]
        source: etcd_client::Error,
    },
    /// A stored entry is not what it should be (corrupt, or written by an incompatible
    /// version); says what.
    #[error("undecodable entry: {0}")]
    Decode(String),
    /// A stored entry could not be decoded by its codec.
    #[error("undecodable {what}")]
    Malformed {
        /// What was being decoded.
        what: String,
        /// The codec's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The queue stayed full for longer than a publish may wait.
    #[error("queue full")]
    QueueFull,
    /// PostgreSQL failed (the statement, or the connection).
    #[cfg(feature = "postgres")]
    #[error("postgres: {}", with_causes(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the pool (the server is down, or every
    /// connection is busy); says where and why.
    #[cfg(feature = "postgres")]
    #[error("postgres at {at}: {why}")]
    PostgresPool {
        /// The server tried (host:port/database).
        at: String,
        /// Why.
        why: String,
    },
    /// A backend did not answer in time.
    #[error("{0} did not answer in time")]
    Timeout(&'static str),
    /// The backend does not do this.
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// A blocking task panicked or was cancelled.
    #[error("background task")]
    Join(#[from] tokio::task::JoinError),
}

/// `Result` with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and each of its causes, joined with ": " (tokio-postgres keeps the cause —
/// "connection refused", the server's message — out of its own `Display`).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
