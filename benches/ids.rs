//! Snowflake ids per second, on one thread and on four contending ones.
//! `cargo bench --bench ids`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gochat::core::ids::Snowflake;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn ids(c: &mut Criterion) {
    let mut g = c.benchmark_group("snowflake");
    g.throughput(Throughput::Elements(1));
    let one = Snowflake::new(1);
    g.bench_function("1 thread", |b| b.iter(|| one.next_id()));
    const THREADS: u64 = 4;
    g.throughput(Throughput::Elements(THREADS));
    g.bench_function("4 threads", |b| {
        b.iter_custom(|iters| {
            let generator = Arc::new(Snowflake::new(2));
            let start = Instant::now();
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let generator = generator.clone();
                    std::thread::spawn(move || {
                        for _ in 0..iters {
                            std::hint::black_box(generator.next_id());
                        }
                    })
                })
                .collect();
            handles.into_iter().for_each(|h| h.join().unwrap_or(()));
            let d: Duration = start.elapsed();
            d
        })
    });
    g.finish();
}

criterion_group!(benches, ids);
criterion_main!(benches);
