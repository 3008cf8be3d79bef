//! `gochat import-gochat-sqlite FILE` on a database shaped like Go gochat's: ids and names
//! kept, old passwords log in (and are rehashed), re-running changes nothing, bad rows are
//! reported, later registrations get ids above the imported ones.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod common;

use common::standalone::{Binary, write_config};
use common::*;
use sha1::{Digest, Sha1};

fn sha1_hex(s: &str) -> String {
    Sha1::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A database as gochat creates it (db/gochat.sqlite3), with `rows` in its `user` table.
fn gochat_database(path: &std::path::Path, rows: &[(i64, &str, String)]) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        r#"CREATE TABLE "user" ("id" integer PRIMARY KEY AUTOINCREMENT,
             "user_name" varchar(20) NOT NULL DEFAULT '', "password" char(40) NOT NULL DEFAULT '',
             "create_time" datetime NOT NULL DEFAULT CURRENT_TIMESTAMP);"#,
    )
    .unwrap();
    for (id, name, pass) in rows {
        c.execute(
            r#"INSERT INTO "user" (id, user_name, password) VALUES (?1, ?2, ?3)"#,
            rusqlite::params![id, name, pass],
        )
        .unwrap();
    }
}

fn import(config: &std::path::Path, file: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gochat"))
        .args([
            "--config",
            &config.display().to_string(),
            "import-gochat-sqlite",
        ])
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gochat_users_are_imported_with_their_ids_and_log_in_with_old_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gochat.sqlite3");
    gochat_database(
        &file,
        &[
            (3, "alice", sha1_hex("alice-pw")),
            (10, "bob", sha1_hex("bob-pw")),
            (11, "", sha1_hex("x")),
            (12, "eve", "not-a-hash".into()),
        ],
    );
    let config = write_config(dir.path(), &[]);
    let (ok, out) = import(&config, &file);
    assert!(ok, "{out}");
    assert!(
        out.contains("read 4 users: 2 imported, 0 already present, 2 skipped"),
        "{out}"
    );
    assert!(
        out.contains("id 12 (\"eve\")") && out.contains("id 11"),
        "{out}"
    );
    let (ok, again) = import(&config, &file);
    assert!(
        ok && again.contains("0 imported, 2 already present"),
        "{again}"
    );
    // A store that already has users of its own: ids or names taken are reported, not merged.
    let other = tempfile::tempdir().unwrap();
    let busy = write_config(other.path(), &[]);
    drop(Binary::start(&busy, None, &other.path().join("gochat.log")).await); // demo users 1-3
    let (ok, clash) = import(&busy, &file);
    assert!(
        ok && clash.contains("id 3 (\"alice\"): the id belongs to another user"),
        "{clash}"
    );
    let (ok, missing) = import(&config, &dir.path().join("nope.sqlite3"));
    assert!(
        !ok && missing.contains("nope.sqlite3 is not a file"),
        "{missing}"
    );

    let bin = Binary::start(&config, None, &dir.path().join("gochat.log")).await;
    let api = bin.addrs.api;
    for _ in 0..2 {
        // The second login checks the argon2id hash the first one stored.
        let t = login(api, "alice", "alice-pw").await;
        assert_eq!(user_id(api, &t).await, 3);
    }
    let wrong = post(
        api,
        "/user/login",
        r#"{"userName":"bob","passWord":"alice-pw"}"#,
    )
    .await;
    assert_ne!(wrong.json()["code"], 0);
    assert_eq!(user_id(api, &login(api, "bob", "bob-pw").await).await, 10);
    let new = register(api, "newcomer").await;
    assert!(
        user_id(api, &new).await > 10,
        "a new id collides with imported ones"
    );
}
