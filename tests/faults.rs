//! Faults against a real cluster (2 logic, 2 connect, 2 task, 1 api; its own Redis with AOF
//! and its own etcd) under a steady stream of room and private messages to users on both
//! connect servers. One fault at a time; every message the api acknowledged must reach every
//! online recipient exactly once, with no client reconnecting. The figures (sent,
//! delivered, missing, duplicates, heal time) are printed per fault and asserted; they are
//! recorded in docs/deployment.md's failure table.
#![cfg(feature = "distributed")]
#![allow(clippy::unwrap_used)]

mod common;

use common::cluster::*;
use common::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Time between two posts of the sender.
const PACE: Duration = Duration::from_millis(40);
/// How long each phase keeps the stream going after its fault ended.
const OBSERVE: Duration = Duration::from_secs(4);

/// An acknowledged message: who must receive it, when and in which phase it was sent.
struct Sent {
    text: String,
    to: &'static [usize],
    at: Instant,
    phase: usize,
}

/// One POST that never panics: the envelope, or `None` if the api could not be reached,
/// answered nothing in time, or answered something that is not JSON.
async fn try_post(addr: SocketAddr, path: &str, body: &str) -> Option<serde_json::Value> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8(raw).ok()?;
        serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
    };
    tokio::time::timeout(Duration::from_secs(12), exchange)
        .await
        .ok()
        .flatten()
}

/// Receivers: index → (text → arrival times).
type Arrivals = Arc<Mutex<Vec<HashMap<String, Vec<Instant>>>>>;

