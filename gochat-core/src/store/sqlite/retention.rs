//! Retention in bounded steps: messages past their age, logs past their length, client ids
//! past the dedup window.
//!
//! A message row carries its seqs (schema version 5), so its log rows are found by their
//! keys, and whether anything still refers to it by looking those keys up. Two indexes did
//! this before, one from a log row to its message and one on the messages' time, and every
//! append paid for them (three B-tree inserts a private message; docs/performance.md);
//! old messages are now found by their ids, which are snowflakes and carry their time.

use super::heads;
use super::writer::Batch;
use crate::Result;
use crate::store::Retention;
use rusqlite::{Connection, OptionalExtension, params};

/// A row of `log`: (kind, key, seq).
type Key = (i64, i64, i64);

/// Where a message row says it is.
struct Placed {
    id: i64,
    room_id: i64,
    from_id: i64,
    to_id: Option<i64>,
    seq: i64,
    peer_seq: i64,
}

const PLACED: &str = "SELECT id, room_id, from_id, to_id, seq, peer_seq FROM history";

fn placed(r: &rusqlite::Row<'_>) -> rusqlite::Result<Placed> {
    Ok(Placed {
        id: r.get(0)?,
        room_id: r.get(1)?,
        from_id: r.get(2)?,
        to_id: r.get(3)?,
        seq: r.get(4)?,
        peer_seq: r.get(5)?,
    })
}

impl Placed {
    /// The keys of its log rows: its room's, or both inboxes' (one, sent to oneself). A
    /// seq of 0 is a row gone before the seqs were kept in the message (version 4).
    fn keys(&self) -> Vec<Key> {
        let mut keys = match self.to_id {
            None => vec![(0, self.room_id, self.seq)],
            Some(to) if to == self.from_id => vec![(1, to, self.seq)],
            Some(to) => vec![(1, self.from_id, self.seq), (1, to, self.peer_seq)],
        };
        keys.retain(|k| k.2 > 0);
        keys
    }
}

/// One bounded step of retention at `now_ms` (see `Store::prune`). It merges the staged inbox
/// rows first, so that every row is in the log it reads.
pub fn prune(conn: &Connection, writes: &mut Batch, r: &Retention, now_ms: i64) -> Result<u64> {
    writes.merge_staged(conn)?;
    // `log_heads` holds every head from here on, for the long logs' query below.
    writes.save_heads(conn)?;
    let batch = r.batch.max(1) as u64;
    let mut removed = 0;
    if let Some(age) = r.max_age {
        removed += drop_older_than(conn, writes, now_ms - age.as_millis() as i64, batch)?;
    }
    if r.max_per_log > 0 && removed < batch {
        removed += shorten_logs(conn, writes, r.max_per_log, batch - removed)?;
    }
    let ids = conn
        .prepare_cached(
            "DELETE FROM client_ids WHERE (user_id, client_id) IN
               (SELECT user_id, client_id FROM client_ids WHERE created_ms < ?1 LIMIT ?2)",
        )?
        .execute(params![
            now_ms - r.dedup_window.as_millis() as i64,
            batch as i64
        ])?;
    Ok(removed + ids as u64)
}

/// Remove the messages created before `cutoff_ms`, oldest id first, with their log rows,
/// about `budget` rows of them; how many rows went (a message whose rows had all gone counts
/// as one).
fn drop_older_than(
    conn: &Connection,
    writes: &mut Batch,
    cutoff_ms: i64,
    budget: u64,
) -> Result<u64> {
    // Ids minted before the cutoff, a prefix of the table. The logic layer stamps a message
    // and its id from one clock reading; `created_ms` keeps a message whose id is older
    // than its time (an id made up by hand) from going early.
    let below = crate::ids::first_id_at(cutoff_ms);
    let old: Vec<Placed> = conn
        .prepare_cached(&format!(
            "{PLACED} WHERE id < ?1 AND created_ms < ?2 ORDER BY id LIMIT ?3"
        ))?
        .query_map(params![below, cutoff_ms, budget as i64], placed)?
        .collect::<rusqlite::Result<_>>()?;
    let (mut removed, mut going) = (0, Vec::new());
    for m in old {
        let keys = m.keys();
        let rows = keys.len().max(1) as u64;
        if removed > 0 && removed + rows > budget {
            break;
        }
        removed += rows;
        going.push((m.id, keys));
    }
    save_heads_of(conn, writes, going.iter().flat_map(|(_, keys)| keys))?;
    for (id, keys) in going {
        for k in keys {
            delete_row(conn, k, id)?;
        }
        delete_message(conn, id)?;
    }
    Ok(removed)
}

