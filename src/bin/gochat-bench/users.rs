//! Registering users and opening their connections, concurrently and bounded.

use crate::Args;
use futures::StreamExt;
use gochat::client::live::{Endpoint, Transport};
use gochat::client::{Client, Connection};
use gochat::core::model::RoomId;
use gochat::core::model::User;

/// Register `n` users (`<prefix><i>`) and log each in, as a person would after signing up
/// (two sessions per user, as on a real server); returns their clients, in order.
pub async fn register(args: &Args, prefix: &str, n: usize) -> anyhow::Result<Vec<(Client, User)>> {
    // `concurrency` REST connections shared by all users, so that thousands of users do not
    // hold thousands of idle HTTP sockets next to their WebSockets.
    let pool: Vec<Client> = (0..args.concurrency.max(1))
        .map(|_| Client::new(args.api))
        .collect();
    let pool = &pool;
    let results: Vec<_> = futures::stream::iter(0..n)
        .map(|i| async move {
            let mut c = pool[i % pool.len()].sharing_connection();
            let name = format!("{prefix}{i}");
            c.register(&name, "bench-password").await?;
            let u = c.login(&name, "bench-password").await?;
            Ok::<_, anyhow::Error>((c, u))
        })
        .buffered(args.concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The WebSocket server of the `i`-th connection: the `--ws` servers take them in turn.
pub fn ws(args: &Args, i: usize) -> std::net::SocketAddr {
    args.ws[i % args.ws.len()]
}

/// The same server as a [`Live`](gochat::client::live::Live) endpoint.
pub fn live_endpoint(args: &Args, i: usize) -> Endpoint {
    Endpoint {
        addr: ws(args, i),
        transport: Transport::WebSocket,
    }
}

/// Open a WebSocket per client into `room`, spread over the WebSocket servers and the
/// source addresses; each is handed to `opened` (with its client's index) as soon as it is
/// open, so that something reads it while the others are still being opened.
pub async fn connect<T>(
    args: &Args,
    clients: &[(Client, User)],
    room: RoomId,
    mut opened: impl FnMut(Connection) -> T,
) -> anyhow::Result<Vec<T>> {
    let mut opens = futures::stream::iter(clients.iter().enumerate())
        .map(|(i, (c, _))| async move {
            let ws = ws(args, i);
            match args.sources.get(i % args.sources.len().max(1)) {
                Some(ip) => c.connect_ws_from(ws, room, *ip).await,
                None => c.connect_ws(ws, room).await,
            }
        })
        .buffered(args.concurrency);
    let mut out = Vec::with_capacity(clients.len());
    while let Some(conn) = opens.next().await {
        out.push(opened(conn?));
    }
    Ok(out)
}
