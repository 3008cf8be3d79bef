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
    /// `[store]`: durable users.
    pub store: StoreConfig,
    /// `[queue]`: the logic → task hand-off.
    pub queue: QueueConfig,
    /// `[cluster]`: where Redis and etcd are, for layers running as separate processes.
    pub cluster: ClusterConfig,
}

impl Config {
    /// Parse a configuration from TOML text.
    pub fn from_toml(text: &str) -> crate::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// Read and parse a configuration file.
    pub fn load(path: &Path) -> crate::Result<Self> {
        Self::from_toml(&std::fs::read_to_string(path)?)
    }
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
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            addr: ([0, 0, 0, 0], 7070).into(),
            site: true,
            site_addr: ([0, 0, 0, 0], 8080).into(),
            max_body_bytes: 64 * 1024,
            public_ws_url: None,
        }
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
    /// Seconds between server Pings. Default 54.
    pub ping_interval_secs: u64,
    /// Seconds without any inbound frame before the connection is dropped. Default 60.
    pub idle_timeout_secs: u64,
    /// Seconds a new connection has to send its auth frame. Default 10.
    pub auth_timeout_secs: u64,
    /// Allowed `Origin` headers for WebSocket upgrades; empty allows any. Default empty.
    pub allowed_origins: Vec<String>,
    /// Most simultaneous connections; more are refused at accept. Default 200 000.
    pub max_connections: usize,
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
            rpc_addr: ([0, 0, 0, 0], 7100).into(),
        }
    }
}

impl ConnectConfig {
    /// [`Self::ping_interval_secs`] as a duration.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs)
    }
    /// [`Self::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    /// [`Self::auth_timeout_secs`] as a duration.
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.auth_timeout_secs)
    }
}

/// `[logic]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogicConfig {
    /// This instance's id, unique in the cluster; also the snowflake node id source.
    /// Default `logic-1`.
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
    /// Longest user name, in bytes. Default 64.
    pub max_name_bytes: usize,
    /// Longest password, in bytes. Default 128.
    pub max_password_bytes: usize,
    /// Longest chat message, in bytes. Default 4 096.
    pub max_msg_bytes: usize,
    /// Where this instance's RPC service (called by api and connect) listens in distributed
    /// mode. Default `0.0.0.0:7170`.
    pub rpc_addr: SocketAddr,
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
            max_name_bytes: 64,
            max_password_bytes: 128,
            max_msg_bytes: 4096,
            rpc_addr: ([0, 0, 0, 0], 7170).into(),
        }
    }
}

impl LogicConfig {
    /// [`Self::session_ttl_secs`] as a duration.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
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
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            consumer: "task-1".into(),
            batch: 512,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory holding `gochat.db`. Default `./data`.
    pub data_dir: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
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
    fn default_serializes_and_parses_back() {
        let text = toml::to_string(&Config::default()).unwrap();
        assert_eq!(Config::from_toml(&text).unwrap(), Config::default());
    }
}
