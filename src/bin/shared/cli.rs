//! What every gochat binary shares: logging set-up, the shutdown signal, printable URLs, and
//! the configuration flags common to all of them. Compiled into each binary (`#[path]`), not
//! part of the library; each binary uses a part of it.
#![allow(dead_code)]

use gochat::Config;

/// Every binary's allocator: glibc's malloc keeps argon2's 1 MiB work areas after login
/// bursts (its dynamic mmap threshold), hundreds of MB that mimalloc returns.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v3 keeps freed pages for a second (`purge_delay` 1000 ms) and purges them only
/// when the thread that freed them allocates again. Argon2's work areas are freed by
/// blocking-pool threads that then sleep, so a login burst left ~5 KB per user resident
/// (docs/performance.md: 2 000 users, 15.2 KB per user before, 11.1 KB after). Purging at
/// once costs a `madvise` per freed page run; the load tests saw no throughput change.
/// `MIMALLOC_PURGE_DELAY` in the environment still decides, when set.
pub fn tune_allocator() {
    /// `mi_option_purge_delay` in mimalloc v3's `mi_option_t`.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    /// Its documented default, checked so that a renumbered enum changes nothing.
    const PURGE_DELAY_DEFAULT: std::ffi::c_long = 1000;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: both calls only read or write an integer in mimalloc's option table, which
    // is safe from any thread at any time.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == PURGE_DELAY_DEFAULT {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        }
    }
}
#[cfg(feature = "distributed")]
use gochat::{Layers, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
#[cfg(feature = "distributed")]
use std::sync::Arc;

/// Flags every binary takes.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// TOML configuration file (see docs/configuration.md); flags override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Log format on stderr: `text` (for people) or `json` (one event per line).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// Where users and history are kept: flags of the binaries that run the logic layer.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Store backend, `sqlite` or `postgres` (`[store] backend`).
    #[arg(long, global = true, value_parser = ["sqlite", "postgres"])]
    pub store: Option<String>,
    /// PostgreSQL URL, e.g. postgres://gochat:secret@db:5432/gochat (`[store] postgres_url`);
    /// implies `--store postgres`.
    #[arg(long, global = true)]
    pub postgres_url: Option<String>,
    /// Directory for the SQLite database (`[store] data_dir`).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

impl StoreArgs {
    /// Apply the flags to `config`.
    pub fn apply(&self, config: &mut Config) {
        use gochat::core::config::StoreBackend;
        if let Some(u) = &self.postgres_url {
            config.store.postgres_url = u.clone();
            config.store.backend = StoreBackend::Postgres;
        }
        match self.store.as_deref() {
            Some("postgres") => config.store.backend = StoreBackend::Postgres,
            Some(_) => config.store.backend = StoreBackend::Sqlite,
            None => {}
        }
        if let Some(d) = &self.data_dir {
            config.store.data_dir = d.clone();
        }
    }
}

/// Flags of the distributed layer binaries.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Redis URL (`[cluster] redis_url`).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// etcd endpoint(s), comma-separated (`[cluster] etcd_endpoints`).
    #[arg(long, value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// Host others dial for this process's RPC services (`[cluster] advertise_host`).
    #[arg(long)]
    pub advertise_host: Option<String>,
    /// Registry lease TTL in seconds (`[cluster] lease_ttl_secs`).
    #[arg(long)]
    pub lease_ttl_secs: Option<u64>,
    /// Serve GET /metrics (Prometheus), /healthz and /readyz on this address.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
}

impl CommonArgs {
    /// The configuration file's contents, or the defaults.
    pub fn load(&self) -> anyhow::Result<Config> {
        use anyhow::Context;
        Ok(match &self.config {
            Some(p) => Config::load(p).with_context(|| format!("reading {}", p.display()))?,
            None => Config::default(),
        })
    }
}

