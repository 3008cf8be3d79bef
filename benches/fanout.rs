//! In-process end to end, without sockets: `push_room` → logic → MemoryQueue → task →
//! connect's hub (over the in-process tarpc transport) → N channel queues, every frame
//! taken off its queue. `cargo bench --bench fanout`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gochat::connect::{Channel, Framing, Hub, Outgoing};
use gochat::core::config::{LogicConfig, QueueConfig, TaskConfig};
use gochat::core::model::Presence;
use gochat::core::registry::{Instance, Kind};
use gochat::core::rpc::{LogicService, RoomPushRequest};
use gochat::core::{
    LocalTransport, MemoryQueue, MemoryRegistry, MemorySessions, Peers, Registry, Sessions,
    SqliteStore, Transport,
};
use gochat::logic::Logic;
use gochat::task::Task;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const MESSAGES: usize = 100;

struct Rig {
    logic: Arc<Logic>,
    token: String,
    receivers: Vec<Outgoing>,
    stop: CancellationToken,
}

async fn rig(members: usize) -> Rig {
    let sessions = Arc::new(MemorySessions::new());
    let queue = Arc::new(MemoryQueue::new(&QueueConfig::default()));
    let registry = Arc::new(MemoryRegistry::new());
    let transport = Arc::new(LocalTransport::new());
    let config = LogicConfig {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        demo_users: false,
        ..LogicConfig::default()
    };
    let store = Arc::new(SqliteStore::in_memory().unwrap_or_else(|e| panic!("{e}")));
    let logic = Arc::new(
        Logic::new(config, store, sessions.clone(), queue.clone())
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let token = logic
        .register("sender".into(), "pw".into())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stop = CancellationToken::new();
    let hub = Arc::new(Hub::new(32));
    let mut receivers = Vec::new();
    for i in 0..members {
        let (c, rx) = Channel::new(
            i as u64,
            i as i64 + 100,
            format!("u{i}"),
            1,
            String::new(),
            Framing::WebSocket,
            4 * MESSAGES,
        );
        hub.put(Arc::new(c));
        receivers.push(rx);
        sessions
            .join(&Presence {
                server_id: "c1".into(),
                user_id: i as i64 + 100,
                user_name: format!("u{i}"),
                room_id: 1,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let addr = transport
        .serve_connect("c1", hub, stop.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    registry
        .register(Instance {
            kind: Kind::Connect,
            id: "c1".into(),
            addr,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let t: Arc<dyn Transport> = transport;
    let peers = Arc::new(
        Peers::new(registry.as_ref(), t)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    tokio::spawn(Task::new(TaskConfig::default(), queue, sessions, peers).run(stop.clone()));
    Rig {
        logic,
        token,
        receivers,
        stop,
    }
}

fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("in-process fan-out");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for members in [100usize, 1_000, 5_000] {
        g.throughput(Throughput::Elements((members * MESSAGES) as u64));
        let mut r = rt.block_on(rig(members));
        g.bench_with_input(BenchmarkId::new("deliveries", members), &members, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        for i in 0..MESSAGES {
                            let req = RoomPushRequest {
                                token: r.token.clone(),
                                room_id: 1,
                                msg: format!("m{i}"),
                                ..RoomPushRequest::default()
                            };
                            r.logic
                                .push_room(req)
                                .await
                                .unwrap_or_else(|e| panic!("{e}"));
                        }
                        for rx in r.receivers.iter_mut() {
                            for _ in 0..MESSAGES {
                                rx.recv().await;
                            }
                        }
                    }
                    start.elapsed()
                })
            })
        });
        r.stop.cancel();
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
