//! Bucket sharding: what the bucket count costs or buys, for 1k / 10k / 100k channels.
//!
//! - `broadcast`: one room push to every channel, each frame then taken off its queue (the
//!   writer's part), while 2 threads keep adding and removing channels in other rooms.
//! - `churn`: 2 threads each add and remove 200 channels while another pushes to the room.
//!
//! `cargo bench --bench buckets`; results and the conclusion in docs/performance.md.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gochat::connect::{Channel, Framing, Hub, Outgoing};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BUCKETS: [usize; 5] = [1, 4, 16, 64, 256];
const CHANNELS: [usize; 3] = [1_000, 10_000, 100_000];

fn channel(id: u64, user: i64, room: i64) -> (Arc<Channel>, Outgoing) {
    let (c, rx) = Channel::new(
        id,
        user,
        format!("u{user}"),
        room,
        String::new(),
        Framing::WebSocket,
        16,
    );
    (Arc::new(c), rx)
}

fn populated(buckets: usize, n: usize) -> (Arc<Hub>, Vec<Outgoing>) {
    let hub = Arc::new(Hub::new(buckets));
    let rxs = (0..n)
        .map(|i| {
            let (c, rx) = channel(i as u64, i as i64, 1);
            hub.put(c);
            rx
        })
        .collect();
    (hub, rxs)
}

/// Threads that add and remove channels in room 2 until `stop`; returns how many ops.
fn churners(
    hub: &Arc<Hub>,
    threads: usize,
    stop: &Arc<AtomicBool>,
    ops: &Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|t| {
            let (hub, stop, ops) = (hub.clone(), stop.clone(), ops.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = 10_000_000 + (t as u64) * 1_000_000 + i;
                    let (c, _rx) = channel(id, id as i64, 2);
                    hub.put(c.clone());
                    hub.remove(&c);
                    i += 1;
                }
                ops.fetch_add(i, Ordering::Relaxed);
            })
        })
        .collect()
}

fn broadcast(c: &mut Criterion) {
    let mut g = c.benchmark_group("broadcast");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let payload = Bytes::from_static(br#"{"code":0,"msg":"hello","fromUserId":1,"fromUserName":"a","toUserId":0,"toUserName":"","roomId":1,"op":3,"createTime":"2026-11-26 19:31:32"}"#);
    for n in CHANNELS {
        g.throughput(Throughput::Elements(n as u64));
        for b in BUCKETS {
            let (hub, mut rxs) = populated(b, n);
            let stop = Arc::new(AtomicBool::new(false));
            let ops = Arc::new(AtomicU64::new(0));
            let threads = churners(&hub, 2, &stop, &ops);
            g.bench_with_input(BenchmarkId::new(format!("{n}"), b), &b, |bench, _| {
                bench.iter(|| {
                    assert_eq!(hub.push_room(1, &payload), n);
                    for rx in rxs.iter_mut() {
                        let _ = rx.try_recv();
                    }
                })
            });
            stop.store(true, Ordering::Relaxed);
            threads.into_iter().for_each(|t| t.join().unwrap_or(()));
        }
    }
    g.finish();
}

fn churn(c: &mut Criterion) {
    let mut g = c.benchmark_group("churn");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    const OPS: u64 = 200;
    g.throughput(Throughput::Elements(2 * OPS));
    let payload = Bytes::from_static(b"{}");
    for n in CHANNELS {
        for b in BUCKETS {
            let (hub, rxs) = populated(b, n);
            g.bench_with_input(BenchmarkId::new(format!("{n}"), b), &b, |bench, _| {
                bench.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let stop = Arc::new(AtomicBool::new(false));
                        let pusher = {
                            let (hub, stop, payload) = (hub.clone(), stop.clone(), payload.clone());
                            std::thread::spawn(move || {
                                while !stop.load(Ordering::Relaxed) {
                                    hub.push_room(1, &payload);
                                }
                            })
                        };
                        let start = Instant::now();
                        let workers: Vec<_> = (0..2u64)
                            .map(|t| {
                                let hub = hub.clone();
                                std::thread::spawn(move || {
                                    for i in 0..OPS {
                                        let id = 50_000_000 + t * 1_000_000 + i;
                                        let (c, _rx) = channel(id, id as i64, 3);
                                        hub.put(c.clone());
                                        hub.remove(&c);
                                    }
                                })
                            })
                            .collect();
                        workers.into_iter().for_each(|w| w.join().unwrap_or(()));
                        total += start.elapsed();
                        stop.store(true, Ordering::Relaxed);
                        pusher.join().unwrap_or(());
                    }
                    total
                })
            });
            drop(rxs);
        }
    }
    g.finish();
}

criterion_group!(benches, broadcast, churn);
criterion_main!(benches);
