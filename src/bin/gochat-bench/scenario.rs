//! The three tests. Receivers are one task per connection, recording what they get into
//! their own [`Tally`]; the main task sends, shows progress and decides when it is over.

use crate::Args;
use crate::report::{Latency, Report, ServerWork, rss_kb, work_sample};
use crate::users;
use gochat::client::live::LiveConfig;
use gochat::client::{Client, Connection, Event};
use gochat::core::model::User;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Wall-clock microseconds: messages carry their send time, and a test spread over several
/// load processes (spread.rs) compares times taken in different processes.
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What one receiver saw.
#[derive(Default)]
pub(crate) struct Tally {
    /// Message ids seen (bit per id).
    seen: Vec<u64>,
    latencies_us: Vec<u32>,
    duplicates: u64,
    /// The highest room count seen (admission check).
    count: usize,
    closed: bool,
}

/// Shared by the receivers and the main task.
#[derive(Default)]
pub(crate) struct Totals {
    pub(crate) delivered: AtomicU64,
    pub(crate) admitted: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) last_delivery_us: AtomicU64,
    /// The highest room count (op 4) any receiver saw.
    pub(crate) count: AtomicU64,
}

/// Message text: `<id>:<sent at, µs>`.
fn parse(msg: &str) -> Option<(u64, u64)> {
    let (id, t) = msg.split_once(':')?;
    Some((id.parse().ok()?, t.parse().ok()?))
}

