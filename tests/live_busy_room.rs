//! A live client posting in a room that others post to at the same time. Each of its posts'
//! replies (with the post's seq) overtakes the fan-out of the messages stored just before
//! it, so a gap opens below it that the live stream fills a moment later. The client hands
//! over every message once, in seq order, and leaves those gaps to the live stream instead
//! of paging each (it used to read about one page per post). One test in this binary: it
//! reads the process's metrics registry.
#![allow(clippy::unwrap_used)]

mod common;

use common::live::*;
use common::{TestServer, request, start};
use gochat::client::Client;
use gochat::client::live::Transport;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

/// Posts by the live client, and by each of the REST senders beside it.
const POSTS: usize = 300;
const REST_SENDERS: [&str; 3] = ["bob", "carol", "dave"];

async fn history_pages(s: &TestServer) -> f64 {
    let r = request(s.api(), "GET", "/metrics", b"", "").await;
    let line = r
        .body
        .lines()
        .find(|l| l.starts_with("gochat_history_pages_total "))
        .unwrap_or_else(|| panic!("no history_pages counter in {}", r.body));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_posting_in_a_busy_room_waits_for_its_gaps_instead_of_paging_them() {
    let s = start().await;
    let mut alice = Client::new(s.api());
    alice.register("alice", "alice-password").await.unwrap();
    alice.login("alice", "alice-password").await.unwrap();
    let mut live = alice
        .live(config(s.ws(), Transport::WebSocket))
        .await
        .unwrap();
    let mut senders = Vec::new();
    for name in REST_SENDERS {
        let mut c = Client::new(s.api());
        let password = format!("{name}-password");
        c.register(name, &password).await.unwrap();
        c.login(name, &password).await.unwrap();
        senders.push((name, c));
    }
    let pages_before = history_pages(&s).await;

    let answered = AtomicUsize::new(0);
    let rest = senders.iter().map(|(name, c)| async move {
        for i in 0..POSTS {
            c.send_room(1, &format!("{name}-{i}")).await.unwrap();
        }
    });
    let started = Instant::now();
    let want: Vec<(String, usize)> = std::iter::once("alice".to_owned())
        .chain(REST_SENDERS.iter().map(|n| n.to_string()))
        .map(|n| (format!("{n}-"), POSTS))
        .collect();
    let want: Vec<(&str, usize)> = want.iter().map(|(p, n)| (p.as_str(), *n)).collect();
    // The events wait in the live client's queue while everyone posts; its driver orders
    // them (and would page) meanwhile.
    tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(
            post_all(&live, POSTS, None, "alice-", &answered),
            futures::future::join_all(rest),
        )
    })
    .await
    .expect("every post answered within a minute");
    let seen = collect(&mut live, &want, Instant::now() + Duration::from_secs(30)).await;
    let pages = history_pages(&s).await - pages_before;
    let total = POSTS * (1 + REST_SENDERS.len());
    println!(
        "{} of {total} messages handed over in {:?}, {pages} history pages read",
        seen.messages.len(),
        started.elapsed()
    );

    for (prefix, n) in &want {
        assert_once_in_log(&seen.messages, prefix, *n);
    }
    let seqs: Vec<u64> = seen.messages.iter().map(|m| m.seq.unwrap()).collect();
    let dense: Vec<u64> = (1..=total as u64).collect();
    assert_eq!(seqs, dense, "every message once, in seq order");
    assert_eq!(seen.reconnects, 0);
    // A gap is paged only if the live stream left it open for a second (gap_patience).
    assert!(
        pages <= 3.0,
        "{pages} pages read for {POSTS} posts: gaps in flight were paged"
    );
}

/// Each text of `prefix` 0..n exactly once.
fn assert_once_in_log(seen: &[gochat::client::live::Message], prefix: &str, n: usize) {
    let mut texts: Vec<&str> = seen
        .iter()
        .filter(|m| m.text.starts_with(prefix))
        .map(|m| m.text.as_str())
        .collect();
    texts.sort_unstable();
    let mut expected: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    expected.sort_unstable();
    assert_eq!(texts, expected, "every {prefix}* message once");
}
