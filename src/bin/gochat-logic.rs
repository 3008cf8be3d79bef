//! The logic layer as its own process: auth, sessions (Redis), presence, publishing to the
//! queue (Redis Streams); serves `LogicRpc` over TCP and registers in etcd.
//!
//! ```sh
//! cargo run --features distributed --bin gochat-logic -- --config cluster.toml --instance-id logic-1 --rpc-addr 127.0.0.1:7170
//! ```

use clap::Parser;
use gochat::Layers;
#[path = "shared/cli.rs"]
mod cli;

use cli::{ClusterArgs, CommonArgs, StoreArgs};
use std::net::SocketAddr;

/// gochat's logic layer: accounts, sessions, presence and history (the store: SQLite or
/// PostgreSQL); stores each message, then queues it. Connects to Redis, etcd and the store.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Unique instance id (`[logic] instance_id`).
    #[arg(long)]
    instance_id: Option<String>,
    /// Snowflake node id, unique per instance (`[logic] node_id`).
    #[arg(long)]
    node_id: Option<u16>,
    /// RPC listen address (`[logic] rpc_addr`).
    #[arg(long)]
    rpc_addr: Option<SocketAddr>,
    #[command(flatten)]
    store: StoreArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    cli::run_layer(&a.common, &a.cluster, Layers::LOGIC, |c| {
        if let Some(v) = a.instance_id {
            c.logic.instance_id = v;
        }
        if let Some(v) = a.node_id {
            c.logic.node_id = v;
        }
        if let Some(v) = a.rpc_addr {
            c.logic.rpc_addr = v;
        }
        a.store.apply(c);
    })
    .await
}
