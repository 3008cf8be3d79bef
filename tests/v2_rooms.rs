//! Protocol v2's rooms over real sockets (PROTOCOL.md §6): one connection in 64 rooms gets
//! each room's messages only; joins and leaves are events for v2 and rosters for v1; a large
//! room announces no joins and answers roster requests with its count.

#![allow(clippy::unwrap_used)]

mod common;

use common::v2::*;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_in_64_rooms_gets_each_rooms_messages_only() {
    let s = start().await;
    let (alice, bob, carol) = (
        register(s.api(), "alice").await,
        register(s.api(), "bob").await,
        register(s.api(), "carol").await,
    );
    let mut a = ws_v2_authed(&s, &alice, 1, None, None).await;
    let mut c2 = ws_v2_authed(&s, &carol, 2, None, None).await; // in room 2 only
    let mut pushed = Vec::new();
    for room in 2..=64 {
        let r = command(
            &mut a,
            json!({"op":7,"id":format!("j{room}"),"roomId":room}),
            &mut pushed,
        )
        .await;
        assert_eq!(r["code"], 0, "{r}");
    }
    let full = command(&mut a, json!({"op":7,"id":"j65","roomId":65}), &mut pushed).await;
    assert_eq!(full["code"], 1);
    assert!(
        full["message"].as_str().unwrap().contains("room limit"),
        "{full}"
    );
    let twice = command(&mut a, json!({"op":7,"id":"j2","roomId":2}), &mut pushed).await;
    assert_eq!(
        (twice["code"].clone(), twice["message"].clone()),
        (json!(1), json!("already in room 2"))
    );
    for room in 1..=65 {
        post_v2(&s, &bob, room, &format!("to {room}")).await;
    }
    let mut rooms = BTreeSet::new();
    let mut got = pushed
        .into_iter()
        .filter(|v| v["op"] == 3)
        .collect::<Vec<_>>();
    while got.len() < 64 {
        let v = next_json(&mut a).await;
        if v["op"] == 3 {
            got.push(v);
        }
    }
    for v in &got {
        assert_eq!(v["msg"], format!("to {}", v["roomId"]), "{v}");
        assert!(
            rooms.insert(v["roomId"].as_i64().unwrap()),
            "room {} twice",
            v["roomId"]
        );
    }
    assert_eq!(rooms, (1..=64).collect::<BTreeSet<_>>());
    a.expect_silence(Duration::from_millis(300)).await; // nothing from room 65
    let only = next_where(&mut c2, |v| v["op"] == 3).await;
    assert_eq!(only["roomId"], 2);
    c2.expect_silence(Duration::from_millis(300)).await;
    // Leaving a room stops its messages.
    let mut pushed = Vec::new();
    let left = command(&mut a, json!({"op":8,"id":"l","roomId":2}), &mut pushed).await;
    assert_eq!(left["code"], 0);
    post_v2(&s, &bob, 2, "after leaving").await;
    assert_eq!(
        next_where(&mut c2, |v| v["op"] == 3).await["msg"],
        "after leaving"
    );
    a.expect_silence(Duration::from_millis(300)).await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn joins_and_leaves_are_events_for_v2_and_rosters_for_v1() {
    let s = start().await;
    let (alice, bob, carol) = (
        register(s.api(), "alice").await,
        register(s.api(), "bob").await,
        register(s.api(), "carol").await,
    );
    let bob_id = user_id(s.api(), &bob).await;
    let mut a = ws_v2_authed(&s, &alice, 5, None, None).await;
    let mut c = ws_join(s.ws(), &carol, 5).await; // v1
    let joined = next_where(&mut a, |v| v["op"] == 11 && v["userName"] == "carol").await;
    assert_eq!(joined["roomId"], 5);
    let mut b = ws_v2_authed(&s, &bob, 5, None, None).await;
    let joined = next_where(&mut a, |v| v["op"] == 11 && v["userName"] == "bob").await;
    assert_eq!(
        joined,
        json!({"op":11,"roomId":5,"userId":bob_id,"userName":"bob"})
    );
    let mut pushed = Vec::new();
    command(&mut b, json!({"op":8,"id":"bye","roomId":5}), &mut pushed).await;
    let left = next_where(&mut a, |v| v["op"] == 12).await;
    assert_eq!(
        left,
        json!({"op":12,"roomId":5,"userId":bob_id,"userName":"bob"})
    );
    // The v1 member got a roster without bob, and no event.
    let roster = c.next_matching(|v| v["op"] == 5).await;
    assert!(!roster.contains("\"bob\""), "{roster}");
    assert!(
        roster.contains("\"carol\"") && roster.contains("\"alice\""),
        "{roster}"
    );
    c.expect_silence(Duration::from_millis(1200)).await;
    s.server.shutdown().await;
}

/// Frames `c` gets for `wait`, none of them op `op`.
async fn expect_no_op(c: &mut Client, op: i64, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next_event(left).await {
            Event::Timeout => return,
            Event::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_ne!(v["op"], op, "{t}");
            }
            e => panic!("{e:?}"),
        }
    }
}

#[tokio::test]
async fn a_large_room_announces_no_joins_and_answers_roster_requests_with_its_count() {
    // `roster_limit = 2`: the third user makes room 5 large.
    let s = start_with(|c| c.logic.roster_limit = 2).await;
    let (alice, bob, carol) = (
        register(s.api(), "alice").await,
        register(s.api(), "bob").await,
        register(s.api(), "carol").await,
    );
    let mut a = ws_v2_authed(&s, &alice, 5, None, None).await;
    let mut b = ws_v2_authed(&s, &bob, 5, None, None).await;
    let joined = next_where(&mut a, |v| v["op"] == 11).await;
    assert_eq!(joined["userName"], "bob", "two users: still small");
    let mut c = ws_join(s.ws(), &carol, 5).await; // v1
    wait_for_count(s.api(), &carol, 5, 3, &mut c).await; // carol is in: the room is large
    expect_no_op(&mut a, 11, Duration::from_millis(300)).await; // and nobody was told
    let body = json!({"authToken": carol, "roomId": 5}).to_string();
    post(s.api(), "/push/getRoomInfo", &body).await;
    let count = c.next_matching(|v| v["op"] == 4 || v["op"] == 5).await;
    let count: Value = serde_json::from_str(&count).unwrap();
    assert_eq!(count, json!({"op": 4, "count": 3}), "a count, not a roster");
    let mut pushed = Vec::new();
    command(&mut b, json!({"op":8,"id":"bye","roomId":5}), &mut pushed).await;
    expect_no_op(&mut a, 12, Duration::from_millis(500)).await;
    s.server.shutdown().await;
}
