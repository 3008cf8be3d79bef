//! The group-commit writer: one thread owns the write connection, takes every write that is
//! waiting, runs them in one transaction (one failing write still fails alone: see
//! [`Pending`]) and answers every writer once it committed. A commit per message caps
//! SQLite at a few thousand writes a second; a commit per batch does not.

use super::heads;
use super::hot::{Hot, Sql};
use super::staging::{self, Staged};
use crate::hash::FastMap;
use crate::model::Log;
use crate::{Error, Result};
use rusqlite::Connection;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Writes committed together at most.
pub const MAX_BATCH: usize = 1024;
/// Writes waiting for the writer before `write` waits for room.
pub const QUEUE: usize = 8192;

/// State shared by the writes of one transaction: the head (last seq) of every log touched,
/// and how many inbox rows are staged (carried from one transaction to the next; see
/// staging.rs); and the writer's hot statements.
pub struct Batch<'h, 'c> {
    hot: &'h Hot<'c>,
    /// Heads read or moved in this transaction.
    heads: FastMap<Log, u64>,
    /// Logs whose head this transaction moved.
    dirty: Vec<Log>,
    staged: Staged,
    /// Save every head not yet saved, in this transaction (retention asked for it).
    save_all: bool,
    /// Heads as earlier transactions committed them, lent to this one.
    committed: Committed,
}

/// What one write moved of a [`Batch`], to undo with its savepoint.
struct Undo {
    heads: FastMap<Log, u64>,
    dirty: usize,
    staged: Staged,
}

/// Log heads the writer committed, kept across transactions: a write finds its logs' heads
/// in memory instead of in the file (two lookups a private message), and they are saved to
/// `log_heads` only every [`SAVE_EVERY`] commits (two upserts a private message saved; the
/// file covers an unsaved head with its rows, see heads.rs). Another connection's commit —
/// a second process on the file — empties the cache: `PRAGMA data_version` changes with
/// every commit made by any other connection, and never with our own.
#[derive(Default)]
pub struct Committed {
    heads: FastMap<Log, u64>,
    /// Committed heads not saved yet (kept through an emptied cache: they are still ours).
    unsaved: FastMap<Log, u64>,
    commits_unsaved: u32,
    data_version: Option<i64>,
}

/// Heads kept at most (~30 bytes each); past this the cache starts over.
const COMMITTED_MAX: usize = 1 << 17;
/// Commits between two saves of the heads.
const SAVE_EVERY: u32 = 256;
/// Unsaved heads at most: more are saved at once.
const UNSAVED_MAX: usize = 1 << 14;

impl Committed {
    /// Called first in every transaction: forget the heads if another connection committed.
    fn validate(&mut self, hot: &Hot<'_>) -> rusqlite::Result<()> {
        let now: i64 = hot.get(Sql::DataVersion)?.query_row([], |r| r.get(0))?;
        if self.data_version != Some(now) {
            self.heads.clear();
            self.data_version = Some(now);
        }
        Ok(())
    }

    /// Whether the transaction about to commit `batch_heads` must save every head.
    fn must_save(&self, batch_heads: usize) -> bool {
        self.commits_unsaved + 1 >= SAVE_EVERY
            || self.unsaved.len() >= UNSAVED_MAX
            // The cache is about to start over: save what it knows first.
            || self.heads.len() + batch_heads > COMMITTED_MAX
    }

    /// Take in the heads of a transaction that committed, `saved` if it saved them all.
    fn absorb(&mut self, heads: FastMap<Log, u64>, dirty: &[Log], saved: bool) {
        if saved {
            self.unsaved.clear();
            self.commits_unsaved = 0;
        } else {
            self.unsaved.extend(dirty.iter().map(|l| (*l, heads[l])));
            self.commits_unsaved += 1;
        }
        if self.heads.len() + heads.len() > COMMITTED_MAX {
            self.heads.clear();
        }
        self.heads.extend(heads);
    }
}

impl<'h, 'c> Batch<'h, 'c> {
    /// A transaction's state, after one that left `staged` inbox rows staged.
    fn after(hot: &'h Hot<'c>, staged: Staged, committed: Committed) -> Self {
        Self {
            hot,
            heads: FastMap::default(),
            dirty: Vec::new(),
            staged,
            save_all: false,
            committed,
        }
    }

