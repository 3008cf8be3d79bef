//! The live (protocol v2) Rust client against the real standalone binary, killed with
//! SIGKILL and restarted on the same ports mid-stream: every message reaches every member
//! once, in seq order; every post — sent again by the client after the drop when its reply
//! was lost — is stored once.
#![allow(clippy::unwrap_used)]

mod common;

use common::free_port;
use common::live::*;
use common::standalone::{Binary, write_config};
use gochat::client::Client;
use gochat::client::live::{Range, Transport};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Room posts by alice, private messages from bob to alice.
const ROOM_POSTS: usize = 1000;
const PRIVATE_POSTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_clients_lose_nothing_across_kill9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (api, ws, tcp) = (free_port(), free_port(), free_port());
    let config_path = write_config(
        dir.path(),
        &[
            ("api", &format!("addr = \"127.0.0.1:{api}\"")),
            ("connect", &format!("ws_addr = \"127.0.0.1:{ws}\"")),
            ("connect", &format!("tcp_addrs = [\"127.0.0.1:{tcp}\"]")),
        ],
    );
    let server = Binary::start(&config_path, None, &dir.path().join("first.log")).await;
    let addrs = server.addrs;
    let mut alice = Client::new(addrs.api);
    let alice_user = alice.register("alice", "alice-pass").await.unwrap();
    alice.login("alice", "alice-pass").await.unwrap();
    let mut bob = Client::new(addrs.api);
    bob.register("bob", "bob-pass").await.unwrap();
    bob.login("bob", "bob-pass").await.unwrap();
    // Alice over WebSocket, bob over gochat's raw TCP.
    let mut alice_live = alice
        .live(config(addrs.ws, Transport::WebSocket))
        .await
        .unwrap();
    let mut bob_live = bob.live(config(addrs.tcp, Transport::Tcp)).await.unwrap();

    // Posts stream in from both while the server is killed and restarted under them.
    // The kill comes once a fifth of the posts are answered, so that it always falls
    // mid-stream (a fixed 300 ms was after the last post on a fast run).
    let started = Instant::now();
    let answered = AtomicUsize::new(0);
    let outage = async {
        until_answered(&answered, (ROOM_POSTS + PRIVATE_POSTS) / 5).await;
        server.kill9().await;
        let (killed, at_kill) = (Instant::now(), answered.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(700)).await;
        let back = Binary::start(&config_path, None, &dir.path().join("second.log")).await;
        (back, killed, at_kill)
    };
    let ((back, killed, at_kill), (), ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(
            outage,
            post_all(&alice_live, ROOM_POSTS, None, "room-", &answered),
            post_all(
                &bob_live,
                PRIVATE_POSTS,
                Some(alice_user.id),
                "dm-",
                &answered
            ),
        )
    })
    .await
    .expect("every post answered within a minute");
    let posted = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    let want = [("room-", ROOM_POSTS), ("dm-", PRIVATE_POSTS)];
    let alice_seen = collect(&mut alice_live, &want, deadline).await;
    let bob_seen = collect(&mut bob_live, &want, deadline).await;
    println!(
        "posted {ROOM_POSTS} room + {PRIVATE_POSTS} private in {posted:?} (server killed at {:?}, \
         {at_kill} answered); reconnects alice {} bob {}, recovered alice {} bob {}",
        killed - started,
        alice_seen.reconnects,
        bob_seen.reconnects,
        alice_seen.recovered,
        bob_seen.recovered
    );
    assert!(
        at_kill < ROOM_POSTS + PRIVATE_POSTS,
        "the server died while posts were in flight ({at_kill} answered)"
    );
    assert!(
        alice_seen.reconnects >= 1 && bob_seen.reconnects >= 1,
        "both clients reconnected by themselves"
    );
    // Alice's view: her own room posts and bob's private messages (her inbox); bob's: the
    // room and his own private messages (his inbox).
    for (who, seen) in [("alice", &alice_seen), ("bob", &bob_seen)] {
        assert_once_in_order(who, &seen.messages, "room-", ROOM_POSTS);
        assert_once_in_order(who, &seen.messages, "dm-", PRIVATE_POSTS);
    }

    // Stored once each: the room's history holds exactly the posts.
    let mut stored = Vec::new();
    let mut since = 0;
    loop {
        let page = bob_live
            .history(1, Range::Since(since), Some(200))
            .await
            .unwrap();
        since = page.messages.last().map_or(since, |m| m.seq.unwrap());
        stored.extend(page.messages.into_iter().map(|m| m.text));
        if !page.more {
            break;
        }
    }
    stored.sort();
    let before = stored.len();
    stored.dedup();
    assert_eq!(
        (before, stored.len()),
        (ROOM_POSTS, ROOM_POSTS),
        "the room's history holds each post once"
    );
    drop(back);
}
