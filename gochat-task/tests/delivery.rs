//! The task layer's promise, against real queue, sessions, registry and transport (the
//! embedded ones) and connect services that fail the way real ones do: nothing is
//! acknowledged before it is delivered, a slow or briefly unregistered server gets
//! everything in order once it answers, a dead one is let go, a hopeless entry is
//! dead-lettered.
#![allow(clippy::unwrap_used, missing_docs)]

use async_trait::async_trait;
use gochat_core::config::{QueueConfig, TaskConfig};
use gochat_core::model::{Delivery, Presence, PushKind, Target};
use gochat_core::registry::{Instance, Kind};
use gochat_core::rpc::{ConnectService, Fault};
use gochat_core::{
    LocalTransport, MemoryQueue, MemoryRegistry, MemorySessions, Peers, Queue, Registry, Sessions,
    Transport,
};
use gochat_task::Task;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A connect server that refuses its first `failures` calls, then records what it gets.
struct Flaky {
    failures: AtomicUsize,
    got: Mutex<Vec<i64>>,
}

impl Flaky {
    fn new(failures: usize) -> Arc<Self> {
        Arc::new(Self {
            failures: AtomicUsize::new(failures),
            got: Mutex::default(),
        })
    }
    fn got(&self) -> Vec<i64> {
        self.got.lock().unwrap().clone()
    }
}

#[async_trait]
impl ConnectService for Flaky {
    async fn deliver(&self, deliveries: Vec<Delivery>) -> Result<(), Fault> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Fault::Unavailable("busy".into()));
        }
        self.got
            .lock()
            .unwrap()
            .extend(deliveries.iter().map(|d| d.id));
        Ok(())
    }
}

struct Rig {
    queue: Arc<MemoryQueue>,
    sessions: Arc<MemorySessions>,
    registry: Arc<MemoryRegistry>,
    transport: Arc<LocalTransport>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<gochat_task::Counters>,
}

const CLAIM_IDLE_MS: u64 = 300;

async fn rig(max_deliveries: u32) -> Rig {
    let queue = Arc::new(MemoryQueue::new(&QueueConfig {
        capacity: 10_000,
        claim_idle_ms: CLAIM_IDLE_MS,
    }));
    let sessions = Arc::new(MemorySessions::new());
    let registry = Arc::new(MemoryRegistry::new());
    let transport = Arc::new(LocalTransport::new());
    let peers = Arc::new(
        Peers::new(registry.as_ref(), transport.clone())
            .await
            .unwrap(),
    );
    let config = TaskConfig {
        max_deliveries,
        ..TaskConfig::default()
    };
    let task = Task::new(config, queue.clone(), sessions.clone(), peers);
    let counters = task.counters();
    let stop = CancellationToken::new();
    let handle = tokio::spawn(task.run(stop.clone()));
    Rig {
        queue,
        sessions,
        registry,
        transport,
        stop,
        task: handle,
        counters,
    }
}

impl Rig {
    async fn serve(&self, id: &str, service: Arc<dyn ConnectService>) {
        let addr = self
            .transport
            .serve_connect(id, service, CancellationToken::new())
            .await
            .unwrap();
        self.registry
            .register(Instance {
                kind: Kind::Connect,
                id: id.into(),
                addr,
            })
            .await
            .unwrap();
    }

    /// `server` holds user `user` in room 1, with a presence lease of `ttl`.
    async fn present(&self, server: &str, user: i64, ttl: Duration) {
        let p = Presence {
            server_id: server.into(),
            user_id: user,
            user_name: format!("u{user}"),
            room_id: 1,
        };
        self.sessions.sync_server(server, &[p], ttl).await.unwrap();
    }

    async fn publish(&self, ids: std::ops::Range<i64>) {
        for id in ids {
            self.queue
                .publish(Delivery::new(
                    id,
                    Target::Room(1),
                    PushKind::Message,
                    bytes::Bytes::new(),
                ))
                .await
                .unwrap();
        }
    }