    /// A hot statement of the writer (hot.rs).
    pub fn statement(
        &self,
        sql: Sql,
    ) -> rusqlite::Result<std::cell::RefMut<'h, rusqlite::Statement<'c>>> {
        self.hot.get(sql)
    }

    fn undo_point(&self) -> Undo {
        Undo {
            heads: self.heads.clone(),
            dirty: self.dirty.len(),
            staged: self.staged,
        }
    }

    fn undo(&mut self, to: Undo) {
        self.heads = to.heads;
        self.dirty.truncate(to.dirty);
        self.staged = to.staged;
    }

    /// Stage inbox row (`user`, `seq`) → `msg_id`: it joins the log at a later merge.
    pub fn stage(&mut self, user: i64, seq: u64, msg_id: i64) -> Result<()> {
        self.statement(Sql::StageInboxRow)?
            .execute(rusqlite::params![user, seq as i64, msg_id])?;
        self.staged.rows += 1;
        Ok(())
    }

    /// Move every staged inbox row to the log now (retention, which reads only the log).
    pub fn merge_staged(&mut self, conn: &Connection) -> Result<()> {
        self.staged = staging::merge_all(conn)?;
        Ok(())
    }

    /// The newest seq of `log`, as this transaction sees it.
    pub fn head(&mut self, conn: &Connection, log: Log) -> Result<u64> {
        if let Some(h) = self
            .heads
            .get(&log)
            .or_else(|| self.committed.heads.get(&log))
        {
            return Ok(*h);
        }
        let h = heads::stored(conn, log)?;
        self.heads.insert(log, h);
        Ok(h)
    }

    /// Record that `log` now ends at `seq`.
    pub fn advance(&mut self, log: Log, seq: u64) {
        if self.heads.insert(log, seq) != Some(seq) {
            self.dirty.push(log);
        }
    }

    /// Save every head this writer knows and `log_heads` does not, now and again before the
    /// commit (retention, before it removes rows or reads `log_heads`).
    pub fn save_heads(&mut self, conn: &Connection) -> Result<()> {
        self.save_all = true;
        self.write_heads(conn)
    }

    /// Save the head of `log` now (retention, before it removes rows of `log`: once they
    /// are gone, only `log_heads` remembers their seqs).
    pub fn save_head(&mut self, conn: &Connection, log: Log) -> Result<()> {
        let h = self.head(conn, log)?;
        heads::save(conn, log, h)
    }

    fn write_heads(&self, conn: &Connection) -> Result<()> {
        for (log, seq) in &self.committed.unsaved {
            if !self.heads.contains_key(log) {
                heads::save(conn, *log, *seq)?;
            }
        }
        for log in &self.dirty {
            heads::save(conn, *log, self.heads[log])?;
        }
        Ok(())
    }

    /// The last writes before the commit; whether every head is saved by it.
    fn flush(&mut self, conn: &Connection) -> Result<bool> {
        if self.staged.rows >= staging::MERGE_AT {
            self.staged = staging::merge_some(conn, self.staged)?;
        }
        let save = self.save_all || self.committed.must_save(self.heads.len());
        if save {
            self.write_heads(conn)?;
        }
        Ok(save)
    }
}

/// One write waiting for its transaction. A batch runs its writes as they are, without a
/// savepoint each: savepoints made SQLite copy every page a write touched into a statement
/// journal, a third of a large batch's time (`benches/history.rs`). If one write fails, the
/// batch is rolled back and run again with a savepoint around each write, so that the
/// failing one fails alone — which is why a write may run twice.
trait Pending: Send {
    /// Run the write (in a savepoint of its own if `isolated`); whether it succeeded.
    fn run(&mut self, conn: &Connection, batch: &mut Batch<'_, '_>, isolated: bool) -> bool;
    /// The transaction ended, with the commit's (or the `BEGIN`'s) error if it failed:
    /// answer the writer.
    fn finish(self: Box<Self>, failure: Option<&Arc<rusqlite::Error>>);
}

struct Write<F, R> {
    f: F,
    outcome: Option<Result<R>>,
    reply: oneshot::Sender<Result<R>>,
}