struct Phase {
    name: &'static str,
    fault_end: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_loses_nothing_acknowledged() {
    let mut cluster = Cluster::standard("faults").await;
    let api = Arc::new(Mutex::new(cluster.api()));
    let a0 = *api.lock().unwrap();
    let sender = register(a0, "sender").await;
    let names = ["on-connect-1", "on-connect-2"];
    let servers = ["connect-1", "connect-2"];
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for (name, server) in names.iter().zip(servers) {
        let t = register(a0, name).await;
        ids.push(user_id(a0, &t).await);
        clients.push(ws_join(cluster.ws(server), &t, 1).await);
    }
    wait_for_room(a0, &sender, 1, &mut clients).await;

    // Readers: every op-2/op-3 text with its arrival times, until told to stop.
    let arrivals: Arrivals = Arc::new(Mutex::new(vec![HashMap::new(), HashMap::new()]));
    let reading = Arc::new(AtomicBool::new(true));
    let readers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let (arrivals, reading) = (arrivals.clone(), reading.clone());
            tokio::spawn(async move {
                while reading.load(Ordering::Relaxed) {
                    match c.next_event(Duration::from_millis(200)).await {
                        Event::Text(t) => {
                            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                            if v["op"] == 2 || v["op"] == 3 {
                                let text = v["msg"].as_str().unwrap().to_owned();
                                arrivals.lock().unwrap()[i]
                                    .entry(text)
                                    .or_default()
                                    .push(Instant::now());
                            }
                        }
                        Event::Timeout => {}
                        Event::Closed(code, reason) => {
                            panic!("receiver {i} was disconnected: {code:?} {reason}")
                        }
                    }
                }
                c
            })
        })
        .collect();

    // The sender: a room message, a private one to each receiver, in turn; only what the
    // api acknowledged (code 0) counts.
    let ledger: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let phase = Arc::new(AtomicUsize::new(0));
    let sending = Arc::new(AtomicBool::new(true));
    let refused = Arc::new(AtomicUsize::new(0));
    let sender_task = {
        let (api, ledger, phase, sending, refused) = (
            api.clone(),
            ledger.clone(),
            phase.clone(),
            sending.clone(),
            refused.clone(),
        );
        let (token, ids) = (sender.clone(), ids.clone());
        tokio::spawn(async move {
            const ROOM: &[usize] = &[0, 1];
            const TO: [&[usize]; 2] = [&[0], &[1]];
            let mut n = 0usize;
            while sending.load(Ordering::Relaxed) {
                let addr = *api.lock().unwrap();
                let text = format!("m{n}");
                let (path, body, to) = match n % 3 {
                    0 => (
                        "/push/pushRoom",
                        serde_json::json!({"msg": text, "roomId": 1, "authToken": token}),
                        ROOM,
                    ),
                    k => (
                        "/push/push",
                        serde_json::json!({"msg": text, "toUserId": ids[k - 1].to_string(), "roomId": 1, "authToken": token}),
                        TO[k - 1],
                    ),
                };
                let at = Instant::now();
                match try_post(addr, path, &body.to_string()).await {
                    Some(v) if v["code"] == 0 => ledger.lock().unwrap().push(Sent {
                        text,
                        to,
                        at,
                        phase: phase.load(Ordering::Relaxed),
                    }),
                    Some(v) if v["code"] == 40000 => panic!("the session was lost: {v}"),
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
                tokio::time::sleep(PACE).await;
            }
        })
    };

    let mut phases = Vec::new();
    let begin = |name: &'static str, phases: &mut Vec<Phase>| {
        phase.store(phases.len(), Ordering::Relaxed);
        phases.push(Phase {
            name,
            fault_end: Instant::now(),
        });
    };
    let end_fault = |phases: &mut Vec<Phase>| {
        if let Some(p) = phases.last_mut() {
            p.fault_end = Instant::now();
        }
    };

    begin("no fault", &mut phases);
    tokio::time::sleep(OBSERVE).await;

    begin("etcd paused 4 s (lease TTL 2 s)", &mut phases);
    cluster.services.signal_etcd("STOP");
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.services.signal_etcd("CONT");
    end_fault(&mut phases);
    tokio::time::sleep(OBSERVE).await;

    begin("etcd killed, restarted after 2 s", &mut phases);
    cluster.services.kill_etcd();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.services.start_etcd().await;
    end_fault(&mut phases);
    tokio::time::sleep(OBSERVE).await;

    begin("Redis killed (AOF), restarted after 2 s", &mut phases);
    cluster.services.kill_redis();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.services.start_redis().await;
    end_fault(&mut phases);
    tokio::time::sleep(OBSERVE).await;

    begin("connect-2 paused 5 s", &mut phases);
    cluster.signal("connect-2", "STOP");
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.signal("connect-2", "CONT");
    end_fault(&mut phases);
    tokio::time::sleep(OBSERVE).await;

    begin("task-1 killed, restarted", &mut phases);
    cluster.kill9("task-1");
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.restart("task-1").await;
    end_fault(&mut phases);
    tokio::time::sleep(OBSERVE).await;

    begin("logic-1 killed, restarted", &mut phases);
    cluster.kill9("logic-1");
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.restart("logic-1").await;
    end_fault(&mut phases);
    tokio::time::sleep(OBSERVE).await;

    begin("api killed, restarted", &mut phases);
    cluster.kill9("api");
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.restart("api").await;
    *api.lock().unwrap() = cluster.api();
    end_fault(&mut phases);
    tokio::time::sleep(OBSERVE).await;

    begin("poison entry in the stream", &mut phases);
    let stream = cluster.stream();
    cluster.redis_cli(&["XADD", &stream, "*", "d", "\u{9}not a delivery"]);
    end_fault(&mut phases);
    tokio::time::sleep(OBSERVE).await;
    let dead = cluster.redis_cli(&["XLEN", &format!("{stream}:dead")]);
    assert_eq!(dead.trim(), "1", "the poison entry is dead-lettered");

    // Stop sending; everything acknowledged must arrive.
    sending.store(false, Ordering::Relaxed);
    sender_task.await.unwrap();
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    let all_in = |arr: &[HashMap<String, Vec<Instant>>]| {
        ledger
            .iter()
            .all(|s| s.to.iter().all(|&r| arr[r].contains_key(&s.text)))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !all_in(&arrivals.lock().unwrap()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // late duplicates, if any
    reading.store(false, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let arr = arrivals.lock().unwrap();

    eprintln!("| fault | sent (acked) | delivered | missing | duplicates | heal |");
    eprintln!("|---|---|---|---|---|---|");
    let (mut missing_total, mut dup_total) = (0, 0);
    for (i, p) in phases.iter().enumerate() {
        let sent: Vec<&Sent> = ledger.iter().filter(|s| s.phase == i).collect();
        let (mut delivered, mut missing, mut dups) = (0, 0, 0);
        for s in &sent {
            let got: Vec<usize> =
                s.to.iter()
                    .map(|&r| arr[r].get(&s.text).map_or(0, Vec::len))
                    .collect();
            if got.iter().all(|&n| n >= 1) {
                delivered += 1;
            }
            missing += got.iter().filter(|&&n| n == 0).count();
            dups += got.iter().map(|&n| n.saturating_sub(1)).sum::<usize>();
        }
        // Heal: from the end of the fault until a message sent after it reached everyone.
        let heal = sent
            .iter()
            .filter(|s| s.at >= p.fault_end)
            .filter_map(|s| {
                s.to.iter()
                    .map(|&r| arr[r].get(&s.text).map(|t| t[0]))
                    .collect::<Option<Vec<_>>>()
                    .and_then(|t| t.into_iter().max())
            })
            .min()
            .map(|t| t.duration_since(p.fault_end));
        eprintln!(
            "| {} | {} | {delivered} | {missing} | {dups} | {} |",
            p.name,
            sent.len(),
            heal.map_or("—".into(), |h| format!("{:.2} s", h.as_secs_f64()))
        );
        assert!(!sent.is_empty(), "{}: nothing was acknowledged", p.name);
        assert!(heal.is_some(), "{}: deliveries never resumed", p.name);
        missing_total += missing;
        dup_total += dups;
    }
    eprintln!(
        "{} acknowledged in all, {} posts refused while a backend was away",
        ledger.len(),
        refused.load(Ordering::Relaxed)
    );
    assert_eq!(missing_total, 0, "acknowledged messages were lost");
    assert_eq!(dup_total, 0, "messages were delivered twice");
}
