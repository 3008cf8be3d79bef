//! Configuration: one TOML file with a section per layer. Every field has a default, so an
//! empty file (or none) is a working standalone configuration. Binaries override fields
//! from the command line after loading the file.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[api]`: the REST API and the web page.
    pub api: ApiConfig,
    /// `[connect]`: the long-connection servers.
    pub connect: ConnectConfig,
    /// `[logic]`: auth, sessions, routing.
    pub logic: LogicConfig,
    /// `[task]`: queue consumers.
    pub task: TaskConfig,
    /// `[store]`: durable users and history.
    pub store: StoreConfig,
    /// `[history]`: stored messages, replay, retention.
    pub history: HistoryConfig,
    /// `[queue]`: the logic → task hand-off.
    pub queue: QueueConfig,
    /// `[cluster]`: where Redis and etcd are, for layers running as separate processes.
    pub cluster: ClusterConfig,
    /// `[limits]`: abuse limits.
    pub limits: LimitsConfig,
    /// `[tls]`: HTTPS and WSS on the api and WebSocket listeners.
    pub tls: TlsConfig,
}

impl Config {
    /// Parse a configuration from TOML text, and check it.
    pub fn from_toml(text: &str) -> crate::Result<Self> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Check what the types cannot: durations positive and finite, the idle timeout past the
    /// ping interval.
    pub fn validate(&self) -> crate::Result<()> {
        let durations = [
            ("api.header_timeout_secs", self.api.header_timeout_secs),
            ("api.body_timeout_secs", self.api.body_timeout_secs),
            (
                "connect.ping_interval_secs",
                self.connect.ping_interval_secs,
            ),
            ("connect.idle_timeout_secs", self.connect.idle_timeout_secs),
            ("connect.auth_timeout_secs", self.connect.auth_timeout_secs),
            (
                "connect.handshake_timeout_secs",
                self.connect.handshake_timeout_secs,
            ),
        ];
        for (name, v) in durations {
            if v == 0 {
                return Err(invalid(format!("{name} must be at least 1 second")));
            }
        }
        let c = &self.connect;
        if c.idle_timeout_secs <= c.ping_interval_secs {
            return Err(invalid(format!(
                "connect.idle_timeout_secs ({}) must exceed connect.ping_interval_secs ({}), or clients that answer pings are closed as idle",
                c.idle_timeout_secs, c.ping_interval_secs
            )));
        }
        if let Err(e) = crate::limits::Networks::parse(&self.limits.trusted_networks)
            .and_then(|_| crate::limits::Networks::parse(&self.limits.trusted_proxies))
        {
            return Err(invalid(format!("limits: {e}")));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err(invalid(
                "tls.cert_file and tls.key_file go together: set both or neither".into(),
            ));
        }
        let st = &self.store;
        if st.pool_size == 0 || st.timeout_secs == 0 {
            return Err(invalid(
                "store.pool_size and store.timeout_secs must be at least 1".into(),
            ));
        }
        if !valid_schema_name(&st.postgres_schema) {
            return Err(invalid(format!(
                "store.postgres_schema {:?} must be 1 to 63 of a-z, 0-9 and _, not starting with a digit",
                st.postgres_schema
            )));
        }
        let h = &self.history;
        if h.page_limit == 0 || h.default_page == 0 || h.default_page > h.page_limit {
            return Err(invalid(format!(
                "history.default_page ({}) must be between 1 and history.page_limit ({})",
                h.default_page, h.page_limit
            )));
        }
        if c.replay_limit == 0 || c.replay_limit > h.page_limit {
            return Err(invalid(format!(
                "connect.replay_limit ({}) must be between 1 and history.page_limit ({})",
                c.replay_limit, h.page_limit
            )));
        }
        if h.prune_interval_secs == 0 {
            return Err(invalid(
                "history.prune_interval_secs must be at least 1".into(),
            ));
        }
        if c.presence_ttl_ms <= c.presence_renew_ms {
            return Err(invalid(format!(
                "connect.presence_ttl_ms ({}) must exceed connect.presence_renew_ms ({})",
                c.presence_ttl_ms, c.presence_renew_ms
            )));
        }
        Ok(())
    }

