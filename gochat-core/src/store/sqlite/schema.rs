//! The SQLite schema, versioned with `PRAGMA user_version` and migrated at open.

use rusqlite::Connection;

/// The schema this build writes.
pub const VERSION: i64 = 4;

/// Version 1: users (the first round). Version 2: message history, client ids, sessions.
/// Version 3: inbox rows staged before they join the log (staging.rs). Version 4: no new
/// table, a new meaning: `log_heads` may lag behind the rows (heads.rs), so a build that
/// trusts it alone must not open the file.
const MIGRATIONS: [&str; 4] = [
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
];

/// Bring the database at `conn` to [`VERSION`]; refuses a database written by a newer one.
pub fn migrate(conn: &Connection) -> crate::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > VERSION {
        return Err(crate::Error::Decode(format!(
            "the database has schema version {current}; this build knows up to {VERSION}"
        )));
    }
    // A first-round database has users but no version: its migration is idempotent.
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if current < version {
            conn.execute_batch(&format!(
                "BEGIN; {sql} PRAGMA user_version = {version}; COMMIT;"
            ))?;
        }
    }
    Ok(())
}
