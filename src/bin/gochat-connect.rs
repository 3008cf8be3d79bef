//! The connect layer as its own process: holds WebSocket connections, serves `ConnectRpc`
//! over TCP for task, registers in etcd under its `server_id`.
//!
//! ```sh
//! cargo run --features distributed --bin gochat-connect -- --config cluster.toml --server-id connect-1 --ws-addr 0.0.0.0:7000 --rpc-addr 127.0.0.1:7100
//! ```

use clap::Parser;
use gochat::Layers;
#[path = "shared/cli.rs"]
mod cli;

use cli::{ClusterArgs, CommonArgs};
use std::net::SocketAddr;

/// gochat's connect layer: holds the WebSocket and TCP connections, authenticates them
/// through logic, delivers what task sends. Connects to etcd only.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Unique server id (`[connect] server_id`).
    #[arg(long)]
    server_id: Option<String>,
    /// WebSocket listen address (`[connect] ws_addr`).
    #[arg(long)]
    ws_addr: Option<SocketAddr>,
    /// Raw TCP listen address, repeatable (`[connect] tcp_addrs`).
    #[arg(long, conflicts_with = "no_tcp")]
    tcp_addr: Vec<SocketAddr>,
    /// Do not listen for raw TCP connections.
    #[arg(long)]
    no_tcp: bool,
    /// RPC listen address (`[connect] rpc_addr`).
    #[arg(long)]
    rpc_addr: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    cli::run_layer(&a.common, &a.cluster, Layers::CONNECT, |c| {
        if let Some(v) = a.server_id {
            c.connect.server_id = v;
        }
        if let Some(v) = a.ws_addr {
            c.connect.ws_addr = v;
        }
        if !a.tcp_addr.is_empty() {
            c.connect.tcp_addrs = a.tcp_addr;
        }
        if a.no_tcp {
            c.connect.tcp_addrs.clear();
        }
        if let Some(v) = a.rpc_addr {
            c.connect.rpc_addr = v;
        }
    })
    .await
}
