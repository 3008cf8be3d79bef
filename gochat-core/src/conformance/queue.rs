use crate::config::QueueConfig;
use crate::model::{Delivery, PushKind, Target};
use crate::queue::Queue;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A delivery with id `id` for room 1 whose payload names the id.
pub fn delivery(id: i64) -> Delivery {
    Delivery::new(
        id,
        Target::Room(1),
        PushKind::Message,
        format!("{{\"n\":{id}}}"),
    )
}

const LONG_IDLE: QueueConfig = QueueConfig {
    capacity: 10_000,
    claim_idle_ms: 60_000,
};

/// Run every queue check against fresh queues from `make`.
pub async fn run_all<Q, F, Fut>(make: F)
where
    Q: Queue,
    F: Fn(QueueConfig) -> Fut,
    Fut: Future<Output = Q>,
{
    in_order_once(make(LONG_IDLE).await).await;
    depth_counts_held_and_pending(make(LONG_IDLE).await).await;
    max_is_respected(make(LONG_IDLE).await).await;
    receive_wakes_on_publish(Arc::new(make(LONG_IDLE).await)).await;
    unacked_is_redelivered_to_another_consumer(
        make(QueueConfig {
            capacity: 100,
            claim_idle_ms: 200,
        })
        .await,
    )
    .await;
    consumers_share_without_duplicates(Arc::new(make(LONG_IDLE).await)).await;
    dead_letters_leave_the_queue(
        make(QueueConfig {
            capacity: 100,
            claim_idle_ms: 200,
        })
        .await,
    )
    .await;
}

async fn in_order_once<Q: Queue>(q: Q) {
    for id in 1..=5 {
        q.publish(delivery(id)).await.unwrap();
    }
    let got = q.receive("a", 10, Duration::from_secs(1)).await.unwrap();
    let ids: Vec<i64> = got.iter().map(|r| r.delivery.id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5], "publish order");
    assert_eq!(got[2].delivery, delivery(3), "payload intact");
    let receipts: Vec<_> = got.iter().map(|r| r.receipt).collect();
    q.ack(&receipts).await.unwrap();
    q.ack(&receipts).await.unwrap(); // a repeated ack is harmless
    let more = q
        .receive("a", 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(
        more.is_empty(),
        "acknowledged deliveries come back: {more:?}"
    );
}

async fn depth_counts_held_and_pending<Q: Queue>(q: Q) {
    use crate::queue::Depth;
    assert_eq!(q.depth().await.unwrap(), Depth::default());
    for id in 1..=3 {
        q.publish(delivery(id)).await.unwrap();
    }
    assert_eq!(
        q.depth().await.unwrap(),
        Depth {
            held: 3,
            pending: 0
        }
    );
    let got = q.receive("a", 2, Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        q.depth().await.unwrap(),
        Depth {
            held: 3,
            pending: 2
        }
    );
    q.ack(&[got[0].receipt]).await.unwrap();
    assert_eq!(
        q.depth().await.unwrap(),
        Depth {
            held: 2,
            pending: 1
        }
    );
}

async fn max_is_respected<Q: Queue>(q: Q) {
    for id in 1..=7 {
        q.publish(delivery(id)).await.unwrap();
    }
    let a = q.receive("a", 3, Duration::from_secs(1)).await.unwrap();
    let b = q.receive("a", 10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(
        b.iter().map(|r| r.delivery.id).collect::<Vec<_>>(),
        [4, 5, 6, 7]
    );
}

async fn receive_wakes_on_publish<Q: Queue>(q: Arc<Q>) {
    let q2 = q.clone();
    let waiter = tokio::spawn(async move { q2.receive("a", 10, Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    q.publish(delivery(42)).await.unwrap();
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].delivery.id, 42);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "receive waited for its deadline instead of waking"
    );
}

async fn unacked_is_redelivered_to_another_consumer<Q: Queue>(q: Q) {
    q.publish(delivery(9)).await.unwrap();
    let first = q.receive("dead", 10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    // "dead" never acknowledges; after the claim-idle time "alive" gets the same delivery.
    let mut second = Vec::new();
    for _ in 0..20 {
        second = q
            .receive("alive", 10, Duration::from_millis(200))
            .await
            .unwrap();
        if !second.is_empty() {
            break;
        }
    }
    assert_eq!(second.len(), 1, "unacknowledged delivery was lost");
    assert_eq!(second[0].delivery, delivery(9), "redelivery keeps the id");
    assert_eq!(first[0].deliveries, 1, "first hand-out");
    assert_eq!(second[0].deliveries, 2, "redeliveries are counted");
    q.ack(&[second[0].receipt]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = q
        .receive("alive", 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        third.is_empty(),
        "acknowledged delivery came back: {third:?}"
    );
}

async fn consumers_share_without_duplicates<Q: Queue>(q: Arc<Q>) {
    const N: i64 = 1000;
    let consumers: Vec<_> = ["c1", "c2", "c3"]
        .into_iter()
        .map(|name| {
            let q = q.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let got = q
                        .receive(name, 64, Duration::from_millis(500))
                        .await
                        .unwrap();
                    if got.is_empty() {
                        return seen;
                    }
                    let receipts: Vec<_> = got.iter().map(|r| r.receipt).collect();
                    seen.extend(got.into_iter().map(|r| r.delivery.id));
                    q.ack(&receipts).await.unwrap();
                }
            })
        })
        .collect();
    for id in 1..=N {
        q.publish(delivery(id)).await.unwrap();
    }
    let mut all = HashSet::new();
    for c in consumers {
        for id in c.await.unwrap() {
            assert!(all.insert(id), "delivery {id} handed out twice");
        }
    }
    assert_eq!(all.len() as i64, N, "deliveries lost");
}

async fn dead_letters_leave_the_queue<Q: Queue>(q: Q) {
    for id in [1, 2] {
        q.publish(delivery(id)).await.unwrap();
    }
    let got = q.receive("a", 10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got.len(), 2);
    let before = q.dead_lettered();
    q.dead_letter(&[(got[0].receipt, "failed for good".into())])
        .await
        .unwrap();
    q.ack(&[got[1].receipt]).await.unwrap();
    assert_eq!(q.dead_lettered(), before + 1);
    // Past the claim-idle time neither comes back.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = q
        .receive("b", 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(again.is_empty(), "a dead letter came back: {again:?}");
    // Dead-lettering twice, or an unknown receipt, is harmless.
    q.dead_letter(&[(got[0].receipt, "again".into())])
        .await
        .unwrap();
    assert_eq!(q.dead_lettered(), before + 1);
}
