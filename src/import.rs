//! `gochat import-gochat-sqlite FILE`: bring the users of a Go gochat deployment over,
//! keeping their ids and names. Their passwords are gochat's SHA-1 hex, which the logic
//! layer accepts once and replaces with an argon2id hash on first login.

use gochat_core::Store;
use gochat_core::store::read_gochat_users;
use std::fmt;
use std::path::Path;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows read from gochat's `user` table.
    pub read: usize,
    /// Users inserted.
    pub imported: usize,
    /// Rows the store already holds, same id and name (re-running an import is harmless).
    pub present: usize,
    /// Rows left out, each with why.
    pub skipped: Vec<String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "read {} users: {} imported, {} already present, {} skipped",
            self.read,
            self.imported,
            self.present,
            self.skipped.len()
        )?;
        for why in &self.skipped {
            write!(f, "\n  skipped {why}")?;
        }
        Ok(())
    }
}

/// Longest name imported (the logic layer's default `max_name_bytes`).
const MAX_NAME_BYTES: usize = 64;

fn unusable(name: &str, hash: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Some("name empty or too long");
    }
    if name.chars().any(char::is_control) || name.trim() != name {
        return Some("name with control characters or outer spaces");
    }
    let sha1_hex = hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    if !sha1_hex && !hash.starts_with("$argon2") {
        return Some("password is neither gochat's SHA-1 hex nor argon2");
    }
    None
}

/// Copy the users of gochat's database `file` into `store`.
pub async fn gochat_sqlite(file: &Path, store: &dyn Store) -> Result<ImportReport, crate::Error> {
    let users = read_gochat_users(file)?;
    let mut report = ImportReport {
        read: users.len(),
        ..ImportReport::default()
    };
    for u in users {
        if let Some(why) = unusable(&u.name, &u.password_hash) {
            report
                .skipped
                .push(format!("id {} ({:?}): {why}", u.id, u.name));
            continue;
        }
        if u.id <= 0 {
            report
                .skipped
                .push(format!("id {} ({:?}): id not positive", u.id, u.name));
            continue;
        }
        match store.import_user(u.id, &u.name, &u.password_hash).await {
            Ok(()) => report.imported += 1,
            Err(gochat_core::Error::NameTaken) => match store.user_by_name(&u.name).await? {
                Some(there) if there.id == u.id => report.present += 1,
                Some(there) => report.skipped.push(format!(
                    "id {} ({:?}): the name belongs to user {} here",
                    u.id, u.name, there.id
                )),
                None => report.skipped.push(format!(
                    "id {} ({:?}): the id belongs to another user here",
                    u.id, u.name
                )),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}
