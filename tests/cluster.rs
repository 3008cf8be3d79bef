//! The distributed mode end to end: separate processes for every layer (2 logic, 2 connect,
//! 2 task, 1 api), each cluster on its own Redis (AOF on) and etcd (tests/common/cluster.rs).
#![cfg(feature = "distributed")]
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::*;
use common::*;
use gochat::core::registry::{Kind, Registry};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_both_connect_servers_exchange_messages_exactly_once() {
    let cluster = Cluster::standard("exchange").await;
    let api = cluster.api();
    let mut tokens = Vec::new();
    let mut clients = Vec::new();
    for i in 0..8 {
        let t = register(api, &format!("u{i}")).await;
        let server = if i % 2 == 0 { "connect-1" } else { "connect-2" };
        clients.push(ws_join(cluster.ws(server), &t, 1).await);
        tokens.push(t);
    }
    wait_for_room(api, &tokens[0], 1, &mut clients).await;

    // Room messages from a sender on each server.
    for n in 0..20 {
        let sender = &tokens[n % 2];
        assert_eq!(
            push_room(api, sender, 1, &format!("m{n}")).await.json()["code"],
            0
        );
    }
    for c in clients.iter_mut() {
        let seen = collect_room(c, 20).await;
        assert_eq!(seen.len(), 20, "{seen:?}");
        assert!(seen.values().all(|&k| k == 1), "exactly once: {seen:?}");
    }

    // A private message from a user on connect-1 to one on connect-2 and back.
    let ids = [
        user_id(api, &tokens[0]).await,
        user_id(api, &tokens[1]).await,
    ];
    push_private(api, &tokens[0], ids[1], "to two").await;
    push_private(api, &tokens[1], ids[0], "to one").await;
    let got1 = clients[1].next_matching(|v| v["op"] == 2).await;
    assert!(
        got1.contains(r#""msg":"to two""#) && got1.contains(&format!(r#""fromUserId":{}"#, ids[0])),
        "{got1}"
    );
    let got0 = clients[0].next_matching(|v| v["op"] == 2).await;
    assert!(got0.contains(r#""msg":"to one""#), "{got0}");
    for c in clients.iter_mut().skip(2) {
        c.expect_silence(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_task_worker_mid_stream_loses_nothing() {
    let mut cluster = Cluster::standard("task-kill").await;
    let api = cluster.api();
    let t = register(api, "reader").await;
    let mut reader = ws_join(cluster.ws("connect-1"), &t, 1).await;
    wait_for_room(api, &t, 1, std::slice::from_mut(&mut reader)).await;
    let sender = register(api, "sender").await;

    // Freeze task-1 while it waits in XREADGROUP: Redis still hands it the next entries
    // (they become pending for it), but it never delivers or acknowledges them. Then it is
    // killed: the entries it held must be claimed and delivered by task-2.
    cluster.signal("task-1", "STOP");
    // Six concurrent senders, so entries arrive while both workers are waiting.
    const SENDERS: usize = 6;
    const EACH: usize = 60;
    const N: usize = SENDERS * EACH;
    let pushed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (sender, pushed) = (sender.clone(), pushed.clone());
            tokio::spawn(async move {
                for k in 0..EACH {
                    let n = s * EACH + k;
                    let r = push_room(api, &sender, 1, &format!("m{n}")).await;
                    assert_eq!(
                        r.json()["code"],
                        0,
                        "push {n} was not acknowledged: {}",
                        r.body
                    );
                    pushed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    while pushed.load(std::sync::atomic::Ordering::Relaxed) < N / 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // On a loaded machine the worker may have been frozen between two reads, holding
    // nothing: let it run a moment and freeze it again, until it holds entries.
    let mut held = cluster.pending_for("task-1");
    for _ in 0..50 {
        if held > 0 || pushed.load(std::sync::atomic::Ordering::Relaxed) >= N {
            break;
        }
        cluster.signal("task-1", "CONT");
        tokio::time::sleep(Duration::from_millis(3)).await;
        cluster.signal("task-1", "STOP");
        tokio::time::sleep(Duration::from_millis(30)).await;
        held = cluster.pending_for("task-1");
    }
    assert!(
        held > 0,
        "the frozen worker should hold entries for this test to mean anything"
    );
    cluster.kill9("task-1");
    for s in senders {
        s.await.unwrap();
    }
    let seen = collect_room(&mut reader, N).await;
    let missing: Vec<_> = (0..N)
        .filter(|n| !seen.contains_key(&format!("m{n}")))
        .collect();
    assert!(
        missing.is_empty(),
        "lost after kill -9 of a task worker: {missing:?}"
    );
    let duplicates = seen.values().filter(|&&k| k > 1).count();
    eprintln!(
        "{N} messages, {held} held by the killed worker, {duplicates} delivered more than once (allowed: at-least-once)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_connect_server_leaves_and_comes_back() {
    let mut cluster = Cluster::standard("connect-kill").await;
    let api = cluster.api();
    let registry = cluster.registry().await;
    let (a, b) = (register(api, "stays").await, register(api, "goes").await);
    let mut stays = ws_join(cluster.ws("connect-1"), &a, 1).await;
    let mut goes = ws_join(cluster.ws("connect-2"), &b, 1).await;
    {
        let mut both = [stays, goes];
        wait_for_room(api, &a, 1, &mut both).await;
        [stays, goes] = both;
    }

    cluster.kill9("connect-2");
    drop(goes);
    let killed = std::time::Instant::now();
    eventually(
        LEASE_TTL_SECS + 5,
        "registry drops the dead server",
        || async {
            registry
                .list(Kind::Connect)
                .await
                .unwrap()
                .iter()
                .all(|i| i.id != "connect-2")
        },
    )
    .await;
    assert!(
        killed.elapsed() < Duration::from_secs(LEASE_TTL_SECS + 3),
        "gone within the lease TTL"
    );

    // Presence no longer counts its user; the survivor notices nothing but the count.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        post(
            api,
            "/push/count",
            &format!(r#"{{"roomId":1,"authToken":"{a}"}}"#),
        )
        .await;
        if stays.next_matching(|v| v["op"] == 4).await == r#"{"count":1,"op":4}"# {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "presence still counts the dead server's user"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in 0..10 {
        push_room(api, &a, 1, &format!("after{n}")).await;
    }
    let seen = collect_room(&mut stays, 10).await;
    assert!(
        seen.values().all(|&k| k == 1) && seen.len() == 10,
        "{seen:?}"
    );

    // It comes back and takes users again.
    cluster.restart("connect-2").await;
    let mut back = ws_join(cluster.ws("connect-2"), &b, 1).await;
    {
        let mut both = [stays, back];
        wait_for_room(api, &a, 1, &mut both).await;
        [stays, back] = both;
    }
    push_room(api, &a, 1, "welcome back").await;
    back.next_matching(|v| v["msg"] == "welcome back").await;
    stays.next_matching(|v| v["msg"] == "welcome back").await;
    registry.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_a_logic_instance_keeps_users_logged_in() {
    let mut cluster = Cluster::standard("logic-restart").await;
    let api = cluster.api();
    let tokens: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(register(api, &format!("p{i}")).await);
        }
        v
    };
    cluster.kill9("logic-1");
    cluster.restart("logic-1").await;
    cluster.kill9("logic-2");
    cluster.restart("logic-2").await;
    // Both instances are new processes; the sessions lived in Redis.
    for _ in 0..3 {
        for t in &tokens {
            let r = post(api, "/user/checkAuth", &format!(r#"{{"authToken":"{t}"}}"#)).await;
            assert_eq!(r.json()["code"], 0, "{}", r.body);
        }
    }
}
