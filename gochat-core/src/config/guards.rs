//! What protects the server: `[limits]` (abuse limits) and `[tls]`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
