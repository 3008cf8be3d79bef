//! What a test measured, and the server's memory from /proc.

use serde::Serialize;

/// One test's result: printed as one JSON line.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// `room`, `private` or `idle`.
    pub test: &'static str,
    /// `--label`.
    pub label: String,
    /// Users (connections).
    pub users: usize,
    /// Messages sent.
    pub messages: usize,
    /// Concurrent senders.
    pub senders: usize,
    /// Target rate (0: unlimited).
    pub rate: u64,
    /// Deliveries expected (room: messages × members; private: messages).
    pub expected: u64,
    /// Distinct deliveries received.
    pub delivered: u64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    /// Deliveries received more than once.
    pub duplicates: u64,
    /// From the first send to the last delivery.
    pub elapsed_s: f64,
    /// Distinct deliveries per second over `elapsed_s`.
    pub deliveries_per_s: f64,
    /// Messages sent per second (REST calls that returned ok).
    pub sends_per_s: f64,
    /// Send → receipt.
    pub latency_ms: Latency,
    /// Send → the server's answer, at the sender (a closed-loop sender posts again then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_ms: Option<Latency>,
    /// Server RSS before the first registration.
    pub rss_start_kb: Option<u64>,
    /// Server RSS with the users registered and logged in, before any connection.
    pub rss_before_kb: Option<u64>,
    /// Server RSS with every connection open.
    pub rss_after_kb: Option<u64>,
    /// (after − before) / users: server memory per open, admitted connection.
    pub rss_per_conn_bytes: Option<u64>,
    /// (after − start) / users: what a user costs the server, registration, login and
    /// connection together.
    pub rss_per_user_bytes: Option<u64>,
    /// The server's CPU time and context switches per message of the test (a room post
    /// with all its deliveries counts one), from the first send to the last delivery
    /// (every thread; registration and login are left out): where the time goes when the
    /// machine, not the server, caps `deliveries_per_s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_per_msg: Option<ServerWork>,
    /// Connections the server closed during the test.
    pub closed: u64,
    /// Seconds to open every connection (`hold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_s: Option<f64>,
    /// Wall clock when the first connection was opened, µs since the Unix epoch (`hold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_start_unix_us: Option<u64>,
    /// Wall clock when the last connection was open (`hold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_end_unix_us: Option<u64>,
    /// Clients that got every message they missed (`recovery`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caught_up: Option<u64>,
    /// Wall clock of the first send, µs since the Unix epoch (`broadcast`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_send_unix_us: Option<u64>,
    /// Wall clock of the last delivery, µs since the Unix epoch (`hold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivery_unix_us: Option<u64>,
}

impl Report {
    /// A report for one test with its settings, measurements to come.
    pub fn new(
        test: &'static str,
        label: &str,
        users: usize,
        messages: usize,
        senders: usize,
        rate: u64,
    ) -> Self {
        Self {
            test,
            label: label.to_owned(),
            users,
            messages,
            senders,
            rate,
            ..Self::default()
        }
    }
}

