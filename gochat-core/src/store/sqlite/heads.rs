//! The head (last seq) of a log, as the file holds it.
//!
//! Writing every log's head back to `log_heads` in every commit was a quarter of the writer's
//! instructions for a private message (two upserts, docs/performance.md), so the writer keeps
//! the heads in memory and saves them only now and then (see `writer.rs`). What the file says
//! about a log's head is then the largest of its saved head and the seqs of its rows, in
//! `log` and, for an inbox, `inbox_staged`: a head saved late (or lost with a crash) is still
//! covered by the rows. Rows only ever go by retention, which saves the head of every log it
//! removes rows from first, so a seq is never handed out twice.

use crate::Result;
use crate::model::Log;
use rusqlite::{Connection, params};

/// `(kind, key)` of a log in the `log` and `log_heads` tables.
pub fn log_key(log: Log) -> (i64, i64) {
    match log {
        Log::Room(r) => (0, r),
        Log::Inbox(u) => (1, u),
    }
}

/// The log of a `(kind, key)` pair.
pub fn log_of(kind: i64, key: i64) -> Log {
    if kind == 0 {
        Log::Room(key)
    } else {
        Log::Inbox(key)
    }
}

/// The newest seq of `log` in the file (0 for a log never written).
pub fn stored(conn: &Connection, log: Log) -> Result<u64> {
    let (kind, key) = log_key(log);
    // Each part is one seek to the end of a primary key's range.
    let head: i64 = conn
        .prepare_cached(
            "SELECT max(
                 coalesce((SELECT last_seq FROM log_heads WHERE kind = ?1 AND key = ?2), 0),
                 coalesce((SELECT max(seq) FROM log WHERE kind = ?1 AND key = ?2), 0),
                 coalesce((SELECT max(seq) FROM inbox_staged WHERE ?1 = 1 AND user_id = ?2), 0))",
        )?
        .query_row(params![kind, key], |r| r.get(0))?;
    Ok(head as u64)
}

/// Save `seq` as the head of `log`, unless a larger one is saved (another process's).
pub fn save(conn: &Connection, log: Log, seq: u64) -> Result<()> {
    let (kind, key) = log_key(log);
    conn.prepare_cached(
        "INSERT INTO log_heads (kind, key, last_seq) VALUES (?1, ?2, ?3)
         ON CONFLICT (kind, key) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
    )?
    .execute(params![kind, key, seq as i64])?;
    Ok(())
}
