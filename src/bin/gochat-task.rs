//! The task layer as its own process: consumes the Redis stream in the shared consumer
//! group and calls the connect servers it finds in etcd.
//!
//! ```sh
//! cargo run --features distributed --bin gochat-task -- --config cluster.toml --consumer task-1
//! ```

use clap::Parser;
use gochat::Layers;
#[path = "shared/cli.rs"]
mod cli;

use cli::{ClusterArgs, CommonArgs};

/// gochat's task layer: consumes the delivery queue (Redis Streams) and hands each
/// delivery to the connect servers holding its recipients. Connects to Redis and etcd.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Consumer name, unique in the group (`[task] consumer`).
    #[arg(long)]
    consumer: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    cli::run_layer(&a.common, &a.cluster, Layers::TASK, |c| {
        if let Some(v) = a.consumer {
            c.task.consumer = v;
        }
    })
    .await
}
