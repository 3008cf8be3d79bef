//! Abuse limits (`[limits]`) from outside: a name locked after its failed logins while
//! others log in; a socket poster at 10× its allowance gets rate-limit replies and no more
//! stored than allowed while its room mate is served; a per-address cap on connections.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_lock_a_name_before_hashing_and_no_one_else() {
    let s = start().await;
    let api = s.api();
    register(api, "victim").await;
    register(api, "bystander").await;
    let wrong = r#"{"userName":"victim","passWord":"not-the-password"}"#;
    for i in 0..50 {
        let r = post(api, "/user/login", wrong).await;
        assert_eq!(r.json()["code"], 1, "{i}: {}", r.body);
        assert!(!r.body.contains("too many"), "locked after {i}: {}", r.body);
    }
    // Locked, even with the right password; answered without hashing anything.
    let started = Instant::now();
    let r = post(
        api,
        "/user/login",
        r#"{"userName":"victim","passWord":"password-victim"}"#,
    )
    .await;
    println!("51st login answered in {:?}: {}", started.elapsed(), r.body);
    assert_eq!(r.json()["code"], 1);
    assert!(
        r.body.contains("too many failed logins for this user name"),
        "{}",
        r.body
    );
    // 200 more concurrent guesses: all refused at once.
    let guesses: Vec<_> = (0..200)
        .map(|_| tokio::spawn(async move { post(api, "/user/login", wrong).await }))
        .collect();
    for g in guesses {
        assert!(g.await.unwrap().body.contains("too many failed logins"));
    }
    // Another user is not affected.
    let t = login(api, "bystander", "password-bystander").await;
    assert!(!t.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_cannot_slip_under_the_limit() {
    let s = start_with(|c| c.limits.login_failures_per_name = 10).await;
    let api = s.api();
    register(api, "target").await;
    let guesses: Vec<_> = (0..100)
        .map(|_| {
            tokio::spawn(async move {
                post(
                    api,
                    "/user/login",
                    r#"{"userName":"target","passWord":"guess-guess"}"#,
                )
                .await
            })
        })
        .collect();
    let mut hashed = 0;
    for g in guesses {
        let body = g.await.unwrap().body;
        if !body.contains("too many") {
            hashed += 1;
        }
    }
    println!("of 100 concurrent guesses, {hashed} reached the password check");
    assert_eq!(hashed, 10, "exactly the limit reached the hasher");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_passwords_are_refused_at_registration() {
    let s = start().await;
    let r = post(
        s.api(),
        "/user/register",
        r#"{"userName":"shorty","passWord":"1234567"}"#,
    )
    .await;
    assert_eq!(r.json()["code"], 1);
    assert!(r.body.contains("passWord must be 8 to"), "{}", r.body);
}

async fn ws_v2(s: &TestServer, token: &str, room: i64) -> Client {
    let mut c = ws_open(s.ws()).await;
    c.send_text(&json!({"authToken": token, "roomId": room, "v": 2}).to_string())
        .await;
    let auth: Value = serde_json::from_str(&c.next_text().await).unwrap();
    assert_eq!(auth["code"], 0, "{auth}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_poster_over_its_rate_is_limited_and_its_room_mate_is_not() {
    // Allowance: a burst of 20, then 10 a second.
    let s = start_with(|c| {
        c.limits.post_burst = 20;
        c.limits.posts_per_sec = 10;
    })
    .await;
    let (flood, calm) = (
        register(s.api(), "flood").await,
        register(s.api(), "calm").await,
    );
    let mut f = ws_v2(&s, &flood, 1).await;
    let mut c = ws_v2(&s, &calm, 1).await;
    // 100 a second for 2 s: ten times the rate.
    let started = Instant::now();
    let mut sent = 0;
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    while started.elapsed() < Duration::from_secs(2) {
        interval.tick().await;
        f.send_text(&json!({"op": 3, "id": format!("f{sent}"), "roomId": 1, "msg": format!("flood {sent}")}).to_string())
            .await;
        sent += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (mut ok, mut limited) = (0, 0);
    while ok + limited < sent {
        let v: Value = serde_json::from_str(&f.next_text().await).unwrap();
        if v["op"] != 10 {
            continue;
        }
        if v["code"] == 0 {
            ok += 1;
        } else {
            assert!(
                v["message"].as_str().unwrap().contains("rate limited"),
                "{v}"
            );
            limited += 1;
        }
    }
    let allowance = 20 + (elapsed * 10.0).ceil() as usize;
    println!(
        "sent {sent} in {elapsed:.2} s: {ok} stored, {limited} rate-limited (allowance {allowance})"
    );
    assert!(
        limited > 0 && ok <= allowance,
        "{ok} stored, allowance {allowance}"
    );
    assert!(ok >= 20, "the burst was not allowed: {ok}");
    // The room mate posts normally and sees the flood's stored messages.
    let r = push_room(s.api(), &calm, 1, "calm here").await;
    assert_eq!(r.json()["code"], 0, "{}", r.body);
    let h = post(
        s.api(),
        "/push/history",
        &json!({"authToken": calm, "roomId": 1, "limit": 200}).to_string(),
    )
    .await;
    let stored = h.json()["data"]["messages"].as_array().unwrap().len();
    assert_eq!(stored, ok + 1, "stored: {}", h.body);
    c.next_matching(|v| v["msg"] == "calm here").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_connection_cap_is_refused_with_1013() {
    let s = start_with(|c| {
        c.limits.trusted_networks.clear(); // loopback is trusted by default
        c.limits.open_connections_per_ip = 100;
        c.limits.connection_burst_per_ip = 1000;
        c.limits.open_connections_per_user = 0; // one user opens them all
    })
    .await;
    let token = register(s.api(), "many").await;
    let mut open = Vec::new();
    let (mut admitted, mut refused) = (0, 0);
    for _ in 0..400 {
        let mut c = ws_open(s.ws()).await;
        c.send_text(&json!({"authToken": token, "roomId": 1}).to_string())
            .await;
        match c.next_event(Duration::from_millis(100)).await {
            Event::Closed(code, reason) => {
                assert_eq!(code, Some(1013), "{reason}");
                assert_eq!(reason, "too many connections from this address");
                refused += 1;
            }
            _ => {
                admitted += 1;
                open.push(c);
            }
        }
    }
    println!("400 connections from one address, cap 100: {admitted} admitted, {refused} refused");
    assert_eq!((admitted, refused), (100, 300));
    // Closing some makes room again.
    open.truncate(50);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = ws_open(s.ws()).await;
    again
        .send_text(&json!({"authToken": token, "roomId": 1}).to_string())
        .await;
    assert!(
        !matches!(
            again.next_event(Duration::from_millis(300)).await,
            Event::Closed(..)
        ),
        "refused after others closed"
    );
}

#[tokio::test]
async fn the_page_is_served_with_security_headers() {
    let s = start().await;
    for path in ["/", "/app.js"] {
        let r = request(s.api(), "GET", path, b"", "").await;
        assert_eq!(r.status, 200);
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_its_connection_cap_is_refused_and_others_are_not() {
    let s = start_with(|c| c.limits.open_connections_per_user = 3).await;
    let (many, other) = (
        register(s.api(), "greedy").await,
        register(s.api(), "modest").await,
    );
    let mut open = Vec::new();
    let (mut admitted, mut refused) = (0, 0);
    for _ in 0..5 {
        let mut c = ws_open(s.ws()).await;
        c.send_text(&json!({"authToken": many, "roomId": 1}).to_string())
            .await;
        match c.next_event(Duration::from_millis(300)).await {
            Event::Closed(code, reason) => {
                assert_eq!(
                    (code, reason.as_str()),
                    (Some(1013), "too many connections for this user")
                );
                refused += 1;
            }
            _ => {
                admitted += 1;
                open.push(c);
            }
        }
    }
    println!("5 connections of one user, cap 3: {admitted} admitted, {refused} refused");
    assert_eq!((admitted, refused), (3, 2));
    let mut fine = ws_open(s.ws()).await;
    fine.send_text(&json!({"authToken": other, "roomId": 1}).to_string())
        .await;
    assert!(!matches!(
        fine.next_event(Duration::from_millis(300)).await,
        Event::Closed(..)
    ));
    // The refused ones left no presence behind: the room counts the two users once each.
    let r = post(
        s.api(),
        "/push/count",
        &json!({"authToken": other, "roomId": 1}).to_string(),
    )
    .await;
    assert_eq!(r.json()["code"], 0);
    fine.next_matching(|v| v["op"] == 4 && v["count"] == 2)
        .await;
}
