//! `/metrics` before and after a known workload: every counter moved by exactly what was
//! sent, stored and delivered (the exposition parsed, not grepped). One test in this binary:
//! the registry is the process's, so nothing else may run beside it.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// Every sample of the exposition: `name{labels}` → value.
fn scrape_text(text: &str) -> HashMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "not OpenMetrics text: {text}");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap();
            (key.to_owned(), value.parse::<f64>().unwrap())
        })
        .collect()
}

async fn scrape(s: &TestServer) -> HashMap<String, f64> {
    let r = request(s.api(), "GET", "/metrics", b"", "").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    scrape_text(&r.body)
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_exactly_the_workload() {
    let s = start().await;
    let api = s.api();
    for path in ["/healthz", "/readyz"] {
        let r = request(api, "GET", path, b"", "").await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let alice = register(api, "alice").await;
    let bob = register(api, "bob").await;
    let carol = register(api, "carol").await;
    register(api, "dave").await; // logs in below; no connection to revoke
    let bob_id = user_id(api, &bob).await;
    let mut clients = vec![
        ws_join(s.ws(), &alice, 1).await,
        ws_join(s.ws(), &carol, 1).await,
        ws_join(s.ws(), &bob, 1).await,
    ];
    wait_for_room(api, &alice, 1, &mut clients).await;

    let before = scrape(&s).await;
    let wrong = post(
        api,
        "/user/login",
        r#"{"userName":"alice","passWord":"wrong-password"}"#,
    )
    .await;
    assert_eq!(wrong.json()["code"], 1);
    let _again = login(api, "dave", "password-dave").await;
    for n in 0..10 {
        assert_eq!(
            push_room(api, &alice, 1, &format!("m{n}")).await.json()["code"],
            0
        );
    }
    assert_eq!(
        push_private(api, &alice, bob_id, "psst").await.json()["code"],
        0
    );
    for _ in 0..2 {
        let body = json!({"msg": "once", "roomId": 1, "authToken": alice, "v": 2, "id": "dup-1"});
        let r = post(api, "/push/pushRoom", &body.to_string()).await;
        assert_eq!(r.json()["code"], 0, "{}", r.body);
    }
    let page = json!({"authToken": alice, "roomId": 1, "limit": 5});
    let r = post(api, "/push/history", &page.to_string()).await;
    assert_eq!(r.json()["code"], 0, "{}", r.body);
    // Everything delivered: 11 room messages to 3 connections, the private one to bob's.
    clients[2].next_matching(|v| v["msg"] == "psst").await; // it came before "once"
    for c in clients.iter_mut() {
        c.next_matching(|v| v["msg"] == "once").await;
    }
    drop(clients.pop()); // bob's connection closes
    let mut after = scrape(&s).await;
    for _ in 0..50 {
        if delta(
            &before,
            &after,
            r#"gochat_connections_open{transport="ws"}"#,
        ) == -1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = scrape(&s).await;
    }
    let d = |key: &str| delta(&before, &after, key);
    let expect = [
        (r#"gochat_logins_total{result="wrong"}"#, 1.0),
        (r#"gochat_logins_total{result="ok"}"#, 1.0),
        (
            r#"gochat_messages_posted_total{kind="room",via="rest"}"#,
            12.0,
        ),
        (
            r#"gochat_messages_posted_total{kind="private",via="rest"}"#,
            1.0,
        ),
        ("gochat_messages_stored_total", 12.0),
        ("gochat_messages_duplicate_total", 1.0),
        ("gochat_history_pages_total", 1.0),
        ("gochat_frames_delivered_total", 34.0),
        ("gochat_delivery_latency_seconds_count", 12.0),
        (r#"gochat_connections_open{transport="ws"}"#, -1.0),
        (
            r#"gochat_connections_closed_total{reason="peer closed"}"#,
            1.0,
        ),
    ];
    for (key, _) in expect {
        println!("{key}: {}", d(key));
    }
    for (key, want) in expect {
        assert_eq!(d(key), want, "{key}");
    }
    assert!(after["gochat_store_append_seconds_count"] >= 12.0);
    // The memory queue holds nothing once everything is acknowledged (reported each second).
    let mut held = after["gochat_queue_held"];
    for _ in 0..30 {
        if held == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        held = scrape(&s).await["gochat_queue_held"];
    }
    assert_eq!(held, 0.0, "the queue still holds entries");
    assert!(after["gochat_queue_acked_total"] >= 13.0);
    assert!(after[r#"gochat_connections_admitted_total{transport="ws"}"#] >= 3.0);
}
