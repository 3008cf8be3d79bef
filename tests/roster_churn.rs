//! Roster amplification is gone: however fast connections open and close in a room, each
//! member receives at most one roster (op 5) per `connect.roster_interval_ms` (1 s), and the
//! last one it receives is the room as it ended up.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MEMBERS: usize = 100;
const CHURN: Duration = Duration::from_secs(3);
const CHURNERS: usize = 32;
/// Longest the server may take after the churn to send every member the final roster.
const SETTLE_MAX: Duration = Duration::from_secs(20);

/// The user names in a roster (op 5), sorted.
fn names_in(roster: &serde_json::Value) -> Vec<String> {
    let users = roster["roomUserInfo"]
        .as_object()
        .expect("a roster names users");
    let mut names: Vec<String> = users
        .values()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

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

    // Every member counts the rosters it gets and publishes the last one's names, until told
    // to stop (members stay connected until then: a member leaving would change the roster).
    let last_seen = Arc::new(Mutex::new(vec![Vec::<String>::new(); MEMBERS]));
    let last_roster_at = Arc::new(Mutex::new(Instant::now()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let readers: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let mut stop = stop_rx.clone();
            let (last_seen, last_roster_at) = (last_seen.clone(), last_roster_at.clone());
            tokio::spawn(async move {
                let mut rosters = 0usize;
                loop {
                    let event = tokio::select! {
                        e = c.next_event(Duration::from_secs(60)) => e,
                        _ = stop.wait_for(|s| *s) => return (rosters, c),
                    };
                    match event {
                        Event::Text(t) => {
                            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                            if v["op"] == 5 {
                                rosters += 1;
                                last_seen.lock().unwrap()[i] = names_in(&v);
                                *last_roster_at.lock().unwrap() = Instant::now();
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
    let churn_end = Instant::now();
    let n = cycles.load(Ordering::Relaxed);
    // The server works through the connections it accepted (a backlog on a loaded box), the
    // last leaves reach logic, and the held roster goes out at the end of its interval:
    // settled is every member's last roster being the room as it ended up, with no roster
    // for longer than an interval after it.
    let mut want: Vec<String> = names.clone();
    want.sort();
    let settle_by = Instant::now() + SETTLE_MAX;
    let quiet = Duration::from_millis(1500);
    loop {
        let all_final = last_seen.lock().unwrap().iter().all(|got| *got == want);
        if all_final && last_roster_at.lock().unwrap().elapsed() > quiet {
            break;
        }
        assert!(
            Instant::now() < settle_by,
            "rosters not settled {SETTLE_MAX:?} after the churn: {:?}",
            last_seen.lock().unwrap().iter().find(|got| **got != want)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // When the final roster came, after the churn.
    let settled = last_roster_at
        .lock()
        .unwrap()
        .saturating_duration_since(churn_end);
    let window = started.elapsed();
    stop_tx.send_replace(true);
    let mut max_rosters = 0;
    let mut keep = Vec::new();
    for r in readers {
        let (rosters, client) = r.await.unwrap();
        keep.push(client);
        max_rosters = max_rosters.max(rosters);
    }
    // At most one per second over the whole window, plus the first one, sent at once.
    let allowed = window.as_secs_f64().ceil() as usize + 1;
    eprintln!(
        "{n} connect/close cycles in {churned:?} ({:.0}/s) into a room of {MEMBERS}, the last \
         roster {settled:?} after it: at most {max_rosters} rosters per member (allowed {allowed})",
        n as f64 / churned.as_secs_f64()
    );
    assert!(n >= 300, "the churn was too slow to mean anything: {n}");
    assert!(max_rosters <= allowed, "{max_rosters} rosters > {allowed}");
    s.server.shutdown().await;
}
