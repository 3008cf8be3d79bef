//! A terminal chat client on `gochat::client`. Two terminals can chat with each other and
//! with people in the browser page.
//!
//! Run a server (`cargo run --release`), then in two terminals:
//!
//! ```sh
//! cargo run --example chat -- --user demo --password 111111
//! cargo run --example chat -- --user test --password 111111 --tcp 127.0.0.1:7001
//! ```
//!
//! Type a line to post it to the room; `/to NAME text` sends a private message to someone in
//! the room; `/who` lists the room; `/quit` (or end of input) leaves.

use clap::Parser;
use gochat::client::{Client, Event};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// Chat from a terminal.
#[derive(Parser)]
struct Args {
    /// REST API address.
    #[arg(long, default_value = "127.0.0.1:7070")]
    api: SocketAddr,
    /// WebSocket address (used unless --tcp is given).
    #[arg(long, default_value = "127.0.0.1:7000")]
    ws: SocketAddr,
    /// Connect over raw TCP to this address instead of the WebSocket.
    #[arg(long)]
    tcp: Option<SocketAddr>,
    /// User name.
    #[arg(long)]
    user: String,
    /// Password.
    #[arg(long)]
    password: String,
    /// Create the account first.
    #[arg(long)]
    register: bool,
    /// Room to join.
    #[arg(long, default_value_t = 1)]
    room: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut client = Client::new(a.api);
    let me = if a.register {
        client.register(&a.user, &a.password).await?
    } else {
        client.login(&a.user, &a.password).await?
    };
    let mut conn = match a.tcp {
        Some(tcp) => client.connect_tcp(tcp, a.room).await?,
        None => client.connect_ws(a.ws, a.room).await?,
    };
    println!(
        "signed in as {} (id {}) in room {}; /to NAME text, /who, /quit",
        me.name, me.id, a.room
    );

    // The connection gets a task of its own (reading it is not cancel-safe).
    let (tx, mut events) = mpsc::channel(256);
    let reader = tokio::spawn(async move {
        loop {
            let e = conn.next_event().await;
            let closed = matches!(e, Ok(Event::Closed { .. }) | Err(_));
            if tx.send(e).await.is_err() || closed {
                return;
            }
        }
    });
    // Let the room know we are here, and learn who else is.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    client.request_roster(a.room).await?;

    let mut roster: BTreeMap<String, i64> = BTreeMap::new(); // name → id
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let line = line.trim();
                if line == "/quit" {
                    break;
                } else if line == "/who" {
                    client.request_roster(a.room).await?;
                } else if let Some(rest) = line.strip_prefix("/to ") {
                    let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
                    match roster.get(name) {
                        Some(id) if !text.is_empty() => {
                            if let Err(e) = client.send_private(*id, a.room, text).await {
                                println!("not sent: {e}");
                            }
                        }
                        Some(_) => println!("usage: /to NAME text"),
                        None => println!("{name} is not in the room (/who lists it)"),
                    }
                } else if !line.is_empty()
                    && let Err(e) = client.send_room(a.room, line).await
                {
                    println!("not sent: {e}");
                }
            }
            event = events.recv() => match event {
                Some(Ok(Event::Room(m))) => println!("[room {}] {}: {}", m.room_id, m.from_user_name, m.msg),
                Some(Ok(Event::Private(m))) => println!("[private] {} → you: {}", m.from_user_name, m.msg),
                Some(Ok(Event::Count(n))) => println!("[online] {n}"),
                Some(Ok(Event::Roster { users, .. })) => {
                    roster = users.iter().filter_map(|(id, name)| Some((name.clone(), id.parse().ok()?))).collect();
                    println!("[in the room] {}", roster.keys().cloned().collect::<Vec<_>>().join(", "));
                }
                Some(Ok(Event::Closed { code, reason })) => {
                    println!("[closed] {} {reason}", code.map(|c| c.to_string()).unwrap_or_default());
                    break;
                }
                Some(Err(e)) => {
                    println!("[error] {e}");
                    break;
                }
                None => break,
            }
        }
    }
    reader.abort();
    Ok(())
}
