//! Roster amplification is gone: however fast connections open and close in a room, each
//! member receives at most one roster (op 5) per `connect.roster_interval_ms` (1 s), and the
//! last one it receives is the room as it ended up.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MEMBERS: usize = 100;
const CHURN: Duration = Duration::from_secs(3);
const CHURNERS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_sends_each_member_at_most_one_roster_per_interval() {
    let s = start().await;
    let api = s.api();
    let mut names = Vec::new();
    let mut members = Vec::new();
    let mut first = None;
    for i in 0..MEMBERS {
        let name = format!("member{i}");
        let t = register(api, &name).await;
        members.push(ws_join(s.ws(), &t, 1).await);
        first.get_or_insert(t);
        names.push(name);
    }
    let first = first.unwrap();
    wait_for_room(api, &first, 1, &mut members).await;
    let churn_token = register(api, "churner").await;

    // Every member counts the rosters it gets and keeps the last one, until told to stop
    // (members stay connected until then: a member leaving would change the roster).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let readers: Vec<_> = members
        .into_iter()
        .map(|mut c| {
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let (mut rosters, mut last) = (0usize, serde_json::Value::Null);
                loop {
                    let event = tokio::select! {
                        e = c.next_event(Duration::from_secs(60)) => e,
                        _ = stop.wait_for(|s| *s) => return (rosters, last, c),
                    };
                    match event {
                        Event::Text(t) => {
                            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                            if v["op"] == 5 {
                                rosters += 1;
                                last = v;
                            }
                        }
                        e => panic!("member closed: {e:?}"),
                    }
                }
            })
        })
        .collect();

    // Churners: open a TCP connection into room 1, authenticate, close — as fast as they can.
    let cycles = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let churners: Vec<_> = (0..CHURNERS)
        .map(|_| {
            let (addr, token, cycles) = (s.tcp(), churn_token.clone(), cycles.clone());
            tokio::spawn(async move {
                while started.elapsed() < CHURN {
                    let c = TcpClient::join(addr, &token, 1).await;
                    drop(c);
                    cycles.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for c in churners {
        c.await.unwrap();
    }
    let churned = started.elapsed();
    let n = cycles.load(Ordering::Relaxed);
    // The last leaves reach logic, the held roster goes out at the end of its interval.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let window = started.elapsed();
    stop_tx.send_replace(true);
    let mut max_rosters = 0;
    let mut keep = Vec::new();
    for r in readers {
        let (rosters, last, client) = r.await.unwrap();
        keep.push(client);
        max_rosters = max_rosters.max(rosters);
        let users = last["roomUserInfo"]
            .as_object()
            .expect("a member saw no roster");
        let mut got: Vec<&str> = users.values().map(|v| v.as_str().unwrap()).collect();
        got.sort();
        let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
        want.sort();
        assert_eq!(got, want, "the last roster is the room as it ended up");
    }
    // At most one per second over the whole window, plus the first one, sent at once.
    let allowed = window.as_secs_f64().ceil() as usize + 1;
    eprintln!(
        "{n} connect/close cycles in {churned:?} ({:.0}/s) into a room of {MEMBERS}: at most {max_rosters} rosters per member (allowed {allowed})",
        n as f64 / churned.as_secs_f64()
    );
    assert!(n >= 300, "the churn was too slow to mean anything: {n}");
    assert!(max_rosters <= allowed, "{max_rosters} rosters > {allowed}");
    s.server.shutdown().await;
}
