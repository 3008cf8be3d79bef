//! The distributed mode end to end: separate processes for every layer (2 logic, 2 connect,
//! 2 task, 1 api) on the real Redis and etcd that scripts/test.sh provides
//! (`GOCHAT_TEST_REDIS`, `GOCHAT_TEST_ETCD`), each test under its own key prefixes.
#![cfg(feature = "distributed")]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gochat::core::registry::{EtcdRegistry, EtcdRegistryConfig, Kind, Registry};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const LEASE_TTL_SECS: u64 = 2;

fn redis_url() -> String {
    std::env::var("GOCHAT_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn etcd_endpoint() -> String {
    std::env::var("GOCHAT_TEST_ETCD").unwrap_or_else(|_| "http://127.0.0.1:2379".into())
}

/// One layer process.
struct Proc {
    child: Child,
    args: Vec<String>,
    bin: &'static str,
    api: Option<SocketAddr>,
    ws: Option<SocketAddr>,
}

/// A cluster of layer processes sharing one configuration file.
struct Cluster {
    dir: tempfile::TempDir,
    config: PathBuf,
    etcd_prefix: String,
    redis_prefix: String,
    procs: BTreeMap<String, Proc>,
}

impl Cluster {
    fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let unique = format!(
            "{name}-{}-{}",
            std::process::id(),
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let etcd_prefix = format!("gochat-test/{unique}/");
        let redis_prefix = format!("gochat-test:{unique}:");
        let config = dir.path().join("cluster.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[cluster]
redis_url = "{redis}"
redis_prefix = "{redis_prefix}"
etcd_endpoints = ["{etcd}"]
etcd_prefix = "{etcd_prefix}"
lease_ttl_secs = {LEASE_TTL_SECS}

[queue]
claim_idle_ms = 1500

[logic]
argon2_memory_kib = 1024
argon2_iterations = 1

[connect]
ws_addr = "127.0.0.1:0"
tcp_addrs = ["127.0.0.1:0"]
rpc_addr = "127.0.0.1:0"

[api]
addr = "127.0.0.1:0"
site = false

[store]
data_dir = "{data}"
"#,
                redis = redis_url(),
                etcd = etcd_endpoint(),
                data = dir.path().join("data").display(),
            ),
        )
        .unwrap();
        Self {
            dir,
            config,
            etcd_prefix,
            redis_prefix,
            procs: BTreeMap::new(),
        }
    }

    /// Start (or restart) a process and wait until it says it is ready.
    async fn start(&mut self, name: &str, bin: &'static str, extra: &[&str]) {
        let mut args = vec!["--config".to_string(), self.config.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let proc = spawn(bin, &args, &self.dir.path().join(format!("{name}.log"))).await;
        self.procs.insert(name.into(), proc);
    }

    async fn restart(&mut self, name: &str) {
        let (bin, args) = {
            let p = &self.procs[name];
            (p.bin, p.args.clone())
        };
        let proc = spawn(
            bin,
            &args,
            &self.dir.path().join(format!("{name}-restarted.log")),
        )
        .await;
        self.procs.insert(name.into(), proc);
    }

    /// The standard topology: 2 logic, 2 connect, 2 task, 1 api.
    async fn standard(name: &str) -> Self {
        let mut c = Self::new(name);
        c.start(
            "logic-1",
            "gochat-logic",
            &[
                "--instance-id",
                "logic-1",
                "--node-id",
                "1",
                "--rpc-addr",
                "127.0.0.1:0",
            ],
        )
        .await;
        c.start(
            "logic-2",
            "gochat-logic",
            &[
                "--instance-id",
                "logic-2",
                "--node-id",
                "2",
                "--rpc-addr",
                "127.0.0.1:0",
            ],
        )
        .await;
        c.start("connect-1", "gochat-connect", &["--server-id", "connect-1"])
            .await;
        c.start("connect-2", "gochat-connect", &["--server-id", "connect-2"])
            .await;
        c.start("task-1", "gochat-task", &["--consumer", "task-1"])
            .await;
        c.start("task-2", "gochat-task", &["--consumer", "task-2"])
            .await;
        c.start("api", "gochat-api", &[]).await;
        c
    }

    fn api(&self) -> SocketAddr {
        self.procs["api"].api.unwrap()
    }

    fn ws(&self, name: &str) -> SocketAddr {
        self.procs[name].ws.unwrap()
    }

    /// Send a signal (`KILL`, `STOP`, …) to a process. SIGKILL runs no shutdown code:
    /// nothing is deregistered, released or acknowledged.
    fn signal(&mut self, name: &str, signal: &str) {
        let pid = self.procs[name].child.id().unwrap();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {name}");
    }

    /// How many queue entries a task consumer holds unacknowledged (Redis `XPENDING`).
    fn pending_for(&self, consumer: &str) -> usize {
        let url = redis_url();
        let out = std::process::Command::new("redis-cli")
            .args([
                "-u",
                &url,
                "XPENDING",
                &format!("{}deliveries", self.redis_prefix),
                "task",
                "-",
                "+",
                "10000",
                consumer,
            ])
            .output()
            .expect("redis-cli (scripts/services.sh installs it)");
        // Each pending entry prints 4 lines: id, consumer, idle ms, deliveries.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
            / 4
    }

    fn kill9(&mut self, name: &str) {
        self.signal(name, "KILL");
    }

    async fn registry(&self) -> EtcdRegistry {
        EtcdRegistry::connect(EtcdRegistryConfig {
            endpoints: vec![etcd_endpoint()],
            prefix: self.etcd_prefix.clone(),
            lease_ttl: Duration::from_secs(LEASE_TTL_SECS),
        })
        .await
        .unwrap()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "log") {
                out += &format!(
                    "--- {}\n{}\n",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                );
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in self.procs.values_mut() {
            let _ = p.child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

async fn spawn(bin: &'static str, args: &[String], log: &std::path::Path) -> Proc {
    let exe = match bin {
        "gochat-logic" => env!("CARGO_BIN_EXE_gochat-logic"),
        "gochat-connect" => env!("CARGO_BIN_EXE_gochat-connect"),
        "gochat-task" => env!("CARGO_BIN_EXE_gochat-task"),
        "gochat-api" => env!("CARGO_BIN_EXE_gochat-api"),
        other => panic!("unknown binary {other}"),
    };
    let mut child = Command::new(exe)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut api, mut ws) = (None, None);
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(a) = line.strip_prefix("api listening on ") {
                api = Some(a.parse().unwrap());
            } else if let Some(a) = line.strip_prefix("websocket listening on ") {
                ws = Some(a.parse().unwrap());
            } else if line == "ready" {
                return true;
            }
        }
        false
    })
    .await;
    if ready != Ok(true) {
        panic!(
            "{bin} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Proc {
        child,
        args: args.to_vec(),
        bin,
        api,
        ws,
    }
}

/// Wait until `f` holds, for at most `secs`.
async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Read op-3 messages until `n` distinct ones arrived (and a short quiet after); returns
/// how often each text was received.
async fn collect_room(c: &mut Client, n: usize) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let wait = if seen.len() >= n {
            Duration::from_millis(700)
        } else {
            Duration::from_secs(5)
        };
        match c.next_event(wait).await {
            Event::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["op"] == 3 {
                    *seen
                        .entry(v["msg"].as_str().unwrap().to_string())
                        .or_default() += 1;
                }
            }
            Event::Timeout if seen.len() >= n => return seen,
            Event::Timeout => assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} arrived",
                seen.len()
            ),
            e => panic!("connection ended: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_both_connect_servers_exchange_messages_exactly_once() {
    let cluster = Cluster::standard("exchange").await;
    let api = cluster.api();
    let mut tokens = Vec::new();
    let mut clients = Vec::new();
    for i in 0..8 {
        let t = register(api, &format!("u{i}")).await;
        let server = if i % 2 == 0 { "connect-1" } else { "connect-2" };
        clients.push(ws_join(cluster.ws(server), &t, 1).await);
        tokens.push(t);
    }
    wait_for_room(api, &tokens[0], 1, &mut clients).await;

    // Room messages from a sender on each server.
    for n in 0..20 {
        let sender = &tokens[n % 2];
        assert_eq!(
            push_room(api, sender, 1, &format!("m{n}")).await.json()["code"],
            0
        );
    }
    for c in clients.iter_mut() {
        let seen = collect_room(c, 20).await;
        assert_eq!(seen.len(), 20, "{seen:?}");
        assert!(seen.values().all(|&k| k == 1), "exactly once: {seen:?}");
    }

    // A private message from a user on connect-1 to one on connect-2 and back.
    let ids = [
        user_id(api, &tokens[0]).await,
        user_id(api, &tokens[1]).await,
    ];
    push_private(api, &tokens[0], ids[1], "to two").await;
    push_private(api, &tokens[1], ids[0], "to one").await;
    let got1 = clients[1].next_matching(|v| v["op"] == 2).await;
    assert!(
        got1.contains(r#""msg":"to two""#) && got1.contains(&format!(r#""fromUserId":{}"#, ids[0])),
        "{got1}"
    );
    let got0 = clients[0].next_matching(|v| v["op"] == 2).await;
    assert!(got0.contains(r#""msg":"to one""#), "{got0}");
    for c in clients.iter_mut().skip(2) {
        c.expect_silence(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_task_worker_mid_stream_loses_nothing() {
    let mut cluster = Cluster::standard("task-kill").await;
    let api = cluster.api();
    let t = register(api, "reader").await;
    let mut reader = ws_join(cluster.ws("connect-1"), &t, 1).await;
    wait_for_room(api, &t, 1, std::slice::from_mut(&mut reader)).await;
    let sender = register(api, "sender").await;

    // Freeze task-1 while it waits in XREADGROUP: Redis still hands it the next entries
    // (they become pending for it), but it never delivers or acknowledges them. Then it is
    // killed: the entries it held must be claimed and delivered by task-2.
    cluster.signal("task-1", "STOP");
    // Six concurrent senders, so entries arrive while both workers are waiting.
    const SENDERS: usize = 6;
    const EACH: usize = 60;
    const N: usize = SENDERS * EACH;
    let pushed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (sender, pushed) = (sender.clone(), pushed.clone());
            tokio::spawn(async move {
                for k in 0..EACH {
                    let n = s * EACH + k;
                    let r = push_room(api, &sender, 1, &format!("m{n}")).await;
                    assert_eq!(
                        r.json()["code"],
                        0,
                        "push {n} was not acknowledged: {}",
                        r.body
                    );
                    pushed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    while pushed.load(std::sync::atomic::Ordering::Relaxed) < N / 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let held = cluster.pending_for("task-1");
    assert!(
        held > 0,
        "the frozen worker should hold entries for this test to mean anything"
    );
    cluster.kill9("task-1");
    for s in senders {
        s.await.unwrap();
    }
    let seen = collect_room(&mut reader, N).await;
    let missing: Vec<_> = (0..N)
        .filter(|n| !seen.contains_key(&format!("m{n}")))
        .collect();
    assert!(
        missing.is_empty(),
        "lost after kill -9 of a task worker: {missing:?}"
    );
    let duplicates = seen.values().filter(|&&k| k > 1).count();
    eprintln!(
        "{N} messages, {held} held by the killed worker, {duplicates} delivered more than once (allowed: at-least-once)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_connect_server_leaves_and_comes_back() {
    let mut cluster = Cluster::standard("connect-kill").await;
    let api = cluster.api();
    let registry = cluster.registry().await;
    let (a, b) = (register(api, "stays").await, register(api, "goes").await);
    let mut stays = ws_join(cluster.ws("connect-1"), &a, 1).await;
    let mut goes = ws_join(cluster.ws("connect-2"), &b, 1).await;
    {
        let mut both = [stays, goes];
        wait_for_room(api, &a, 1, &mut both).await;
        [stays, goes] = both;
    }

    cluster.kill9("connect-2");
    drop(goes);
    let killed = std::time::Instant::now();
    eventually(
        LEASE_TTL_SECS + 5,
        "registry drops the dead server",
        || async {
            registry
                .list(Kind::Connect)
                .await
                .unwrap()
                .iter()
                .all(|i| i.id != "connect-2")
        },
    )
    .await;
    assert!(
        killed.elapsed() < Duration::from_secs(LEASE_TTL_SECS + 3),
        "gone within the lease TTL"
    );

    // Presence no longer counts its user; the survivor notices nothing but the count.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        post(
            api,
            "/push/count",
            &format!(r#"{{"roomId":1,"authToken":"{a}"}}"#),
        )
        .await;
        if stays.next_matching(|v| v["op"] == 4).await == r#"{"count":1,"op":4}"# {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "presence still counts the dead server's user"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in 0..10 {
        push_room(api, &a, 1, &format!("after{n}")).await;
    }
    let seen = collect_room(&mut stays, 10).await;
    assert!(
        seen.values().all(|&k| k == 1) && seen.len() == 10,
        "{seen:?}"
    );

    // It comes back and takes users again.
    cluster.restart("connect-2").await;
    let mut back = ws_join(cluster.ws("connect-2"), &b, 1).await;
    {
        let mut both = [stays, back];
        wait_for_room(api, &a, 1, &mut both).await;
        [stays, back] = both;
    }
    push_room(api, &a, 1, "welcome back").await;
    back.next_matching(|v| v["msg"] == "welcome back").await;
    stays.next_matching(|v| v["msg"] == "welcome back").await;
    registry.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_a_logic_instance_keeps_users_logged_in() {
    let mut cluster = Cluster::standard("logic-restart").await;
    let api = cluster.api();
    let tokens: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(register(api, &format!("p{i}")).await);
        }
        v
    };
    cluster.kill9("logic-1");
    cluster.restart("logic-1").await;
    cluster.kill9("logic-2");
    cluster.restart("logic-2").await;
    // Both instances are new processes; the sessions lived in Redis.
    for _ in 0..3 {
        for t in &tokens {
            let r = post(api, "/user/checkAuth", &format!(r#"{{"authToken":"{t}"}}"#)).await;
            assert_eq!(r.json()["code"], 0, "{}", r.body);
        }
    }
}
