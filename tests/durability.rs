//! Acknowledged means stored: the standalone binary is killed with SIGKILL right after 1 000
//! messages were acknowledged, then restarted on the same data directory — every one of them
//! is in history, with dense seqs and the ids it was acknowledged with, and the users' tokens
//! still work (the sessions live in the same file).
#![allow(clippy::unwrap_used)]

mod common;

use common::standalone::{Binary, write_config};
use common::*;
use serde_json::json;
use std::collections::BTreeMap;

const N: u64 = 1000;
const SENDERS: u64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_after_1000_acknowledged_messages_loses_none_and_logs_nobody_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[]);
    let first = Binary::start(&config, None, &dir.path().join("first.log")).await;
    let api = first.addrs.api;
    let token = register(api, "writer").await;
    // Eight concurrent senders, 125 messages each, every one acknowledged with its ids.
    let acked: Vec<_> = (0..SENDERS)
        .map(|s| {
            let token = token.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for k in 0..N / SENDERS {
                    let msg = format!("m{s}-{k}");
                    let body = json!({"msg": msg, "roomId": 1, "authToken": token, "v": 2});
                    let r = post(api, "/push/pushRoom", &body.to_string()).await.json();
                    assert_eq!(r["code"], 0, "{r}");
                    got.push((
                        r["data"]["seq"].as_u64().unwrap(),
                        (r["data"]["msgId"].as_str().unwrap().to_owned(), msg),
                    ));
                }
                got
            })
        })
        .collect();
    let mut by_seq = BTreeMap::new();
    for t in acked {
        for (seq, entry) in t.await.unwrap() {
            assert!(
                by_seq.insert(seq, entry).is_none(),
                "seq {seq} acknowledged twice"
            );
        }
    }
    first.kill9().await; // right after the last acknowledgement

    let second = Binary::start(&config, None, &dir.path().join("second.log")).await;
    let api = second.addrs.api;
    // The same token still works: nobody was logged out.
    let mut stored = BTreeMap::new();
    let mut since = 0;
    loop {
        let body = json!({"authToken": token, "roomId": 1, "since": since, "limit": 200});
        let r = post(api, "/push/history", &body.to_string()).await.json();
        assert_eq!(r["code"], 0, "the token survived the restart: {r}");
        for m in r["data"]["messages"].as_array().unwrap() {
            let seq = m["seq"].as_u64().unwrap();
            stored.insert(
                seq,
                (
                    m["msgId"].as_str().unwrap().to_owned(),
                    m["msg"].as_str().unwrap().to_owned(),
                ),
            );
            since = seq;
        }
        if r["data"]["more"] == false {
            break;
        }
    }
    assert_eq!(
        stored.len() as u64,
        N,
        "every acknowledged message is stored"
    );
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (1..=N).collect::<Vec<_>>(),
        "dense seqs"
    );
    assert_eq!(
        stored, by_seq,
        "the ids and texts they were acknowledged with"
    );
    eprintln!("{N} acknowledged, SIGKILL, restart: {N} in history, seqs 1..={N}, token valid");
    second.kill9().await;
}
