//! Idle sockets cannot exhaust the server. The standalone binary runs under an open-file
//! limit of 1 024 while thousands of sockets sit idle on each of its listeners — HTTP
//! connections that send half a request (slowloris), a body that never comes, WebSocket-port
//! connections that never upgrade, TCP connections that never authenticate — and a normal
//! user logs in, connects and chats throughout. Every idle socket is closed within its
//! timeout (or earlier, evicted to make room), and the server never runs out of descriptors.
#![allow(clippy::unwrap_used)]

mod common;

use common::standalone::{self, Addrs};
use common::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Idle sockets per listener.
const IDLE: usize = 3000;
/// The timeouts the server runs with (header, body, handshake, auth), in seconds.
const TIMEOUT_SECS: u64 = 6;
/// How long the normal user keeps working once the idle sockets sit there (past their
/// timeout, so the user also works after the server closed them).
const WORK: Duration = Duration::from_secs(9);

/// Start `gochat` under `ulimit -n 1024`.
async fn start(dir: &std::path::Path) -> (tokio::process::Child, Addrs) {
    let t = format!("{TIMEOUT_SECS}");
    let config = standalone::write_config(
        dir,
        &[
            ("api", &format!("header_timeout_secs = {t}")),
            ("api", &format!("body_timeout_secs = {t}")),
            ("connect", &format!("handshake_timeout_secs = {t}")),
            ("connect", &format!("auth_timeout_secs = {t}")),
        ],
    );
    let b = standalone::Binary::start(&config, Some(1024), &dir.join("gochat.log")).await;
    (b.child, b.addrs)
}

/// An idle socket: what it sent, then nothing. Resolves with how long the server kept it
/// (from the moment the connection was established).
async fn idle(
    addr: SocketAddr,
    what: &'static str,
    send: &'static [u8],
    connected: tokio::sync::mpsc::Sender<()>,
    pace: Arc<tokio::sync::Semaphore>,
) -> Result<Duration, String> {
    let turn = pace.acquire_owned().await.unwrap();
    let connecting = tokio::time::timeout(Duration::from_secs(20), TcpStream::connect(addr)).await;
    drop((connected, turn));
    let mut s = match connecting {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("{what}: connect failed: {e}")),
        Err(_) => return Err(format!("{what}: connect timed out")),
    };
    let opened = Instant::now();
    if !send.is_empty() && s.write_all(send).await.is_err() {
        return Ok(opened.elapsed());
    }
    let mut sink = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(opened.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return Err(format!("{what}: held open for 30 s")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_on_every_listener_do_not_lock_users_out() {
    // This process holds the idle sockets: it needs more descriptors than the server has.
    let _ = rlimit::increase_nofile_limit(4 * IDLE as u64 + 1024);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, a) = start(dir.path()).await;
    let token = login(a.api, "demo", "111111").await;
    let mut member = ws_join(a.ws, &token, 1).await;
    wait_for_room(a.api, &token, 1, std::slice::from_mut(&mut member)).await;

    // The flood: a third on each listener, interleaved, as fast as they connect.
    const SLOWLORIS: &[u8] = b"POST /user/login HTTP/1.1\r\nHost: x\r\n";
    const NO_BODY: &[u8] =
        b"POST /user/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{\"userName\":\"x\"";
    let mut flood = Vec::new();
    let (connected, mut all_connected) = tokio::sync::mpsc::channel::<()>(1);
    // Connects are paced (128 under way at once) so that the kernel's accept queues never
    // overflow: an overflowing queue completes handshakes the server never sees (SYN
    // cookies), which would measure the kernel, not the server.
    let pace = Arc::new(tokio::sync::Semaphore::new(128));
    for i in 0..IDLE {
        let http_kind = if i % 2 == 0 { SLOWLORIS } else { NO_BODY };
        let http_what = if i % 2 == 0 { "slowloris" } else { "no body" };
        let kinds: [(SocketAddr, &'static str, &'static [u8]); 3] = [
            (a.api, http_what, http_kind),
            (a.ws, "never upgrades", b""),
            (a.tcp, "never authenticates", b""),
        ];
        for (addr, what, send) in kinds {
            let (connected, pace) = (connected.clone(), pace.clone());
            flood.push(tokio::spawn(idle(addr, what, send, connected, pace)));
        }
    }
    // Once every idle socket has connected and the server has taken them in from its
    // accept queues (a burst still arriving is a flood of new connections, which are
    // refused, not let in over the idle ones), they sit there: every listener is full.
    drop(connected);
    let _ = all_connected.recv().await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Meanwhile a normal user works: logs in, posts, and opens new connections.
    let started = Instant::now();
    let (mut rounds, mut slowest) = (0, Duration::ZERO);
    while started.elapsed() < WORK {
        let t0 = Instant::now();
        let again = login(a.api, "test", "111111").await;
        let msg = format!("round {rounds}");
        assert_eq!(push_room(a.api, &again, 1, &msg).await.json()["code"], 0);
        member.next_matching(|v| v["msg"] == msg.as_str()).await;
        // New connections get in (a push sent before one is admitted is not for it, so the
        // user says hello until each has heard it).
        let mut fresh = TcpClient::join(a.tcp, &again, 1).await;
        let mut heard = false;
        for k in 0..20 {
            let hello = format!("tcp hello {rounds}.{k}");
            assert_eq!(push_room(a.api, &again, 1, &hello).await.json()["code"], 0);
            match fresh.payload_within(Duration::from_millis(500)).await {
                Some(Some(got)) if got.contains("tcp hello") => {
                    heard = true;
                    break;
                }
                Some(None) => panic!("a fresh TCP connection was closed"),
                _ => {}
            }
        }
        assert!(heard, "a fresh TCP connection never heard the room");
        let mut fresh_ws = ws_join(a.ws, &again, 1).await;
        let mut heard = false;
        for k in 0..20 {
            let hello = format!("ws hello {rounds}.{k}");
            assert_eq!(push_room(a.api, &again, 1, &hello).await.json()["code"], 0);
            match fresh_ws.next_event(Duration::from_millis(500)).await {
                Event::Text(t) if t.contains("ws hello") => {
                    heard = true;
                    break;
                }
                Event::Closed(code, reason) => {
                    panic!("a fresh WebSocket was closed: {code:?} {reason}")
                }
                _ => {}
            }
        }
        assert!(heard, "a fresh WebSocket never heard the room");
        slowest = slowest.max(t0.elapsed());
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Every idle socket was closed, none later than its timeout and a margin.
    let (mut closed, mut latest) = (0, Duration::ZERO);
    let mut failures = std::collections::BTreeMap::<String, usize>::new();
    for f in flood {
        match f.await.unwrap() {
            Ok(held) => {
                closed += 1;
                latest = latest.max(held);
            }
            Err(e) => *failures.entry(e).or_default() += 1,
        }
    }
    let log = std::fs::read_to_string(dir.path().join("gochat.log")).unwrap();
    let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
    assert!(
        failures.is_empty(),
        "{failures:?}\nserver log, last lines:\n{tail}"
    );
    eprintln!(
        "{closed} idle sockets ({IDLE} per listener) under a 1 024-descriptor limit: the last closed after {latest:?}; \
         the user worked {rounds} rounds meanwhile (slowest {slowest:?})"
    );
    assert!(
        latest <= Duration::from_secs(TIMEOUT_SECS + 3),
        "an idle socket outlived its timeout: {latest:?}"
    );
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(!log.contains("accept failed"), "{log}");
    child.kill().await.unwrap();
}
