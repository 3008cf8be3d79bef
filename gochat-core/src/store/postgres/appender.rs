//! Appending to PostgreSQL in batches: a few committer tasks each take whatever messages are
//! waiting and store them in one transaction, its statements pipelined — one round trip for
//! the batch, not one per message — then answer every sender.
//!
//! Each message is one statement (see [`append_sql`]) that claims its client id, bumps the
//! heads of its logs (the row lock on a head is what keeps seqs dense and unique across any
//! number of processes) and inserts the message and its log rows. Jobs are sorted by log so
//! that two batches lock heads in the same order; a deadlock PostgreSQL still finds (private
//! messages lock two inboxes) fails the batch, which is then retried message by message.

use super::{Db, log_key};
use crate::model::{Log, NewMessage, Stored};
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::types::ToSql;

/// Most messages in one transaction.
const MAX_BATCH: usize = 256;

struct Job {
    message: NewMessage,
    window_ms: i64,
    reply: oneshot::Sender<Result<Stored>>,
}

/// The sending side; the committers stop when it is dropped.
pub struct Appender {
    jobs: mpsc::Sender<Job>,
}

impl Appender {
    /// Start `committers` tasks writing through `db`.
    pub fn start(db: Arc<Db>, committers: usize) -> Self {
        let (jobs, rx) = mpsc::channel(MAX_BATCH * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..committers.max(1) {
            tokio::spawn(committer(rx.clone(), db.clone()));
        }
        Self { jobs }
    }

    /// Store `message` (see the `Store` contract).
    pub async fn append(&self, message: NewMessage, window: Duration) -> Result<Stored> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            message,
            window_ms: window.as_millis() as i64,
            reply,
        };
        self.jobs.send(job).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

async fn committer(rx: Arc<Mutex<mpsc::Receiver<Job>>>, db: Arc<Db>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        if rx.lock().await.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        // Stable: messages to one log keep the order they were sent in.
        jobs.sort_by_key(|j| first_log(&j.message));
        match db.timed("append", store_batch(&db, &jobs)).await {
            Ok(stored) => {
                for (job, s) in jobs.drain(..).zip(stored) {
                    let _ = job.reply.send(s);
                }
            }
            // A statement failed (a deadlock, a constraint): the transaction rolled back,
            // so each message is tried on its own and fails, if it does, alone.
            Err(e) if jobs.len() > 1 && is_statement_error(&e) => {
                tracing::debug!("batch of {} failed ({e}); retrying one by one", jobs.len());
                for job in jobs.drain(..) {
                    let one = std::slice::from_ref(&job);
                    let r = db.timed("append", store_batch(&db, one)).await;
                    let _ = job.reply.send(r.and_then(|mut v| v.remove(0)));
                }
            }
            Err(e) => {
                let why = crate::error::with_causes(&e);
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(Error::PostgresPool {
                        at: db.at.clone(),
                        why: why.clone(),
                    }));
                }
            }
        }
    }
}

fn is_statement_error(e: &Error) -> bool {
    matches!(e, Error::Postgres(pg) if pg.as_db_error().is_some())
}

/// The log whose head a message locks first.
fn first_log(m: &NewMessage) -> Log {
    match &m.to {
        None => Log::Room(m.room_id),
        Some(to) => Log::Inbox(m.from.id.min(to.id)),
    }
}

/// Which heads a message bumps.
#[derive(Clone, Copy)]
enum Shape {
    Room,
    /// Two inboxes, the lower user id first (lock order).
    Private,
    /// A message to oneself: one inbox.
    ToSelf,
}

fn shape(m: &NewMessage) -> Shape {
    match &m.to {
        None => Shape::Room,
        Some(to) if to.id == m.from.id => Shape::ToSelf,
        Some(_) => Shape::Private,
    }
}

/// The one statement storing a message. `$1..$8` are the message's columns; with a client
/// id, `$9` is it and `$10` the oldest `created_ms` still inside the dedup window; then the
/// inbox keys. It returns one `(key, seq)` row per log, or none when the client id repeats
/// an earlier post (nothing was stored).
fn append_sql(shape: Shape, claim: bool) -> String {
    let next = if claim { 11 } else { 9 };
    let heads = match shape {
        Shape::Room => "(0::smallint, $2::bigint)".to_owned(),
        Shape::ToSelf => format!("(1::smallint, ${next}::bigint)"),
        Shape::Private => format!(
            "(1::smallint, ${next}::bigint), (1::smallint, ${}::bigint)",
            next + 1
        ),
    };
    let (claim_cte, gate) = if claim {
        (
            "claim AS (
               INSERT INTO client_ids (user_id, client_id, msg_id, created_ms)
               VALUES ($3, $9, $1, $8)
               ON CONFLICT (user_id, client_id) DO UPDATE
                 SET msg_id = EXCLUDED.msg_id, created_ms = EXCLUDED.created_ms
                 WHERE client_ids.created_ms < $10
               RETURNING 1),",
            "WHERE EXISTS (SELECT 1 FROM claim)",
        )
    } else {
        ("", "")
    };
    format!(
        "WITH {claim_cte}
         msg AS (
           INSERT INTO messages (id, room_id, from_id, from_name, to_id, to_name, msg, created_ms)
           SELECT $1, $2, $3, $4, $5, $6, $7, $8 {gate}),
         head AS (
           INSERT INTO log_heads (kind, key, last_seq)
           SELECT k, key, 1 FROM (VALUES {heads}) AS v (k, key) {gate}
           ON CONFLICT (kind, key) DO UPDATE SET last_seq = log_heads.last_seq + 1
           RETURNING key, last_seq),
         ins AS (
           INSERT INTO log (kind, key, seq, msg_id)
           SELECT CASE WHEN $5::bigint IS NULL THEN 0 ELSE 1 END::smallint, key, last_seq, $1
           FROM head)
         SELECT key, last_seq FROM head"
    )
}