impl ClusterArgs {
    /// Apply the flags to `config`.
    pub fn apply(&self, config: &mut Config) {
        if let Some(u) = &self.redis_url {
            config.cluster.redis_url = u.clone();
        }
        if !self.etcd.is_empty() {
            config.cluster.etcd_endpoints = self.etcd.clone();
        }
        if let Some(h) = &self.advertise_host {
            config.cluster.advertise_host = h.clone();
        }
        if let Some(t) = self.lease_ttl_secs {
            config.cluster.lease_ttl_secs = t;
        }
    }
}

/// If `--print-config` was given, print and return true.
pub fn print_config(args: &CommonArgs, config: &Config) -> anyhow::Result<bool> {
    if args.print_config {
        print!("{}", toml::to_string(config)?);
    }
    Ok(args.print_config)
}

/// Lift this process's open-file limit to its hard limit: a connect server holds one
/// descriptor per connection. The hard limit is the operator's to set (`ulimit -Hn`,
/// systemd's `LimitNOFILE=`); the connection limits are then fitted below it.
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// Log to stderr, filtered by `RUST_LOG` (default `info`); colours only on a terminal;
/// `json`: one JSON object per event (timestamp, level, target — the crate says the layer —
/// and the event's fields).
pub fn init_tracing(format: &str) {
    use std::io::IsTerminal;
    // PostgreSQL's notices ("schema already exists, skipping") are not news.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tokio_postgres=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if format == "json" {
        logs.json().with_current_span(false).init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    let limit = raise_fd_limit();
    tracing::debug!("open-file limit {limit}");
}

/// A URL a person can open for a listen address (an unspecified host becomes 127.0.0.1).
pub fn url_for(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}/", addr.port())
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}

/// The `main` of the four layer binaries: load the configuration, apply the cluster flags
/// and then the binary's own (`adjust`), start `layers` on the distributed backends, run
/// until ctrl-c / SIGTERM, shut down gracefully.
#[cfg(feature = "distributed")]
pub async fn run_layer(
    common: &CommonArgs,
    cluster: &ClusterArgs,
    layers: Layers,
    adjust: impl FnOnce(&mut Config),
) -> anyhow::Result<()> {
    tune_allocator();
    init_tracing(&common.log_format);
    let mut config = common.load()?;
    cluster.apply(&mut config);
    adjust(&mut config);
    if print_config(common, &config)? {
        return Ok(());
    }
    let server = Arc::new(
        Server::builder()
            .config(config)
            .layers(layers)
            .distributed()
            .await?
            .start()
            .await?,
    );
    let ops_stop = tokio_util::sync::CancellationToken::new();
    let ops = match cluster.metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("metrics address {addr}: {e}"))?;
            println!("metrics listening on {}", listener.local_addr()?);
            let s = server.clone();
            let ready: gochat::core::ops::Readiness = Arc::new(move || {
                let s = s.clone();
                Box::pin(async move { s.ready().await })
            });
            Some(tokio::spawn(gochat::core::ops::serve_ops(
                listener,
                ready,
                ops_stop.clone(),
            )))
        }
        None => None,
    };
    if let Some(a) = server.api_addr() {
        println!("api listening on {a}");
    }
    if let Some(a) = server.site_addr() {
        println!("page listening on {a}");
    }
    if let Some(a) = server.logic_rpc_addr() {
        println!("logic rpc listening on {a}");
    }
    if let Some(a) = server.connect_rpc_addr() {
        println!("connect rpc listening on {a}");
    }
    if let Some(a) = server.ws_addr() {
        println!("websocket listening on {a}");
    }
    for a in server.tcp_addrs() {
        println!("tcp listening on {a}");
    }
    println!("ready");
    shutdown_signal().await;
    tracing::info!("shutting down");
    ops_stop.cancel();
    if let Some(ops) = ops {
        let _ = ops.await;
    }
    match Arc::try_unwrap(server) {
        Ok(server) => server.shutdown().await,
        Err(_) => tracing::warn!("the metrics server still holds the server; not waiting"),
    }
    Ok(())
}
