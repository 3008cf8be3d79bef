//! The standalone `gochat` binary as a child process: for tests that kill it with SIGKILL,
//! restart it, or run it under a lowered open-file limit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// Where a running binary listens.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub api: SocketAddr,
    pub ws: SocketAddr,
    pub tcp: SocketAddr,
}

/// One run of the binary over a data directory.
pub struct Binary {
    pub child: Child,
    pub addrs: Addrs,
    pub log: PathBuf,
}

/// Write a configuration in `dir` — free loopback ports, cheap hashing, data in
/// `dir/data` — with `extra` lines added to their sections (`("connect", "x = 1")`; one for
/// a key already set replaces it), and return its path.
pub fn write_config(dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let data = format!("data_dir = \"{}\"", dir.join("data").display());
    let mut sections: Vec<(&str, Vec<String>)> = vec![
        (
            "api",
            vec!["addr = \"127.0.0.1:0\"".into(), "site = false".into()],
        ),
        (
            "connect",
            vec![
                "ws_addr = \"127.0.0.1:0\"".into(),
                "tcp_addrs = [\"127.0.0.1:0\"]".into(),
            ],
        ),
        (
            "logic",
            vec![
                "argon2_memory_kib = 1024".into(),
                "argon2_iterations = 1".into(),
            ],
        ),
        ("store", vec![data]),
    ];
    let key = |line: &str| line.split('=').next().unwrap_or_default().trim().to_owned();
    for (section, line) in extra {
        match sections.iter_mut().find(|(s, _)| s == section) {
            Some((_, lines)) => {
                // A line for a key set above replaces it (fixed ports instead of port 0).
                lines.retain(|l| key(l) != key(line));
                lines.push(line.to_string());
            }
            None => sections.push((section, vec![line.to_string()])),
        }
    }
    let text: String = sections
        .iter()
        .map(|(s, lines)| format!("[{s}]\n{}\n\n", lines.join("\n")))
        .collect();
    let config = dir.join("gochat.toml");
    std::fs::write(&config, text).unwrap();
    config
}

impl Binary {
    /// Start `gochat --config config` (under `ulimit -n` when given) and wait for the line
    /// with its addresses; its log goes to `log`.
    pub async fn start(config: &Path, ulimit: Option<u32>, log: &Path) -> Self {
        let limit = ulimit
            .map(|n| format!("ulimit -n {n} && "))
            .unwrap_or_default();
        let mut child = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{limit}exec {} --config {}",
                env!("CARGO_BIN_EXE_gochat"),
                config.display()
            ))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addrs = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.first() == Some(&"api") {
                    let after = |w: &str| words[words.iter().position(|x| *x == w).unwrap() + 1];
                    let ws = after("websocket")
                        .trim_start_matches("ws://")
                        .trim_end_matches("/ws");
                    return Addrs {
                        api: after("api").parse().unwrap(),
                        ws: ws.parse().unwrap(),
                        tcp: after("tcp").parse().unwrap(),
                    };
                }
            }
            panic!(
                "gochat exited before printing its addresses: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
        .await
        .unwrap();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            addrs,
            log: log.to_path_buf(),
        }
    }

    /// `kill -9`: no shutdown code runs.
    pub async fn kill9(mut self) {
        self.child.kill().await.unwrap();
    }
}
