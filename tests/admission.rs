//! The connection limit holds under a burst: never more than `connect.max_connections`
//! long connections are admitted, the rest are closed with the documented code (1013 on a
//! WebSocket; TCP has no close frame), and the count returns to zero once they all close.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const LIMIT: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_twice_the_limit_admits_at_most_the_limit() {
    let s = start_with(|c| {
        c.connect.max_connections = LIMIT;
        c.limits.open_connections_per_user = 0; // one user opens them all
    })
    .await;
    let token = register(s.api(), "crowd").await;
    // Watch the server's own counts the whole time.
    let peak = Arc::new(AtomicUsize::new(0));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (peak, watching) = (peak.clone(), watching.clone());
        let connect = s.connect().clone();
        tokio::spawn(async move {
            while watching.load(Ordering::Relaxed) {
                let n = connect.open_connections().max(connect.hub().len());
                peak.fetch_max(n, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    // 2 × LIMIT at once: half WebSocket, half TCP, each authenticating at once.
    let ws: Vec<_> = (0..LIMIT)
        .map(|_| {
            let (addr, token) = (s.ws(), token.clone());
            tokio::spawn(async move { ws_join(addr, &token, 1).await })
        })
        .collect();
    let tcp: Vec<_> = (0..LIMIT)
        .map(|_| {
            let (addr, token) = (s.tcp(), token.clone());
            tokio::spawn(async move { TcpClient::join(addr, &token, 1).await })
        })
        .collect();
    let mut ws_clients = Vec::new();
    for t in ws {
        ws_clients.push(t.await.unwrap());
    }
    let mut tcp_clients = Vec::new();
    for t in tcp {
        tcp_clients.push(t.await.unwrap());
    }
    // Let every admission settle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut ws_open, mut ws_refused, mut tcp_open, mut tcp_refused) = (0, 0, 0, 0);
    for c in ws_clients.iter_mut() {
        match c.next_event(Duration::from_millis(200)).await {
            Event::Closed(Some(1013), reason) => {
                assert!(
                    reason == "connection limit reached"
                        || reason == "server full: closed before authenticating",
                    "{reason}"
                );
                ws_refused += 1;
            }
            Event::Closed(code, reason) => panic!("closed with {code:?} {reason}"),
            Event::Timeout | Event::Text(_) => ws_open += 1,
        }
    }
    for c in tcp_clients.iter_mut() {
        let mut byte = [0u8; 1];
        use tokio::io::AsyncReadExt;
        match tokio::time::timeout(Duration::from_millis(200), c.stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => tcp_refused += 1,
            _ => tcp_open += 1,
        }
    }
    let admitted = s.connect().hub().len();
    eprintln!(
        "burst of {}: {admitted} admitted (ws {ws_open}, tcp {tcp_open}), refused ws {ws_refused}, tcp {tcp_refused}, peak {}",
        2 * LIMIT,
        peak.load(Ordering::Relaxed)
    );
    assert!(peak.load(Ordering::Relaxed) <= LIMIT, "over the limit");
    assert_eq!(
        ws_open + tcp_open,
        admitted,
        "every open client is admitted"
    );
    assert_eq!(ws_open + ws_refused + tcp_open + tcp_refused, 2 * LIMIT);
    assert!(admitted > 0 && admitted <= LIMIT);

    // Everyone leaves: the count is back to zero.
    drop(ws_clients);
    drop(tcp_clients);
    for _ in 0..200 {
        if s.connect().open_connections() == 0 && s.connect().hub().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(s.connect().open_connections(), 0);
    assert!(s.connect().hub().is_empty());
    watching.store(false, Ordering::Relaxed);
    watcher.await.unwrap();
    s.server.shutdown().await;
}