/// The values beside the message's own columns.
struct Extra<'a> {
    to_id: Option<i64>,
    to_name: Option<&'a str>,
    cutoff: i64,
    low: i64,
    high: i64,
}

/// Store `jobs` in one pipelined transaction: BEGIN, one statement each, COMMIT — all sent
/// before the first answer is read. Fails as a whole when the transaction did not commit;
/// once it did, each message has its own result.
async fn store_batch(db: &Db, jobs: &[Job]) -> Result<Vec<Result<Stored>>> {
    let mut conn = db.conn().await?;
    let mut statements = Vec::with_capacity(jobs.len());
    for job in jobs {
        let sql = append_sql(shape(&job.message), job.message.client_id.is_some());
        statements.push(conn.client().prepare_cached(&sql).await?);
    }
    let extras: Vec<Extra> = jobs
        .iter()
        .map(|j| {
            let m = &j.message;
            let to = m.to.as_ref().map_or(m.from.id, |u| u.id);
            Extra {
                to_id: m.to.as_ref().map(|u| u.id),
                to_name: m.to.as_ref().map(|u| u.name.as_str()),
                cutoff: m.created_ms - j.window_ms,
                low: m.from.id.min(to),
                high: m.from.id.max(to),
            }
        })
        .collect();
    let params: Vec<Vec<&(dyn ToSql + Sync)>> = jobs
        .iter()
        .zip(&extras)
        .map(|(j, x)| {
            let m = &j.message;
            let mut p: Vec<&(dyn ToSql + Sync)> = vec![
                &m.id,
                &m.room_id,
                &m.from.id,
                &m.from.name,
                &x.to_id,
                &x.to_name,
                &m.msg,
                &m.created_ms,
            ];
            if let Some(cid) = &m.client_id {
                p.push(cid);
                p.push(&x.cutoff);
            }
            match shape(m) {
                Shape::Room => {}
                Shape::ToSelf => p.push(&x.low),
                Shape::Private => {
                    p.push(&x.low);
                    p.push(&x.high);
                }
            }
            p
        })
        .collect();
    let client = conn.client();
    let statements_done = futures::future::join_all(
        statements
            .iter()
            .zip(&params)
            .map(|(s, p)| client.query(s, p)),
    );
    // join! polls in order, so the requests go out in order: BEGIN, the statements, COMMIT.
    let (begin, results, commit) = futures::join!(
        client.batch_execute("BEGIN"),
        statements_done,
        client.batch_execute("COMMIT")
    );
    begin?;
    // Check every answer: after a failed statement PostgreSQL answers COMMIT with a rollback.
    let mut rows = Vec::with_capacity(results.len());
    for r in results {
        rows.push(r?);
    }
    commit?;
    let mut stored = Vec::with_capacity(jobs.len());
    for (job, rows) in jobs.iter().zip(rows) {
        let m = &job.message;
        if rows.is_empty() {
            stored.push(earlier(client, m).await);
            continue;
        }
        let seq_of = |key: i64| {
            rows.iter()
                .find(|r| r.get::<_, i64>(0) == key)
                .map_or(0, |r| r.get::<_, i64>(1) as u64)
        };
        let (seq, peer_seq) = match &m.to {
            None => (seq_of(m.room_id), 0),
            Some(to) => (seq_of(m.from.id), seq_of(to.id)),
        };
        stored.push(Ok(Stored {
            msg_id: m.id,
            seq,
            peer_seq,
            created_ms: m.created_ms,
            duplicate: false,
        }));
    }
    conn.keep();
    Ok(stored)
}

/// What the first post of `m`'s client id stored (a duplicate stores nothing).
async fn earlier(client: &deadpool_postgres::ClientWrapper, m: &NewMessage) -> Result<Stored> {
    let cid = m.client_id.as_deref().unwrap_or_default();
    let first = client
        .query_opt(
            "SELECT c.msg_id, m.created_ms, m.from_id, m.to_id, m.room_id
             FROM client_ids c LEFT JOIN messages m ON m.id = c.msg_id
             WHERE c.user_id = $1 AND c.client_id = $2",
            &[&m.from.id, &cid],
        )
        .await?
        .ok_or_else(|| Error::Decode("a repeated client id without its first post".into()))?;
    let msg_id: i64 = first.get(0);
    let created_ms: Option<i64> = first.get(1);
    let to_id: Option<i64> = first.get(3);
    let room_id: Option<i64> = first.get(4);
    let logs = client
        .query(
            "SELECT kind, key, seq FROM log WHERE msg_id = $1",
            &[&msg_id],
        )
        .await?;
    let seq_in = |log: Log| {
        let (kind, key) = log_key(log);
        logs.iter()
            .find(|r| r.get::<_, i16>(0) == kind && r.get::<_, i64>(1) == key)
            .map_or(0, |r| r.get::<_, i64>(2) as u64)
    };
    let (seq, peer_seq) = match to_id {
        Some(to) => (seq_in(Log::Inbox(m.from.id)), seq_in(Log::Inbox(to))),
        None => (seq_in(Log::Room(room_id.unwrap_or(m.room_id))), 0),
    };
    Ok(Stored {
        msg_id,
        seq,
        peer_seq,
        created_ms: created_ms.unwrap_or(m.created_ms),
        duplicate: true,
    })
}
