//! PostgreSQL gone mid-stream, twice — frozen (SIGSTOP: connections hang) and stopped
//! (connections refused) for 5 s each — under a standalone `gochat` on a PostgreSQL of the
//! test's own: every post is answered in bounded time, with code 1 and "store unavailable"
//! while it is away, never a false code 0; and posts succeed again once it is back, with
//! nothing restarted.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod common;

use common::postgres::TempPostgres;
use common::standalone::{Binary, write_config};
use common::*;
use std::time::{Duration, Instant};

/// Store calls give up after this (the default is 5 s).
const STORE_TIMEOUT_SECS: u64 = 2;

/// Post every 100 ms for `span`; returns (acknowledged, failed) and checks every answer.
async fn post_for(
    api: std::net::SocketAddr,
    token: &str,
    span: Duration,
    tag: &str,
) -> (usize, usize) {
    let (mut ok, mut failed) = (0, 0);
    let end = Instant::now() + span;
    let mut n = 0;
    while Instant::now() < end {
        let asked = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(STORE_TIMEOUT_SECS + 3),
            push_room(api, token, 1, &format!("{tag}-{n}")),
        )
        .await
        .unwrap_or_else(|_| panic!("a post hung for over {}s", STORE_TIMEOUT_SECS + 3));
        let j = r.json();
        if j["code"] == 0 {
            ok += 1;
        } else {
            assert_eq!(j["code"], 1, "{}", r.body);
            assert!(r.body.contains("store unavailable"), "{}", r.body);
            failed += 1;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(STORE_TIMEOUT_SECS + 2),
            "slow answer"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (ok, failed)
}

/// How long until a post is acknowledged again.
async fn heal_time(api: std::net::SocketAddr, token: &str) -> Duration {
    let back = Instant::now();
    loop {
        let r = tokio::time::timeout(Duration::from_secs(10), push_room(api, token, 1, "back?"))
            .await
            .expect("a post hung");
        if r.json()["code"] == 0 {
            return back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "never healed: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_fail_clearly_while_postgres_is_away_and_succeed_once_it_is_back() {
    let mut pg = TempPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres_url = \"{}\"", pg.url());
    let timeout = format!("timeout_secs = {STORE_TIMEOUT_SECS}");
    let config = write_config(
        dir.path(),
        &[
            ("store", "backend = \"postgres\""),
            ("store", &url),
            ("store", &timeout),
        ],
    );
    let bin = Binary::start(&config, None, &dir.path().join("gochat.log")).await;
    let api = bin.addrs.api;
    let token = register(api, "steady").await;

    let (before, _) = post_for(api, &token, Duration::from_secs(1), "before").await;
    assert!(before > 0);

    for (how, away) in [("frozen", true), ("stopped", false)] {
        if away {
            pg.freeze(true);
        } else {
            pg.stop();
        }
        let (ok, failed) = post_for(api, &token, Duration::from_secs(5), how).await;
        if away {
            pg.freeze(false);
        } else {
            pg.run();
        }
        let healed = heal_time(api, &token).await;
        println!("postgres {how} 5 s: {ok} acknowledged, {failed} failed; healed in {healed:?}");
        assert!(failed > 0, "no post failed while PostgreSQL was {how}");
        // Posts that were already in a batch when it froze may still commit on thaw, but none
        // can be acknowledged while it is away for good.
        assert!(
            ok <= 1,
            "{ok} posts acknowledged while PostgreSQL was {how}"
        );
        assert!(
            healed < Duration::from_secs(STORE_TIMEOUT_SECS * 3),
            "healed in {healed:?}"
        );
    }
    // Everything acknowledged is in history, once.
    let r = post(
        api,
        "/push/history",
        &format!(r#"{{"authToken":"{token}","roomId":1,"limit":500}}"#),
    )
    .await;
    assert_eq!(r.json()["code"], 0, "{}", r.body);
    drop(bin);
}