impl Report {
    /// Fills in the per-connection and per-user memory from the RSS readings.
    pub fn memory_per_user(&mut self) {
        let per = |from: Option<u64>, to: Option<u64>| {
            Some(to?.saturating_sub(from?) * 1024 / self.users.max(1) as u64)
        };
        self.rss_per_conn_bytes = per(self.rss_before_kb, self.rss_after_kb);
        self.rss_per_user_bytes = per(self.rss_start_kb, self.rss_after_kb);
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// From samples in microseconds.
    pub fn of(mut us: Vec<u32>) -> Self {
        if us.is_empty() {
            return Self::default();
        }
        us.sort_unstable();
        let at = |q: f64| f64::from(us[((us.len() - 1) as f64 * q) as usize]) / 1000.0;
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// The resident memory of a process, in KiB.
pub fn rss_kb(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status_number(&status, "VmRSS:")
}

/// The number on the line of /proc/…/status that starts with `name` (a unit after it, as in
/// `VmRSS:    1234 kB`, left out).
fn status_number(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A process's CPU time and context switches so far, every thread together.
#[derive(Debug, Clone)]
pub struct WorkSample {
    user_ticks: u64,
    sys_ticks: u64,
    /// Context switches so far of each live thread, by thread id: a thread that ends
    /// between two samples (an idle blocking-pool thread, after 10 s) takes its count
    /// with it, so only the threads of both samples are compared.
    switches: std::collections::HashMap<u32, u64>,
}

/// What the server spent per message between two [`WorkSample`]s.
#[derive(Debug, Default, Serialize)]
pub struct ServerWork {
    /// User-space CPU, µs.
    pub user_us: f64,
    /// Kernel CPU, µs.
    pub sys_us: f64,
    /// Context switches (voluntary and not) of the threads alive at the end (those that
    /// ended earlier are not counted).
    pub context_switches: f64,
}

/// /proc counts CPU time in USER_HZ ticks, 100 a second on every Linux architecture.
const TICK_US: f64 = 10_000.0;

/// The server's CPU time (/proc/PID/stat: every thread, dead ones included) and context
/// switches (/proc/PID/task/*/status: the live threads) now.
pub fn work_sample(pid: Option<u32>) -> Option<WorkSample> {
    let pid = pid?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is the first, utime the
    // 12th and stime the 13th (proc(5), fields 14 and 15).
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user_ticks = rest.get(11)?.parse().ok()?;
    let sys_ticks = rest.get(12)?.parse().ok()?;
    let mut switches = std::collections::HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread may end between the listing and the read: it is simply not counted.
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let count = ["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]
            .iter()
            .filter_map(|name| status_number(&status, name))
            .sum::<u64>();
        switches.insert(tid, count);
    }
    Some(WorkSample {
        user_ticks,
        sys_ticks,
        switches,
    })
}

impl ServerWork {
    /// The work between `from` and `to`, per one of `messages`.
    pub fn per_message(
        from: Option<WorkSample>,
        to: Option<WorkSample>,
        messages: u64,
    ) -> Option<Self> {
        let (from, to) = (from?, to?);
        let n = messages.max(1) as f64;
        let ticks = |a: u64, b: u64| b.saturating_sub(a) as f64 * TICK_US / n;
        Some(Self {
            user_us: ticks(from.user_ticks, to.user_ticks),
            sys_us: ticks(from.sys_ticks, to.sys_ticks),
            context_switches: to
                .switches
                .iter()
                .map(|(tid, now)| now.saturating_sub(*from.switches.get(tid).unwrap_or(&0)))
                .sum::<u64>() as f64
                / n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample counts this very process: CPU burnt and a thread's sleeps between two
    /// samples show up in them, divided over the messages.
    #[test]
    fn a_samples_difference_is_the_work_done_between_them() {
        let me = Some(std::process::id());
        // A thread that sleeps 20 times in the window, alive at its end: 20 switches at least.
        let (slept, sleeper_waits) = std::sync::mpsc::channel();
        let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            wait_for_go.recv().unwrap();
            for _ in 0..20 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            slept.send(()).unwrap();
            let _ = wait_for_go.recv();
        });
        // And one that switched 50 times before the window and ends in it: its count goes
        // with it, and must not hide the sleeper's.
        let (ended, end) = std::sync::mpsc::channel::<()>();
        let (switched, has_switched) = std::sync::mpsc::channel();
        let ending = std::thread::spawn(move || {
            for _ in 0..50 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            switched.send(()).unwrap();
            let _ = end.recv();
        });
        has_switched.recv().unwrap();
        let before = work_sample(me).expect("this process's /proc entries");
        drop(ended);
        ending.join().unwrap();
        go.send(()).unwrap();
        sleeper_waits.recv().unwrap();
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = work_sample(me).unwrap();
        drop(go);
        sleeper.join().unwrap();
        let per = ServerWork::per_message(Some(before), Some(after.clone()), 100).unwrap();
        let spent_us = (per.user_us + per.sys_us) * 100.0;
        // 200 ms of spinning, counted in 10 ms ticks; a loaded machine may deschedule us.
        assert!(spent_us >= 50_000.0, "only {spent_us} µs counted");
        assert!(spent_us <= 2_000_000.0, "{spent_us} µs counted for 200 ms");
        let switches = per.context_switches * 100.0;
        assert!(switches >= 20.0, "only {switches} context switches counted");
        assert!(ServerWork::per_message(None, Some(after), 1).is_none());
    }
}