    /// Whether nothing is left in the queue: no entry ready, none unacknowledged (after
    /// the claim-idle time a pending one would be handed out again).
    async fn drained(&self) -> bool {
        tokio::time::sleep(Duration::from_millis(CLAIM_IDLE_MS + 100)).await;
        self.queue
            .receive("probe", 100, Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty()
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out: {what}");
}

#[tokio::test]
async fn a_refusing_server_gets_everything_in_order_once_it_answers() {
    let r = rig(10).await;
    let flaky = Flaky::new(4);
    r.serve("c1", flaky.clone()).await;
    r.present("c1", 1, Duration::from_secs(60)).await;
    r.publish(0..100).await;
    eventually("all 100 delivered", || flaky.got().len() >= 100).await;
    assert_eq!(flaky.got(), (0..100).collect::<Vec<_>>(), "in order, once");
    assert!(r.counters.retries.load(Ordering::Relaxed) >= 4);
    r.stop().await;
}

#[tokio::test]
async fn nothing_is_acknowledged_before_it_is_delivered() {
    let r = rig(10).await;
    // Registered and alive, but refusing for longer than the test looks.
    let flaky = Flaky::new(usize::MAX);
    r.serve("c1", flaky.clone()).await;
    r.present("c1", 1, Duration::from_secs(60)).await;
    r.publish(0..5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queue = r.queue.clone();
    r.stop().await;
    // The worker stopped without delivering: every entry is still in the queue.
    tokio::time::sleep(Duration::from_millis(CLAIM_IDLE_MS + 100)).await;
    let left = queue
        .receive("next", 100, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(left.len(), 5, "unacknowledged entries are handed out again");
}

#[tokio::test]
async fn a_server_missing_from_the_registry_for_a_while_is_waited_for() {
    let r = rig(10).await;
    // Alive (its presence lease holds) but not registered: an etcd blip.
    r.present("c1", 1, Duration::from_secs(60)).await;
    r.publish(0..10).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let flaky = Flaky::new(0);
    r.serve("c1", flaky.clone()).await;
    eventually("delivered once it is back", || flaky.got().len() >= 10).await;
    assert_eq!(flaky.got(), (0..10).collect::<Vec<_>>());
    assert!(r.drained().await, "acknowledged after delivery");
    r.stop().await;
}

#[tokio::test]
async fn a_dead_server_is_let_go_and_the_others_are_served() {
    let r = rig(10).await;
    let dead = Flaky::new(usize::MAX);
    let alive = Flaky::new(0);
    r.serve("dead", dead.clone()).await;
    r.serve("alive", alive.clone()).await;
    r.present("dead", 1, Duration::from_millis(300)).await;
    r.present("alive", 2, Duration::from_secs(60)).await;
    r.publish(0..20).await;
    eventually("the live server is served meanwhile", || {
        alive.got().len() >= 20
    })
    .await;
    // Once the dead server's lease lapses its part is let go and the entries acknowledged.
    eventually("let go", || {
        r.counters.abandoned_dead_server.load(Ordering::Relaxed) >= 20
    })
    .await;
    assert!(r.drained().await);
    assert!(dead.got().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn an_entry_handed_out_too_often_is_dead_lettered() {
    let mut r = rig(3).await;
    r.stop.cancel(); // this test feeds the queue to a second worker below
    (&mut r.task).await.unwrap();
    r.publish(7..8).await;
    // Three workers take it and die without acknowledging.
    for i in 0..3 {
        let got = r
            .queue
            .receive(&format!("dying-{i}"), 10, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        tokio::time::sleep(Duration::from_millis(CLAIM_IDLE_MS + 50)).await;
    }
    let peers = Arc::new(
        Peers::new(r.registry.as_ref(), r.transport.clone())
            .await
            .unwrap(),
    );
    let task = Task::new(
        TaskConfig {
            max_deliveries: 3,
            ..TaskConfig::default()
        },
        r.queue.clone(),
        r.sessions.clone(),
        peers,
    );
    let stop = CancellationToken::new();
    let worker = tokio::spawn(task.run(stop.clone()));
    let q = r.queue.clone();
    eventually("dead-lettered", || q.dead_lettered() == 1).await;
    let dead = r.queue.dead_letters();
    assert_eq!(dead[0].0.id, 7);
    assert!(dead[0].1.contains("4 times"), "{}", dead[0].1);
    stop.cancel();
    worker.await.unwrap();
}
