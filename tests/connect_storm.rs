//! A connect storm while Redis stalls: 1 200 WebSockets arrive at two connect servers at
//! once, and Redis is frozen (SIGSTOP) for 7 s — longer than logic's 5 s Redis timeout,
//! shorter than `connect.admission_wait_secs`. Only the admissions in flight when it froze
//! (`connect.admissions_in_flight`, 64 per server) may fail; everyone else waits for a turn
//! and is admitted once Redis is back, and each admitted client receives the room's next
//! message once. Before the bound, every admission of the storm went to logic at once and
//! all of them failed together (the 100 000-connection test's failure).
#![cfg(feature = "distributed")]
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::*;
use common::*;
use std::time::Duration;

const PER_SERVER: usize = 600;
const SERVERS: [&str; 2] = ["connect-1", "connect-2"];
/// The default `connect.admissions_in_flight`.
const IN_FLIGHT: usize = 64;
const STALL: Duration = Duration::from_secs(7);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_during_a_redis_stall_is_admitted_once_redis_is_back() {
    let mut c = Cluster::new("storm", "[limits]\nopen_connections_per_user = 0\n").await;
    c.start(
        "logic-1",
        "gochat-logic",
        &["--instance-id", "logic-1", "--rpc-addr", "127.0.0.1:0"],
    )
    .await;
    for id in SERVERS {
        c.start(id, "gochat-connect", &["--server-id", id]).await;
    }
    c.start("task-1", "gochat-task", &["--consumer", "task-1"])
        .await;
    c.start("api", "gochat-api", &[]).await;
    let api = c.api();
    let token = register(api, "crowd").await;
    let uid = user_id(api, &token).await;

    c.services.signal_redis("STOP");
    let froze = tokio::time::Instant::now();
    let opens = SERVERS
        .iter()
        .flat_map(|s| std::iter::repeat_n(c.ws(s), PER_SERVER))
        .map(|ws| ws_join(ws, &token, 1));
    let clients = futures::future::join_all(opens).await;
    tokio::time::sleep_until(froze + STALL).await;
    c.services.signal_redis("CONT");

    // Every connection is now either admitted or was refused with 1011; wait until the
    // admissions queued behind the stall are through.
    let room_conns = format!("{}room:1:users", c.redis_prefix);
    let recorded = || {
        c.redis_cli(&["HGET", &room_conns, &uid.to_string()])
            .trim()
            .parse::<usize>()
            .unwrap_or(0)
    };
    // A first look: who was refused already (closed with 1011).
    let looks = futures::future::join_all(clients.into_iter().map(closed_or_open)).await;
    let (mut refused, open) = split(looks);
    eventually(30, "the queued admissions are recorded", || {
        let n = recorded();
        async move { n >= PER_SERVER * SERVERS.len() - refused }
    })
    .await;
    // Late refusals (an admission whose deadline passed after the first look).
    let looks = futures::future::join_all(open.into_iter().map(closed_or_open)).await;
    let (late, mut admitted) = split(looks);
    refused += late;
    let total = PER_SERVER * SERVERS.len();
    eprintln!(
        "storm of {total} with Redis frozen for {STALL:?}: {} admitted, {refused} refused, {} recorded in Redis",
        admitted.len(),
        recorded()
    );
    assert_eq!(admitted.len() + refused, total);
    assert!(
        refused <= 2 * IN_FLIGHT * SERVERS.len(),
        "{refused} refused: more than the admissions in flight when Redis froze"
    );
    assert_eq!(
        recorded(),
        admitted.len(),
        "Redis counts every admitted connection"
    );

    let r = push_room(api, &token, 1, "after the stall").await;
    assert_eq!(r.json()["code"], 0, "{}", r.body);
    futures::future::join_all(admitted.iter_mut().map(|client| async move {
        client
            .next_matching(|v| v["op"] == 3 && v["msg"] == "after the stall")
            .await;
        while let Event::Text(t) = client.next_event(Duration::from_millis(300)).await {
            assert!(!t.contains("after the stall"), "delivered twice: {t}");
        }
    }))
    .await;
}

/// The client, unless the server closed it (then only the refusal is checked).
async fn closed_or_open(mut client: Client) -> Option<Client> {
    match client.next_event(Duration::from_millis(50)).await {
        Event::Closed(code, reason) => {
            assert_eq!((code, reason.as_str()), (Some(1011), "service unavailable"));
            None
        }
        _ => Some(client),
    }
}

/// How many of `looks` were refused, and the others.
fn split(looks: Vec<Option<Client>>) -> (usize, Vec<Client>) {
    let n = looks.len();
    let open: Vec<Client> = looks.into_iter().flatten().collect();
    (n - open.len(), open)
}
