//! `gochat-bench`: drives a running gochat (or anything that speaks its client protocol —
//! `../shared/ceiling`'s `fanout gochat`, Go gochat) through its public surfaces only: REST
//! to register and send, WebSocket to receive. Bounded in count and time; loopback only.
//!
//! ```sh
//! cargo run --release --bin gochat-bench -- --api 127.0.0.1:7070 --ws 127.0.0.1:7000 room --users 2000 --messages 200
//! cargo run --release --bin gochat-bench -- … private --users 1000 --messages 20000
//! cargo run --release --bin gochat-bench -- … --server-pid $(pidof gochat) idle --users 10000 --secs 10
//! ```
//!
//! Prints a progress line on stderr while it runs and one JSON line per test on stdout:
//! deliveries/s, lost, duplicates, end-to-end latency percentiles, server RSS per connection.

#[path = "../shared/cli.rs"]
mod cli;
mod recovery;
mod report;
mod scenario;
mod spread;
mod users;

use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};

/// Load-test a gochat server.
#[derive(Parser)]
#[command(about)]
pub struct Args {
    /// REST API address.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub api: SocketAddr,
    /// WebSocket address; several (comma-separated: the connect servers of a cluster) take
    /// the connections in turn.
    #[arg(long, default_value = "127.0.0.1:7000", value_delimiter = ',')]
    pub ws: Vec<SocketAddr>,
    /// Local addresses to spread connections over (e.g. 127.0.0.2,127.0.0.3): each gives
    /// another ~28k ephemeral ports.
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<IpAddr>,
    /// The server's pid, to report its memory per connection (from /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Prefix of the user names this run registers (a fresh one per run by default).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Concurrent registrations and connection attempts.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Room used by the room and idle tests.
    #[arg(long, default_value_t = 1)]
    pub room: i64,
    /// Label put in the JSON output (e.g. "ours", "ceiling").
    #[arg(long, default_value = "")]
    pub label: String,
    /// The test to run.
    #[command(subcommand)]
    pub test: Test,
}

/// The tests.
#[derive(Subcommand, Clone)]
pub enum Test {
    /// M messages to a room of N members, from S senders, at a target or unlimited rate.
    Room {
        /// Room members (each its own user and WebSocket).
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Messages posted to the room.
        #[arg(long, default_value_t = 100)]
        messages: usize,
        /// Concurrent senders (REST connections).
        #[arg(long, default_value_t = 4)]
        senders: usize,
        /// Messages per second overall; 0 is unlimited.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// How the senders post: REST, or op 3 on a v2 socket with replies.
        #[arg(long, value_enum, default_value_t = scenario::Via::Rest)]
        via: scenario::Via,
    },
    /// M private messages between random pairs of N users, from S senders.
    Private {
        /// Users (each its own WebSocket).
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Private messages sent.
        #[arg(long, default_value_t = 10000)]
        messages: usize,
        /// Concurrent senders.
        #[arg(long, default_value_t = 32)]
        senders: usize,
        /// Messages per second overall; 0 is unlimited.
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
    /// One share of a room spread over several load processes: connect N members, print
    /// `ready` on stderr, count message ids 0..M until all arrived (or T seconds passed).
    Hold {
        /// Members this process connects.
        #[arg(long, default_value_t = 10000)]
        users: usize,
        /// Messages expected.
        #[arg(long, default_value_t = 1)]
        messages: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        secs: u64,
        /// After registering, print `registered` and wait until this file exists before
        /// connecting: every process registers first, then all connect together.
        #[arg(long)]
        go_file: Option<std::path::PathBuf>,
    },
    /// Wait until the room holds N members besides this one, then post M messages to it.
    Broadcast {
        /// Members to wait for.
        #[arg(long)]
        members: usize,
        /// Messages posted.
        #[arg(long, default_value_t = 1)]
        messages: usize,
    },
    /// N protocol-v2 clients in a room; the server restarts (`CMD down`: without its
    /// WebSocket listener), M messages are posted, it comes back (`CMD up`, which prints
    /// the new pid): time until every client recovered exactly what it missed, peak RSS.
    Recovery {
        /// Clients.
        #[arg(long, default_value_t = 10000)]
        users: usize,
        /// Messages each one misses.
        #[arg(long, default_value_t = 50)]
        missed: usize,
        /// Shell command taking `down` or `up` that restarts the server.
        #[arg(long)]
        restart_cmd: String,
    },
    /// Hold N connections for T seconds and measure the server's memory.
    Idle {
        /// Connections held.
        #[arg(long, default_value_t = 10000)]
        users: usize,
        /// Seconds to hold them.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Protocol-v2 connections in this many rooms each (0: gochat's v1, one room).
        #[arg(long, default_value_t = 0)]
        rooms: i64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Thousands of sockets: lift our own descriptor limit as far as the hard limit allows.
    cli::raise_fd_limit();
    let report = match args.test.clone() {
        Test::Room {
            users,
            messages,
            senders,
            rate,
            via,
        } => scenario::room(&args, users, messages, senders, rate, via).await?,
        Test::Private {
            users,
            messages,
            senders,
            rate,
        } => scenario::private(&args, users, messages, senders, rate).await?,
        Test::Idle {
            users,
            secs,
            rooms: 0,
        } => scenario::idle(&args, users, secs).await?,
        Test::Idle { users, secs, rooms } => scenario::idle_v2(&args, users, secs, rooms).await?,
        Test::Hold {
            users,
            messages,
            secs,
            go_file,
        } => spread::hold(&args, users, messages, secs, go_file.as_deref()).await?,
        Test::Recovery {
            users,
            missed,
            restart_cmd,
        } => recovery::recovery(&args, users, missed, &restart_cmd).await?,
        Test::Broadcast { members, messages } => {
            spread::broadcast(&args, members, messages).await?
        }
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
