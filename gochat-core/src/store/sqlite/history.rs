//! Message history in SQLite: appending (seqs assigned in the writer's transaction) and
//! paging a log. Retention is retention.rs.

use super::heads::{self, log_key};
use super::hot::Sql;
use super::writer::Batch;
use crate::Result;
use crate::model::{Log, NewMessage, Page, Range, Stored, StoredMessage, User};
use rusqlite::{Connection, OptionalExtension, params};

/// Give `log` its next seq for message `msg_id`. An inbox's row is staged (staging.rs).
fn push(conn: &Connection, batch: &mut Batch, log: Log, msg_id: i64) -> Result<u64> {
    let seq = batch.head(conn, log)? + 1;
    match log {
        Log::Inbox(user) => batch.stage(user, seq, msg_id)?,
        Log::Room(room) => {
            batch
                .statement(Sql::InsertRoomRow)?
                .execute(params![room, seq as i64, msg_id])?;
        }
    }
    batch.advance(log, seq);
    Ok(seq)
}

/// Store `m` (see the `Store` contract); runs inside the writer's transaction.
pub fn append(
    conn: &Connection,
    batch: &mut Batch,
    m: &NewMessage,
    dedup_window_ms: i64,
) -> Result<Stored> {
    if let Some(cid) = &m.client_id {
        let earlier = conn
            .prepare_cached(
                "SELECT msg_id, seq, peer_seq, created_ms FROM client_ids
                 WHERE user_id = ?1 AND client_id = ?2 AND created_ms >= ?3",
            )?
            .query_row(
                params![m.from.id, cid, m.created_ms - dedup_window_ms],
                |r| {
                    Ok(Stored {
                        msg_id: r.get(0)?,
                        seq: r.get::<_, i64>(1)? as u64,
                        peer_seq: r.get::<_, i64>(2)? as u64,
                        created_ms: r.get(3)?,
                        duplicate: true,
                    })
                },
            )
            .optional()?;
        if let Some(first) = earlier {
            return Ok(first);
        }
    }
    let (seq, peer_seq) = match &m.to {
        None => (push(conn, batch, Log::Room(m.room_id), m.id)?, 0),
        Some(to) => {
            let seq = push(conn, batch, Log::Inbox(m.from.id), m.id)?;
            let peer = if to.id == m.from.id {
                seq
            } else {
                push(conn, batch, Log::Inbox(to.id), m.id)?
            };
            (seq, peer)
        }
    };
    // The row carries its seqs: retention finds its log rows by them (retention.rs).
    batch.statement(Sql::InsertMessage)?.execute(params![
        m.id,
        m.room_id,
        m.from.id,
        m.from.name,
        m.to.as_ref().map(|u| u.id),
        m.to.as_ref().map(|u| u.name.as_str()),
        m.msg,
        m.created_ms,
        seq as i64,
        peer_seq as i64
    ])?;
    if let Some(cid) = &m.client_id {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO client_ids (user_id, client_id, msg_id, seq, peer_seq, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![m.from.id, cid, m.id, seq as i64, peer_seq as i64, m.created_ms])?;
    }
    Ok(Stored {
        msg_id: m.id,
        seq,
        peer_seq,
        created_ms: m.created_ms,
        duplicate: false,
    })
}

const SELECT: &str = "SELECT l.seq, m.id, m.room_id, m.from_id, m.from_name, m.to_id, m.to_name,
                             m.msg, m.created_ms
                      FROM log l JOIN history m ON m.id = l.msg_id
                      WHERE l.kind = ?1 AND l.key = ?2";
/// The same from an inbox's staged rows (`?1` is the kind, always 1 here).
const SELECT_STAGED: &str = "SELECT l.seq, m.id, m.room_id, m.from_id, m.from_name, m.to_id,
                                    m.to_name, m.msg, m.created_ms
                             FROM inbox_staged l JOIN history m ON m.id = l.msg_id
                             WHERE ?1 = 1 AND l.user_id = ?2";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    let to = match (r.get::<_, Option<i64>>(5)?, r.get::<_, Option<String>>(6)?) {
        (Some(id), Some(name)) => Some(User { id, name }),
        _ => None,
    };
    Ok(StoredMessage {
        seq: r.get::<_, i64>(0)? as u64,
        msg_id: r.get(1)?,
        room_id: r.get(2)?,
        from: User {
            id: r.get(3)?,
            name: r.get(4)?,
        },
        to,
        msg: r.get(7)?,
        created_ms: r.get(8)?,
    })
}

/// A page of `log` (see [`Range`]); `limit` at least 1.
pub fn read(conn: &Connection, log: Log, range: Range, limit: usize) -> Result<Page> {
    let (kind, key) = log_key(log);
    let limit = limit.max(1);
    let fetch = (limit + 1) as i64;
    let (order, bound) = match range {
        Range::Since(s) => ("l.seq > ?3 ORDER BY l.seq ASC", s as i64),
        Range::Before(b) => ("l.seq < ?3 ORDER BY l.seq DESC", b as i64),
        Range::Latest => ("l.seq < ?3 ORDER BY l.seq DESC", i64::MAX),
    };
    let query = |from: &str| -> Result<Vec<StoredMessage>> {
        Ok(conn
            .prepare_cached(&format!("{from} AND {order} LIMIT ?4"))?
            .query_map(params![kind, key, bound, fetch], row)?
            .collect::<rusqlite::Result<_>>()?)
    };
    let mut messages = if kind == 0 {
        query(SELECT)?
    } else {
        // One snapshot for both tables: a merge moves rows between them atomically.
        let snapshot = conn.unchecked_transaction()?;
        let mut rows = query(SELECT)?;
        rows.extend(query(SELECT_STAGED)?);
        snapshot.finish()?;
        match range {
            Range::Since(_) => rows.sort_unstable_by_key(|m| m.seq),
            _ => rows.sort_unstable_by_key(|m| std::cmp::Reverse(m.seq)),
        }
        rows.truncate(fetch as usize);
        rows
    };
    let more = messages.len() > limit;
    messages.truncate(limit);
    if !matches!(range, Range::Since(_)) {
        messages.reverse();
    }
    Ok(Page { messages, more })
}

/// The newest seq of `log`.
pub fn last_seq(conn: &Connection, log: Log) -> Result<u64> {
    heads::stored(conn, log)
}
