//! Inbox rows staged before they join the log.
//!
//! A private message is numbered in two inboxes, and once there are many users every inbox's
//! tail is a leaf page of its own in the `log` B-tree: each commit wrote two scattered pages
//! per private message to the WAL (whole, with a checksum, and again at the checkpoint) —
//! two thirds of the writer's time for a private message, measured against the same writes
//! to one log (docs/performance.md). So an inbox row goes first to `inbox_staged`, a table
//! small enough that a batch's rows share its pages. Once it holds [`MERGE_AT`] rows, the
//! next [`MERGE_CHUNK`] of them in key order move to `log` in one statement, each commit
//! taking the users after the last one's (a sweep that wraps around): an inbox that received
//! several messages since the sweep last passed it has its leaf written once for all of
//! them. Moving all of them at once wrote ~1 000 leaves in one commit, and that commit's
//! wait was the private p99 (docs/performance.md).
//!
//! A row is in exactly one of the two tables in any snapshot (the move is one transaction),
//! so a reader of an inbox reads both in one read transaction. Retention merges first, so
//! it sees every row in `log`.

use crate::Result;
use rusqlite::{Connection, OptionalExtension, params};

/// Staged rows at which the writer starts moving them to `log`, before it commits. ~8 000
/// rows are ~30 pages, so a batch of private messages dirties few of them; with 1 000 busy
/// inboxes each leaf then takes ~8 rows in one write.
pub const MERGE_AT: usize = 8192;

/// Staged rows one commit moves at most (more when one user alone has more): a quarter of
/// a sweep, so that no commit writes more than a quarter of the inboxes' leaves.
pub const MERGE_CHUNK: usize = MERGE_AT / 4;

/// The staged rows, carried by the writer from one transaction to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Staged {
    /// Rows in `inbox_staged`.
    pub rows: usize,
    /// The user the next partial merge starts at.
    pub sweep_from: i64,
}

/// Where a sweep starts: before every user id.
const SWEEP_START: i64 = i64::MIN;

impl Default for Staged {
    /// Nothing staged, the sweep at its start.
    fn default() -> Self {
        Self {
            rows: 0,
            sweep_from: SWEEP_START,
        }
    }
}

/// Move the staged rows of users `from..=through` to `log`, in the open transaction; how
/// many moved.
fn move_users(conn: &Connection, from: i64, through: i64) -> Result<usize> {
    // The staged table's key order is the log's (user, seq): the inserts walk each leaf once.
    let moved = conn
        .prepare_cached(
            "INSERT INTO log (kind, key, seq, msg_id)
             SELECT 1, user_id, seq, msg_id FROM inbox_staged
             WHERE user_id BETWEEN ?1 AND ?2 ORDER BY user_id, seq",
        )?
        .execute(params![from, through])?;
    conn.prepare_cached("DELETE FROM inbox_staged WHERE user_id BETWEEN ?1 AND ?2")?
        .execute(params![from, through])?;
    Ok(moved)
}

/// Move every staged row to `log`, in the open transaction.
pub fn merge_all(conn: &Connection) -> Result<Staged> {
    move_users(conn, SWEEP_START, i64::MAX)?;
    Ok(Staged::default())
}

/// Move the next [`MERGE_CHUNK`] staged rows of the sweep to `log`, in the open transaction,
/// and the rest of the last user's (whole users only); what is staged afterwards.
pub fn merge_some(conn: &Connection, staged: Staged) -> Result<Staged> {
    let from = staged.sweep_from;
    // The user of the chunk's last row; none when the chunk reaches the end.
    let last: Option<i64> = conn
        .prepare_cached(
            "SELECT user_id FROM inbox_staged WHERE user_id >= ?1
             ORDER BY user_id, seq LIMIT 1 OFFSET ?2",
        )?
        .query_row(params![from, MERGE_CHUNK as i64 - 1], |r| r.get(0))
        .optional()?;
    let moved = move_users(conn, from, last.unwrap_or(i64::MAX))?;
    Ok(Staged {
        rows: staged.rows.saturating_sub(moved),
        // Past the end, the sweep starts over.
        sweep_from: last.and_then(|u| u.checked_add(1)).unwrap_or(SWEEP_START),
    })
}

