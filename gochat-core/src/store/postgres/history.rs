//! Reading message history from PostgreSQL, and retention in bounded steps.

use super::log_key;
use crate::Result;
use crate::model::{Log, Page, Range, StoredMessage, User};
use crate::store::Retention;
use deadpool_postgres::ClientWrapper as Client;
use tokio_postgres::Row;

const SELECT: &str = "SELECT l.seq, m.id, m.room_id, m.from_id, m.from_name, m.to_id, m.to_name,
                             m.msg, m.created_ms
                      FROM log l JOIN messages m ON m.id = l.msg_id
                      WHERE l.kind = $1 AND l.key = $2";

fn message(r: &Row) -> StoredMessage {
    let to = match (r.get::<_, Option<i64>>(5), r.get::<_, Option<String>>(6)) {
        (Some(id), Some(name)) => Some(User { id, name }),
        _ => None,
    };
    StoredMessage {
        seq: r.get::<_, i64>(0) as u64,
        msg_id: r.get(1),
        room_id: r.get(2),
        from: User {
            id: r.get(3),
            name: r.get(4),
        },
        to,
        msg: r.get(7),
        created_ms: r.get(8),
    }
}

/// A page of `log` (see [`Range`]); `limit` at least 1.
pub async fn read(c: &Client, log: Log, range: Range, limit: usize) -> Result<Page> {
    let (kind, key) = log_key(log);
    let limit = limit.max(1);
    let fetch = (limit + 1) as i64;
    let (sql, bound) = match range {
        Range::Since(s) => (
            format!("{SELECT} AND l.seq > $3 ORDER BY l.seq ASC LIMIT $4"),
            s as i64,
        ),
        Range::Before(b) => (
            format!("{SELECT} AND l.seq < $3 ORDER BY l.seq DESC LIMIT $4"),
            b.min(i64::MAX as u64) as i64,
        ),
        Range::Latest => (
            format!("{SELECT} AND l.seq < $3 ORDER BY l.seq DESC LIMIT $4"),
            i64::MAX,
        ),
    };
    let s = c.prepare_cached(&sql).await?;
    let rows = c.query(&s, &[&kind, &key, &bound, &fetch]).await?;
    let mut messages: Vec<StoredMessage> = rows.iter().map(message).collect();
    let more = messages.len() > limit;
    messages.truncate(limit);
    if !matches!(range, Range::Since(_)) {
        messages.reverse();
    }
    Ok(Page { messages, more })
}

/// The newest seq of `log`.
pub async fn last_seq(c: &Client, log: Log) -> Result<u64> {
    let (kind, key) = log_key(log);
    let s = c
        .prepare_cached("SELECT last_seq FROM log_heads WHERE kind = $1 AND key = $2")
        .await?;
    Ok(c.query_opt(&s, &[&kind, &key])
        .await?
        .map_or(0, |r| r.get::<_, i64>(0) as u64))
}

/// One bounded step of retention at `now_ms` (see `Store::prune`), in one transaction.
pub async fn prune(c: &Client, r: &Retention, now_ms: i64) -> Result<u64> {
    c.batch_execute("BEGIN").await?;
    match prune_in_transaction(c, r, now_ms).await {
        Ok(n) => {
            c.batch_execute("COMMIT").await?;
            Ok(n)
        }
        Err(e) => {
            // Leave the connection clean for the pool.
            let _ = c.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Delete the log rows named by `selected` (a query returning `kind, key, seq` with `$1`,
/// `$2`… bound to `params`), then the messages no log refers to any more.
async fn drop_log_rows(
    c: &Client,
    selected: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64> {
    let deleted = c
        .query(
            &format!("DELETE FROM log WHERE (kind, key, seq) IN ({selected}) RETURNING msg_id"),
            params,
        )
        .await?;
    let ids: Vec<i64> = deleted.iter().map(|r| r.get(0)).collect();
    if !ids.is_empty() {
        c.execute(
            "DELETE FROM messages m WHERE m.id = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM log l WHERE l.msg_id = m.id)",
            &[&ids],
        )
        .await?;
    }
    Ok(ids.len() as u64)
}

async fn prune_in_transaction(c: &Client, r: &Retention, now_ms: i64) -> Result<u64> {
    let batch = r.batch.max(1) as i64;
    let mut removed = 0u64;
    if let Some(age) = r.max_age {
        let cutoff = now_ms - age.as_millis() as i64;
        removed += drop_log_rows(
            c,
            "SELECT l.kind, l.key, l.seq FROM messages m JOIN log l ON l.msg_id = m.id
             WHERE m.created_ms < $1 LIMIT $2",
            &[&cutoff, &batch],
        )
        .await?;
    }
    if r.max_per_log > 0 && removed < batch as u64 {
        let max = r.max_per_log as i64;
        let long = c
            .query(
                "SELECT kind, key, last_seq FROM log_heads WHERE last_seq > $1",
                &[&max],
            )
            .await?;
        for head in long {
            let left = batch - removed as i64;
            if left <= 0 {
                break;
            }
            let (kind, key, last): (i16, i64, i64) = (head.get(0), head.get(1), head.get(2));
            let keep_from = last - max; // rows with seq <= this go
            removed += drop_log_rows(
                c,
                "SELECT kind, key, seq FROM log WHERE kind = $1 AND key = $2 AND seq <= $3
                 ORDER BY seq LIMIT $4",
                &[&kind, &key, &keep_from, &left],
            )
            .await?;
        }
    }
    let window_cutoff = now_ms - r.dedup_window.as_millis() as i64;
    let ids = c
        .execute(
            "DELETE FROM client_ids WHERE (user_id, client_id) IN
               (SELECT user_id, client_id FROM client_ids WHERE created_ms < $1 LIMIT $2)",
            &[&window_cutoff, &batch],
        )
        .await?;
    Ok(removed + ids)
}
