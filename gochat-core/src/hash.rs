//! Hash maps for the hot paths: foldhash instead of the standard SipHash, which was 5–7 % of
//! the instructions of a private message across the writer, the sessions and the buckets
//! (callgrind, docs/performance.md). foldhash is seeded at random per process, so keys a
//! client chooses (room ids, tokens) still cannot be aimed at one bucket from outside.

/// A `HashMap` hashed with foldhash.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A `DashMap` hashed with foldhash.
pub type FastDashMap<K, V> = dashmap::DashMap<K, V, foldhash::fast::RandomState>;
