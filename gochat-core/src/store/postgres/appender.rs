//! Appending to PostgreSQL in batches: one committer task takes whatever messages are
//! waiting and stores them in one transaction — three round trips for the batch, not one per
//! message — then answers every sender. One, not several: several would only queue on each
//! other's head locks (4 committers stored a third less than 1, see docs/performance.md).
//!
//! A batch is a few statements over arrays whatever its size (see [`store_batch`]): claim
//! the client ids, move each log's head on by its count (the row lock on a head is what keeps
//! seqs dense and unique across any number of processes), insert the messages and log rows.
//! A batch that fails on a statement (a deadlock on client ids, a constraint) rolls back and
//! is retried message by message.

use super::{Db, log_key};
use crate::model::{Log, NewMessage, Stored};
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

/// Most messages in one transaction.
const MAX_BATCH: usize = 256;

struct Job {
    message: NewMessage,
    window_ms: i64,
    reply: oneshot::Sender<Result<Stored>>,
}

/// The sending side; the committer stops when it is dropped.
pub struct Appender {
    jobs: mpsc::Sender<Job>,
    /// The longest a caller waits, queueing included (two store timeouts).
    patience: Duration,
}

impl Appender {
    /// Start the committer task, writing through `db`.
    pub fn start(db: Arc<Db>) -> Self {
        let (jobs, rx) = mpsc::channel(MAX_BATCH * 4);
        let patience = db.timeout * 2;
        tokio::spawn(committer(rx, db));
        Self { jobs, patience }
    }

    /// Store `message` (see the `Store` contract).
    pub async fn append(&self, message: NewMessage, window: Duration) -> Result<Stored> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            message,
            window_ms: window.as_millis() as i64,
            reply,
        };
        // Behind a queue of batches that each time out (a frozen server), a caller would
        // wait for all of them: it gives up first. Its job may still commit later — a false
        // failure, which a retry with the same client id resolves — never a false success.
        let wait = async {
            self.jobs.send(job).await.map_err(|_| Error::Closed)?;
            answer.await.map_err(|_| Error::Closed)?
        };
        tokio::time::timeout(self.patience, wait)
            .await
            .map_err(|_| Error::Timeout("PostgreSQL"))?
    }
}

async fn committer(mut rx: mpsc::Receiver<Job>, db: Arc<Db>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        if rx.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        crate::metrics::metrics()
            .store_batch
            .observe(jobs.len() as f64);
        // Kept in arrival order: each log's seqs follow it. Lock order needs no sorting here;
        // store_batch bumps the heads in sorted order.
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
                crate::metrics::metrics().store_batches_retried.inc();
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

/// The logs a message is stored in, and so whose heads it bumps.
fn logs_of(m: &NewMessage) -> Vec<Log> {
    match &m.to {
        None => vec![Log::Room(m.room_id)],
        Some(to) if to.id == m.from.id => vec![Log::Inbox(to.id)],
        Some(to) => vec![Log::Inbox(m.from.id), Log::Inbox(to.id)],
    }
}

/// Claim the batch's client ids; returns the message ids that claimed theirs (the others
/// repeat an earlier post within the window).
const CLAIM: &str = "
    INSERT INTO client_ids (user_id, client_id, msg_id, created_ms)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])
    ON CONFLICT (user_id, client_id) DO UPDATE
      SET msg_id = EXCLUDED.msg_id, created_ms = EXCLUDED.created_ms
      WHERE client_ids.created_ms < EXCLUDED.created_ms - $5
    RETURNING msg_id";

/// Move each log's head on by its count (rows in lock order); returns the new heads.
const BUMP: &str = "
    INSERT INTO log_heads (kind, key, last_seq)
    SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bigint[])
    ON CONFLICT (kind, key) DO UPDATE SET last_seq = log_heads.last_seq + EXCLUDED.last_seq
    RETURNING kind, key, last_seq";

const INSERT_MESSAGES: &str = "
    INSERT INTO messages (id, room_id, from_id, from_name, to_id, to_name, msg, created_ms)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[],
                         $6::text[], $7::text[], $8::bigint[])";

const INSERT_LOG: &str = "
    INSERT INTO log (kind, key, seq, msg_id)
    SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bigint[], $4::bigint[])";