/// Remove the oldest rows of every log longer than `keep`, up to `budget` of them, and each
/// message no log refers to any more; how many rows went.
fn shorten_logs(conn: &Connection, writes: &mut Batch, keep: u64, budget: u64) -> Result<u64> {
    let long: Vec<(i64, i64, i64)> = conn
        .prepare_cached("SELECT kind, key, last_seq FROM log_heads WHERE last_seq > ?1")?
        .query_map(params![keep as i64], |x| {
            Ok((x.get(0)?, x.get(1)?, x.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut removed = 0;
    for (kind, key, saved) in long {
        if removed >= budget {
            break;
        }
        // A head a crashed run did not save is below the log's real one: take the real.
        let last = saved.max(writes.head(conn, heads::log_of(kind, key))? as i64);
        let keep_from = last - keep as i64; // rows with seq <= this go
        let rows: Vec<(i64, i64)> = conn
            .prepare_cached(
                "SELECT seq, msg_id FROM log
                 WHERE kind = ?1 AND key = ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4",
            )?
            .query_map(
                params![kind, key, keep_from, (budget - removed) as i64],
                |x| Ok((x.get(0)?, x.get(1)?)),
            )?
            .collect::<rusqlite::Result<_>>()?;
        if rows.is_empty() {
            continue;
        }
        // The rows were what covered the head: it is saved first.
        writes.save_head(conn, heads::log_of(kind, key))?;
        for &(seq, msg_id) in &rows {
            delete_row(conn, (kind, key, seq), msg_id)?;
        }
        for &(_, msg_id) in &rows {
            drop_if_unreferenced(conn, msg_id)?;
        }
        removed += rows.len() as u64;
    }
    Ok(removed)
}

/// Save the head of every log of `keys`, once each (before their rows go: only `log_heads`
/// remembers their seqs then).
fn save_heads_of<'k>(
    conn: &Connection,
    writes: &mut Batch,
    keys: impl Iterator<Item = &'k Key>,
) -> Result<()> {
    let mut logs: Vec<(i64, i64)> = keys.map(|&(kind, key, _)| (kind, key)).collect();
    logs.sort_unstable();
    logs.dedup();
    for (kind, key) in logs {
        writes.save_head(conn, heads::log_of(kind, key))?;
    }
    Ok(())
}

fn delete_message(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM history WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Delete log row `key` if it holds message `msg_id`.
fn delete_row(conn: &Connection, (kind, key, seq): Key, msg_id: i64) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM log WHERE kind = ?1 AND key = ?2 AND seq = ?3 AND msg_id = ?4",
    )?
    .execute(params![kind, key, seq, msg_id])?;
    Ok(())
}

/// Delete message `msg_id` unless a log row still holds it (the other inbox of a private
/// message).
fn drop_if_unreferenced(conn: &Connection, msg_id: i64) -> Result<()> {
    let Some(m) = conn
        .prepare_cached(&format!("{PLACED} WHERE id = ?1"))?
        .query_row([msg_id], placed)
        .optional()?
    else {
        return Ok(());
    };
    let mut held = conn.prepare_cached(
        "SELECT 1 FROM log WHERE kind = ?1 AND key = ?2 AND seq = ?3 AND msg_id = ?4",
    )?;
    for (kind, key, seq) in m.keys() {
        if held.exists(params![kind, key, seq, m.id])? {
            return Ok(());
        }
    }
    delete_message(conn, m.id)
}

#[cfg(test)]
mod tests {
    use crate::ids::Snowflake;
    use crate::model::{Log, Range};
    use crate::store::sqlite::SqliteStore;
    use crate::store::sqlite::tests::message;
    use crate::store::{Retention, Store};
    use std::time::Duration;

    const DAY: i64 = 86_400_000;

    fn now_ms() -> i64 {
        super::super::now_ms()
    }

    /// Ids of the messages left in the file.
    fn rows(path: &std::path::Path) -> Vec<i64> {
        let c = rusqlite::Connection::open(path).unwrap();
        let mut st = c.prepare("SELECT id FROM history ORDER BY id").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    async fn prune_all(store: &SqliteStore, r: Retention) -> u64 {
        let mut removed = 0;
        loop {
            let n = store.prune(r).await.unwrap();
            assert!(n <= 2 * r.batch as u64, "a step of {n} rows");
            if n == 0 {
                return removed;
            }
            removed += n;
        }
    }

    async fn texts(store: &SqliteStore, log: Log) -> Vec<String> {
        let page = store.read(log, Range::Since(0), 100).await.unwrap();
        page.messages.into_iter().map(|m| m.msg).collect()
    }

    /// With ids the way the logic layer mints them (snowflakes of the message's own time),
    /// age finds old messages by their ids, and a message row goes with its last log row:
    /// a private message stays while either inbox still holds it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_goes_with_its_last_log_row_and_old_ones_by_their_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retention.db");
        let store = SqliteStore::open(&path).unwrap();
        let ids = Snowflake::new(1);
        let now = now_ms();
        let minted = |at: i64| (ids.next_at(at), at);
        // Room 5: three from 40 days ago, two of today. Inboxes: user 1 writes to 2 twice
        // (old), then to 3 five times (today), then one note to itself (today).
        let mut sent = Vec::new();
        for (at, to) in [
            (now - 40 * DAY, None),
            (now - 40 * DAY + 1, None),
            (now - 40 * DAY + 2, None),
            (now - 40 * DAY + 3, Some(2)),
            (now - 40 * DAY + 4, Some(2)),
            (now - 1000, None),
            (now - 999, None),
        ]
        .into_iter()
        .chain((0..5).map(|i| (now - 500 + i, Some(3))))
        .chain([(now - 1, Some(1))])
        {
            let (id, created) = minted(at);
            store
                .append(message(id, created, 1, to), Duration::ZERO)
                .await
                .unwrap();
            sent.push(id);
        }
        // Age first: the old room messages and the old private ones go, rows and all.
        let by_age = Retention {
            max_per_log: 0,
            max_age: Some(Duration::from_secs(30 * 86_400)),
            dedup_window: Duration::ZERO,
            batch: 2,
        };
        assert_eq!(prune_all(&store, by_age).await, 3 + 2 * 2);
        assert_eq!(rows(&path), sent[5..], "the old messages' rows are gone");
        assert_eq!(texts(&store, Log::Room(5)).await.len(), 2);
        assert!(texts(&store, Log::Inbox(2)).await.is_empty());
        // Length next: user 1's inbox keeps 2 of its 6 (five to 3, the note), user 3's all
        // 5, so the four messages to 3 that user 1 loses stay, for user 3.
        let by_length = Retention {
            max_per_log: 5,
            max_age: None,
            dedup_window: Duration::ZERO,
            batch: 3,
        };
        // Inbox 1 holds 2 old (gone) + 5 + 1 = seqs 3..=8: 8 - 5 = 3 rows too many.
        assert_eq!(prune_all(&store, by_length).await, 1);
        let inbox1 = texts(&store, Log::Inbox(1)).await;
        assert_eq!(inbox1.len(), 5);
        assert_eq!(texts(&store, Log::Inbox(3)).await.len(), 5);
        assert_eq!(
            rows(&path),
            sent[5..],
            "every message is still held by a log"
        );
        let shorter = Retention {
            max_per_log: 1,
            ..by_length
        };
        prune_all(&store, shorter).await;
        // Room 5 keeps its newest; inbox 3 its newest (the fifth to 3), inbox 1 the note.
        assert_eq!(rows(&path), [sent[6], sent[11], sent[12]]);
        assert_eq!(
            store.last_seq(Log::Inbox(1)).await.unwrap(),
            8,
            "heads survive"
        );
    }
}