#[cfg(test)]
mod tests {
    use crate::model::{Log, NewMessage, Range};
    use crate::store::sqlite::SqliteStore;
    use crate::store::sqlite::tests::message;
    use crate::store::{Retention, Store};
    use std::time::Duration;

    fn private(id: i64, from: i64, to: i64) -> NewMessage {
        message(id, id, from, Some(to))
    }

    /// Partial merges move a chunk and the rest of its last user (never part of a user),
    /// sweep over the users, and start over past the last one.
    #[test]
    fn partial_merges_sweep_whole_users_and_wrap_around() {
        use super::{MERGE_CHUNK, SWEEP_START, Staged, merge_some};
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::sqlite::schema::migrate(&conn).unwrap();
        // What the writer's `Batch::stage` does.
        let stage_n = |user: i64, seqs: std::ops::RangeInclusive<u64>| {
            for seq in seqs {
                conn.execute(
                    "INSERT INTO inbox_staged (user_id, seq, msg_id) VALUES (?1, ?2, ?3)",
                    rusqlite::params![user, seq as i64, user * 100_000 + seq as i64],
                )
                .unwrap();
            }
        };
        // Users 1..=40 with 100 rows each, then user 41 with more than a chunk.
        let big = MERGE_CHUNK as u64 + 5;
        (1..=40).for_each(|u| stage_n(u, 1..=100));
        stage_n(41, 1..=big);
        let count = |sql: &str, user: i64| -> usize {
            conn.query_row(sql, [user], |r| r.get::<_, i64>(0)).unwrap() as usize
        };
        let in_log = |u| count("SELECT count(*) FROM log WHERE kind = 1 AND key = ?1", u);
        let staged_rows = || count("SELECT count(*) FROM inbox_staged WHERE ?1 = ?1", 0);
        let total = 4000 + big as usize;
        let at = |rows, sweep_from| Staged { rows, sweep_from };
        let mut staged = at(total, SWEEP_START);
        // The chunk's last row is user 21's 48th: users 1..=21 move, whole.
        staged = merge_some(&conn, staged).unwrap();
        assert_eq!(staged, at(total - 2100, 22));
        assert_eq!((in_log(21), in_log(22)), (100, 0));
        // From 22: its chunk ends in user 41, who moves whole with it.
        staged = merge_some(&conn, staged).unwrap();
        assert_eq!(staged, at(0, 42));
        assert_eq!(staged_rows(), 0);
        assert_eq!(in_log(41), big as usize);
        // Rows staged again before the sweep's position: reached once it starts over.
        stage_n(1, 101..=101);
        stage_n(41, big + 1..=2 * big);
        staged.rows = 1 + big as usize;
        staged = merge_some(&conn, staged).unwrap();
        assert_eq!(
            staged.sweep_from, SWEEP_START,
            "nothing at 42 or after: the end"
        );
        assert_eq!(staged.rows, 1 + big as usize);
        // User 1 alone is less than a chunk, so user 41 moves with it, all of it.
        staged = merge_some(&conn, staged).unwrap();
        assert_eq!(staged, at(0, 42));
        assert_eq!((in_log(1), in_log(41)), (101, 2 * big as usize));
        // One user with more than a chunk moves alone.
        stage_n(40, 101..=100 + big);
        stage_n(41, 2 * big + 1..=2 * big + 10);
        staged = at(big as usize + 10, 40);
        staged = merge_some(&conn, staged).unwrap();
        assert_eq!(staged, at(10, 41));
        assert_eq!(in_log(40), 100 + big as usize);
        assert_eq!(staged_rows(), 10);
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
        // Two inbox rows per message, 2.5 × MERGE_AT: several sweeps' merges, the end staged.
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
        assert!(merged >= super::MERGE_AT as i64, "{merged} rows merged");
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