/// Store `jobs` in one transaction of three round trips whatever their number — claim the
/// client ids, move the heads, insert messages and log rows and commit — each a statement
/// over arrays (`unnest`), not one per message. Heads are bumped in sorted order, so two
/// batches never deadlock on them. Fails as a whole when the transaction did not commit;
/// once it did, each message has its own result.
async fn store_batch(db: &Db, jobs: &[Job]) -> Result<Vec<Result<Stored>>> {
    let mut conn = db.conn().await?;
    let c = conn.client();
    let window = jobs.iter().map(|j| j.window_ms).max().unwrap_or(0);
    // Which jobs are stored: a client id seen earlier in this batch repeats that post.
    let mut seen = std::collections::HashSet::new();
    let mut keep: Vec<bool> = jobs
        .iter()
        .map(|j| match &j.message.client_id {
            Some(cid) => seen.insert((j.message.from.id, cid.as_str())),
            None => true,
        })
        .collect();
    let claiming: Vec<&NewMessage> = jobs
        .iter()
        .zip(&keep)
        .filter(|(j, k)| **k && j.message.client_id.is_some())
        .map(|(j, _)| &j.message)
        .collect();
    let claim = c.prepare_cached(CLAIM).await?;
    let bump = c.prepare_cached(BUMP).await?;
    let insert_messages = c.prepare_cached(INSERT_MESSAGES).await?;
    let insert_log = c.prepare_cached(INSERT_LOG).await?;

    let (begin, claimed) = {
        let users: Vec<i64> = claiming.iter().map(|m| m.from.id).collect();
        let cids: Vec<&str> = claiming
            .iter()
            .map(|m| m.client_id.as_deref().unwrap_or_default())
            .collect();
        let ids: Vec<i64> = claiming.iter().map(|m| m.id).collect();
        let created: Vec<i64> = claiming.iter().map(|m| m.created_ms).collect();
        let claim_rows = async {
            if claiming.is_empty() {
                return Ok(Vec::new());
            }
            c.query(&claim, &[&users, &cids, &ids, &created, &window])
                .await
        };
        futures::join!(c.batch_execute("BEGIN"), claim_rows)
    };
    let outcome = async {
        begin?;
        let claimed: std::collections::HashSet<i64> =
            claimed?.iter().map(|r| r.get::<_, i64>(0)).collect();
        for (j, k) in jobs.iter().zip(keep.iter_mut()) {
            if *k && j.message.client_id.is_some() && !claimed.contains(&j.message.id) {
                *k = false;
            }
        }
        // Count per log, bump the heads in sorted order, hand out seqs in batch order.
        let mut counts: std::collections::BTreeMap<Log, i64> = Default::default();
        for (j, _) in jobs.iter().zip(&keep).filter(|(_, k)| **k) {
            for log in logs_of(&j.message) {
                *counts.entry(log).or_default() += 1;
            }
        }
        let mut next: std::collections::HashMap<(i16, i64), i64> = Default::default();
        if !counts.is_empty() {
            let (kinds, keys): (Vec<i16>, Vec<i64>) = counts.keys().map(|l| log_key(*l)).unzip();
            let n: Vec<i64> = counts.values().copied().collect();
            for row in c.query(&bump, &[&kinds, &keys, &n]).await? {
                let (kind, key, last): (i16, i64, i64) = (row.get(0), row.get(1), row.get(2));
                let count = counts[&if kind == 0 {
                    Log::Room(key)
                } else {
                    Log::Inbox(key)
                }];
                next.insert((kind, key), last - count + 1);
            }
        }
        let mut m_cols = MessageColumns::default();
        let mut l_cols = LogColumns::default();
        let mut seqs = vec![(0u64, 0u64); jobs.len()];
        for (i, j) in jobs.iter().enumerate().filter(|(i, _)| keep[*i]) {
            let m = &j.message;
            m_cols.push(m);
            let mut seq_in = |log: Log| {
                let k = log_key(log);
                let seq = next.get_mut(&k).expect("every kept log was bumped");
                l_cols.push(k, *seq, m.id);
                *seq += 1;
                (*seq - 1) as u64
            };
            seqs[i] = match &m.to {
                None => (seq_in(Log::Room(m.room_id)), 0),
                Some(to) if to.id == m.from.id => {
                    let s = seq_in(Log::Inbox(to.id));
                    (s, s)
                }
                Some(to) => {
                    let mine = seq_in(Log::Inbox(m.from.id));
                    (mine, seq_in(Log::Inbox(to.id)))
                }
            };
        }
        let (m_params, l_params) = (m_cols.params(), l_cols.params());
        let (messages, log, commit) = futures::join!(
            c.execute(&insert_messages, &m_params),
            c.execute(&insert_log, &l_params),
            c.batch_execute("COMMIT"),
        );
        // After a failed statement PostgreSQL answers COMMIT with a rollback: check all.
        messages?;
        log?;
        commit?;
        Ok::<_, Error>(seqs)
    }
    .await;
    let seqs = match outcome {
        Ok(s) => s,
        Err(e) => {
            if matches!(&e, Error::Postgres(pg) if pg.as_db_error().is_some()) {
                let _ = c.batch_execute("ROLLBACK").await;
                conn.keep();
            }
            return Err(e);
        }
    };
    let mut stored = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let m = &job.message;
        if !keep[i] {
            stored.push(earlier(c, m).await);
            continue;
        }
        stored.push(Ok(Stored {
            msg_id: m.id,
            seq: seqs[i].0,
            peer_seq: seqs[i].1,
            created_ms: m.created_ms,
            duplicate: false,
        }));
    }
    conn.keep();
    Ok(stored)
}

/// The `messages` columns of a batch, as arrays.
#[derive(Default)]
struct MessageColumns<'a> {
    id: Vec<i64>,
    room: Vec<i64>,
    from_id: Vec<i64>,
    from_name: Vec<&'a str>,
    to_id: Vec<Option<i64>>,
    to_name: Vec<Option<&'a str>>,
    msg: Vec<&'a str>,
    created: Vec<i64>,
}

impl<'a> MessageColumns<'a> {
    fn push(&mut self, m: &'a NewMessage) {
        self.id.push(m.id);
        self.room.push(m.room_id);
        self.from_id.push(m.from.id);
        self.from_name.push(&m.from.name);
        self.to_id.push(m.to.as_ref().map(|u| u.id));
        self.to_name.push(m.to.as_ref().map(|u| u.name.as_str()));
        self.msg.push(&m.msg);
        self.created.push(m.created_ms);
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.id,
            &self.room,
            &self.from_id,
            &self.from_name,
            &self.to_id,
            &self.to_name,
            &self.msg,
            &self.created,
        ]
    }
}

/// The `log` rows of a batch, as arrays.
#[derive(Default)]
struct LogColumns {
    kind: Vec<i16>,
    key: Vec<i64>,
    seq: Vec<i64>,
    msg_id: Vec<i64>,
}

impl LogColumns {
    fn push(&mut self, (kind, key): (i16, i64), seq: i64, msg_id: i64) {
        self.kind.push(kind);
        self.key.push(key);
        self.seq.push(seq);
        self.msg_id.push(msg_id);
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 4] {
        [&self.kind, &self.key, &self.seq, &self.msg_id]
    }
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
