//! Shared helpers for the integration tests: a server on free loopback ports with its data
//! in a temporary directory, a byte-exact HTTP/1.1 client, and a WebSocket client.
#![allow(dead_code, clippy::unwrap_used, missing_docs)]

#[cfg(feature = "distributed")]
pub mod cluster;
pub mod live;
pub mod postgres;
pub mod standalone;
pub mod v2;

use futures::{SinkExt, StreamExt};
use gochat::{Config, Server};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// A loopback port free right now (for servers that must come back on the same one), and
/// never handed out before by this test binary: its tests run at once, and the kernel may
/// give the port it just freed to the next caller — a CI run hung when one test's etcd was
/// given the port another test's Redis had taken meanwhile.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
}

/// A configuration on free loopback ports, with cheap password hashing (argon2id still,
/// just with 1 MiB and one pass: tests register hundreds of users).
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.store.data_dir = dir.to_path_buf();
    c.api.addr = "127.0.0.1:0".parse().unwrap();
    c.api.site = false;
    c.connect.ws_addr = "127.0.0.1:0".parse().unwrap();
    c.connect.tcp_addrs = vec!["127.0.0.1:0".parse().unwrap()];
    c.logic.argon2_memory_kib = 1024;
    c.logic.argon2_iterations = 1;
    c
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut c = test_config(dir.path());
    tweak(&mut c);
    let server = Server::builder().config(c).start().await.unwrap();
    TestServer { server, dir }
}

impl TestServer {
    pub fn api(&self) -> SocketAddr {
        self.server.api_addr().unwrap()
    }
    pub fn ws(&self) -> SocketAddr {
        self.server.ws_addr().unwrap()
    }
    pub fn tcp(&self) -> SocketAddr {
        self.server.tcp_addrs()[0]
    }
    pub fn connect(&self) -> &gochat::connect::Connect {
        self.server.connect().unwrap()
    }
}

/// An HTTP response as the client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Send one raw HTTP/1.1 request (closing the connection) and read the whole reply.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    extra: &str,
) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("HTTP reply timed out")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// POST a JSON body.
pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    request(
        addr,
        "POST",
        path,
        body.as_bytes(),
        "Content-Type: application/json\r\n",
    )
    .await
}

