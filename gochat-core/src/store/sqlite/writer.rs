//! The group-commit writer: one thread owns the write connection, takes every write that is
//! waiting, runs them in one transaction (each in a savepoint of its own, so one failing
//! write fails alone) and answers every writer once it committed. A commit per message caps
//! SQLite at a few thousand writes a second; a commit per batch does not.

use crate::model::Log;
use crate::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Writes committed together at most.
pub const MAX_BATCH: usize = 1024;
/// Writes waiting for the writer before `write` waits for room.
pub const QUEUE: usize = 8192;

/// State shared by the writes of one transaction: the head (last seq) of every log touched,
/// read once and written back before the commit.
#[derive(Default)]
pub struct Batch {
    heads: HashMap<Log, u64>,
    dirty: Vec<Log>,
}

fn log_key(log: Log) -> (i64, i64) {
    match log {
        Log::Room(r) => (0, r),
        Log::Inbox(u) => (1, u),
    }
}

impl Batch {
    /// The newest seq of `log`, as this transaction sees it.
    pub fn head(&mut self, conn: &Connection, log: Log) -> Result<u64> {
        if let Some(h) = self.heads.get(&log) {
            return Ok(*h);
        }
        let (kind, key) = log_key(log);
        let h: Option<i64> = conn
            .prepare_cached("SELECT last_seq FROM log_heads WHERE kind = ?1 AND key = ?2")?
            .query_row(params![kind, key], |r| r.get(0))
            .optional()?;
        let h = h.unwrap_or(0) as u64;
        self.heads.insert(log, h);
        Ok(h)
    }

    /// Record that `log` now ends at `seq` (written back before the commit).
    pub fn advance(&mut self, log: Log, seq: u64) {
        if self.heads.insert(log, seq) != Some(seq) {
            self.dirty.push(log);
        }
    }

    fn flush(&mut self, conn: &Connection) -> Result<()> {
        let mut up = conn.prepare_cached(
            "INSERT INTO log_heads (kind, key, last_seq) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, key) DO UPDATE SET last_seq = excluded.last_seq",
        )?;
        for log in self.dirty.drain(..) {
            let (kind, key) = log_key(log);
            up.execute(params![kind, key, self.heads[&log] as i64])?;
        }
        Ok(())
    }
}

/// Called once the transaction ended: with the commit's error, if it failed.
type Done = Box<dyn FnOnce(Option<&Arc<rusqlite::Error>>) + Send>;
/// One write: runs inside the transaction (or is told the transaction could not begin),
/// returns what to do once it ended.
type Job = Box<
    dyn FnOnce(std::result::Result<(&Connection, &mut Batch), &Arc<rusqlite::Error>>) -> Done
        + Send,
>;

/// The handle writers use.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Start the writer thread on `conn`.
    pub fn start(conn: Connection) -> Result<Self> {
        let (jobs, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("gochat-sqlite-writer".into())
            .spawn(move || run(conn, rx))?;
        Ok(Self { jobs })
    }

    /// Run `f` in the next transaction; its result once that transaction committed.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &mut Batch) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |tx_state| {
            let outcome = match tx_state {
                Ok((conn, batch)) => in_savepoint(conn, |c| f(c, batch)),
                Err(e) => Err(Error::CommitFailed(e.clone())),
            };
            Box::new(move |commit: Option<&Arc<rusqlite::Error>>| {
                let result = match (outcome, commit) {
                    (Ok(v), None) => Ok(v),
                    (Ok(_), Some(e)) => Err(Error::CommitFailed(e.clone())),
                    (Err(e), _) => Err(e),
                };
                let _ = tx.send(result);
            })
        });
        self.jobs.send(job).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }
}

fn in_savepoint<R>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
    // Cached statements: parsing these anew for every write was a measurable share of it.
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            // Undo this write only; the others of the batch stand.
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e)
        }
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        crate::metrics::metrics()
            .store_batch
            .observe(jobs.len() as f64);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!("sqlite: cannot begin a transaction: {e}");
            let e = Arc::new(e);
            for j in jobs.drain(..) {
                j(Err(&e))(Some(&e));
            }
            continue;
        }
        let mut batch = Batch::default();
        let dones: Vec<Done> = jobs.drain(..).map(|j| j(Ok((&conn, &mut batch)))).collect();
        let ended = batch
            .flush(&conn)
            .map_err(into_sqlite)
            .and_then(|()| conn.execute_batch("COMMIT"));
        let failure = match ended {
            Ok(()) => None,
            Err(e) => {
                tracing::error!("sqlite: a batch of writes failed to commit: {e}");
                let _ = conn.execute_batch("ROLLBACK");
                Some(Arc::new(e))
            }
        };
        for d in dones {
            d(failure.as_ref());
        }
    }
}

fn into_sqlite(e: Error) -> rusqlite::Error {
    match e {
        Error::Sqlite(e) => e,
        other => rusqlite::Error::ToSqlConversionFailure(Box::new(other)),
    }
}