/// A receiver task for one connection: it records what arrives into its own [`Tally`].
/// Started as soon as the connection opens: a connection nobody reads does not answer the
/// server's pings and is closed as idle (60 s) — which, while 16 000 others were still
/// being opened, was a quarter of them.
pub(crate) fn spawn_receiver(
    mut conn: Connection,
    ids: u64,
    admit_at: usize,
    totals: &Arc<Totals>,
) -> (Arc<Mutex<Tally>>, tokio::task::JoinHandle<()>) {
    let tally = Arc::new(Mutex::new(Tally {
        seen: vec![0; (ids as usize).div_ceil(64)],
        ..Tally::default()
    }));
    let (t, totals) = (tally.clone(), totals.clone());
    let task = tokio::spawn(async move {
        loop {
            let event = conn.next_event().await;
            let now = now_us();
            let mut t = lock(&t);
            match event {
                Ok(Event::Room(m)) | Ok(Event::Private(m)) => {
                    let Some((id, sent)) = parse(&m.msg) else {
                        continue;
                    };
                    let Some(word) = t.seen.get_mut((id / 64) as usize) else {
                        continue;
                    };
                    if *word & (1 << (id % 64)) != 0 {
                        t.duplicates += 1;
                        continue;
                    }
                    *word |= 1 << (id % 64);
                    t.latencies_us
                        .push(now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
                    totals.delivered.fetch_add(1, Relaxed);
                    totals.last_delivery_us.fetch_max(now, Relaxed);
                }
                Ok(Event::Count(n)) => {
                    totals.count.fetch_max(n as u64, Relaxed);
                    if n >= admit_at && t.count < admit_at {
                        totals.admitted.fetch_add(1, Relaxed);
                    }
                    t.count = t.count.max(n);
                }
                Ok(Event::Roster { .. }) => {}
                Ok(Event::Closed { .. }) | Err(_) => {
                    t.closed = true;
                    totals.closed.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
    });
    (tally, task)
}

/// Ask for the room count until every receiver has seen all `n` members.
pub(crate) async fn wait_admitted(
    asker: &Client,
    room: i64,
    n: usize,
    totals: &Totals,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while (totals.admitted.load(Relaxed) as usize) < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {n} connections admitted (the room count reached {})",
            totals.admitted.load(Relaxed),
            totals.count.load(Relaxed)
        );
        if let Err(e) = asker.request_count(room).await {
            // A count of a very large room can time out; ask again.
            eprintln!("count request failed: {e}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

/// Wait until `expected` deliveries arrived, or none arrived for 10 s; progress on stderr.
pub(crate) async fn wait_delivered(
    expected: u64,
    sent: &AtomicU64,
    total_msgs: u64,
    totals: &Totals,
) {
    let mut last = (0, Instant::now());
    loop {
        let d = totals.delivered.load(Relaxed);
        eprint!(
            "\r  sent {}/{total_msgs}  delivered {d}/{expected}   ",
            sent.load(Relaxed)
        );
        if d >= expected {
            break;
        }
        if d != last.0 {
            last = (d, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) && sent.load(Relaxed) >= total_msgs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!();
}

pub(crate) fn fresh_prefix(args: &Args) -> String {
    args.prefix.clone().unwrap_or_else(|| {
        format!(
            "b{}x",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() % 100_000_000)
        )
    })
}

pub(crate) fn finish(
    report: &mut Report,
    tallies: &[Arc<Mutex<Tally>>],
    totals: &Totals,
    first_send_us: u64,
    sent: u64,
) {
    report.memory_per_user();
    let mut lat = Vec::new();
    for t in tallies {
        let t = lock(t);
        lat.extend_from_slice(&t.latencies_us);
        report.duplicates += t.duplicates;
    }
    report.delivered = totals.delivered.load(Relaxed);
    report.lost = report.expected.saturating_sub(report.delivered);
    report.closed = totals.closed.load(Relaxed);
    let span = totals
        .last_delivery_us
        .load(Relaxed)
        .saturating_sub(first_send_us) as f64
        / 1e6;
    report.elapsed_s = span;
    report.deliveries_per_s = if span > 0.0 {
        report.delivered as f64 / span
    } else {
        0.0
    };
    report.sends_per_s = if span > 0.0 { sent as f64 / span } else { 0.0 };
    report.latency_ms = Latency::of(lat);
}

/// Registered users, each admitted on its own WebSocket with a receiver task.
struct Crowd {
    clients: Vec<(Client, User)>,
    totals: Arc<Totals>,
    tallies: Vec<Arc<Mutex<Tally>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Register `n` users, connect them all to the room, wait until each is admitted; records
/// the server's memory before and after connecting. Receivers expect message ids `0..ids`.
async fn crowd(args: &Args, n: usize, ids: u64, report: &mut Report) -> anyhow::Result<Crowd> {
    let prefix = fresh_prefix(args);
    eprintln!("registering {n} users…");
    report.rss_start_kb = rss_kb(args.server_pid);
    let clients = users::register(args, &prefix, n).await?;
    report.rss_before_kb = rss_kb(args.server_pid);
    eprintln!("connecting {n} WebSockets…");
    let totals = Arc::new(Totals::default());
    let (tallies, tasks) = users::connect(args, &clients, args.room, |conn| {
        spawn_receiver(conn, ids, n, &totals)
    })
    .await?
    .into_iter()
    .unzip();
    wait_admitted(&clients[0].0, args.room, n, &totals).await?;
    report.rss_after_kb = rss_kb(args.server_pid);
    Ok(Crowd {
        clients,
        totals,
        tallies,
        tasks,
    })
}

/// Pace `k`-th message of a sender so the whole run approaches `rate` messages/s.
async fn pace(start: Instant, k: u64, senders: usize, rate: u64) {
    if rate > 0 {
        let due = start + Duration::from_secs_f64(k as f64 * senders as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
    }
}

/// The room test's senders run here, apart from the crowd's receivers, as they would on
/// machines of their own: on one runtime, a sender woken by its answer waited behind the
/// thousands of receivers each message wakes, and posted again that much later.
fn senders_runtime() -> &'static tokio::runtime::Runtime {
    static SENDERS: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-senders")
            .enable_all()
            .build()
            .expect("a runtime for the senders")
    });
    &SENDERS
}

/// Send `m` messages (ids `0..m`) from `senders` tasks at `rate` (on `runtime`, or beside
/// the receivers), each through `send(sender, id, text)` which says whether the server
/// took it; wait until the crowd has received them (or gone quiet) and fill in the report,
/// with the work of the `server` process if its pid is known.
async fn drive<F, Fut>(
    report: &mut Report,
    server: Option<u32>,
    crowd: Crowd,
    (senders, rate): (usize, u64),
    runtime: Option<&tokio::runtime::Runtime>,
    send: F,
) -> anyhow::Result<()>
where
    F: Fn(Arc<Vec<(Client, User)>>, usize, usize, String) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let Crowd {
        clients,
        totals,
        tallies,
        tasks,
    } = crowd;
    let clients = Arc::new(clients);
    let (m, senders) = (report.messages, senders.max(1));
    let sent = Arc::new(AtomicU64::new(0));
    let work_before = work_sample(server);
    let first = now_us();
    let start = Instant::now();
    let per = m.div_ceil(senders);
    let answers = Arc::new(Mutex::new(Vec::with_capacity(m)));
    let jobs: Vec<_> = (0..senders)
        .map(|s| {
            let (clients, sent, send) = (clients.clone(), sent.clone(), send.clone());
            let answers = answers.clone();
            let job = async move {
                let mut mine = Vec::with_capacity(per);
                for k in 0..per {
                    let id = s * per + k;
                    if id >= m {
                        break;
                    }
                    pace(start, k as u64, senders, rate).await;
                    let posted = Instant::now();
                    if send(clients.clone(), s, id, format!("{id}:{}", now_us())).await {
                        sent.fetch_add(1, Relaxed);
                        mine.push(posted.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                }
                lock(&answers).extend(mine);
            };
            match runtime {
                Some(r) => r.spawn(job),
                None => tokio::spawn(job),
            }
        })
        .collect();
    wait_delivered(report.expected, &sent, m as u64, &totals).await;
    let work_after = work_sample(server);
    jobs.iter().for_each(|j| j.abort());
    report.server_per_msg = ServerWork::per_message(work_before, work_after, m as u64);
    finish(report, &tallies, &totals, first, sent.load(Relaxed));
    report.answer_ms = Some(Latency::of(std::mem::take(&mut *lock(&answers))));
    tasks.iter().for_each(|t| t.abort());
    Ok(())
}

/// A mutex's contents, even if a task panicked holding it (a tally stays worth reading).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A cheap, deterministic scramble of a message id (SplitMix64's finaliser).
fn mix(id: usize) -> usize {
    let mut x = id as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) as usize
}

/// How the room test's senders post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// `/push/pushRoom`, gochat's way.
    Rest,
    /// op 3 on a protocol-v2 WebSocket of each sender's own, each post awaiting its reply.
    /// That socket is in the room too (a chat client's one socket): each reply is read
    /// after the deliveries written before it.
    Socket,
    /// As `socket`, but the posting socket is in no room: it only posts, as a REST sender's
    /// connection only posts (the sender's member socket in the crowd receives the room).
    PostSocket,
}

/// How one room-test sender posts.
enum Poster {
    Rest(Client),
    Socket(gochat::client::live::Live),
}

impl Poster {
    /// Whether the server took the post.
    async fn post(&self, room: i64, text: &str) -> bool {
        match self {
            Poster::Rest(c) => c.send_room(room, text).await.is_ok(),
            Poster::Socket(live) => live.post(room, text).await.is_ok(),
        }
    }
}

pub async fn room(
    args: &Args,
    n: usize,
    m: usize,
    senders: usize,
    rate: u64,
    via: Via,
) -> anyhow::Result<Report> {
    let test = match via {
        Via::Rest => "room",
        Via::Socket => "room-socket",
        Via::PostSocket => "room-post-socket",
    };
    let mut report = Report::new(test, &args.label, n, m, senders, rate);
    let crowd = crowd(args, n, m as u64, &mut report).await?;
    report.expected = (n * m) as u64;
    let room = args.room;
    // Each sender posts on a connection of its own, opened on the senders' runtime so that
    // its tasks run there: a REST connection (opened by its first post), or a v2 socket.
    // Only the crowd's deliveries are counted, whether or not a posting socket is in the
    // room too.
    let mut posting = Vec::new();
    for s in 0..senders.max(1) {
        let client = crowd.clients[s % crowd.clients.len()].0.clone();
        if via == Via::Rest {
            posting.push(Poster::Rest(client.on_own_connection()));
            continue;
        }
        let mut config = LiveConfig::new(users::live_endpoint(args, s), room);
        if via == Via::PostSocket {
            config.rooms.clear();
        }
        let opened = senders_runtime().spawn(async move { client.live(config).await });
        posting.push(Poster::Socket(opened.await??));
    }
    let posting = Arc::new(posting);
    let on = Some(senders_runtime());
    drive(
        &mut report,
        args.server_pid,
        crowd,
        (senders, rate),
        on,
        move |_, s, _, text| {
            let posting = posting.clone();
            async move { posting[s].post(room, &text).await }
        },
    )
    .await?;
    Ok(report)
}

pub async fn private(
    args: &Args,
    n: usize,
    m: usize,
    senders: usize,
    rate: u64,
) -> anyhow::Result<Report> {
    let mut report = Report::new("private", &args.label, n, m, senders, rate);
    let crowd = crowd(args, n, m as u64, &mut report).await?;
    // Every private message has one recipient: a duplicate is the same id twice anywhere.
    report.expected = m as u64;
    let room = args.room;
    drive(
        &mut report,
        args.server_pid,
        crowd,
        (senders, rate),
        None,
        move |clients, _, id, text| async move {
            // Senders take turns by id; the recipient is a scrambled other user, never oneself.
            let len = clients.len();
            let from = id % len;
            let to = (from + 1 + mix(id) % (len - 1).max(1)) % len;
            let (c, to_user) = (&clients[from].0, &clients[to].1);
            c.send_private(to_user.id, room, &text).await.is_ok()
        },
    )
    .await?;
    Ok(report)
}

/// `n` protocol-v2 connections ([`Live`](gochat::client::live::Live)), each in rooms
/// `1..=rooms`, held `secs`: the server's memory per v2 connection.
pub async fn idle_v2(args: &Args, n: usize, secs: u64, rooms: i64) -> anyhow::Result<Report> {
    let mut report = Report::new("idle-v2", &args.label, n, 0, 0, 0);
    report.rss_start_kb = rss_kb(args.server_pid);
    let clients = users::register(args, &fresh_prefix(args), n).await?;
    report.rss_before_kb = rss_kb(args.server_pid);
    eprintln!("connecting {n} v2 connections, {rooms} rooms each…");
    let mut lives = Vec::with_capacity(n);
    for (i, (client, _)) in clients.iter().enumerate() {
        let mut config = LiveConfig::new(users::live_endpoint(args, i), 1);
        config.rooms = (1..=rooms).collect();
        lives.push(client.live(config).await?);
    }
    // Joins after the first room are commands of their own: let them all be answered.
    for live in &lives {
        live.history(0, gochat::client::live::Range::Latest, Some(1))
            .await?;
    }
    eprintln!("holding {n} connections for {secs}s…");
    tokio::time::sleep(Duration::from_secs(secs)).await;
    report.rss_after_kb = rss_kb(args.server_pid);
    report.memory_per_user();
    Ok(report)
}

pub async fn idle(args: &Args, n: usize, secs: u64) -> anyhow::Result<Report> {
    let mut report = Report::new("idle", &args.label, n, 0, 0, 0);
    let Crowd { totals, tasks, .. } = crowd(args, n, 0, &mut report).await?;
    eprintln!("holding {n} connections for {secs}s…");
    tokio::time::sleep(Duration::from_secs(secs)).await;
    report.rss_after_kb = rss_kb(args.server_pid);
    report.memory_per_user();
    report.closed = totals.closed.load(Relaxed);
    for t in tasks {
        t.abort();
    }
    Ok(report)
}
