//! The Redis queue against a real Redis (`GOCHAT_TEST_REDIS`, default 127.0.0.1:6379): the
//! conformance suite, the entry format, acknowledged entries, dead letters, a full stream.

use super::*;
use crate::conformance::queue as suite;

/// A fresh stream per factory call, so suites never see each other's entries.
fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "gochat-test:{}:{}:{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn redis_url() -> String {
    std::env::var("GOCHAT_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A queue with the default settings on `stream`.
async fn on_stream(stream: &str) -> RedisQueue {
    RedisQueue::connect(RedisQueueConfig {
        url: redis_url(),
        stream: stream.to_owned(),
        ..RedisQueueConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn conformance() {
    suite::run_all(|cfg| async move {
        RedisQueue::connect(RedisQueueConfig {
            url: redis_url(),
            stream: unique("q"),
            capacity: cfg.capacity,
            claim_idle: cfg.claim_idle(),
            ..RedisQueueConfig::default()
        })
        .await
        .expect("Redis must be running for these tests (scripts/test.sh starts one)")
    })
    .await;
}

#[test]
fn entries_round_trip_behind_a_version_byte() {
    let d = suite::delivery(7);
    let bytes = encode(&d).unwrap();
    assert_eq!(bytes[0], FORMAT);
    assert_eq!(decode(&bytes).unwrap(), d);
    assert!(decode(&[9, 1, 2]).is_err());
    assert!(decode(&[]).is_err());
}

#[tokio::test]
async fn acknowledged_entries_leave_the_stream() {
    let stream = unique("trim");
    let q = on_stream(&stream).await;
    for i in 0..50 {
        q.publish(suite::delivery(i)).await.unwrap();
    }
    let got = q
        .receive("c", 100, Duration::from_millis(100))
        .await
        .unwrap();
    let receipts: Vec<_> = got.iter().map(|r| r.receipt).collect();
    q.ack(&receipts).await.unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut q.conn.clone())
        .await
        .unwrap();
    assert_eq!(len, 0, "acknowledged entries must not accumulate");
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut q.conn.clone())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_poison_entry_is_dead_lettered_and_the_rest_flows() {
    let stream = unique("poison");
    let q = on_stream(&stream).await;
    q.publish(suite::delivery(1)).await.unwrap();
    // Written by "another version": a format byte this one does not know, and garbage.
    for junk in [&[9u8, 1, 2][..], b"not bincode"] {
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("d")
            .arg(junk)
            .query_async(&mut q.conn.clone())
            .await
            .unwrap();
    }
    q.publish(suite::delivery(2)).await.unwrap();
    let got = q
        .receive("c", 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|r| r.delivery.id).collect::<Vec<_>>(),
        [1, 2],
        "the good entries around the bad ones are handed out"
    );
    assert_eq!(q.dead_lettered(), 2);
    let dead: Value = redis::cmd("XRANGE")
        .arg(format!("{stream}:dead"))
        .arg("-")
        .arg("+")
        .query_async(&mut q.conn.clone())
        .await
        .unwrap();
    let dead = items(dead).unwrap();
    assert_eq!(dead.len(), 2, "both kept with their reasons");
    let pending: Value = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("task")
        .query_async(&mut q.conn.clone())
        .await
        .unwrap();
    let count = match items(pending).unwrap().into_iter().next() {
        Some(Value::Int(n)) => n,
        other => panic!("{other:?}"),
    };
    assert_eq!(count, 2, "only the two good entries are pending");
    for key in [stream.clone(), format!("{stream}:dead")] {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut q.conn.clone())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_full_stream_makes_publish_fail_not_drop() {
    let q = RedisQueue::connect(RedisQueueConfig {
        url: redis_url(),
        stream: unique("full"),
        capacity: 3,
        publish_timeout: Duration::from_millis(200),
        ..RedisQueueConfig::default()
    })
    .await
    .unwrap();
    for i in 0..3 {
        q.publish(suite::delivery(i)).await.unwrap();
    }
    assert!(matches!(
        q.publish(suite::delivery(3)).await,
        Err(Error::QueueFull)
    ));
    let got = q
        .receive("c", 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|r| r.delivery.id).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    q.ack(&[got[0].receipt]).await.unwrap();
    q.publish(suite::delivery(3)).await.unwrap();
}
