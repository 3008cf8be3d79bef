//! The sections of the four layers: `[api]`, `[connect]`, `[logic]`, `[task]`.

use super::secs;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

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
    /// Most admissions and releases of this server's connections in flight to logic at
    /// once; more wait their turn here. Without a bound a connect storm (every client back
    /// at once after a restart) hands logic more than it answers within its RPC deadline,
    /// every call fails and the retries add to the storm. Default 64.
    pub admissions_in_flight: usize,
    /// Seconds an authenticated connection may wait for its turn to be admitted before it
    /// is closed with 1013 "server busy" (the client tries again later). Default 30.
    pub admission_wait_secs: u64,
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
            admissions_in_flight: 64,
            admission_wait_secs: 30,
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
    /// [`Self::admission_wait_secs`] as a duration.
    pub fn admission_wait(&self) -> Duration {
        secs(self.admission_wait_secs)
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
