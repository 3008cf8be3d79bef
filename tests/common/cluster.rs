//! A cluster of real processes for the distributed tests: its own Redis (persistence on:
//! AOF, `appendfsync always`) and its own etcd, each in a temporary directory on free
//! loopback ports — so that a test may pause, kill and restart them — and every layer as
//! its own binary (`--features distributed`), sharing one configuration file.

use super::{Client, Event};
use gochat::core::registry::{EtcdRegistry, EtcdRegistryConfig};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Registry lease TTL of the test clusters: a dead instance leaves the registry within it.
pub const LEASE_TTL_SECS: u64 = 2;

pub use super::free_port;

/// Send `signal` (`KILL`, `STOP`, `CONT`, …) to a process.
pub fn signal(pid: u32, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

/// Redis and etcd of one test cluster.
pub struct Services {
    dir: PathBuf,
    pub redis_port: u16,
    pub etcd_port: u16,
    etcd_peer_port: u16,
    redis: Option<std::process::Child>,
    etcd: Option<std::process::Child>,
}

impl Services {
    /// Start both, in `dir`.
    pub async fn start(dir: &Path) -> Self {
        let mut s = Self {
            dir: dir.to_path_buf(),
            redis_port: free_port(),
            etcd_port: free_port(),
            etcd_peer_port: free_port(),
            redis: None,
            etcd: None,
        };
        s.start_redis().await;
        s.start_etcd().await;
        s
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.redis_port)
    }

    pub fn etcd_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.etcd_port)
    }

    /// Start (or restart, on the same directory: its AOF is replayed) Redis.
    pub async fn start_redis(&mut self) {
        let dir = self.dir.join("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.redis_port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--dir", &dir.display().to_string()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(std::fs::File::create(dir.join("redis.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/services.sh installs it)");
        self.redis = Some(child);
        let port = self.redis_port.to_string();
        let log = dir.join("redis.log");
        wait_for("redis", self.redis.as_mut().unwrap(), &log, || {
            bounded("redis-cli")
                .args(["-p", &port, "ping"])
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        })
        .await;
    }

    /// `kill -9` Redis (what it acknowledged is on disk: `appendfsync always`).
    pub fn kill_redis(&mut self) {
        if let Some(mut c) = self.redis.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start (or restart, on the same data directory) etcd.
    pub async fn start_etcd(&mut self) {
        let dir = self.dir.join("etcd");
        std::fs::create_dir_all(&dir).unwrap();
        let (client, peer) = (
            format!("http://127.0.0.1:{}", self.etcd_port),
            format!("http://127.0.0.1:{}", self.etcd_peer_port),
        );
        let child = std::process::Command::new("etcd")
            .args(["--name", "gochat-test", "--data-dir"])
            .arg(dir.join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("gochat-test={peer}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("etcd.log")).unwrap())
            .spawn()
            .expect("etcd (scripts/services.sh installs it)");
        self.etcd = Some(child);
        let endpoint = format!("127.0.0.1:{}", self.etcd_port);
        let log = dir.join("etcd.log");
        wait_for("etcd", self.etcd.as_mut().unwrap(), &log, || {
            bounded("etcdctl")
                .env("ETCDCTL_API", "3")
                .args(["--dial-timeout", "1s", "--command-timeout", "2s"])
                .args(["--endpoints", &endpoint, "endpoint", "health"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .await;
    }

    /// `kill -9` etcd.
    pub fn kill_etcd(&mut self) {
        if let Some(mut c) = self.etcd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP / SIGCONT etcd.
    pub fn signal_etcd(&self, sig: &str) {
        signal(self.etcd.as_ref().unwrap().id(), sig);
    }

    /// SIGSTOP / SIGCONT Redis.
    pub fn signal_redis(&self, sig: &str) {
        signal(self.redis.as_ref().unwrap().id(), sig);
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for p in [&self.etcd, &self.redis].into_iter().flatten() {
            signal(p.id(), "CONT"); // a paused process would not die on TERM
        }
        self.kill_etcd();
        self.kill_redis();
    }
}

/// Wait until `ok` (at most 10 s), failing at once — with the end of its log — if the
/// process exits first (a port taken under it, say).
async fn wait_for(what: &str, child: &mut std::process::Child, log: &Path, ok: impl Fn() -> bool) {
    for _ in 0..200 {
        if ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            panic!("{what} exited ({status}) before it answered: {tail:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not start");
}

/// A command killed if it runs longer than 5 s: a probe talking to the wrong server on a
/// port can otherwise hang the test for good (etcdctl did, against a Redis).
fn bounded(program: &str) -> std::process::Command {
    let mut c = std::process::Command::new("timeout");
    c.args(["5", program]);
    c
}

/// One layer process.
pub struct Proc {
    pub child: Child,
    args: Vec<String>,
    bin: &'static str,
    pub api: Option<SocketAddr>,
    pub ws: Option<SocketAddr>,
}

/// A cluster of layer processes sharing one configuration file and its own Redis and etcd.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The PostgreSQL schema holding this cluster's users and history (dropped after).
    pub schema: String,
    pub etcd_prefix: String,
    pub redis_prefix: String,
    pub procs: BTreeMap<String, Proc>,
    pub services: Services,
}

impl Cluster {
    /// Services up and the configuration written, with `extra` TOML appended; no layer yet.
    pub async fn new(name: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let services = Services::start(dir.path()).await;
        let etcd_prefix = format!("gochat-test/{name}/");
        let redis_prefix = format!("gochat-test:{name}:");
        let config = dir.path().join("cluster.toml");
        // Shared by the logic instances, nothing else: every test gets its own schema.
        let schema = format!(
            "gochat_it_{}_{}",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                .to_lowercase(),
            std::process::id()
        );
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
backend = "postgres"
postgres_url = "{postgres}"
postgres_schema = "{schema}"
pool_size = 8
data_dir = "{data}"
{extra}"#,
                redis = services.redis_url(),
                etcd = services.etcd_url(),
                postgres = postgres_url(),
                data = dir.path().join("data").display(),
            ),
        )
        .unwrap();
        Self {
            dir,
            config,
            schema,
            etcd_prefix,
            redis_prefix,
            procs: BTreeMap::new(),
            services,
        }
    }

    /// Start (or restart) a process and wait until it says it is ready.
    pub async fn start(&mut self, name: &str, bin: &'static str, extra: &[&str]) {
        let mut args = vec!["--config".to_string(), self.config.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let proc = spawn(bin, &args, &self.dir.path().join(format!("{name}.log"))).await;
        self.procs.insert(name.into(), proc);
    }

    pub async fn restart(&mut self, name: &str) {
        let (bin, args) = {
            let p = &self.procs[name];
            (p.bin, p.args.clone())
        };
        let n = self.procs.len();
        let proc = spawn(
            bin,
            &args,
            &self.dir.path().join(format!("{name}-restarted-{n}.log")),
        )
        .await;
        self.procs.insert(name.into(), proc);
    }

    /// The standard topology: 2 logic, 2 connect, 2 task, 1 api.
    pub async fn standard(name: &str) -> Self {
        Self::standard_with(name, "").await
    }

    /// The standard topology with extra configuration.
    pub async fn standard_with(name: &str, extra: &str) -> Self {
        let mut c = Self::new(name, extra).await;
        for (id, node) in [("logic-1", "1"), ("logic-2", "2")] {
            c.start(
                id,
                "gochat-logic",
                &[
                    "--instance-id",
                    id,
                    "--node-id",
                    node,
                    "--rpc-addr",
                    "127.0.0.1:0",
                ],
            )
            .await;
        }
        for id in ["connect-1", "connect-2"] {
            c.start(id, "gochat-connect", &["--server-id", id]).await;
        }
        for id in ["task-1", "task-2"] {
            c.start(id, "gochat-task", &["--consumer", id]).await;
        }
        c.start("api", "gochat-api", &[]).await;
        c
    }

    pub fn api(&self) -> SocketAddr {
        self.procs["api"].api.unwrap()
    }

    pub fn ws(&self, name: &str) -> SocketAddr {
        self.procs[name].ws.unwrap()
    }

    pub fn redis_url(&self) -> String {
        self.services.redis_url()
    }

    /// Send a signal (`KILL`, `STOP`, …) to a process. SIGKILL runs no shutdown code:
    /// nothing is deregistered, released or acknowledged.
    pub fn signal(&mut self, name: &str, sig: &str) {
        signal(self.procs[name].child.id().unwrap(), sig);
    }

    pub fn kill9(&mut self, name: &str) {
        self.signal(name, "KILL");
    }

    /// A Redis command through `redis-cli`; its output.
    pub fn redis_cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("redis-cli")
            .args(["-u", &self.redis_url()])
            .args(args)
            .output()
            .expect("redis-cli (scripts/services.sh installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The queue stream's key.
    pub fn stream(&self) -> String {
        format!("{}deliveries", self.redis_prefix)
    }

    /// How many queue entries a task consumer holds unacknowledged (Redis `XPENDING`).
    pub fn pending_for(&self, consumer: &str) -> usize {
        let stream = self.stream();
        let out = self.redis_cli(&["XPENDING", &stream, "task", "-", "+", "10000", consumer]);
        // Each pending entry prints 4 lines: id, consumer, idle ms, deliveries.
        out.lines().filter(|l| !l.trim().is_empty()).count() / 4
    }

    pub async fn registry(&self) -> EtcdRegistry {
        EtcdRegistry::connect(EtcdRegistryConfig {
            endpoints: vec![self.services.etcd_url()],
            prefix: self.etcd_prefix.clone(),
            lease_ttl: Duration::from_secs(LEASE_TTL_SECS),
        })
        .await
        .unwrap()
    }

    pub fn logs(&self) -> String {
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
            if let Some(pid) = p.child.id() {
                signal(pid, "CONT");
            }
            let _ = p.child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

/// The PostgreSQL the clusters use: `GOCHAT_TEST_POSTGRES`, default the `test` database on
/// 127.0.0.1:5432 (scripts/test.sh starts one when none answers).
pub fn postgres_url() -> String {
    std::env::var("GOCHAT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Run one SQL command with `psql`, returning its unaligned output.
pub fn psql(sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([&postgres_url(), "-XAtqc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn spawn(bin: &'static str, args: &[String], log: &Path) -> Proc {
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

/// Read op-3 messages until `n` distinct ones arrived (and a short quiet after); returns
/// how often each text was received.
pub async fn collect_room(c: &mut Client, n: usize) -> HashMap<String, usize> {
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
