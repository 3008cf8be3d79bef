//! WAL checkpoints off the writer's path. By default SQLite checkpoints inside the commit
//! that crosses 1000 WAL pages, and with `synchronous = NORMAL` that checkpoint fsyncs: the
//! writer thread, and every message waiting on it, stalls for the disk. Here the writer
//! never checkpoints; this thread does, `PASSIVE` (it never blocks the writer or readers),
//! on its own connection, a few times a second.

use rusqlite::Connection;
use std::sync::mpsc;
use std::time::Duration;

/// How often the WAL is copied back into the database.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// Stops the checkpointer (after one last checkpoint) when dropped.
pub struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Checkpoint the database `conn` has open until the returned handle is dropped.
    pub fn start(conn: Connection) -> crate::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("gochat-sqlite-checkpoint".into())
            .spawn(move || {
                loop {
                    let last = matches!(
                        stopped.recv_timeout(INTERVAL),
                        Err(mpsc::RecvTimeoutError::Disconnected)
                    );
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!("sqlite: checkpoint failed (retried): {e}");
                    }
                    if last {
                        return;
                    }
                }
            })?;
        Ok(Self { _stop: stop })
    }
}
