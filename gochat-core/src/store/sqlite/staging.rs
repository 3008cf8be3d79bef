//! Inbox rows staged before they join the log.
//!
//! A private message is numbered in two inboxes, and once there are many users every inbox's
//! tail is a leaf page of its own in the `log` B-tree: each commit wrote two scattered pages
//! per private message to the WAL (whole, with a checksum, and again at the checkpoint) —
//! two thirds of the writer's time for a private message, measured against the same writes
//! to one log (docs/performance.md). So an inbox row goes first to `inbox_staged`, a table
//! small enough that a batch's rows share its pages. Once it holds [`MERGE_AT`] rows, they
//! move to `log` in one statement, in key order: an inbox that received several messages
//! meanwhile has its leaf written once for all of them.
//!
//! A row is in exactly one of the two tables in any snapshot (the move is one transaction),
//! so a reader of an inbox reads both in one read transaction. Retention merges first, so
//! it sees every row in `log`.

use crate::Result;
use rusqlite::{Connection, params};

/// Staged rows at which the writer moves them to `log`, before it commits. ~8 000 rows are
/// ~30 pages, so a batch of private messages dirties few of them; with 1 000 busy inboxes
/// each leaf then takes ~8 rows in one write.
pub const MERGE_AT: usize = 8192;

/// Stage inbox row (`user`, `seq`) → `msg_id`.
pub fn stage(conn: &Connection, user: i64, seq: u64, msg_id: i64) -> Result<()> {
    conn.prepare_cached("INSERT INTO inbox_staged (user_id, seq, msg_id) VALUES (?1, ?2, ?3)")?
        .execute(params![user, seq as i64, msg_id])?;
    Ok(())
}

/// Move every staged row to `log`, in the open transaction; how many moved.
pub fn merge(conn: &Connection) -> Result<usize> {
    // The staged table's key order is the log's (user, seq): the inserts walk each leaf once.
    let moved = conn
        .prepare_cached(
            "INSERT INTO log (kind, key, seq, msg_id)
             SELECT 1, user_id, seq, msg_id FROM inbox_staged ORDER BY user_id, seq",
        )?
        .execute([])?;
    conn.prepare_cached("DELETE FROM inbox_staged")?
        .execute([])?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use crate::model::{Log, NewMessage, Range, User};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Retention, Store};
    use std::time::Duration;

    fn private(id: i64, from: i64, to: i64) -> NewMessage {
        let user = |id: i64| User {
            id,
            name: format!("u{id}"),
        };
        NewMessage {
            id,
            room_id: 1,
            from: user(from),
            to: Some(user(to)),
            msg: format!("m{id}"),
            created_ms: id,
            client_id: None,
        }
    }

    /// Every message of `user`'s inbox, paged forward from 0 in pages of `limit`.
    async fn inbox(store: &SqliteStore, user: i64, limit: usize) -> Vec<(u64, i64)> {
        let (mut all, mut since) = (Vec::new(), 0);
        loop {
            let page = store
                .read(Log::Inbox(user), Range::Since(since), limit)
                .await
                .unwrap();
            all.extend(page.messages.iter().map(|m| (m.seq, m.msg_id)));
            since = all.last().map_or(0, |m| m.0);
            if !page.more {
                return all;
            }
        }
    }

    /// Enough private messages among four users to merge the staged rows several times,
    /// read while some of each inbox is merged and some staged, after a reopen, and after
    /// retention: every inbox holds exactly its messages, densely numbered, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inboxes_read_the_same_across_merges_reopens_and_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging.db");
        let store = SqliteStore::open(&path).unwrap();
        // Two inbox rows per message: past MERGE_AT twice and a half, so the end is staged.
        let n = (super::MERGE_AT as i64) * 5 / 4;
        // Each inbox's messages by the seq the store gave them (appends awaited together
        // are numbered in the order they were committed, not by id).
        let mut by_seq: Vec<std::collections::BTreeMap<u64, i64>> = vec![Default::default(); 5];
        let pair = |id: i64| (1 + id % 4, 1 + (id + 1 + id % 3) % 4);
        for chunk in (1..=n).collect::<Vec<_>>().chunks(256) {
            let appends = chunk.iter().map(|&id| {
                let (from, to) = pair(id);
                store.append(private(id, from, to), Duration::ZERO)
            });
            let stored = futures::future::join_all(appends).await;
            for (&id, r) in chunk.iter().zip(stored) {
                let (from, to) = pair(id);
                let r = r.unwrap();
                by_seq[from as usize].insert(r.seq, id);
                by_seq[to as usize].insert(r.peer_seq, id);
            }
        }
        // Both places hold rows now: some merged, the rest staged.
        let rows = |sql: &str| -> i64 {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        let merged = rows("SELECT count(*) FROM log WHERE kind = 1");
        let staged = rows("SELECT count(*) FROM inbox_staged");
        assert!(merged >= 2 * super::MERGE_AT as i64, "{merged} rows merged");
        assert!(
            staged > 0 && merged + staged == 2 * n,
            "{merged} merged, {staged} staged"
        );
        let mut expected: Vec<Vec<i64>> = by_seq
            .iter()
            .map(|m| m.values().copied().collect())
            .collect();
        let check = |got: Vec<(u64, i64)>, want: &[i64]| {
            let ids: Vec<i64> = got.iter().map(|m| m.1).collect();
            let first_wrong = ids.iter().zip(want).position(|(a, b)| a != b);
            assert!(
                ids.len() == want.len() && first_wrong.is_none(),
                "the inbox's messages, in order, once: {} read, {} stored, first difference at {first_wrong:?}",
                ids.len(),
                want.len()
            );
            assert!(
                got.iter().map(|m| m.0).eq(1..=want.len() as u64),
                "dense seqs"
            );
        };
        for user in 1..=4 {
            check(inbox(&store, user, 97).await, &expected[user as usize]);
            // The newest page, which straddles merged and staged rows.
            let latest = store
                .read(Log::Inbox(user), Range::Latest, 300)
                .await
                .unwrap();
            let want = &expected[user as usize];
            let ids: Vec<i64> = latest.messages.iter().map(|m| m.msg_id).collect();
            assert!(
                ids == want[want.len() - 300..],
                "the latest page of user {user}"
            );
            assert!(latest.more);
        }
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        for user in 1..=4 {
            check(inbox(&store, user, 1000).await, &expected[user as usize]);
            let head = store.last_seq(Log::Inbox(user)).await.unwrap();
            assert_eq!(head, expected[user as usize].len() as u64);
        }
        // One more message, staged, then retention down to 10 per inbox.
        store
            .append(private(n + 1, 1, 2), Duration::ZERO)
            .await
            .unwrap();
        expected[1].push(n + 1);
        expected[2].push(n + 1);
        let retention = Retention {
            max_per_log: 10,
            max_age: None,
            dedup_window: Duration::ZERO,
            batch: 100_000,
        };
        while store.prune(retention).await.unwrap() > 0 {}
        assert_eq!(
            rows("SELECT count(*) FROM inbox_staged"),
            0,
            "retention merges"
        );
        for user in 1..=4usize {
            let got = inbox(&store, user as i64, 1000).await;
            let want = &expected[user][expected[user].len() - 10..];
            let ids: Vec<i64> = got.iter().map(|m| m.1).collect();
            assert_eq!(ids, want, "user {user} keeps its newest 10");
            assert_eq!(got[0].0, expected[user].len() as u64 - 9, "seqs kept");
        }
    }
}
