//! WAL checkpoints off the writer's path. By default SQLite checkpoints inside the commit
//! that crosses 1000 WAL pages, and with `synchronous = NORMAL` that checkpoint fsyncs: the
//! writer thread, and every message waiting on it, stalls for the disk. Here the writer
//! never checkpoints; this thread does, `PASSIVE` (it never blocks the writer or readers),
//! on its own connection, a few times a second.
//!
//! PASSIVE copies the WAL back but never makes the next writer start it over: that takes a
//! moment with no reader in the WAL, which a busy server never has. Measured, the WAL grew
//! to 1.4 GB in 20 s of private messages, and every append extended the file, a third of
//! the server's CPU in the kernel zeroing new blocks. So once the WAL holds
//! [`RESTART_FRAMES`], a `RESTART` checkpoint waits for the readers of the moment (each a
//! short read) and holds writers off until it is done; the next write starts the WAL from
//! its beginning, over blocks that already exist, and `journal_size_limit` trims the file.

use rusqlite::Connection;
use std::sync::mpsc;
use std::time::Duration;

/// How often the WAL is copied back into the database.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// WAL frames (pages) after which the WAL is started over: ~16 MiB at 4 KiB pages.
pub const RESTART_FRAMES: i64 = 4096;

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
                    if let Err(e) = checkpoint(&conn) {
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

/// One checkpoint: PASSIVE, then RESTART if the WAL has grown past [`RESTART_FRAMES`].
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    // The answer row: (busy, frames in the WAL, frames checkpointed).
    let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    if frames >= RESTART_FRAMES {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}
