//! Stored messages per second, SQLite against PostgreSQL from one and from two writers'
//! stores (each PostgreSQL store its own pool: what two logic instances are to the
//! database), same run, same load: `WRITERS` concurrent posters per store, each awaiting its
//! append before the next (as logic does per request), room messages over 8 rooms with one
//! private message in five.
//!
//! ```sh
//! GOCHAT_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --bench store_write --features postgres
//! ```
//! Prints one line per configuration; scripts/perf.sh runs it (PERF_TESTS=store).

#![allow(clippy::unwrap_used)]

use gochat::core::model::{NewMessage, User};
use gochat::core::{PostgresStore, SqliteStore, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

const WRITERS: usize = 64;
const SECONDS: u64 = 5;

fn url() -> String {
    std::env::var("GOCHAT_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn message(n: i64, writer: usize) -> NewMessage {
    static ID: AtomicI64 = AtomicI64::new(1);
    let from = User {
        id: writer as i64 + 1,
        name: format!("w{writer}"),
    };
    let to = (n % 5 == 0).then(|| User {
        id: (writer as i64 + 7) % WRITERS as i64 + 1,
        name: "peer".into(),
    });
    NewMessage {
        id: ID.fetch_add(1, Ordering::Relaxed) + (1 << 45),
        room_id: n % 8 + 1,
        from,
        to,
        msg: format!("message {n} from writer {writer}, about sixty bytes long….."),
        created_ms: 1_700_000_000_000 + n,
        client_id: Some(format!("{writer}-{n}")),
    }
}

/// Messages stored per second by `WRITERS` tasks on each of `stores`, and p50/p99 latency.
async fn load(stores: Vec<Arc<dyn Store>>) -> (f64, Duration, Duration) {
    let end = Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for w in 0..WRITERS {
            let store = store.clone();
            let writer = s * WRITERS + w;
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut n = 0i64;
                while Instant::now() < end {
                    let t = Instant::now();
                    store
                        .append(message(n, writer % WRITERS), Duration::from_secs(600))
                        .await
                        .expect("append");
                    lat.push(t.elapsed());
                    n += 1;
                }
                lat
            }));
        }
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (all.len() as f64 / secs, pct(0.5), pct(0.99))
}

async fn pg_store(schema: &str) -> Arc<dyn Store> {
    Arc::new(
        PostgresStore::open(&url(), schema, 16, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", url())),
    )
}

fn drop_schema(schema: &str) {
    let _ = std::process::Command::new("psql")
        .args([
            &url(),
            "-XAtqc",
            &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        ])
        .status();
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list; nothing to list.
    }
    let dir = tempfile::tempdir().unwrap();
    let report = |name: &str, (rate, p50, p99): (f64, Duration, Duration)| {
        println!(
            "{name:<28} {rate:>9.0} msgs/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    };
    println!("{WRITERS} writers per store, {SECONDS} s each, 8 rooms, one private in five");
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("b.db")).unwrap());
    report("sqlite, one store", load(vec![sqlite]).await);
    let schema = format!("gochat_bench_{}", std::process::id());
    report(
        "postgres, one store",
        load(vec![pg_store(&schema).await]).await,
    );
    drop_schema(&schema);
    let two = vec![pg_store(&schema).await, pg_store(&schema).await];
    report("postgres, two stores", load(two).await);
    drop_schema(&schema);
}
