//! The distributed mode on PostgreSQL: both logic instances share users and history through
//! it (no SQLite file anywhere), seqs stay dense and unique however the writes are spread
//! over them, and a logic instance killed mid-burst loses no acknowledged message.
#![cfg(feature = "distributed")]
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::*;
use common::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// (count, distinct seqs, max seq) of a log in the cluster's schema.
fn log_stats(c: &Cluster, kind: i16, key: i64) -> (i64, i64, i64) {
    let out = psql(&format!(
        "SELECT count(*), count(DISTINCT seq), coalesce(max(seq), 0) FROM {}.log
         WHERE kind = {kind} AND key = {key}",
        c.schema
    ));
    let v: Vec<i64> = out.split('|').map(|x| x.parse().unwrap()).collect();
    (v[0], v[1], v[2])
}

fn sqlite_files(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".db") || name.ends_with(".db-wal") {
            found.push(entry.display().to_string());
        }
    }
    found
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_through_one_logic_instance_logged_in_through_the_other() {
    let mut c = Cluster::new("pg-users", "").await;
    let dir = c.dir.path().to_path_buf();
    let own = |n: &str| dir.join(n).display().to_string();
    let (d1, d2) = (own("logic-1-data"), own("logic-2-data"));
    c.start(
        "logic-1",
        "gochat-logic",
        &[
            "--instance-id",
            "logic-1",
            "--node-id",
            "1",
            "--rpc-addr",
            "127.0.0.1:0",
            "--data-dir",
            &d1,
        ],
    )
    .await;
    c.start("connect-1", "gochat-connect", &["--server-id", "connect-1"])
        .await;
    c.start("api", "gochat-api", &[]).await;
    let api = c.api();
    let token = register(api, "carol").await;
    let id = user_id(api, &token).await;

    // Only logic-2 is left: a new process with a data directory of its own.
    c.kill9("logic-1");
    c.start(
        "logic-2",
        "gochat-logic",
        &[
            "--instance-id",
            "logic-2",
            "--node-id",
            "2",
            "--rpc-addr",
            "127.0.0.1:0",
            "--data-dir",
            &d2,
        ],
    )
    .await;
    // Until api has seen logic-1 leave the registry, a call may still pick it.
    let again = std::sync::Mutex::new(String::new());
    let again_ref = &again;
    eventually(20, "a login through logic-2", || async move {
        let r = post(
            api,
            "/user/login",
            r#"{"userName":"carol","passWord":"password-carol"}"#,
        )
        .await;
        if r.json()["code"] != 0 {
            return false;
        }
        *again_ref.lock().unwrap() = r.json()["data"].as_str().unwrap().to_owned();
        true
    })
    .await;
    let again = again.into_inner().unwrap();
    eventually(20, "checkAuth through logic-2", || {
        let t = again.clone();
        async move {
            let r = post(api, "/user/checkAuth", &format!(r#"{{"authToken":"{t}"}}"#)).await;
            r.json()["code"] == 0 && r.json()["data"]["userId"] == id
        }
    })
    .await;
    let name_taken = post(
        api,
        "/user/register",
        r#"{"userName":"carol","passWord":"x"}"#,
    )
    .await;
    assert_ne!(name_taken.json()["code"], 0, "{}", name_taken.body);
    assert_eq!(
        sqlite_files(&dir),
        Vec::<String>::new(),
        "a SQLite file was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_through_both_logic_instances_get_unique_dense_seqs() {
    let c = Cluster::standard("pg-seqs").await;
    let api = c.api();
    let (ta, tb) = (register(api, "sa").await, register(api, "sb").await);
    let (ia, ib) = (user_id(api, &ta).await, user_id(api, &tb).await);
    let mut posts = Vec::new();
    for w in 0..4 {
        let (t, to) = if w % 2 == 0 {
            (ta.clone(), ib)
        } else {
            (tb.clone(), ia)
        };
        posts.push(tokio::spawn(async move {
            for n in 0..50 {
                let r = push_room(api, &t, 1, &format!("r{w}-{n}")).await;
                assert_eq!(r.json()["code"], 0, "{}", r.body);
                if n % 5 == 0 {
                    let r = push_private(api, &t, to, &format!("p{w}-{n}")).await;
                    assert_eq!(r.json()["code"], 0, "{}", r.body);
                }
            }
        }));
    }
    for p in posts {
        p.await.unwrap();
    }
    let room = log_stats(&c, 0, 1);
    println!("room 1: {room:?} (rows, distinct seqs, max seq)");
    assert_eq!(room, (200, 200, 200), "room seqs not dense and unique");
    for u in [ia, ib] {
        assert_eq!(log_stats(&c, 1, u), (40, 40, 40), "inbox of {u}");
    }
    // Both instances wrote: their snowflake node ids are in the message ids.
    let nodes = psql(&format!(
        "SELECT string_agg(DISTINCT ((id >> 12) & 1023)::text, ',') FROM {}.messages",
        c.schema
    ));
    assert_eq!(
        nodes, "1,2",
        "messages were not written through both logic instances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_logic_instance_mid_burst_loses_no_acknowledged_message() {
    let mut c = Cluster::standard("pg-kill").await;
    let api = c.api();
    let token = Arc::new(register(api, "burst").await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (token, stop) = (token.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let (mut acked, mut failed) = (Vec::new(), 0);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 150 {
                let msg = format!("k{w}-{n}");
                let r = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    push_room(api, &token, 1, &msg),
                )
                .await
                .expect("a post hung");
                if r.json()["code"] == 0 {
                    acked.push(msg);
                } else {
                    failed += 1;
                }
                n += 1;
            }
            (acked, failed)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    c.kill9("logic-1");
    let (mut acked, mut failed) = (Vec::new(), 0);
    for w in writers {
        let (a, f) = w.await.unwrap();
        acked.extend(a);
        failed += f;
    }
    stop.store(true, Ordering::Relaxed);
    let rows = psql(&format!(
        "SELECT m.msg FROM {s}.log l JOIN {s}.messages m ON m.id = l.msg_id
         WHERE l.kind = 0 AND l.key = 1",
        s = c.schema
    ));
    let mut stored: HashMap<&str, usize> = HashMap::new();
    for m in rows.lines() {
        *stored.entry(m).or_default() += 1;
    }
    let lost: Vec<&String> = acked
        .iter()
        .filter(|m| !stored.contains_key(m.as_str()))
        .collect();
    let doubled = stored.values().filter(|&&k| k > 1).count();
    let (count, distinct, max) = log_stats(&c, 0, 1);
    println!(
        "sent {} acknowledged {} failed {failed} stored {count} lost {} doubled {doubled}",
        acked.len() + failed,
        acked.len(),
        lost.len()
    );
    assert!(
        acked.len() >= 300,
        "too few posts acknowledged: {}",
        acked.len()
    );
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert_eq!(doubled, 0, "stored twice");
    assert_eq!((count, distinct), (max, max), "seqs not dense and unique");
}
