//! Recovery after a restart: N protocol-v2 clients ([`Live`]) in a room; the server goes
//! away (`--restart-cmd down`: restarted without its WebSocket listener), M messages are
//! posted while they cannot connect, then it comes back (`--restart-cmd up`). Each client
//! reconnects by itself with `since` and must get exactly the M it missed; measured: from
//! the return until the last one has caught up, and the server's peak memory meanwhile.

use crate::Args;
use crate::report::{Report, rss_kb};
use crate::scenario::{fresh_prefix, now_us};
use crate::users;
use gochat::client::live::{Live, LiveConfig, LiveEvent};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What the clients saw, together.
#[derive(Default)]
struct Seen {
    connected: AtomicU64,
    caught_up: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    last_caught_up_us: AtomicU64,
}

/// Run `cmd phase` through the shell; its last line of output is the server's pid.
async fn restart(cmd: &str, phase: &str) -> anyhow::Result<Option<u32>> {
    let line = format!("{cmd} {phase}");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .output()
    })
    .await??;
    anyhow::ensure!(
        out.status.success(),
        "`{cmd} {phase}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok()))
}

/// Count one client's messages with ids `0..missed` until it has them all.
fn watch(mut live: Live, missed: usize, seen: Arc<Seen>) -> tokio::task::JoinHandle<Live> {
    tokio::spawn(async move {
        let mut got = vec![false; missed];
        let mut have = 0;
        while let Some(event) = live.next_event().await {
            match event {
                LiveEvent::Connected { .. } => {
                    seen.connected.fetch_add(1, Relaxed);
                }
                LiveEvent::Message(m) => {
                    let id = m
                        .text
                        .split(':')
                        .next()
                        .and_then(|i| i.parse::<usize>().ok());
                    let Some(slot) = id.and_then(|i| got.get_mut(i)) else {
                        continue;
                    };
                    if *slot {
                        seen.duplicates.fetch_add(1, Relaxed);
                        continue;
                    }
                    *slot = true;
                    have += 1;
                    seen.delivered.fetch_add(1, Relaxed);
                    if have == missed {
                        seen.caught_up.fetch_add(1, Relaxed);
                        seen.last_caught_up_us.fetch_max(now_us(), Relaxed);
                    }
                }
                LiveEvent::Closed { .. } => break,
                _ => {}
            }
        }
        live
    })
}

pub async fn recovery(
    args: &Args,
    n: usize,
    missed: usize,
    restart_cmd: &str,
) -> anyhow::Result<Report> {
    let mut report = Report::new("recovery", &args.label, n, missed, 1, 0);
    report.expected = (n * missed) as u64;
    let clients = users::register(args, &fresh_prefix(args), n).await?;
    eprintln!("connecting {n} live clients…");
    let seen = Arc::new(Seen::default());
    let mut watchers = Vec::with_capacity(n);
    for (i, (client, _)) in clients.iter().enumerate() {
        let mut config = LiveConfig::new(users::live_endpoint(args, i), args.room);
        // Back within a second of the server's return, all of them.
        config.backoff_max = Duration::from_secs(1);
        watchers.push(watch(client.live(config).await?, missed, seen.clone()));
    }
    report.rss_before_kb = rss_kb(args.server_pid);
    eprintln!("server down; posting {missed} messages nobody can receive…");
    restart(restart_cmd, "down").await?;
    let poster = &clients[0].0;
    for id in 0..missed {
        poster
            .send_room(args.room, &format!("{id}:{}", now_us()))
            .await?;
    }
    eprintln!("server back; waiting for every client to catch up…");
    let pid = restart(restart_cmd, "up").await?.or(args.server_pid);
    let back_us = now_us();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut peak = 0;
    while (seen.caught_up.load(Relaxed) as usize) < n && Instant::now() < deadline {
        peak = peak.max(rss_kb(pid).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    peak = peak.max(rss_kb(pid).unwrap_or(0));
    report.rss_after_kb = Some(peak);
    report.delivered = seen.delivered.load(Relaxed);
    report.duplicates = seen.duplicates.load(Relaxed);
    report.lost = report.expected.saturating_sub(report.delivered);
    report.caught_up = Some(seen.caught_up.load(Relaxed));
    report.elapsed_s = seen.last_caught_up_us.load(Relaxed).saturating_sub(back_us) as f64 / 1e6;
    if report.elapsed_s > 0.0 {
        report.deliveries_per_s = report.delivered as f64 / report.elapsed_s;
    }
    for w in watchers {
        w.abort();
    }
    Ok(report)
}
