//! The history paths of the SQLite store (the standalone default), no server around them:
//!
//! - `history_write/<k>`: `k` appends awaited together — group commit takes them into one
//!   transaction, so `k` is the batch size; throughput is per message.
//! - `history_write_private/<k>`: the same for private messages between 1 000 users in
//!   scrambled pairs (the load tool's `private`): each is stored once and numbered in two
//!   inboxes, whose tails lie in different pages.
//! - `replay/<n>`: what a reconnecting client costs — the `n` messages after a seq, from a
//!   room log of 10 000, as the connect layer asks for them (`since`) — and the newest page.
//!
//! ```sh
//! cargo bench --bench history
//! ```

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gochat::core::model::{Log, NewMessage, Range, User};
use gochat::core::{SqliteStore, Store};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

static ID: AtomicI64 = AtomicI64::new(1);

fn message(room: i64) -> NewMessage {
    NewMessage {
        id: ID.fetch_add(1, Ordering::Relaxed),
        room_id: room,
        from: User {
            id: 1,
            name: "bench".into(),
        },
        to: None,
        msg: "a message of an ordinary length, some forty to eighty bytes".into(),
        created_ms: 0,
        client_id: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn history_write(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("write.db")).unwrap();
    let mut group = c.benchmark_group("history_write");
    for k in [1usize, 8, 64, 512] {
        group.throughput(Throughput::Elements(k as u64));
        group.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, &k| {
            b.to_async(&rt).iter(|| async {
                let appends =
                    (0..k).map(|i| store.append(message(1 + i as i64 % 8), Duration::ZERO));
                for r in futures::future::join_all(appends).await {
                    r.unwrap();
                }
            });
        });
    }
    group.finish();
}

/// Users in the private bench, as in the load tool's `private --users 1000`.
const USERS: i64 = 1000;

/// The `n`th private message: sender and recipient scrambled over [`USERS`], never the same.
fn private(n: i64) -> NewMessage {
    let from = n % USERS;
    let to = (from + 1 + n.wrapping_mul(0x9E37_79B9).rem_euclid(USERS - 1)) % USERS;
    let user = |id: i64| User {
        id: id + 1,
        name: format!("user{id}"),
    };
    NewMessage {
        to: Some(user(to)),
        from: user(from),
        ..message(1)
    }
}

fn history_write_private(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("private.db")).unwrap();
    let next = AtomicI64::new(0);
    let mut group = c.benchmark_group("history_write_private");
    for k in [1usize, 32, 256] {
        group.throughput(Throughput::Elements(k as u64));
        group.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, &k| {
            b.to_async(&rt).iter(|| async {
                let appends = (0..k).map(|_| {
                    let m = private(next.fetch_add(1, Ordering::Relaxed));
                    store.append(m, Duration::ZERO)
                });
                for r in futures::future::join_all(appends).await {
                    r.unwrap();
                }
            });
        });
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("replay.db")).unwrap();
    rt.block_on(async {
        for _ in 0..100 {
            let appends = (0..100).map(|_| store.append(message(1), Duration::ZERO));
            for r in futures::future::join_all(appends).await {
                r.unwrap();
            }
        }
    });
    let head = rt.block_on(store.last_seq(Log::Room(1))).unwrap();
    assert_eq!(head, 10_000);
    let mut group = c.benchmark_group("replay");
    for n in [50usize, 200] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("since", n), &n, |b, &n| {
            b.to_async(&rt).iter(|| async {
                let page = store
                    .read(Log::Room(1), Range::Since(head - n as u64), n)
                    .await
                    .unwrap();
                assert_eq!(page.messages.len(), n);
            });
        });
    }
    group.bench_function("latest/50", |b| {
        b.to_async(&rt)
            .iter(|| async { store.read(Log::Room(1), Range::Latest, 50).await.unwrap() });
    });
    group.finish();
}

criterion_group!(benches, history_write, history_write_private, replay);
criterion_main!(benches);
