//! The standalone gochat: every layer in one process on the embedded backends (memory
//! queue, registry and sessions; users in SQLite under the data directory).
//!
//! ```sh
//! cargo run --release            # api :7070, ws :7000, page also on :8080
//! cargo run --release -- --help
//! ```

use clap::Parser;
use gochat::Server;
#[path = "shared/cli.rs"]
mod cli;

use cli::{CommonArgs, StoreArgs};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Run gochat standalone.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// REST API and web page address.
    #[arg(long)]
    api_addr: Option<SocketAddr>,
    /// WebSocket address (path /ws).
    #[arg(long)]
    ws_addr: Option<SocketAddr>,
    /// Raw TCP address (gochat's v1 framing); repeat for several.
    #[arg(long, conflicts_with = "no_tcp")]
    tcp_addr: Vec<SocketAddr>,
    /// Do not listen for raw TCP connections.
    #[arg(long)]
    no_tcp: bool,
    /// Extra address serving only the web page.
    #[arg(long, conflicts_with = "no_site")]
    site_addr: Option<SocketAddr>,
    /// Do not open the extra page-only listener.
    #[arg(long)]
    no_site: bool,
    /// Do not create the demo users.
    #[arg(long)]
    no_demo_users: bool,
}

/// What else the binary does besides serving.
#[derive(clap::Subcommand)]
enum Command {
    /// Copy the users of a Go gochat database (its SQLite file, table `user`) into the
    /// configured store, keeping ids and names; they log in with their old passwords, which
    /// are rehashed with argon2id on first login. Users already present are left alone.
    ImportGochatSqlite {
        /// gochat's database file (gochat.sqlite3).
        file: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    cli::tune_allocator();
    cli::init_tracing(&args.common.log_format);
    let mut c = args.common.load()?;
    args.store.apply(&mut c);
    if let Some(Command::ImportGochatSqlite { file }) = &args.command {
        c.validate()?;
        let store = gochat::open_store(&c.store).await?;
        let report = gochat::import::gochat_sqlite(file, store.as_ref()).await?;
        println!("{report}");
        return Ok(());
    }
    if let Some(a) = args.api_addr {
        c.api.addr = a;
    }
    if let Some(a) = args.ws_addr {
        c.connect.ws_addr = a;
    }
    if !args.tcp_addr.is_empty() {
        c.connect.tcp_addrs = args.tcp_addr.clone();
    }
    if args.no_tcp {
        c.connect.tcp_addrs.clear();
    }
    if let Some(a) = args.site_addr {
        c.api.site_addr = a;
    }
    c.api.site &= !args.no_site;
    c.logic.demo_users &= !args.no_demo_users;
    if cli::print_config(&args.common, &c)? {
        return Ok(());
    }
    let (http, ws_scheme) = match c.tls.cert_file.is_some() {
        true => ("https://", "wss://"),
        false => ("http://", "ws://"),
    };
    let server = Server::builder().config(c).start().await?;
    let (api, ws) = (server.api_addr(), server.ws_addr());
    if let (Some(api), Some(ws)) = (api, ws) {
        println!(
            "gochat is running. Open {} in a browser.",
            cli::url_for(api).replacen("http://", http, 1)
        );
        let site = server
            .site_addr()
            .map(|a| format!("  page {a}"))
            .unwrap_or_default();
        let tcp: String = server
            .tcp_addrs()
            .iter()
            .map(|a| format!("  tcp {a}"))
            .collect();
        // The WebSocket URL as a client on this machine would dial it (not 0.0.0.0).
        let ws_url = cli::url_for(ws).replacen("http://", ws_scheme, 1);
        println!("  api {api}  websocket {ws_url}ws{tcp}{site}");
    }
    cli::shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
