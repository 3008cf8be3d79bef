//! The standalone gochat: every layer in one process on the embedded backends (memory
//! queue, registry and sessions; users in SQLite under the data directory).
//!
//! ```sh
//! cargo run --release            # api :7070, ws :7000, page also on :8080
//! cargo run --release -- --help
//! ```

use anyhow::Context;
use clap::Parser;
use gochat::{Config, Server};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Run gochat standalone.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (see docs/configuration.md); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory for the SQLite database.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// REST API and web page address.
    #[arg(long)]
    api_addr: Option<SocketAddr>,
    /// WebSocket address (path /ws).
    #[arg(long)]
    ws_addr: Option<SocketAddr>,
    /// Extra address serving only the web page.
    #[arg(long, conflicts_with = "no_site")]
    site_addr: Option<SocketAddr>,
    /// Do not open the extra page-only listener.
    #[arg(long)]
    no_site: bool,
    /// Do not create the demo users.
    #[arg(long)]
    no_demo_users: bool,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

impl Args {
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(p) => Config::load(p).with_context(|| format!("reading {}", p.display()))?,
            None => Config::default(),
        };
        if let Some(d) = &self.data_dir {
            c.store.data_dir = d.clone();
        }
        if let Some(a) = self.api_addr {
            c.api.addr = a;
        }
        if let Some(a) = self.ws_addr {
            c.connect.ws_addr = a;
        }
        if let Some(a) = self.site_addr {
            c.api.site_addr = a;
        }
        if self.no_site {
            c.api.site = false;
        }
        if self.no_demo_users {
            c.logic.demo_users = false;
        }
        Ok(c)
    }
}

/// A URL a person can open for a listen address (an unspecified host becomes localhost).
fn url_for(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}/", addr.port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = args.config()?;
    if args.print_config {
        print!("{}", toml::to_string(&config)?);
        return Ok(());
    }
    let server = Server::builder().config(config).start().await?;
    println!(
        "gochat is running. Open {} in a browser.",
        url_for(server.api_addr())
    );
    println!(
        "  api {}  websocket ws://{}/ws{}",
        server.api_addr(),
        server.ws_addr(),
        server
            .site_addr()
            .map(|a| format!("  page {a}"))
            .unwrap_or_default()
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
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
