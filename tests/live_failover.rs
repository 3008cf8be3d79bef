//! The live client against a real cluster (2 logic, 2 connect, 2 task, 1 api; its own Redis
//! and etcd): the connect server a client is on is killed with SIGKILL mid-stream; the client
//! moves to the other one by itself and misses nothing — every message once, in seq order.
#![cfg(feature = "distributed")]
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::Cluster;
use common::live::*;
use gochat::client::Client;
use gochat::client::live::{Endpoint, Transport};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const POSTS: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_client_fails_over_to_the_other_connect_server() {
    let mut cluster = Cluster::standard("live-failover").await;
    let (ws1, ws2) = (cluster.ws("connect-1"), cluster.ws("connect-2"));
    let mut alice = Client::new(cluster.api());
    alice.register("alice", "alice-pass").await.unwrap();
    alice.login("alice", "alice-pass").await.unwrap();
    let mut bob = Client::new(cluster.api());
    bob.register("bob", "bob-pass").await.unwrap();
    bob.login("bob", "bob-pass").await.unwrap();
    // Alice posts through connect-2; bob listens on connect-1, with connect-2 to fall back on.
    let alice_live = alice.live(config(ws2, Transport::WebSocket)).await.unwrap();
    let mut bob_config = config(ws1, Transport::WebSocket);
    bob_config.endpoints.push(Endpoint {
        addr: ws2,
        transport: Transport::WebSocket,
    });
    let mut bob_live = bob.live(bob_config).await.unwrap();

    // The kill comes once a fifth of the posts are answered: mid-stream on any machine.
    let started = Instant::now();
    let answered = AtomicUsize::new(0);
    let kill = async {
        until_answered(&answered, POSTS / 5).await;
        cluster.kill9("connect-1");
        (Instant::now(), answered.load(Ordering::Relaxed))
    };
    let ((killed, at_kill), ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(kill, post_all(&alice_live, POSTS, None, "m-", &answered))
    })
    .await
    .expect("every post answered within a minute");
    let posted = started.elapsed();
    let seen = collect(
        &mut bob_live,
        &[("m-", POSTS)],
        Instant::now() + Duration::from_secs(30),
    )
    .await;
    println!(
        "posted {POSTS} in {posted:?}, connect-1 killed at {:?} ({at_kill} answered); bob reconnected {} time(s), \
         recovered {}",
        killed - started,
        seen.reconnects,
        seen.recovered
    );
    assert!(
        at_kill < POSTS,
        "connect-1 died mid-stream ({at_kill} answered)"
    );
    assert!(seen.reconnects >= 1, "bob moved to connect-2 by himself");
    assert_once_in_order("bob", &seen.messages, "m-", POSTS);
}