    /// Read and parse a configuration file.
    pub fn load(path: &Path) -> crate::Result<Self> {
        Self::from_toml(&std::fs::read_to_string(path)?)
    }
}

fn invalid(message: String) -> crate::Error {
    crate::Error::InvalidConfig(message)
}

/// Seconds as a duration.
fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// REST API (and web page) listen address. Default `0.0.0.0:7070`.
    pub addr: SocketAddr,
    /// Whether to open the extra page-only listener at `site_addr`. Default true.
    pub site: bool,
    /// Extra address serving only the web page (gochat's site port). Default `0.0.0.0:8080`.
    pub site_addr: SocketAddr,
    /// Largest request body accepted, in bytes. Default 65 536.
    pub max_body_bytes: usize,
    /// WebSocket URL the web page should use, when it cannot be derived from the page's own
    /// host and the connect port (e.g. behind a proxy). Default: derived.
    pub public_ws_url: Option<String>,
    /// Most simultaneous HTTP connections on the REST listener; when full, the connection
    /// idle the longest is closed to make room. Default 2 048.
    pub max_connections: usize,
    /// Most simultaneous HTTP connections on the page-only listener. Default 256.
    pub site_max_connections: usize,
    /// Seconds a client has to send a request's headers — on a new connection and between
    /// the requests of a kept-alive one (so it is also the keep-alive idle time). Default 10.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body once its headers are in. Default 10.
    pub body_timeout_secs: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            addr: ([0, 0, 0, 0], 7070).into(),
            site: true,
            site_addr: ([0, 0, 0, 0], 8080).into(),
            max_body_bytes: 64 * 1024,
            public_ws_url: None,
            max_connections: 2048,
            site_max_connections: 256,
            header_timeout_secs: 10,
            body_timeout_secs: 10,
        }
    }
}

impl ApiConfig {
    /// [`Self::header_timeout_secs`] as a duration.
    pub fn header_timeout(&self) -> Duration {
        secs(self.header_timeout_secs)
    }
    /// [`Self::body_timeout_secs`] as a duration.
    pub fn body_timeout(&self) -> Duration {
        secs(self.body_timeout_secs)
    }
}

