//! Liveness that works: a connection that answers the server's keep-alives is never closed
//! as idle, however long it only reads; one that answers nothing is closed in time. Run here
//! with timeouts scaled down — ping 5 s, idle 6 s, held 14 s: the ratio of the defaults,
//! which a check on a fixed tick (every idle/4) got wrong by closing at the idle timeout
//! before the ping was due; `scripts/soak.sh` runs the same checks for 3 minutes with the
//! default 54 s / 60 s.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gochat::core::protocol::tcp::{MAX_PAYLOAD, PING_PAYLOAD, decode_frame};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// The timeouts under test and how long the readers are held.
struct Clock {
    ping_secs: u64,
    idle_secs: u64,
    hold: Duration,
}

impl Clock {
    /// Scaled down for the suite, or the defaults for `GOCHAT_SOAK_SECS` seconds.
    fn from_env() -> Self {
        match std::env::var("GOCHAT_SOAK_SECS") {
            Ok(s) => Self {
                ping_secs: 54,
                idle_secs: 60,
                hold: Duration::from_secs(s.parse().unwrap()),
            },
            Err(_) => Self {
                ping_secs: 5,
                idle_secs: 6,
                hold: Duration::from_secs(14),
            },
        }
    }
}

/// A TCP client that reads pushes and answers each `ping msg` with a frame of its own (as
/// a device would with a heartbeat), sending nothing else. Returns the payloads it read.
async fn tcp_reader_answering_pings(c: &mut TcpClient, hold: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + hold;
    let mut got = Vec::new();
    loop {
        while let Some(p) = decode_frame(&mut c.buf, MAX_PAYLOAD).unwrap() {
            if &p[..] == PING_PAYLOAD {
                c.send_json(&serde_json::json!({"op": 1})).await;
            } else {
                got.push(String::from_utf8(p.to_vec()).unwrap());
            }
        }
        match tokio::time::timeout_at(deadline, c.stream.read_buf(&mut c.buf)).await {
            Err(_) => return got,
            Ok(Ok(0)) | Ok(Err(_)) => panic!("the server closed a TCP reader that answers pings"),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_answer_keepalives_stay_and_silent_ones_go() {
    let clock = Clock::from_env();
    let (ping, idle) = (clock.ping_secs, clock.idle_secs);
    let s = start_with(|c| {
        c.connect.ping_interval_secs = ping;
        c.connect.idle_timeout_secs = idle;
    })
    .await;
    let (ws_token, tcp_token, silent_token, sender) = (
        register(s.api(), "ws-reader").await,
        register(s.api(), "tcp-reader").await,
        register(s.api(), "tcp-silent").await,
        register(s.api(), "sender").await,
    );
    let mut ws = ws_join(s.ws(), &ws_token, 1).await;
    let mut tcp = TcpClient::join(s.tcp(), &tcp_token, 1).await;
    // Both admitted: the room counts two.
    let count = format!(r#"{{"roomId":1,"authToken":"{sender}"}}"#);
    loop {
        post(s.api(), "/push/count", &count).await;
        if let Event::Text(t) = ws.next_event(Duration::from_millis(1500)).await
            && t == r#"{"count":2,"op":4}"#
        {
            break;
        }
    }
    let mut silent = TcpClient::join(s.tcp(), &silent_token, 1).await;

    // All at once, for the whole hold: the WebSocket reader only reads (tokio-tungstenite
    // answers the server's Pings as it reads, and sends nothing else); the TCP reader
    // answers `ping msg`; the silent TCP client sends nothing after its auth frame and must
    // be closed within the idle timeout (plus a little).
    let silent_watch = async {
        let started = Instant::now();
        let closed = tokio::time::timeout(Duration::from_secs(idle + 5), async {
            let mut sink = [0u8; 4096];
            loop {
                match silent.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a silent TCP client was never closed");
        started.elapsed()
    };
    let ws_hold = async {
        let deadline = tokio::time::Instant::now() + clock.hold;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match ws.next_event(left).await {
                Event::Timeout => return,
                Event::Closed(code, reason) => {
                    panic!("the server closed a WebSocket reader: {code:?} {reason}")
                }
                Event::Text(_) => {}
            }
        }
    };
    let (took, (), tcp_got) = tokio::join!(
        silent_watch,
        ws_hold,
        tcp_reader_answering_pings(&mut tcp, clock.hold)
    );
    assert!(
        took >= Duration::from_secs(idle) - Duration::from_millis(500),
        "closed too early: {took:?}"
    );
    eprintln!("silent TCP client closed after {took:?} (idle timeout {idle} s)");
    assert!(
        tcp_got.iter().all(|p| !p.contains("\"op\":3")),
        "{tcp_got:?}"
    );

    // Both are still there and receiving.
    assert_eq!(
        push_room(s.api(), &sender, 1, "still with us?")
            .await
            .json()["code"],
        0
    );
    ws.next_matching(|v| v["msg"] == "still with us?").await;
    tcp.next_matching(|v| v["msg"] == "still with us?").await;
    eprintln!(
        "WebSocket and TCP readers held {:?} past ping {ping} s / idle {idle} s",
        clock.hold
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_websocket_that_stops_answering_pings_is_closed_in_time() {
    let s = start_with(|c| {
        c.connect.ping_interval_secs = 1;
        c.connect.idle_timeout_secs = 2;
    })
    .await;
    let t = register(s.api(), "fades").await;
    let mut c = ws_join(s.ws(), &t, 1).await;
    // Answers pings for a while (by reading)…
    c.expect_silence(Duration::from_secs(3)).await;
    // …then stops reading altogether: its pongs stop, and it is closed within the timeout.
    tokio::time::sleep(Duration::from_secs(4)).await;
    loop {
        match c.next_event(Duration::from_secs(5)).await {
            Event::Closed(code, reason) => {
                assert_eq!(code, Some(4000), "{reason}");
                assert_eq!(reason, "idle timeout");
                break;
            }
            Event::Text(_) => {}
            Event::Timeout => panic!("a client that stopped answering was not closed"),
        }
    }
    s.server.shutdown().await;
}
