//! Snowflake message ids: 41 bits of milliseconds since [`EPOCH_MS`], 10 bits of node id,
//! 12 bits of sequence. Always positive in an `i64` (SQLite's INTEGER), strictly increasing
//! per generator even when the wall clock steps back, and unique across threads.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// 2020-01-01T00:00:00Z in Unix milliseconds: the zero of the timestamp bits.
pub const EPOCH_MS: i64 = 1_577_836_800_000;
const NODE_BITS: u32 = 10;
const SEQ_BITS: u32 = 12;
const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;
/// Largest node id a generator accepts.
pub const MAX_NODE: u16 = (1 << NODE_BITS) - 1;

/// A lock-free snowflake id generator. Share one per process (per node id).
#[derive(Debug)]
pub struct Snowflake {
    /// Node id already shifted into place.
    node_bits: i64,
    /// The last id handed out; the next one is always greater, which is what keeps ids
    /// monotonic when the clock steps back (we keep counting from the last timestamp).
    last: AtomicI64,
}

impl Snowflake {
    /// A generator for `node` (0..=[`MAX_NODE`]; larger values are masked).
    pub fn new(node: u16) -> Self {
        Self {
            node_bits: i64::from(node & MAX_NODE) << SEQ_BITS,
            last: AtomicI64::new(0),
        }
    }

    /// The next id, stamped with the current wall-clock time.
    pub fn next_id(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.next_at(now)
    }

    /// The next id as if the wall clock read `unix_ms` (time as an argument, for tests).
    pub fn next_at(&self, unix_ms: i64) -> i64 {
        let stamp = (unix_ms - EPOCH_MS).max(0);
        let fresh = (stamp << (NODE_BITS + SEQ_BITS)) | self.node_bits;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = if fresh > last {
                fresh
            } else if last & SEQ_MASK == SEQ_MASK {
                // Sequence exhausted in this millisecond (or the clock went back): borrow the
                // next millisecond rather than carry into the node bits.
                (((last >> (NODE_BITS + SEQ_BITS)) + 1) << (NODE_BITS + SEQ_BITS)) | self.node_bits
            } else {
                last + 1
            };
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

/// The Unix millisecond timestamp a snowflake id was minted at.
pub fn timestamp_ms(id: i64) -> i64 {
    (id >> (NODE_BITS + SEQ_BITS)) + EPOCH_MS
}

/// The smallest id a generator may mint at Unix millisecond `unix_ms`: every id minted
/// before it is smaller (a store finds the ids older than a time by this bound).
pub fn first_id_at(unix_ms: i64) -> i64 {
    (unix_ms - EPOCH_MS).max(0) << (NODE_BITS + SEQ_BITS)
}

/// The node id encoded in a snowflake id.
pub fn node_of(id: i64) -> u16 {
    ((id >> SEQ_BITS) & i64::from(MAX_NODE)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn ids_carry_time_and_node() {
        let g = Snowflake::new(7);
        let id = g.next_at(1_795_721_492_000);
        assert!(id > 0);
        assert_eq!(timestamp_ms(id), 1_795_721_492_000);
        assert_eq!(node_of(id), 7);
        assert!(first_id_at(1_795_721_492_000) <= id && id < first_id_at(1_795_721_492_001));
    }

    #[test]
    fn monotonic_when_clock_steps_back() {
        let g = Snowflake::new(1);
        let a = g.next_at(1_800_000_000_000);
        let b = g.next_at(1_700_000_000_000); // clock jumped back by ~3 years
        let c = g.next_at(1_800_000_000_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(node_of(b), 1);
    }

    #[test]
    fn sequence_overflow_borrows_next_millisecond_not_node_bits() {
        let g = Snowflake::new(3);
        let mut prev = 0;
        for _ in 0..10_000 {
            let id = g.next_at(1_800_000_000_000);
            assert!(id > prev);
            assert_eq!(node_of(id), 3);
            prev = id;
        }
        assert!(timestamp_ms(prev) > 1_800_000_000_000);
    }

    #[test]
    fn stays_positive_for_centuries() {
        // 41 bits of milliseconds is ~69 years past 2020; the i64 sign bit is never touched.
        let g = Snowflake::new(MAX_NODE);
        assert!(g.next_at(EPOCH_MS + (1 << 41) - 1) > 0);
    }

    #[test]
    fn unique_across_threads() {
        let g = Arc::new(Snowflake::new(2));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || (0..50_000).map(|_| g.next_id()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            let ids = h.join().expect("generator thread panicked");
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "per-thread order");
            for id in ids {
                assert!(all.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(all.len(), 200_000);
    }
}
