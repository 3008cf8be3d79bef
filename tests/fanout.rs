//! 200 WebSocket clients in one room each receive all of 100 room messages from several
//! senders exactly once, in each sender's order.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::HashMap;

const CLIENTS: usize = 200;
const SENDERS: usize = 4;
const PER_SENDER: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_gets_every_message_once_in_sender_order() {
    let s = start().await;
    let a = s.api();
    let mut tokens = Vec::new();
    for i in 0..CLIENTS {
        tokens.push(register(a, &format!("user{i}")).await);
    }
    let mut clients = Vec::new();
    for t in &tokens {
        clients.push(ws_join(s.ws(), t, 1).await);
    }
    wait_for_room(a, &tokens[0], 1, &mut clients).await;

    // Several senders post concurrently; each sends its own messages one after another.
    let senders: Vec<_> = (0..SENDERS)
        .map(|k| {
            let token = tokens[k].clone();
            tokio::spawn(async move {
                for n in 0..PER_SENDER {
                    let r = push_room(a, &token, 1, &format!("s{k}-{n}")).await;
                    assert_eq!(r.json()["code"], 0, "{}", r.body);
                }
            })
        })
        .collect();

    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                while got.len() < SENDERS * PER_SENDER {
                    let t = c.next_text().await;
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    if v["op"] == 3 {
                        got.push(v["msg"].as_str().unwrap().to_string());
                    }
                }
                // Nothing extra (no duplicate) arrives afterwards.
                while let Event::Text(t) = c.next_event(std::time::Duration::from_millis(300)).await
                {
                    assert!(!t.contains(r#""op":3"#), "extra room message {t}");
                }
                got
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    for r in readers {
        let got = r.await.unwrap();
        let mut next: HashMap<usize, usize> = HashMap::new();
        for m in &got {
            let (k, n) = m[1..].split_once('-').unwrap();
            let (k, n): (usize, usize) = (k.parse().unwrap(), n.parse().unwrap());
            let expected = next.entry(k).or_default();
            assert_eq!(
                n, *expected,
                "sender {k} out of order or duplicated in {got:?}"
            );
            *expected += 1;
        }
        assert!(
            (0..SENDERS).all(|k| next.get(&k) == Some(&PER_SENDER)),
            "{next:?}"
        );
    }
    s.server.shutdown().await;
}