/// Register a user; returns its token.
pub async fn register(addr: SocketAddr, name: &str) -> String {
    let r = post(
        addr,
        "/user/register",
        &format!(r#"{{"userName":"{name}","passWord":"password-{name}"}}"#),
    )
    .await;
    assert_eq!(r.json()["code"], 0, "register {name}: {}", r.body);
    r.json()["data"].as_str().unwrap().to_string()
}

/// Log a user in; returns its token.
pub async fn login(addr: SocketAddr, name: &str, pass: &str) -> String {
    let r = post(
        addr,
        "/user/login",
        &format!(r#"{{"userName":"{name}","passWord":"{pass}"}}"#),
    )
    .await;
    assert_eq!(r.json()["code"], 0, "login {name}: {}", r.body);
    r.json()["data"].as_str().unwrap().to_string()
}

/// The user id of a token.
pub async fn user_id(addr: SocketAddr, token: &str) -> i64 {
    let r = post(
        addr,
        "/user/checkAuth",
        &format!(r#"{{"authToken":"{token}"}}"#),
    )
    .await;
    r.json()["data"]["userId"].as_i64().unwrap()
}

pub async fn push_room(addr: SocketAddr, token: &str, room: i64, msg: &str) -> Reply {
    let body = serde_json::json!({"msg": msg, "roomId": room, "authToken": token, "op": 3});
    post(addr, "/push/pushRoom", &body.to_string()).await
}

pub async fn push_private(addr: SocketAddr, token: &str, to: i64, msg: &str) -> Reply {
    let body = serde_json::json!({"msg": msg, "toUserId": to.to_string(), "roomId": 1, "authToken": token});
    post(addr, "/push/push", &body.to_string()).await
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A WebSocket client.
pub struct Client {
    pub ws: Ws,
}

/// Open a WebSocket without authenticating.
pub async fn ws_open(addr: SocketAddr) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    Client { ws }
}

/// Open a WebSocket and send the auth frame.
pub async fn ws_join(addr: SocketAddr, token: &str, room: i64) -> Client {
    let mut c = ws_open(addr).await;
    c.send_text(&format!(r#"{{"authToken":"{token}","roomId":{room}}}"#))
        .await;
    c
}

/// What a client read next.
#[derive(Debug, PartialEq)]
pub enum Event {
    Text(String),
    Closed(Option<u16>, String),
    Timeout,
}

impl Client {
    pub async fn send_ping(&mut self) {
        self.ws
            .send(Message::Ping(Vec::new().into()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next text frame or close, skipping pings; `Timeout` after `wait` (however many
    /// pings arrive meanwhile).
    pub async fn next_event(&mut self, wait: Duration) -> Event {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Event::Timeout,
                Ok(None) => return Event::Closed(None, String::new()),
                Ok(Some(Err(_))) => return Event::Closed(None, String::new()),
                Ok(Some(Ok(Message::Text(t)))) => return Event::Text(t.to_string()),
                Ok(Some(Ok(Message::Close(f)))) => {
                    return Event::Closed(
                        f.as_ref().map(|f| f.code.into()),
                        f.map(|f| f.reason.to_string()).unwrap_or_default(),
                    );
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next text frame; panics on anything else within 10 s.
    pub async fn next_text(&mut self) -> String {
        match self.next_event(Duration::from_secs(10)).await {
            Event::Text(t) => t,
            e => panic!("expected a text frame, got {e:?}"),
        }
    }

    /// The next text frame that satisfies `want`, skipping others (e.g. roster updates).
    pub async fn next_matching(&mut self, want: impl Fn(&serde_json::Value) -> bool) -> String {
        loop {
            let t = self.next_text().await;
            if want(&serde_json::from_str(&t).unwrap()) {
                return t;
            }
        }
    }

    /// The close frame the server sends within 5 s, skipping room-count pushes left over
    /// from `wait_for_count` (each of its retries reaches every member); any other text
    /// frame before the close fails the test.
    pub async fn next_close(&mut self) -> (Option<u16>, String) {
        loop {
            match self.next_event(Duration::from_secs(5)).await {
                Event::Closed(code, reason) => return (code, reason),
                Event::Text(t)
                    if serde_json::from_str::<serde_json::Value>(&t).unwrap()["op"] == 4 => {}
                e => panic!("expected the connection to close, got {e:?}"),
            }
        }
    }

    /// Assert nothing arrives for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        match self.next_event(wait).await {
            Event::Timeout => {}
            e => panic!("expected silence, got {e:?}"),
        }
    }
}

/// Ask for the room count until every client in `clients` has seen it at `n` — proof that
/// all of them are admitted and receiving. Other pushes they receive meanwhile are dropped.
pub async fn wait_for_room(addr: SocketAddr, token: &str, room: i64, clients: &mut [Client]) {
    let want = format!(r#"{{"count":{},"op":4}}"#, clients.len());
    let body = format!(r#"{{"roomId":{room},"authToken":"{token}"}}"#);
    post(addr, "/push/count", &body).await;
    for c in clients.iter_mut() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "room never reached {want}"
            );
            match c.next_event(Duration::from_millis(500)).await {
                Event::Text(t) if t == want => break,
                Event::Text(_) => {}
                Event::Timeout => {
                    post(addr, "/push/count", &body).await;
                }
                e => panic!("client closed while joining: {e:?}"),
            }
        }
    }
}

/// Ask for the room count until `client` sees it at `n` (others may be in the room too,
/// say TCP clients); the last count pushed to the room is then `n`.
pub async fn wait_for_count(addr: SocketAddr, token: &str, room: i64, n: usize, c: &mut Client) {
    let want = format!(r#"{{"count":{n},"op":4}}"#);
    ask_count_until(addr, token, room, async |wait| {
        loop {
            match c.next_event(wait).await {
                Event::Text(t) if t == want => return true,
                Event::Text(_) => {}
                Event::Timeout => return false,
                e => panic!("client closed while joining: {e:?}"),
            }
        }
    })
    .await;
}

/// Ask for `room`'s count (as `token`'s user), then give `seen` 1.5 s to find the count it
/// waits for; again until it does, for up to 30 s. A count another connection saw may have
/// gone out before this one was admitted, so each connection waits for its own.
async fn ask_count_until(
    addr: SocketAddr,
    token: &str,
    room: i64,
    mut seen: impl AsyncFnMut(Duration) -> bool,
) {
    let body = format!(r#"{{"roomId":{room},"authToken":"{token}"}}"#);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        post(addr, "/push/count", &body).await;
        if seen(Duration::from_millis(1500)).await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "room {room} never reached the count asked for"
        );
    }
}

/// A raw TCP client speaking gochat's `v1` framing.
pub struct TcpClient {
    pub stream: TcpStream,
    pub buf: bytes::BytesMut,
}

/// One `v1` frame around `payload`.
pub fn v1(payload: &[u8]) -> Vec<u8> {
    gochat::core::protocol::tcp::encode_frame(payload)
        .unwrap()
        .to_vec()
}

impl TcpClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: bytes::BytesMut::new(),
        }
    }

    /// Connect and authenticate (op 6) into `room`.
    pub async fn join(addr: SocketAddr, token: &str, room: i64) -> Self {
        let mut c = Self::connect(addr).await;
        c.send_json(&serde_json::json!({"op": 6, "authToken": token, "roomId": room}))
            .await;
        c
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    pub async fn send_json(&mut self, v: &serde_json::Value) {
        let frame = v1(v.to_string().as_bytes());
        self.send_raw(&frame).await;
    }

    /// The next push payload (keep-alive `ping msg` frames skipped), `None` on EOF, panics
    /// after `wait`.
    pub async fn next_payload(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            use gochat::core::protocol::tcp::{MAX_PAYLOAD, PING_PAYLOAD, decode_frame};
            if let Some(p) =
                decode_frame(&mut self.buf, MAX_PAYLOAD).expect("server sent a bad frame")
            {
                if &p[..] == PING_PAYLOAD {
                    continue;
                }
                return Some(String::from_utf8(p.to_vec()).unwrap());
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
                .await
                .expect("nothing arrived in time");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next push payload within `wait`: `Some(None)` on EOF, `None` if nothing came.
    pub async fn payload_within(&mut self, wait: Duration) -> Option<Option<String>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            use gochat::core::protocol::tcp::{MAX_PAYLOAD, PING_PAYLOAD, decode_frame};
            if let Some(p) =
                decode_frame(&mut self.buf, MAX_PAYLOAD).expect("server sent a bad frame")
            {
                if &p[..] != PING_PAYLOAD {
                    return Some(Some(String::from_utf8(p.to_vec()).unwrap()));
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(None),
                Ok(Ok(_)) => {}
            }
        }
    }

    pub async fn next_text(&mut self) -> String {
        self.next_payload(Duration::from_secs(10))
            .await
            .expect("connection closed")
    }

    pub async fn next_matching(&mut self, want: impl Fn(&serde_json::Value) -> bool) -> String {
        loop {
            let t = self.next_text().await;
            if want(&serde_json::from_str(&t).unwrap()) {
                return t;
            }
        }
    }

    /// Ask for the room count until this connection sees it at `n`: proof that it is
    /// admitted.
    pub async fn wait_for_count(&mut self, addr: SocketAddr, token: &str, room: i64, n: usize) {
        ask_count_until(addr, token, room, async |wait| {
            let seen = self.next_matching(|v| v["op"] == 4 && v["count"] == n);
            tokio::time::timeout(wait, seen).await.is_ok()
        })
        .await;
    }

    pub async fn expect_open(&mut self, wait: Duration) {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(wait, self.stream.read(&mut byte)).await {
            Err(_) => {}
            Ok(Ok(0)) | Ok(Err(_)) => panic!("the server closed the connection"),
            Ok(Ok(_)) => panic!("the server sent something unexpected"),
        }
    }

    /// Assert the server closes the connection within 5 s (whatever it sends first).
    pub async fn expect_closed(&mut self) {
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            let mut sink = [0u8; 4096];
            loop {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the server kept the connection open");
    }
}

/// Wait until `f` holds, for at most `secs`.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