/// `[connect]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectConfig {
    /// This server's id, unique in the cluster. Default `connect-1`.
    pub server_id: String,
    /// WebSocket listen address (path `/ws`). Default `0.0.0.0:7000`.
    pub ws_addr: SocketAddr,
    /// Number of buckets connections are sharded over (fixed at start). Default 64: the
    /// bucket-sharding benches in docs/performance.md.
    pub buckets: usize,
    /// Frames queued per connection before it counts as a slow consumer and is closed with
    /// 1013. Default 1 024.
    pub channel_queue: usize,
    /// Largest inbound WebSocket frame in bytes; bigger closes the connection with 1009.
    /// Default 512 (gochat's limit).
    pub max_frame_bytes: usize,
    /// Raw TCP listen addresses (gochat's `v1` framing); empty disables TCP. Default
    /// `["0.0.0.0:7001"]`.
    pub tcp_addrs: Vec<SocketAddr>,
    /// Largest inbound TCP payload in bytes (at most 32 763, the protocol's limit); bigger
    /// closes the connection. Default 32 763.
    pub tcp_max_payload_bytes: usize,
    /// Seconds between server keep-alives (a WebSocket Ping, TCP's `ping msg`). Default 54.
    pub ping_interval_secs: u64,
    /// Seconds without any inbound frame (a Pong counts) before the connection is closed
    /// with 4000. Must exceed `ping_interval_secs`, so that a client answering pings is
    /// never idle. Default 60.
    pub idle_timeout_secs: u64,
    /// Seconds a new connection has to send its auth frame. Default 10.
    pub auth_timeout_secs: u64,
    /// Allowed `Origin` headers for WebSocket upgrades; empty allows any. Default empty.
    pub allowed_origins: Vec<String>,
    /// Most simultaneous long connections (WebSocket and TCP together). When full, the
    /// oldest connection that has not authenticated yet is closed to make room; if there is
    /// none, a new WebSocket is closed with 1013 and a new TCP connection is dropped.
    /// Lowered at start to fit the process's open-file limit. Default 200 000.
    pub max_connections: usize,
    /// Most simultaneous HTTP connections on the WebSocket listener that have not upgraded
    /// yet; when full, the one idle the longest is closed. Default 1 024.
    pub max_handshakes: usize,
    /// Seconds a connection to the WebSocket listener has to send its upgrade request.
    /// Default 10.
    pub handshake_timeout_secs: u64,
    /// Recent delivery ids remembered, so that a redelivered entry is not pushed twice.
    /// Default 131 072.
    pub dedup_window: usize,
    /// Milliseconds between renewals of this server's presence lease. Default 2 000.
    pub presence_renew_ms: u64,
    /// Milliseconds the presence lease lasts: if this server stops renewing (it died), its
    /// connections leave every room within this (plus one sweep). It must outlast a pause of
    /// the server (a GC-free process still stalls: swapping, SIGSTOP, a VM migration).
    /// Default 8 000.
    pub presence_ttl_ms: u64,
    /// Milliseconds between two roster (op 5) pushes to one room, and between two count
    /// (op 4) pushes: changes in between are coalesced into the next one. Default 1 000.
    pub roster_interval_ms: u64,
    /// Rooms one protocol-v2 connection may be in at once (op 7 past it is refused).
    /// Default 64.
    pub max_rooms_per_connection: usize,
    /// Largest inbound WebSocket frame of a connection once it authenticated with
    /// protocol v2 (it posts over the socket). Default 8 192.
    pub v2_max_frame_bytes: usize,
    /// Stored messages replayed per room (and per inbox) when a v2 client (re)connects or
    /// joins with `since`, oldest first; past it the replay ends with `more` and the client
    /// pages the rest. At most `history.page_limit`. Default 100.
    pub replay_limit: usize,
    /// Where this server's RPC service (called by task) listens in distributed mode.
    /// Default `0.0.0.0:7100`.
    pub rpc_addr: SocketAddr,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            server_id: "connect-1".into(),
            ws_addr: ([0, 0, 0, 0], 7000).into(),
            buckets: 64,
            channel_queue: 1024,
            max_frame_bytes: 512,
            tcp_addrs: vec![([0, 0, 0, 0], 7001).into()],
            tcp_max_payload_bytes: 32_763,
            ping_interval_secs: 54,
            idle_timeout_secs: 60,
            auth_timeout_secs: 10,
            allowed_origins: Vec::new(),
            max_connections: 200_000,
            max_handshakes: 1024,
            handshake_timeout_secs: 10,
            dedup_window: 131_072,
            presence_renew_ms: 2_000,
            presence_ttl_ms: 8_000,
            roster_interval_ms: 1_000,
            max_rooms_per_connection: 64,
            v2_max_frame_bytes: 8192,
            replay_limit: 100,
            rpc_addr: ([0, 0, 0, 0], 7100).into(),
        }
    }
}

impl ConnectConfig {
    /// [`Self::ping_interval_secs`] as a duration.
    pub fn ping_interval(&self) -> Duration {
        secs(self.ping_interval_secs)
    }
    /// [`Self::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        secs(self.idle_timeout_secs)
    }
    /// [`Self::auth_timeout_secs`] as a duration.
    pub fn auth_timeout(&self) -> Duration {
        secs(self.auth_timeout_secs)
    }
    /// [`Self::handshake_timeout_secs`] as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        secs(self.handshake_timeout_secs)
    }
    /// [`Self::presence_renew_ms`] as a duration.
    pub fn presence_renew(&self) -> Duration {
        Duration::from_millis(self.presence_renew_ms)
    }
    /// [`Self::presence_ttl_ms`] as a duration.
    pub fn presence_ttl(&self) -> Duration {
        Duration::from_millis(self.presence_ttl_ms)
    }
    /// [`Self::roster_interval_ms`] as a duration.
    pub fn roster_interval(&self) -> Duration {
        Duration::from_millis(self.roster_interval_ms)
    }
}

