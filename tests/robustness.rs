//! Hostile and broken clients: none of them panics, hangs or leaks anything, and everyone
//! else keeps receiving throughout.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A healthy member of room 1 and a sender; each check ends by proving the room still works.
struct Bystander {
    token: String,
    client: Client,
    sent: usize,
}

impl Bystander {
    async fn new(s: &TestServer) -> Self {
        let token = register(s.api(), "bystander").await;
        let mut client = ws_join(s.ws(), &token, 1).await;
        wait_for_room(s.api(), &token, 1, std::slice::from_mut(&mut client)).await;
        Self {
            token,
            client,
            sent: 0,
        }
    }

    async fn still_served(&mut self, s: &TestServer) {
        self.sent += 1;
        let msg = format!("still here {}", self.sent);
        assert_eq!(
            push_room(s.api(), &self.token, 1, &msg).await.json()["code"],
            0
        );
        self.client
            .next_matching(|v| v["op"] == 3 && v["msg"] == msg.as_str())
            .await;
    }
}

async fn expect_close(c: &mut Client, code: u16) -> String {
    match c.next_event(Duration::from_secs(5)).await {
        Event::Closed(got, reason) => {
            assert_eq!(got, Some(code), "reason {reason:?}");
            reason
        }
        e => panic!("expected close {code}, got {e:?}"),
    }
}

