//! The api layer as its own process: gochat's REST API and the web page, calling the logic
//! instances it finds in etcd.
//!
//! ```sh
//! cargo run --features distributed --bin gochat-api -- --config cluster.toml --api-addr 0.0.0.0:7070
//! ```

use clap::Parser;
use gochat::Layers;
#[path = "shared/cli.rs"]
mod cli;

use cli::{ClusterArgs, CommonArgs};
use std::net::SocketAddr;

/// gochat's api layer: the REST API and the web page, calling the logic instances it
/// finds in etcd. Connects to etcd only.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// REST API and page address (`[api] addr`).
    #[arg(long)]
    api_addr: Option<SocketAddr>,
    /// WebSocket port the page should use (`[connect] ws_addr`'s port).
    #[arg(long)]
    ws_port: Option<u16>,
    /// Extra address serving only the web page (`[api] site_addr`).
    #[arg(long, conflicts_with = "no_site")]
    site_addr: Option<SocketAddr>,
    /// Do not open the page-only listener.
    #[arg(long)]
    no_site: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    cli::run_layer(&a.common, &a.cluster, Layers::API, |c| {
        if let Some(v) = a.api_addr {
            c.api.addr = v;
        }
        if let Some(p) = a.ws_port {
            c.connect.ws_addr.set_port(p);
        }
        if let Some(v) = a.site_addr {
            c.api.site_addr = v;
        }
        c.api.site &= !a.no_site;
    })
    .await
}
