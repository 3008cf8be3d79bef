//! Hash maps for the hot paths: foldhash instead of the standard SipHash, which was ~7 % of
//! the SQLite writer's instructions for a private message, and another ~3 % of the server's
//! in the sessions, the connect buckets and the task's routing (callgrind,
//! docs/performance.md). foldhash is seeded at random per process, so which keys a client
//! chooses (room ids, tokens) collide is not known from outside; it is not a keyed
//! cryptographic hash like SipHash, only the "minimal DoS resistance" its authors claim.

/// A `HashMap` hashed with foldhash.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A `DashMap` hashed with foldhash.
pub type FastDashMap<K, V> = dashmap::DashMap<K, V, foldhash::fast::RandomState>;
