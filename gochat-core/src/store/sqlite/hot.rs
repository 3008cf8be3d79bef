//! The writer's hot statements, each prepared once for the connection's life.
//!
//! rusqlite's statement cache costs ~1.7 k instructions a use: it trims and hashes the SQL
//! text to find the statement, allocates an `Arc` of that text to key it again, and hashes
//! it once more to put it back, clearing its bindings. For the few statements every
//! message runs that was ~10 % of the writer's instructions (docs/performance.md); the
//! rest of the writer's statements stay in the cache.

use rusqlite::{Connection, Statement};
use std::cell::{OnceCell, RefCell, RefMut};

/// A statement the writer runs for every message or every transaction.
#[derive(Clone, Copy)]
pub enum Sql {
    Begin,
    Commit,
    DataVersion,
    InsertMessage,
    InsertRoomRow,
    StageInboxRow,
}

impl Sql {
    const COUNT: usize = 6;

    fn text(self) -> &'static str {
        match self {
            Sql::Begin => "BEGIN IMMEDIATE",
            Sql::Commit => "COMMIT",
            Sql::DataVersion => "PRAGMA data_version",
            Sql::InsertMessage => {
                "INSERT INTO history (id, room_id, from_id, from_name, to_id, to_name, msg,
                                       created_ms, seq, peer_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            }
            Sql::InsertRoomRow => "INSERT INTO log (kind, key, seq, msg_id) VALUES (0, ?1, ?2, ?3)",
            Sql::StageInboxRow => {
                "INSERT INTO inbox_staged (user_id, seq, msg_id) VALUES (?1, ?2, ?3)"
            }
        }
    }
}

/// The hot statements of one connection, each prepared on its first use (a database
/// without one of the tables, as in the writer's own tests, never prepares it).
pub struct Hot<'c> {
    conn: &'c Connection,
    prepared: [OnceCell<RefCell<Statement<'c>>>; Sql::COUNT],
}

impl<'c> Hot<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            prepared: Default::default(),
        }
    }

    /// `sql`'s statement, ready to bind and run. Not to be held across another `get` of
    /// the same statement (the writer's calls never nest).
    pub fn get(&self, sql: Sql) -> rusqlite::Result<RefMut<'_, Statement<'c>>> {
        let cell = &self.prepared[sql as usize];
        if cell.get().is_none() {
            let _ = cell.set(RefCell::new(self.conn.prepare(sql.text())?));
        }
        Ok(cell.get().expect("set above").borrow_mut())
    }
}
