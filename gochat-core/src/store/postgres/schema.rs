//! The PostgreSQL schema, versioned in `schema_version` and migrated at start by whichever
//! process gets there first (the others wait on an advisory lock, then find nothing to do).

use crate::Result;
use tokio_postgres::Client;

/// The schema this build writes.
pub const VERSION: i32 = 1;

/// Serialises migrations across processes (any constant; "gochat" in ASCII).
const MIGRATION_LOCK: i64 = 0x676f_6368_6174;

/// Version 1: users, message history, client ids. (Sessions live in Redis in a cluster.)
const MIGRATIONS: [&str; 1] = ["
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT   NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL DEFAULT (extract(epoch FROM now())::bigint)
);
-- One row per message; a private message is referenced from two inboxes.
CREATE TABLE messages (
    id         BIGINT PRIMARY KEY,            -- the snowflake msgId
    room_id    BIGINT NOT NULL,
    from_id    BIGINT NOT NULL,
    from_name  TEXT   NOT NULL,
    to_id      BIGINT,                        -- NULL for a room message
    to_name    TEXT,
    msg        TEXT   NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX messages_created ON messages (created_ms);
-- Every log (kind 0 room, 1 inbox; key the room or user id) numbers its messages.
CREATE TABLE log (
    kind   SMALLINT NOT NULL,
    key    BIGINT   NOT NULL,
    seq    BIGINT   NOT NULL,
    msg_id BIGINT   NOT NULL,
    PRIMARY KEY (kind, key, seq)
);
CREATE INDEX log_msg ON log (msg_id);
-- A log's newest seq: the row every append to the log locks, which is what makes seqs
-- dense and unique across any number of writers.
CREATE TABLE log_heads (
    kind     SMALLINT NOT NULL,
    key      BIGINT   NOT NULL,
    last_seq BIGINT   NOT NULL,
    PRIMARY KEY (kind, key)
);
-- Idempotency keys, per sender, for the dedup window.
CREATE TABLE client_ids (
    user_id    BIGINT NOT NULL,
    client_id  TEXT   NOT NULL,
    msg_id     BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX client_ids_created ON client_ids (created_ms);
"];

/// Create `schema` if missing and bring it to [`VERSION`]; refuses a schema written by a
/// newer build. `client` has `search_path` set to `schema`.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // `schema` passed `valid_schema_name`: plain lowercase identifier, nothing to quote.
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_version (version INTEGER NOT NULL);"
    ))
    .await?;
    let current: i32 = tx
        .query_opt(&format!("SELECT version FROM {schema}.schema_version"), &[])
        .await?
        .map_or(0, |r| r.get(0));
    if current > VERSION {
        return Err(crate::Error::Decode(format!(
            "the PostgreSQL schema {schema} has version {current}; this build knows up to {VERSION}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await?;
        let version = i as i32 + 1;
        tracing::info!(schema, version, "migrated the PostgreSQL schema");
    }
    if current < VERSION {
        tx.execute(&format!("DELETE FROM {schema}.schema_version"), &[])
            .await?;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_version (version) VALUES ($1)"),
            &[&VERSION],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