impl<F, R> Pending for Write<F, R>
where
    F: FnMut(&Connection, &mut Batch<'_, '_>) -> Result<R> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection, batch: &mut Batch<'_, '_>, isolated: bool) -> bool {
        let outcome = if isolated {
            // What this write moved of the logs' heads is undone with its savepoint.
            let before = batch.undo_point();
            let outcome = in_savepoint(conn, |c| (self.f)(c, batch));
            if outcome.is_err() {
                batch.undo(before);
            }
            outcome
        } else {
            (self.f)(conn, batch)
        };
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, failure: Option<&Arc<rusqlite::Error>>) {
        let result = match (self.outcome, failure) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), None) => Ok(v),
            (_, Some(e)) => Err(Error::CommitFailed(e.clone())),
            (None, None) => Err(Error::Closed),
        };
        let _ = self.reply.send(result);
    }
}

/// The handle writers use.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Pending>>,
}

impl Writer {
    /// Start the writer thread on `conn`, whose database has `staged` inbox rows staged.
    pub fn start(conn: Connection, staged: usize) -> Result<Self> {
        let staged = Staged {
            rows: staged,
            ..Staged::default()
        };
        let (jobs, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("gochat-sqlite-writer".into())
            .spawn(move || run(conn, rx, staged))?;
        Ok(Self { jobs })
    }

    /// Run `f` in the next transaction; its result once that transaction committed. `f`
    /// may run twice (see [`Pending`]): only its last run's writes are committed.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&Connection, &mut Batch<'_, '_>) -> Result<R> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let write = Write {
            f,
            outcome: None,
            reply,
        };
        self.jobs
            .send(Box::new(write))
            .await
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
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

/// Run every write of `jobs` in the open transaction: all at once, or, if one fails, again
/// from a rolled-back transaction each in a savepoint. Returns the batch (its log heads,
/// with `committed` lent to it), or the error that leaves no transaction open.
fn run_batch<'h, 'c>(
    conn: &Connection,
    hot: &'h Hot<'c>,
    jobs: &mut [Box<dyn Pending>],
    staged: Staged,
    committed: &mut Committed,
) -> std::result::Result<Batch<'h, 'c>, rusqlite::Error> {
    let mut batch = Batch::after(hot, staged, std::mem::take(committed));
    if jobs.iter_mut().all(|j| j.run(conn, &mut batch, false)) {
        return Ok(batch);
    }
    crate::metrics::metrics().store_batches_retried.inc();
    *committed = std::mem::take(&mut batch.committed);
    // A failed write may have ended the transaction already (SQLITE_FULL, I/O errors).
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    begin(hot)?;
    let mut batch = Batch::after(hot, staged, std::mem::take(committed));
    for j in jobs.iter_mut() {
        j.run(conn, &mut batch, true);
    }
    Ok(batch)
}

/// One transaction of `jobs`: what is staged after it, or its error. `committed` takes in
/// the heads it committed.
fn transaction(
    conn: &Connection,
    hot: &Hot<'_>,
    jobs: &mut [Box<dyn Pending>],
    staged: Staged,
    committed: &mut Committed,
) -> std::result::Result<Staged, rusqlite::Error> {
    begin(hot)?;
    committed.validate(hot)?;
    let mut batch = run_batch(conn, hot, jobs, staged, committed)?;
    let ended = batch
        .flush(conn)
        .map_err(into_sqlite)
        .and_then(|saved| commit(hot).map(|()| saved));
    *committed = std::mem::take(&mut batch.committed);
    committed.absorb(batch.heads, &batch.dirty, ended?);
    Ok(batch.staged)
}

// Prepared once (hot.rs): `execute_batch` parsed these anew in every transaction, ~3 % of
// the writer's instructions in callgrind's small batches (docs/performance.md).
fn begin(hot: &Hot<'_>) -> rusqlite::Result<()> {
    hot.get(Sql::Begin)?.execute([]).map(drop)
}

fn commit(hot: &Hot<'_>) -> rusqlite::Result<()> {
    hot.get(Sql::Commit)?.execute([]).map(drop)
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Pending>>, mut staged: Staged) {
    let hot = Hot::new(&conn);
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut committed = Committed::default();
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
        let failure = match transaction(&conn, &hot, &mut jobs, staged, &mut committed) {
            Ok(now_staged) => {
                staged = now_staged;
                None
            }
            Err(e) => {
                tracing::error!("sqlite: a batch of writes failed: {e}");
                let _ = conn.execute_batch("ROLLBACK");
                // Whether a failed COMMIT left anything behind is not ours to guess: the
                // heads are read afresh from the file.
                committed.heads.clear();
                Some(Arc::new(e))
            }
        };
        for j in jobs.drain(..) {
            j.finish(failure.as_ref());
        }
    }
    // The store is gone: leave `log_heads` complete for whoever opens the file next.
    if let Err(e) = save_on_close(&conn, &hot, committed) {
        tracing::warn!("sqlite: saving the log heads on close failed (the rows cover them): {e}");
    }
}