/// `[logic]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogicConfig {
    /// This instance's id in the registry, unique in the cluster. Default `logic-1`.
    pub instance_id: String,
    /// Snowflake node id (0–1023), unique per logic instance. Default 1.
    pub node_id: u16,
    /// Session lifetime in seconds. Default 86 400 (24 h).
    pub session_ttl_secs: u64,
    /// Create the demo users `demo`, `test`, `admin` (password `111111`) when missing.
    /// Default true.
    pub demo_users: bool,
    /// argon2id memory cost in KiB. Default 19 456 (OWASP's recommendation).
    pub argon2_memory_kib: u32,
    /// argon2id iterations. Default 2.
    pub argon2_iterations: u32,
    /// Password hashes computed at once. Default 0: one core fewer than the machine has
    /// (at least one), so that a burst of logins leaves a core for everything else.
    pub hash_workers: usize,
    /// Longest user name, in bytes. Default 64.
    pub max_name_bytes: usize,
    /// Longest password, in bytes. Default 128.
    pub max_password_bytes: usize,
    /// Longest chat message, in bytes. Default 4 096.
    pub max_msg_bytes: usize,
    /// Where this instance's RPC service (called by api and connect) listens in distributed
    /// mode. Default `0.0.0.0:7170`.
    pub rpc_addr: SocketAddr,
    /// Milliseconds between sweeps that forget the presence of connect servers whose lease
    /// lapsed (they died). Default 1 000.
    pub presence_sweep_ms: u64,
    /// Rooms with more users than this are "large": joins and leaves are not announced
    /// (no op 11/12, no roster on leave), and a roster request (op 5) is answered with the
    /// count (op 4). Every join or leave of a room of N otherwise sends N frames and reads N
    /// names: at 100 000 members a connect or disconnect storm is 10^10 of them.
    /// Default 1 000.
    pub roster_limit: usize,
}

impl Default for LogicConfig {
    fn default() -> Self {
        Self {
            instance_id: "logic-1".into(),
            node_id: 1,
            session_ttl_secs: 86_400,
            demo_users: true,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            hash_workers: 0,
            max_name_bytes: 64,
            max_password_bytes: 128,
            max_msg_bytes: 4096,
            rpc_addr: ([0, 0, 0, 0], 7170).into(),
            presence_sweep_ms: 1_000,
            roster_limit: 1_000,
        }
    }
}

impl LogicConfig {
    /// [`Self::session_ttl_secs`] as a duration.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }
    /// [`Self::presence_sweep_ms`] as a duration.
    pub fn presence_sweep(&self) -> Duration {
        Duration::from_millis(self.presence_sweep_ms)
    }
}

/// `[task]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskConfig {
    /// This worker's consumer name, unique in the consumer group. Default `task-1`.
    pub consumer: String,
    /// Deliveries taken from the queue per batch. Default 512.
    pub batch: usize,
    /// Most queue entries a worker holds unacknowledged at once (taken, not yet delivered to
    /// every connect server they concern); at the bound it stops taking more. Default 8 192.
    pub max_in_flight: usize,
    /// Hand-outs of one entry (across workers) after which it is dead-lettered instead of
    /// tried again. Default 10.
    pub max_deliveries: u32,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            consumer: "task-1".into(),
            batch: 512,
            max_in_flight: 8192,
            max_deliveries: 10,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        let c = Config::default();
        assert_eq!(c.api.addr.port(), 7070);
        assert_eq!(c.connect.ws_addr.port(), 7000);
        assert_eq!((c.api.site, c.api.site_addr.port()), (true, 8080));
    }

    #[test]
    fn sections_override_fields() {
        let c = Config::from_toml(
            "[api]\naddr = \"127.0.0.1:9000\"\n[connect]\nbuckets = 4\nserver_id = \"c7\"\n",
        )
        .unwrap();
        assert_eq!(c.api.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.connect.buckets, 4);
        assert_eq!(c.connect.server_id, "c7");
        assert_eq!(c.connect.max_frame_bytes, 512);
    }

    #[test]
    fn typos_are_errors_not_silently_ignored() {
        assert!(Config::from_toml("[api]\nadr = \"x\"\n").is_err());
        assert!(Config::from_toml("[nope]\n").is_err());
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../docs/configuration.md");
        let block = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/configuration.md has a toml example");
        let c = Config::from_toml(block).unwrap();
        assert!(!c.api.site);
        assert_eq!(c.connect.allowed_origins, ["https://chat.example.com"]);
    }

    #[test]
    fn nonsense_durations_are_refused_with_the_field_named() {
        let e = Config::from_toml("[connect]\nping_interval_secs = 0\n").unwrap_err();
        assert!(e.to_string().contains("connect.ping_interval_secs"), "{e}");
        let e = Config::from_toml("[connect]\nidle_timeout_secs = 30\n").unwrap_err();
        assert!(e.to_string().contains("must exceed"), "{e}");
        let c = Config::from_toml("[connect]\nping_interval_secs = 1\nidle_timeout_secs = 2\n")
            .unwrap();
        assert_eq!(c.connect.ping_interval(), Duration::from_secs(1));
    }

    #[test]
    fn default_serializes_and_parses_back() {
        let text = toml::to_string(&Config::default()).unwrap();
        assert_eq!(Config::from_toml(&text).unwrap(), Config::default());
    }
}

