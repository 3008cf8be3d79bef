//! Tests spread over several load processes, for more connections than one process may hold
//! (20 000 descriptors each on the project's machine): `hold` registers and connects its
//! share of a room's members, says `ready` on stderr and counts what arrives; `broadcast`
//! waits until the room has every member, then posts to it. `scripts/perf.sh` (test
//! `massive`) runs them against a cluster and adds their reports up.

use crate::Args;
use crate::report::Report;
use crate::scenario::{Totals, finish, fresh_prefix, now_us, spawn_receiver, wait_admitted};
use crate::users;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Connect `n` members to the room and count message ids `0..messages` until all arrived,
/// none arrived for 10 s after the first, or `secs` passed.
pub async fn hold(
    args: &Args,
    n: usize,
    messages: usize,
    secs: u64,
    go_file: Option<&std::path::Path>,
) -> anyhow::Result<Report> {
    let mut report = Report::new("hold", &args.label, n, messages, 0, 0);
    report.expected = (n * messages) as u64;
    let prefix = fresh_prefix(args);
    eprintln!("registering {n} users…");
    let clients = users::register(args, &prefix, n).await?;
    if let Some(go) = go_file {
        // Registration keeps logic's password hashing busy; connecting meanwhile would
        // measure admissions starved by argon2, not the connect storm.
        eprintln!("registered");
        while !go.exists() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let started = Instant::now();
    report.connect_start_unix_us = Some(now_us());
    let totals = Arc::new(Totals::default());
    let (tallies, tasks): (Vec<_>, Vec<_>) = users::connect(args, &clients, args.room, |conn| {
        spawn_receiver(conn, messages as u64, usize::MAX, &totals)
    })
    .await?
    .into_iter()
    .unzip();
    report.connect_end_unix_us = Some(now_us());
    report.connect_s = Some(started.elapsed().as_secs_f64());
    eprintln!("ready: {n} connected");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = (0, Instant::now());
    while Instant::now() < deadline {
        let d = totals.delivered.load(Relaxed);
        if d >= report.expected {
            break;
        }
        if d != last.0 {
            last = (d, Instant::now());
        } else if d > 0 && last.1.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report.last_delivery_unix_us = Some(totals.last_delivery_us.load(Relaxed));
    finish(&mut report, &tallies, &totals, 0, 0);
    // Spans are computed by the script, from the sender's first send.
    (report.elapsed_s, report.deliveries_per_s) = (0.0, 0.0);
    tasks.iter().for_each(|t| t.abort());
    Ok(report)
}

/// Wait until the room holds `members` connections besides our own, then post `messages`
/// (ids `0..messages`) to it from one REST connection.
pub async fn broadcast(args: &Args, members: usize, messages: usize) -> anyhow::Result<Report> {
    let mut report = Report::new("broadcast", &args.label, members, messages, 1, 0);
    let mut clients = users::register(args, &fresh_prefix(args), 1).await?;
    let totals = Arc::new(Totals::default());
    let (_tallies, tasks): (Vec<_>, Vec<_>) = users::connect(args, &clients, args.room, |conn| {
        spawn_receiver(conn, messages as u64, members + 1, &totals)
    })
    .await?
    .into_iter()
    .unzip();
    let (sender, _) = clients.remove(0);
    wait_admitted(&sender, args.room, 1, &totals).await?;
    report.first_send_unix_us = Some(now_us());
    let mut sent = 0;
    for id in 0..messages {
        if sender
            .send_room(args.room, &format!("{id}:{}", now_us()))
            .await
            .is_ok()
        {
            sent += 1;
        }
    }
    report.sends_per_s = sent as f64;
    tasks.iter().for_each(|t| t.abort());
    Ok(report)
}