fn save_on_close(conn: &Connection, hot: &Hot<'_>, committed: Committed) -> Result<()> {
    if committed.unsaved.is_empty() {
        return Ok(());
    }
    begin(hot)?;
    let batch = Batch::after(hot, Staged::default(), committed);
    let saved = batch.write_heads(conn);
    if saved.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
        return saved;
    }
    commit(hot)?;
    Ok(())
}

fn into_sqlite(e: Error) -> rusqlite::Error {
    match e {
        Error::Sqlite(e) => e,
        other => rusqlite::Error::ToSqlConversionFailure(Box::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::time::Duration;

    type Answer = Pin<Box<dyn Future<Output = Result<i64>> + Send>>;

    fn writer(dir: &tempfile::TempDir) -> (Writer, Connection) {
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        // The store's logs, which give the heads (heads.rs), and a table to write to.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER PRIMARY KEY);
             CREATE TABLE log_heads (kind INTEGER, key INTEGER, last_seq INTEGER,
                                     PRIMARY KEY (kind, key));
             CREATE TABLE log (kind INTEGER, key INTEGER, seq INTEGER, msg_id INTEGER,
                               PRIMARY KEY (kind, key, seq));
             CREATE TABLE inbox_staged (user_id INTEGER, seq INTEGER, msg_id INTEGER,
                                        PRIMARY KEY (user_id, seq));",
        )
        .unwrap();
        (
            Writer::start(conn, 0).unwrap(),
            Connection::open(&path).unwrap(),
        )
    }

    /// Holds the writer for a moment, so that the writes sent meanwhile share one batch.
    async fn in_one_batch(w: &Writer, writes: Vec<Answer>) -> Vec<Result<i64>> {
        let hold = w.write(|_, _| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        });
        let (held, rest) = tokio::join!(hold, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            futures::future::join_all(writes).await
        });
        held.unwrap();
        rest
    }

    #[tokio::test]
    async fn a_failing_write_fails_alone_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (w, read) = writer(&dir);
        let insert = |k: i64, then_fail: bool| -> Answer {
            let w = w.clone();
            Box::pin(async move {
                w.write(move |c, _| {
                    c.execute("INSERT INTO t (k) VALUES (?1)", [k])?;
                    if then_fail {
                        return Err(Error::NameTaken);
                    }
                    Ok(k)
                })
                .await
            })
        };
        let results = in_one_batch(
            &w,
            vec![insert(1, false), insert(2, true), insert(3, false)],
        )
        .await;
        assert_eq!(results[0].as_ref().unwrap(), &1);
        assert!(
            matches!(results[1], Err(Error::NameTaken)),
            "{:?}",
            results[1]
        );
        assert_eq!(results[2].as_ref().unwrap(), &3);
        let mut keys: Vec<i64> = read
            .prepare("SELECT k FROM t ORDER BY k")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        keys.sort();
        assert_eq!(keys, [1, 3], "the failed write's row was committed");
    }

    #[tokio::test]
    async fn a_failing_write_gives_back_the_seqs_it_took() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _) = writer(&dir);
        let take = |fail: bool| -> Answer {
            let w = w.clone();
            Box::pin(async move {
                w.write(move |c, b| {
                    let seq = b.head(c, Log::Room(1))? + 1;
                    b.advance(Log::Room(1), seq);
                    if fail {
                        return Err(Error::NameTaken);
                    }
                    Ok(seq as i64)
                })
                .await
            })
        };
        let results = in_one_batch(&w, vec![take(false), take(true), take(false)]).await;
        let seqs: Vec<_> = results.iter().map(|r| r.as_ref().ok().copied()).collect();
        assert_eq!(seqs, [Some(1), None, Some(2)], "seqs must stay dense");
    }
}
