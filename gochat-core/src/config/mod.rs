//! Configuration: one TOML file with a section per layer. Every field has a default, so an
//! empty file (or none) is a working standalone configuration. Binaries override fields
//! from the command line after loading the file.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

mod guards;
mod layers;
mod runtime;
mod storage;

pub use guards::{LimitsConfig, TlsConfig};
pub use layers::{ApiConfig, ConnectConfig, LogicConfig, TaskConfig};
pub use runtime::{MAX_ANSWER_THREADS, RuntimeConfig};
pub use storage::{
    ClusterConfig, HistoryConfig, QueueConfig, StoreBackend, StoreConfig, valid_schema_name,
};

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
    /// `[runtime]`: the threads of one process.
    pub runtime: RuntimeConfig,
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
            (
                "connect.admission_wait_secs",
                self.connect.admission_wait_secs,
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
        if c.admissions_in_flight == 0 {
            return Err(invalid(
                "connect.admissions_in_flight must be at least 1, or no connection is ever admitted".into(),
            ));
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
        if self.runtime.answer_threads > MAX_ANSWER_THREADS {
            return Err(invalid(format!(
                "runtime.answer_threads ({}) must be at most {MAX_ANSWER_THREADS}",
                self.runtime.answer_threads
            )));
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
        let doc = include_str!("../../../docs/configuration.md");
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
        let e = Config::from_toml("[connect]\nadmissions_in_flight = 0\n").unwrap_err();
        assert!(
            e.to_string().contains("connect.admissions_in_flight"),
            "{e}"
        );
        let e = Config::from_toml("[connect]\nadmission_wait_secs = 0\n").unwrap_err();
        assert!(e.to_string().contains("connect.admission_wait_secs"), "{e}");
    }

    #[test]
    fn default_serializes_and_parses_back() {
        let text = toml::to_string(&Config::default()).unwrap();
        assert_eq!(Config::from_toml(&text).unwrap(), Config::default());
    }
}
