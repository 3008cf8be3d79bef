//! A revoked token keeps nothing: after a second login (or a logout) every connection that
//! authenticated with the old token closes at once, on both transports, and receives
//! nothing more; the new token's connections carry on.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_closes_the_first_tokens_connections() {
    let s = start().await;
    let api = s.api();
    let old = register(api, "victim").await;
    let victim = user_id(api, &old).await;
    let friend = register(api, "friend").await;
    let mut old_ws = ws_join(s.ws(), &old, 1).await;
    let mut old_tcp = TcpClient::join(s.tcp(), &old, 1).await;
    wait_for_count(api, &friend, 1, 1, &mut old_ws).await;
    old_tcp.wait_for_count(api, &friend, 1, 1).await;

    // The token is stolen; the owner logs in again, which revokes it.
    let new = login(api, "victim", "password-victim").await;
    let mut new_ws = ws_join(s.ws(), &new, -1).await;

    let (code, reason) = old_ws.next_close().await;
    assert_eq!(
        (code, reason.as_str()),
        (Some(1008), "session revoked by a later login")
    );
    old_tcp.expect_closed().await;

    // A private message to the user reaches the new session only.
    let r = push_private(api, &friend, victim, "for your eyes only").await;
    assert_eq!(r.json()["code"], 0, "{}", r.body);
    new_ws
        .next_matching(|v| v["msg"] == "for your eyes only")
        .await;
    assert_eq!(
        post(
            api,
            "/user/checkAuth",
            &format!(r#"{{"authToken":"{old}"}}"#)
        )
        .await
        .json()["code"],
        40000
    );
    // And the old token cannot open a new connection.
    let mut again = ws_join(s.ws(), &old, 1).await;
    match again.next_event(Duration::from_secs(5)).await {
        Event::Closed(code, reason) => {
            assert_eq!(
                (code, reason.as_str()),
                (Some(1008), "unknown or expired authToken")
            )
        }
        e => panic!("{e:?}"),
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn logout_closes_that_tokens_connections_on_both_transports() {
    let s = start().await;
    let t = register(s.api(), "leaver").await;
    let mut ws = ws_join(s.ws(), &t, 1).await;
    let mut tcp = TcpClient::join(s.tcp(), &t, 1).await;
    wait_for_count(s.api(), &t, 1, 1, &mut ws).await;
    tcp.wait_for_count(s.api(), &t, 1, 1).await;
    let r = post(
        s.api(),
        "/user/logout",
        &format!(r#"{{"authToken":"{t}"}}"#),
    )
    .await;
    assert_eq!(r.json()["code"], 0);
    let (code, reason) = ws.next_close().await;
    assert_eq!((code, reason.as_str()), (Some(1008), "logged out"));
    tcp.expect_closed().await;
    s.server.shutdown().await;
}