#[tokio::test]
async fn bad_auth_frames_close_only_that_connection() {
    let s = start().await;
    let mut b = Bystander::new(&s).await;
    for frame in [
        "not json",
        "[1,2,3]",
        "{}",
        r#"{"authToken":""}"#,
        r#"{"authToken":"unknown-token","roomId":1}"#,
    ] {
        let mut c = ws_open(s.ws()).await;
        c.send_text(frame).await;
        expect_close(&mut c, 1008).await;
        b.still_served(&s).await;
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn oversized_frames_close_with_1009() {
    let s = start().await;
    let mut b = Bystander::new(&s).await;
    // Before authenticating.
    let mut c = ws_open(s.ws()).await;
    c.send_text(&"x".repeat(513)).await;
    expect_close(&mut c, 1009).await;
    // After authenticating.
    let t = register(s.api(), "big").await;
    let mut c = ws_join(s.ws(), &t, 1).await;
    c.send_text(&format!(r#"{{"pad":"{}"}}"#, "y".repeat(600)))
        .await;
    let reason = expect_close(&mut c, 1009).await;
    assert_eq!(reason, "frame over the size limit");
    // Exactly at the limit is fine.
    let t2 = register(s.api(), "exact").await;
    let auth = format!(r#"{{"authToken":"{t2}","roomId":1,"pad":""}}"#);
    let padded = auth.replace(
        r#""pad":"""#,
        &format!(r#""pad":"{}""#, "z".repeat(512 - auth.len())),
    );
    assert_eq!(padded.len(), 512);
    let mut c = ws_open(s.ws()).await;
    c.send_text(&padded).await;
    let mut pair = [b.client, c];
    wait_for_room(s.api(), &b.token, 1, &mut pair).await;
    let [client, _c] = pair;
    b.client = client;
    b.still_served(&s).await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn private_message_to_an_offline_user_is_harmless() {
    let s = start().await;
    let mut b = Bystander::new(&s).await;
    let offline = register(s.api(), "offline").await;
    let offline_id = user_id(s.api(), &offline).await;
    for i in 0..20 {
        let r = push_private(s.api(), &b.token, offline_id, &format!("are you there {i}")).await;
        assert_eq!(r.body, r#"{"code":0,"data":null,"message":"ok"}"#);
    }
    b.still_served(&s).await;
    // When they come online later, old messages are not replayed (no history yet) and new
    // ones arrive.
    let mut c = ws_join(s.ws(), &offline, -1).await;
    loop {
        push_private(s.api(), &b.token, offline_id, "now?").await;
        if let Event::Text(t) = c.next_event(Duration::from_millis(300)).await {
            assert!(t.contains(r#""msg":"now?""#), "{t}");
            break;
        }
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_without_stalling_the_room() {
    let s = start_with(|c| {
        c.connect.channel_queue = 64;
        // The flood below may need more posts than the default burst (1 000) before the
        // kernel's buffers for the lazy socket fill; the rate limit is not what is tested.
        c.limits.post_burst = 10_000;
    })
    .await;
    let mut b = Bystander::new(&s).await;
    let lazy = register(s.api(), "lazy").await;
    // A raw socket that completes the handshake and authenticates, then never reads.
    let mut raw = raw_ws_join(s.ws(), &lazy).await;
    wait_until(|| s.connect().hub().len() == 2, "lazy client admitted").await;
    // Flood the room with big messages until the lazy socket's kernel buffers fill, then
    // its queue: the server must drop it. The bystander reads everything it is sent.
    let big = "b".repeat(4000);
    let mut sent = 0;
    while s.connect().hub().len() > 1 {
        assert!(sent < 5000, "slow consumer was never disconnected");
        let answer = push_room(s.api(), &b.token, 1, &big).await.json();
        assert_eq!(answer["code"], 0, "{answer}");
        b.client.next_matching(|v| v["op"] == 3).await;
        sent += 1;
    }
    b.still_served(&s).await;
    // Its socket was closed by the server (after whatever the kernel had buffered).
    let mut sink = vec![0u8; 1 << 20];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match raw.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "slow consumer's socket left open");
    wait_until(|| s.connect().open_connections() == 1, "lazy session ended").await;
    assert_eq!(s.connect().hub().len(), 1, "only the bystander is left");
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_vanishes_mid_write_is_cleaned_up() {
    let s = start().await;
    let mut b = Bystander::new(&s).await;
    for i in 0..5 {
        let t = register(s.api(), &format!("ghost{i}")).await;
        let mut c = ws_join(s.ws(), &t, 1).await;
        let mut pair = [b.client, c];
        wait_for_room(s.api(), &b.token, 1, &mut pair).await;
        [b.client, c] = pair;
        // Start a burst, then drop the socket without a close handshake.
        for _ in 0..20 {
            push_room(s.api(), &b.token, 1, &"v".repeat(2000)).await;
        }
        drop(c);
        b.still_served(&s).await;
    }
    // Every ghost is gone from the hub and from presence.
    wait_until(
        || s.connect().hub().len() == 1,
        "vanished clients left the hub",
    )
    .await;
    wait_until(
        || s.connect().open_connections() == 1,
        "vanished sessions ended",
    )
    .await;
    post(
        s.api(),
        "/push/count",
        &format!(r#"{{"roomId":1,"authToken":"{}"}}"#, b.token),
    )
    .await;
    b.client
        .next_matching(|v| v == &serde_json::json!({"count":1,"op":4}))
        .await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn silent_peers_are_dropped_after_the_idle_timeout() {
    let s = start_with(|c| {
        c.connect.ping_interval_secs = 1;
        c.connect.idle_timeout_secs = 2;
    })
    .await;
    let t = register(s.api(), "silent").await;
    // A raw client that authenticates and then never answers pings.
    let mut raw = raw_ws_join(s.ws(), &t).await;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let ended = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "idle connection was not dropped");
    let tail = &seen[seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert!(
        tail.windows(2).any(|w| w == [0x89, 0x00]),
        "no ping was sent: {tail:?}"
    );
    let close = tail
        .windows(2)
        .position(|w| w[0] == 0x88)
        .expect("no close frame");
    assert_eq!(&tail[close + 2..close + 4], &4000u16.to_be_bytes());
    // A client that keeps talking stays.
    let t2 = register(s.api(), "lively").await;
    let mut c = ws_join(s.ws(), &t2, 1).await;
    // It sends a ping now and then instead of answering ours; any frame counts as life.
    for _ in 0..8 {
        c.send_ping().await;
        c.expect_silence(Duration::from_millis(500)).await;
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn wrong_paths_and_plain_gets() {
    let s = start().await;
    let r = request(s.ws(), "GET", "/ws", b"", "").await;
    assert_eq!(r.status, 400);
    let r = request(s.ws(), "GET", "/other", b"", "").await;
    assert_eq!(r.status, 404);
    s.server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_with_1001() {
    let s = start().await;
    let t = register(s.api(), "leaving").await;
    let mut c = ws_join(s.ws(), &t, 1).await;
    wait_for_room(s.api(), &t, 1, std::slice::from_mut(&mut c)).await;
    let stop = tokio::spawn(s.server.shutdown());
    expect_close(&mut c, 1001).await;
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("shutdown hung")
        .unwrap();
}

/// Poll `ok` until it holds, for at most 10 s.
async fn wait_until(ok: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A hand-made WebSocket client on a bare socket: handshake, auth frame for room 1, and
/// nothing else unless the test does it (no reading, no pongs).
async fn raw_ws_join(addr: std::net::SocketAddr, token: &str) -> TcpStream {
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let auth = format!(r#"{{"authToken":"{token}","roomId":1}}"#);
    raw.write_all(&masked_text(auth.as_bytes())).await.unwrap();
    raw
}

/// A masked client text frame (clients must mask).
fn masked_text(payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x81];
    if payload.len() < 126 {
        f.push(0x80 | payload.len() as u8);
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}
