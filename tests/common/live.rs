//! Helpers for the live-client tests: collect what a [`Live`] hands over, post in windows,
//! assert every message once and in seq order.

use gochat::client::live::{Endpoint, Live, LiveConfig, LiveEvent, Message, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Posts in flight at once: several have lost their replies when a server dies.
pub const WINDOW: usize = 16;

/// A live connection to one server, room 1, quick reconnects.
pub fn config(addr: SocketAddr, transport: Transport) -> LiveConfig {
    let mut c = LiveConfig::new(Endpoint { addr, transport }, 1);
    c.backoff_min = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(500);
    c
}

/// Everything a live connection handed over, until `want` messages with a text starting
/// with `prefix` came or `deadline` passed.
pub struct Seen {
    pub messages: Vec<Message>,
    pub reconnects: usize,
    pub recovered: usize,
}

pub async fn collect(live: &mut Live, want: &[(&str, usize)], deadline: Instant) -> Seen {
    let mut seen = Seen {
        messages: Vec::new(),
        reconnects: 0,
        recovered: 0,
    };
    let done = |s: &Seen| {
        want.iter()
            .all(|(p, n)| s.messages.iter().filter(|m| m.text.starts_with(p)).count() >= *n)
    };
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, live.next_event()).await {
            Ok(Some(LiveEvent::Message(m))) => seen.messages.push(m),
            Ok(Some(LiveEvent::Connected { reconnected, .. })) => {
                seen.reconnects += usize::from(reconnected)
            }
            Ok(Some(LiveEvent::Recovered { messages })) => seen.recovered += messages,
            Ok(Some(LiveEvent::Closed { reason, .. })) => {
                panic!("live connection closed: {reason}")
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    seen
}

/// Each text of `prefix` 0..n exactly once, and the log's seqs consecutive in the order
/// handed over.
pub fn assert_once_in_order(who: &str, seen: &[Message], prefix: &str, n: usize) {
    let of: Vec<&Message> = seen.iter().filter(|m| m.text.starts_with(prefix)).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in &of {
        *counts.entry(m.text.as_str()).or_default() += 1;
    }
    let missing = (0..n)
        .filter(|i| !counts.contains_key(format!("{prefix}{i}").as_str()))
        .count();
    let dups: usize = counts.values().map(|c| c - 1).sum();
    println!(
        "{who}: {prefix}* expected {n}, got {}, missing {missing}, duplicates {dups}",
        of.len()
    );
    assert_eq!(
        (missing, dups),
        (0, 0),
        "{who}: every {prefix}* message once"
    );
    let seqs: Vec<u64> = of.iter().map(|m| m.seq.unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "{who}: handed over in seq order without gaps: {seqs:?}"
    );
}

/// Post `n` messages, `WINDOW` at a time; `answered` counts those answered so far.
pub async fn post_all(
    live: &Live,
    n: usize,
    to: Option<i64>,
    prefix: &str,
    answered: &AtomicUsize,
) {
    for start in (0..n).step_by(WINDOW) {
        let posts = (start..(start + WINDOW).min(n)).map(|i| {
            let text = format!("{prefix}{i}");
            async move {
                match to {
                    None => live.post(1, &text).await,
                    Some(to) => live.send_private(to, 1, &text).await,
                }
                .unwrap_or_else(|e| panic!("post {text}: {e}"));
                answered.fetch_add(1, Ordering::Relaxed);
            }
        });
        futures::future::join_all(posts).await;
    }
}

/// Wait until `answered` reaches `at_least` (the moment for a fault: posts in flight, not
/// a fixed time, which a fast machine finishes every post before).
pub async fn until_answered(answered: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::Relaxed) < at_least {
        assert!(
            Instant::now() < deadline,
            "only {} posts answered in 30 s",
            answered.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
