//! PROTOCOL.md §2: the pushes, byte for byte, to exactly the right connections.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

/// Check a room message's bytes: everything but createTime exactly, createTime's shape and
/// that it is now (UTC).
fn assert_room_message(got: &str, msg: &str, from: i64, from_name: &str, room: i64) {
    let v: serde_json::Value = serde_json::from_str(got).unwrap();
    let when = v["createTime"].as_str().unwrap();
    assert_eq!(when.len(), 19, "{when}");
    let now = gochat::core::protocol::time::now_string();
    assert_eq!(
        &when[..13],
        &now[..13],
        "createTime is the server's current time"
    );
    assert_eq!(
        got,
        format!(
            r#"{{"code":0,"msg":"{msg}","fromUserId":{from},"fromUserName":"{from_name}","toUserId":0,"toUserName":"","roomId":{room},"op":3,"createTime":"{when}"}}"#
        )
    );
}

#[tokio::test]
async fn room_message_reaches_every_member_including_the_sender() {
    let s = start().await;
    let a = s.api();
    let (alice, bob, carol) = (
        register(a, "alice").await,
        register(a, "bob").await,
        register(a, "carol").await,
    );
    let alice_id = user_id(a, &alice).await;
    let mut clients = vec![
        ws_join(s.ws(), &alice, 1).await,
        ws_join(s.ws(), &bob, 1).await,
    ];
    let mut other_room = ws_join(s.ws(), &carol, 2).await;
    wait_for_room(a, &alice, 1, &mut clients).await;

    let r = push_room(a, &alice, 1, "hello \"room\"").await;
    assert_eq!(r.json()["code"], 0);
    for c in clients.iter_mut() {
        let got = c.next_text().await;
        assert_room_message(&got, r#"hello \"room\""#, alice_id, "alice", 1);
    }
    other_room.expect_silence(QUIET).await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn private_message_reaches_only_the_recipient_on_every_connection() {
    let s = start().await;
    let a = s.api();
    let (alice, bob, carol) = (
        register(a, "alice").await,
        register(a, "bob").await,
        register(a, "carol").await,
    );
    let (alice_id, bob_id) = (user_id(a, &alice).await, user_id(a, &bob).await);
    let mut sender = ws_join(s.ws(), &alice, 1).await;
    let mut bob1 = ws_join(s.ws(), &bob, 1).await;
    let mut bob2 = ws_join(s.ws(), &bob, -1).await; // private messages only
    let mut carol_ws = ws_join(s.ws(), &carol, 1).await;
    let mut room = [sender, bob1, carol_ws];
    wait_for_room(a, &alice, 1, &mut room).await;
    [sender, bob1, carol_ws] = room;
    // bob2 is in no room: make sure it is admitted by sending it a first private message.
    loop {
        push_private(a, &carol, bob_id, "ping").await;
        if let Event::Text(_) = bob2.next_event(Duration::from_millis(300)).await {
            break;
        }
    }
    while let Event::Text(_) = bob1.next_event(QUIET).await {}

    let r = push_private(a, &alice, bob_id, "psst").await;
    assert_eq!(r.body, r#"{"code":0,"data":null,"message":"ok"}"#);
    let want = format!(
        r#"{{"code":0,"msg":"psst","fromUserId":{alice_id},"fromUserName":"alice","toUserId":{bob_id},"toUserName":"bob","roomId":1,"op":2,"createTime":""}}"#
    );
    assert_eq!(bob1.next_text().await, want);
    assert_eq!(bob2.next_text().await, want);
    sender.expect_silence(QUIET).await;
    carol_ws.expect_silence(QUIET).await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn count_and_roster_pushes() {
    let s = start().await;
    let a = s.api();
    let (alice, bob) = (register(a, "alice").await, register(a, "bob").await);
    let (alice_id, bob_id) = (user_id(a, &alice).await, user_id(a, &bob).await);
    let mut clients = vec![
        ws_join(s.ws(), &alice, 1).await,
        ws_join(s.ws(), &bob, 1).await,
    ];
    wait_for_room(a, &alice, 1, &mut clients).await;

    post(
        a,
        "/push/count",
        &format!(r#"{{"roomId":1,"authToken":"{bob}"}}"#),
    )
    .await;
    for c in clients.iter_mut() {
        assert_eq!(c.next_text().await, r#"{"count":2,"op":4}"#);
    }
    post(
        a,
        "/push/getRoomInfo",
        &format!(r#"{{"roomId":1,"authToken":"{bob}"}}"#),
    )
    .await;
    let roster = format!(
        r#"{{"op":5,"roomId":1,"count":2,"roomUserInfo":{{"{alice_id}":"alice","{bob_id}":"bob"}}}}"#
    );
    for c in clients.iter_mut() {
        assert_eq!(c.next_text().await, roster);
    }

    // fix: leaving pushes a roster update to the room (gochat sent an empty frame).
    let mut bob_ws = clients.pop().unwrap();
    bob_ws.ws.close(None).await.unwrap();
    let alice_ws = &mut clients[0];
    assert_eq!(
        alice_ws.next_text().await,
        format!(r#"{{"op":5,"roomId":1,"count":1,"roomUserInfo":{{"{alice_id}":"alice"}}}}"#)
    );
    // An empty room: count and roomId rules (zero fields omitted).
    let t = login(a, "demo", "111111").await;
    let mut watcher = ws_join(s.ws(), &t, 5).await;
    wait_for_room(a, &t, 5, std::slice::from_mut(&mut watcher)).await;
    post(
        a,
        "/push/count",
        &format!(r#"{{"roomId":6,"authToken":"{t}"}}"#),
    )
    .await;
    watcher.expect_silence(QUIET).await; // room 6 has nobody to tell
    s.server.shutdown().await;
}

#[tokio::test]
async fn second_auth_frame_is_ignored() {
    let s = start().await;
    let a = s.api();
    let (alice, bob) = (register(a, "alice").await, register(a, "bob").await);
    let mut c = ws_join(s.ws(), &alice, 1).await;
    // fix: a second auth frame (even for another room and user) changes nothing.
    c.send_text(&format!(r#"{{"authToken":"{bob}","roomId":2}}"#))
        .await;
    wait_for_room(a, &alice, 1, std::slice::from_mut(&mut c)).await;
    push_room(a, &bob, 2, "room two").await;
    c.expect_silence(QUIET).await;
    push_room(a, &bob, 1, "room one").await;
    assert!(c.next_text().await.contains(r#""msg":"room one""#));
    let r = post(
        a,
        "/push/getRoomInfo",
        &format!(r#"{{"roomId":1,"authToken":"{alice}"}}"#),
    )
    .await;
    assert_eq!(r.json()["code"], 0);
    let roster = c.next_text().await;
    assert!(
        roster.contains(r#""count":1"#) && roster.contains("alice") && !roster.contains("bob"),
        "{roster}"
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn logout_closes_that_sessions_connections() {
    let s = start().await;
    let a = s.api();
    let alice = register(a, "alice").await;
    let mut c = ws_join(s.ws(), &alice, 1).await;
    wait_for_room(a, &alice, 1, std::slice::from_mut(&mut c)).await;
    post(a, "/user/logout", &format!(r#"{{"authToken":"{alice}"}}"#)).await;
    match c.next_event(Duration::from_secs(5)).await {
        Event::Closed(code, reason) => {
            assert_eq!(code, Some(1008));
            assert_eq!(reason, "logged out");
        }
        e => panic!("expected a close, got {e:?}"),
    }
    s.server.shutdown().await;
}
