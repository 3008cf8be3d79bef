//! Reading the users of a Go gochat database (its SQLite file), for importing them.

use crate::Result;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// One row of gochat's `user` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GochatUser {
    /// Its id, kept by the import.
    pub id: i64,
    /// `user_name`.
    pub name: String,
    /// `password`: the hex SHA-1 gochat stored.
    pub password_hash: String,
}

/// Every row of the `user` table of gochat's database at `path`, by id, opened read-only.
pub fn read_gochat_users(path: &Path) -> Result<Vec<GochatUser>> {
    if !path.is_file() {
        return Err(crate::Error::InvalidConfig(format!(
            "{} is not a file",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn
        .prepare("SELECT id, user_name, password FROM user ORDER BY id")
        .map_err(|e| {
            crate::Error::Decode(format!(
                "{} has no gochat `user` table (id, user_name, password): {e}",
                path.display()
            ))
        })?;
    let rows = stmt
        .query_map([], |r| {
            Ok(GochatUser {
                id: r.get(0)?,
                name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                password_hash: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}
