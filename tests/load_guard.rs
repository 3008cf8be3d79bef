//! A regression guard CI can afford: correctness under load, not timing. 400 members of a
//! room receive 200 messages from 4 concurrent senders exactly once and in each sender's
//! order (80 000 deliveries), and 2 000 private messages between random pairs each reach
//! their one recipient exactly once — over real sockets, through `gochat::client`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures::StreamExt;
use gochat::client::{Client, Connection, Event};
use std::time::Duration;

const MEMBERS: usize = 400;
const SENDERS: usize = 4;
const PER_SENDER: usize = 50;
const PRIVATE: usize = 2_000;

async fn clients_and_connections(s: &TestServer, n: usize) -> (Vec<Client>, Vec<Connection>) {
    let api = s.api();
    let clients: Vec<Client> = futures::stream::iter(0..n)
        .map(|i| async move {
            let mut c = Client::new(api);
            c.register(&format!("load{i}"), "load-password")
                .await
                .unwrap();
            c
        })
        .buffered(32)
        .collect()
        .await;
    let ws = s.ws();
    let conns = futures::stream::iter(clients.iter())
        .map(|c| async move { c.connect_ws(ws, 1).await.unwrap() })
        .buffered(32)
        .collect()
        .await;
    (clients, conns)
}

/// Read events until `done` says so; panics after 60 s.
async fn read_until(conn: &mut Connection, mut done: impl FnMut(Event) -> bool) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while !done(conn.next_event().await.unwrap()) {}
    })
    .await
    .expect("deliveries stalled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_and_private_messages_stay_exact_under_load() {
    let s = start_with(|c| c.connect.channel_queue = 4096).await;
    let (clients, conns) = clients_and_connections(&s, MEMBERS).await;

    // Everyone admitted: each connection sees the full count.
    let mut readers = Vec::new();
    for mut conn in conns {
        readers.push(tokio::spawn(async move {
            read_until(&mut conn, |e| e == Event::Count(MEMBERS)).await;
            conn
        }));
    }
    let asker = clients[0].clone();
    let ask = tokio::spawn(async move {
        loop {
            asker.request_count(1).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut conns = Vec::new();
    for r in readers {
        conns.push(r.await.unwrap());
    }
    ask.abort();

    // Room: every member gets every message once, each sender's in order.
    let senders: Vec<_> = (0..SENDERS)
        .map(|k| {
            let c = clients[k].clone();
            tokio::spawn(async move {
                for n in 0..PER_SENDER {
                    c.send_room(1, &format!("{k}:{n}")).await.unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            tokio::spawn(async move {
                let mut next = [0usize; SENDERS];
                read_until(&mut conn, |e| {
                    if let Event::Room(m) = e {
                        let (k, n) = m.msg.split_once(':').unwrap();
                        let (k, n): (usize, usize) = (k.parse().unwrap(), n.parse().unwrap());
                        assert_eq!(n, next[k], "sender {k}: duplicate or out of order");
                        next[k] += 1;
                    }
                    next.iter().all(|&n| n == PER_SENDER)
                })
                .await;
                conn
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let mut conns = Vec::new();
    for r in readers {
        conns.push(r.await.unwrap());
    }

    // Private: random pairs, each message to exactly one recipient, once.
    let ids: Vec<i64> = clients.iter().map(|c| c.user().unwrap().id).collect();
    let mut expected = vec![Vec::new(); MEMBERS];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut plan = Vec::new();
    for m in 0..PRIVATE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let from = m % MEMBERS;
        let to = (from + 1 + (x as usize % (MEMBERS - 1))) % MEMBERS;
        expected[to].push(m);
        plan.push((from, to));
    }
    let readers: Vec<_> = conns
        .into_iter()
        .zip(expected)
        .map(|(mut conn, want)| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                if !want.is_empty() {
                    read_until(&mut conn, |e| {
                        if let Event::Private(m) = e {
                            got.push(m.msg.parse::<usize>().unwrap());
                        }
                        got.len() >= want.len()
                    })
                    .await;
                }
                got.sort_unstable();
                assert_eq!(got, want, "private messages lost, duplicated or misrouted");
            })
        })
        .collect();
    futures::stream::iter(plan.into_iter().enumerate())
        .for_each_concurrent(16, |(m, (from, to))| {
            let (c, to_id) = (&clients[from], ids[to]);
            async move { c.send_private(to_id, 1, &m.to_string()).await.unwrap() }
        })
        .await;
    for r in readers {
        r.await.unwrap();
    }
    s.server.shutdown().await;
}