/// `[limits]`: abuse limits (docs/operations.md). A limit of 0 is off. Per-address limits
/// do not apply to `trusted_networks`; each is kept by the process enforcing it (one api
/// server, one connect server, one logic instance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Shortest password a registration accepts, in bytes. Default 8.
    pub min_password_bytes: usize,
    /// Failed logins for one user name before it is locked (logic). Default 50.
    pub login_failures_per_name: u32,
    /// Failed logins from one address before it is locked (api). Default 200.
    pub login_failures_per_ip: u32,
    /// How long a lockout lasts, counted from the first failure. Default 900.
    pub login_lockout_secs: u64,
    /// Registrations one address may make in a burst (api). Default 20.
    pub registrations_per_ip: u32,
    /// …and then one every this many seconds. Default 180 (20 an hour).
    pub registration_refill_secs: u64,
    /// Posts (room and private, REST and socket) a user may make in a burst (logic).
    /// Default 1000.
    pub post_burst: u32,
    /// …refilled at this many per second. Default 50.
    pub posts_per_sec: u32,
    /// Roster and count requests a user may make in a burst (logic). Default 20.
    pub info_burst: u32,
    /// …refilled at this many per second. Default 2.
    pub info_per_sec: u32,
    /// New connections one address may open in a burst (connect). Default 200.
    pub connection_burst_per_ip: u32,
    /// …refilled at this many per second. Default 50.
    pub connections_per_ip_per_sec: u32,
    /// Connections one address may hold open at once (connect). Default 1000.
    pub open_connections_per_ip: u32,
    /// Connections one user may hold open at once on one connect server. Default 64.
    pub open_connections_per_user: u32,
    /// Networks exempt from the per-address limits. Default loopback
    /// (`127.0.0.0/8`, `::1/128`): load tests and a reverse proxy on the same host.
    pub trusted_networks: Vec<String>,
    /// Proxies whose `X-Forwarded-For` (its last address) is believed as the client's
    /// address on the api. Default none.
    pub trusted_proxies: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            min_password_bytes: 8,
            login_failures_per_name: 50,
            login_failures_per_ip: 200,
            login_lockout_secs: 900,
            registrations_per_ip: 20,
            registration_refill_secs: 180,
            post_burst: 1000,
            posts_per_sec: 50,
            info_burst: 20,
            info_per_sec: 2,
            connection_burst_per_ip: 200,
            connections_per_ip_per_sec: 50,
            open_connections_per_ip: 1000,
            open_connections_per_user: 64,
            trusted_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
            trusted_proxies: Vec::new(),
        }
    }
}

impl LimitsConfig {
    /// The lockout window.
    pub fn login_lockout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.login_lockout_secs)
    }
}

/// `[tls]`: off unless both files are set; then the api (and page) and WebSocket listeners
/// speak HTTPS and WSS only, and — with `tcp` — the raw TCP listener TLS too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, the server's first.
    pub cert_file: Option<PathBuf>,
    /// PEM file with its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// Also wrap the raw TCP listener in TLS. Default false: gochat's own TCP clients speak
    /// no TLS.
    pub tcp: bool,
}
