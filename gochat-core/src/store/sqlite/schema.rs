//! The SQLite schema, versioned with `PRAGMA user_version` and migrated at open.

use rusqlite::Connection;

/// The schema this build writes.
pub const VERSION: i64 = 5;

/// Version 1: users (the first round). Version 2: message history, client ids, sessions.
/// Version 3: inbox rows staged before they join the log (staging.rs). Version 4: no new
/// table, a new meaning: `log_heads` may lag behind the rows (heads.rs), so a build that
/// trusts it alone must not open the file. Version 5: the messages move to `history`, whose
/// rows carry their own seqs, so retention finds their log rows by their keys and two
/// indexes go (see below).
const MIGRATIONS: [&str; 5] = [
    "
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL DEFAULT (unixepoch())
);
",
    "
-- One row per message; a private message is referenced from two inboxes.
CREATE TABLE IF NOT EXISTS messages (
    id         INTEGER PRIMARY KEY,           -- the snowflake msgId
    room_id    INTEGER NOT NULL,
    from_id    INTEGER NOT NULL,
    from_name  TEXT    NOT NULL,
    to_id      INTEGER,                       -- NULL for a room message
    to_name    TEXT,
    msg        TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_created ON messages (created_ms);
-- Every log (kind 0 room, 1 inbox; key the room or user id) numbers its messages.
CREATE TABLE IF NOT EXISTS log (
    kind   INTEGER NOT NULL,
    key    INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    msg_id INTEGER NOT NULL,
    PRIMARY KEY (kind, key, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS log_msg ON log (msg_id);
-- Saved heads; a log's head is the largest of this and its rows' seqs (heads.rs).
CREATE TABLE IF NOT EXISTS log_heads (
    kind     INTEGER NOT NULL,
    key      INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
-- Idempotency keys, per sender, for the dedup window.
CREATE TABLE IF NOT EXISTS client_ids (
    user_id    INTEGER NOT NULL,
    client_id  TEXT    NOT NULL,
    msg_id     INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    peer_seq   INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS client_ids_created ON client_ids (created_ms);
-- The standalone sessions: each user's current login.
CREATE TABLE IF NOT EXISTS sessions (
    user_id    INTEGER PRIMARY KEY,
    user_name  TEXT    NOT NULL,
    token      TEXT    NOT NULL UNIQUE,
    expires_ms INTEGER NOT NULL
);
",
    "
CREATE TABLE IF NOT EXISTS inbox_staged (
    user_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    msg_id  INTEGER NOT NULL,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
",
    "",
    "
-- One row per message, as `messages` was, with the message's seqs: in its room or its
-- sender's inbox, and in its recipient's (0 for a room message). A new name, so that a
-- version-4 build still holding the file fails loudly instead of writing rows without
-- seqs (a check at every insert cost the writer ~5 k instructions a message).
CREATE TABLE history (
    id         INTEGER PRIMARY KEY,           -- the snowflake msgId
    room_id    INTEGER NOT NULL,
    from_id    INTEGER NOT NULL,
    from_name  TEXT    NOT NULL,
    to_id      INTEGER,                       -- NULL for a room message
    to_name    TEXT,
    msg        TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    seq        INTEGER NOT NULL,              -- 0 only where no row held it at the move
    peer_seq   INTEGER NOT NULL
);
-- The staged rows join the log first, so that the seqs are found in the log alone.
INSERT INTO log (kind, key, seq, msg_id) SELECT 1, user_id, seq, msg_id FROM inbox_staged;
DELETE FROM inbox_staged;
INSERT INTO history
SELECT m.id, m.room_id, m.from_id, m.from_name, m.to_id, m.to_name, m.msg, m.created_ms,
       coalesce((SELECT l.seq FROM log l WHERE l.msg_id = m.id
                 AND l.kind = (m.to_id IS NOT NULL)
                 AND l.key = CASE WHEN m.to_id IS NULL THEN m.room_id ELSE m.from_id END), 0),
       coalesce((SELECT l.seq FROM log l WHERE l.msg_id = m.id
                 AND l.kind = 1 AND l.key = m.to_id), 0)
FROM messages m ORDER BY m.id;
-- With it goes its index on time, and `log_msg`: each was one more B-tree insert a message
-- (two for a private one's log rows) for retention alone, which now finds old messages by
-- their ids (snowflakes carry their time) and a message's log rows by the keys its seqs
-- give (retention.rs).
DROP TABLE messages;
DROP INDEX IF EXISTS log_msg;
",
];

/// Bring the database at `conn` to [`VERSION`]; refuses a database written by a newer one.
pub fn migrate(conn: &Connection) -> crate::Result<()> {
    migrate_to(conn, VERSION)
}

/// Bring the database at `conn` to `target` (an older version: for tests of the migrations).
pub(super) fn migrate_to(conn: &Connection, target: i64) -> crate::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > VERSION {
        return Err(crate::Error::Decode(format!(
            "the database has schema version {current}; this build knows up to {VERSION}"
        )));
    }
    // A first-round database has users but no version: its migration is idempotent.
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if current < version && version <= target {
            conn.execute_batch(&format!(
                "BEGIN; {sql} PRAGMA user_version = {version}; COMMIT;"
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Log, Range};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Retention, Store};
    use std::time::Duration;

    /// A version-4 file, as the last build left it: room and private messages, some inbox
    /// rows merged into the log and some staged, one sent to oneself, and one private
    /// message whose sender's row retention had already removed. Version 5 gives every
    /// message its seqs from those rows (in `history`), drops the two indexes, and retention then removes a
    /// message with its last row (which it could only find through `log_msg` before). The
    /// heads are saved, as a clean shutdown leaves them; inbox 2's is above its rows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_4_file_gets_its_seqs_and_loses_two_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        {
            let c = Connection::open(&path).unwrap();
            migrate_to(&c, 4).unwrap();
            c.execute_batch(
                "INSERT INTO messages (id, room_id, from_id, from_name, to_id, to_name, msg, created_ms)
                 VALUES (10, 7, 1, 'a', NULL, NULL, 'room', 1),
                        (11, 1, 1, 'a', 2, 'b', 'merged', 2),
                        (12, 1, 2, 'b', 1, 'a', 'staged', 3),
                        (13, 1, 3, 'c', 3, 'c', 'to self', 4),
                        (14, 1, 2, 'b', 3, 'c', 'half gone', 5);
                 INSERT INTO log (kind, key, seq, msg_id)
                 VALUES (0, 7, 4, 10), (1, 1, 1, 11), (1, 2, 1, 11), (1, 3, 2, 13), (1, 3, 3, 14);
                 INSERT INTO inbox_staged (user_id, seq, msg_id) VALUES (2, 2, 12), (1, 2, 12);
                 INSERT INTO log_heads (kind, key, last_seq)
                 VALUES (0, 7, 4), (1, 1, 2), (1, 2, 3), (1, 3, 3);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let c = Connection::open(&path).unwrap();
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 5);
        let seqs: Vec<(i64, i64, i64)> = c
            .prepare("SELECT id, seq, peer_seq FROM history ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            seqs,
            [(10, 4, 0), (11, 1, 1), (12, 2, 2), (13, 2, 2), (14, 0, 3)]
        );
        let indexes: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master
                 WHERE name IN ('messages', 'log_msg', 'messages_created')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0);
        // A version-4 writer still holding the file: its inserts fail, loudly.
        let old_style = c.execute(
            "INSERT INTO messages (id, room_id, from_id, from_name, to_id, to_name, msg, created_ms)
             VALUES (99, 7, 1, 'a', NULL, NULL, 'old build', 6)",
            [],
        );
        assert!(old_style.is_err(), "an insert without seqs was taken");
        let staged: i64 = c
            .query_row("SELECT count(*) FROM inbox_staged", [], |r| r.get(0))
            .unwrap();
        assert_eq!(staged, 0, "merged by the migration");
        let inbox = |user| {
            let store = store.clone();
            async move {
                let page = store
                    .read(Log::Inbox(user), Range::Since(0), 10)
                    .await
                    .unwrap();
                page.messages.into_iter().map(|m| m.msg).collect::<Vec<_>>()
            }
        };
        assert_eq!(inbox(1).await, ["merged", "staged"]);
        assert_eq!(inbox(2).await, ["merged", "staged"]);
        assert_eq!(inbox(3).await, ["to self", "half gone"]);
        // Every log down to its newest row: 11 (held by no newest row) goes, 13 goes
        // (inbox 3 keeps 14), the others stay.
        let keep_one = Retention {
            max_per_log: 1,
            max_age: None,
            dedup_window: Duration::ZERO,
            batch: 100,
        };
        while store.prune(keep_one).await.unwrap() > 0 {}
        let ids: Vec<i64> = c
            .prepare("SELECT id FROM history ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ids, [10, 12, 14]);
        assert_eq!(
            store.last_seq(Log::Inbox(2)).await.unwrap(),
            3,
            "saved head"
        );
    }
}
