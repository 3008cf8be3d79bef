//! How every connection to the store's file is opened: the writer's, the checkpointer's and
//! the readers'.

use crate::Result;
use rusqlite::Connection;
use rusqlite::config::DbConfig;
use std::path::Path;
use std::time::Duration;

/// A connection to the file at `path`, with the settings every one of ours has.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // WAL lets readers proceed during a write; NORMAL sync is durable across a process
    // crash (not across power loss of the last transaction), the usual WAL trade-off.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // The WAL file is cut back to this when it starts over (checkpoint.rs).
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // One plan per statement, whatever the values bound to it. Without this the bundled
    // SQLite (built with STAT4) compiled every statement over a prefix of `log`'s or
    // `inbox_staged`'s key again each time it was bound: every history page, every log
    // head looked up. Each of our statements has one plan anyway: a primary key's range.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // The writer alone has ~25 statements (messages, staging, heads, users, sessions,
    // retention); rusqlite's default of 16 would evict and compile them again by turns.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    /// A history page's statement is compiled once, not again at every binding (the
    /// bundled SQLite re-planned each one for its bound values: ~25 µs of a 50-message
    /// page, `benches/history.rs`).
    #[test]
    fn statements_are_planned_once_whatever_is_bound_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("plan.db")).unwrap();
        super::super::schema::migrate(&conn).unwrap();
        let sql = "SELECT seq FROM log WHERE kind = ?1 AND key = ?2 AND seq > ?3
                   ORDER BY seq LIMIT ?4";
        for n in 0..5i64 {
            let mut st = conn.prepare_cached(sql).unwrap();
            let rows: Vec<i64> = st
                .query_map(params![1, n, n, 10], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(rows.is_empty());
        }
        let st = conn.prepare_cached(sql).unwrap();
        let replanned = st.get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(replanned, 0, "compiled again {replanned} times");
    }
}
