//! A connect storm queues at the connect server instead of at logic: never more than
//! `connect.admissions_in_flight` admissions talk to logic at once, everyone who waits gets a
//! turn and is admitted (and receives the room's next message once), and a connection that
//! waits past `connect.admission_wait_secs` is closed with 1013 "server busy".
#![allow(clippy::unwrap_used)]

mod common;

use async_trait::async_trait;
use common::*;
use gochat::Server;
use gochat::core::model::{Presence, RoomId, User, UserId};
use gochat::core::{MemorySessions, Sessions};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The real in-memory sessions, but recording a join takes `delay` (a logic instance
/// behind a busy Redis), and the joins running at once are counted.
struct SlowJoins {
    inner: MemorySessions,
    delay: Duration,
    running: AtomicUsize,
    peak: AtomicUsize,
}

#[async_trait]
impl Sessions for SlowJoins {
    async fn login(
        &self,
        token: &str,
        user: &User,
        ttl: Duration,
    ) -> gochat::core::Result<Option<String>> {
        self.inner.login(token, user, ttl).await
    }
    async fn get(&self, token: &str) -> gochat::core::Result<Option<User>> {
        self.inner.get(token).await
    }
    async fn logout(&self, token: &str) -> gochat::core::Result<Option<User>> {
        self.inner.logout(token).await
    }
    async fn join(&self, presence: &Presence) -> gochat::core::Result<bool> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let first = self.inner.join(presence).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        first
    }
    async fn leave(&self, presence: &Presence) -> gochat::core::Result<bool> {
        self.inner.leave(presence).await
    }
    async fn room_size(&self, room: RoomId) -> gochat::core::Result<usize> {
        self.inner.room_size(room).await
    }
    async fn roster(&self, room: RoomId) -> gochat::core::Result<Vec<User>> {
        self.inner.roster(room).await
    }
    async fn room_servers(&self, room: RoomId) -> gochat::core::Result<Vec<String>> {
        self.inner.room_servers(room).await
    }
    async fn user_servers(&self, user: UserId) -> gochat::core::Result<Vec<String>> {
        self.inner.user_servers(user).await
    }
    async fn drop_server(&self, server_id: &str) -> gochat::core::Result<()> {
        self.inner.drop_server(server_id).await
    }
    async fn sync_server(
        &self,
        server_id: &str,
        presences: &[Presence],
        ttl: Duration,
    ) -> gochat::core::Result<()> {
        self.inner.sync_server(server_id, presences, ttl).await
    }
    async fn renew_server(&self, server_id: &str, ttl: Duration) -> gochat::core::Result<bool> {
        self.inner.renew_server(server_id, ttl).await
    }
    async fn server_alive(&self, server_id: &str) -> gochat::core::Result<bool> {
        self.inner.server_alive(server_id).await
    }
    async fn expire_servers(&self) -> gochat::core::Result<Vec<String>> {
        self.inner.expire_servers().await
    }
}

async fn start_slow(
    in_flight: usize,
    delay_ms: u64,
) -> (Server, Arc<SlowJoins>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = test_config(dir.path());
    c.connect.admissions_in_flight = in_flight;
    c.connect.admission_wait_secs = 1;
    c.limits.open_connections_per_user = 0; // one user opens them all
    let sessions = Arc::new(SlowJoins {
        inner: MemorySessions::new(),
        delay: Duration::from_millis(delay_ms),
        running: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    let server = Server::builder()
        .config(c)
        .sessions(sessions.clone())
        .start()
        .await
        .unwrap();
    (server, sessions, dir)
}

const STORM: usize = 60;
const IN_FLIGHT: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_storm_waits_its_turn_and_everyone_is_admitted() {
    // 60 at once, 4 at a time, 40 ms each: 0.6 s of queue, within the 1 s wait.
    let (server, sessions, _dir) = start_slow(IN_FLIGHT, 40).await;
    let (api, ws) = (server.api_addr().unwrap(), server.ws_addr().unwrap());
    let token = register(api, "crowd").await;
    let mut clients = futures::future::join_all((0..STORM).map(|_| ws_join(ws, &token, 1))).await;
    let hub = || server.connect().unwrap().hub().len();
    eventually(5, "every connection of the storm is admitted", || {
        let n = hub();
        async move { n == STORM }
    })
    .await;
    let peak = sessions.peak.load(Ordering::SeqCst);
    eprintln!("storm of {STORM}: all admitted, at most {peak} admissions at once");
    assert_eq!(
        peak, IN_FLIGHT,
        "admissions ran {peak} at once, the bound is {IN_FLIGHT}"
    );

    // Each of them receives the room's next message, once.
    let r = push_room(api, &token, 1, "after the storm").await;
    assert_eq!(r.json()["code"], 0, "{}", r.body);
    for c in clients.iter_mut() {
        c.next_matching(|v| v["op"] == 3 && v["msg"] == "after the storm")
            .await;
    }
    for c in clients.iter_mut() {
        while let Event::Text(t) = c.next_event(Duration::from_millis(50)).await {
            assert!(!t.contains("after the storm"), "delivered twice: {t}");
        }
    }
    drop(clients);
    eventually(5, "every leave went through its turn", || {
        let n = hub();
        async move { n == 0 }
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_waits_too_long_is_told_the_server_is_busy() {
    // One at a time, 2.5 s each, 1 s of patience: the first is admitted, the others give up.
    let (server, _sessions, _dir) = start_slow(1, 2500).await;
    let (api, ws) = (server.api_addr().unwrap(), server.ws_addr().unwrap());
    let token = register(api, "patient").await;
    let mut clients = futures::future::join_all((0..3).map(|_| ws_join(ws, &token, 1))).await;
    let mut busy = 0;
    for c in clients.iter_mut() {
        if let Event::Closed(code, reason) = c.next_event(Duration::from_secs(2)).await {
            assert_eq!((code, reason.as_str()), (Some(1013), "server busy"));
            busy += 1;
        }
    }
    // Admitted: the one not closed, once its slow join is through.
    let hub = || server.connect().unwrap().hub().len();
    eventually(5, "the patient one is admitted", || {
        let n = hub();
        async move { n == 1 }
    })
    .await;
    assert_eq!((busy, hub()), (2, 1), "two told busy, one admitted");
    server.shutdown().await;
}
