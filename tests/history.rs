//! Protocol v2 (PROTOCOL.md §6) over real sockets: what a client missed is replayed exactly,
//! in order, once — also while new messages keep arriving; posts are stored before they are
//! acknowledged and a retried one is stored once; private messages reach the right
//! connections; clear op-10 errors; history off; TCP too. Rooms: `v2_rooms.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use common::v2::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn the_auth_reply_comes_first_and_a_reconnect_replays_exactly_what_was_missed() {
    let s = start().await;
    let (alice, bob) = (
        register(s.api(), "alice").await,
        register(s.api(), "bob").await,
    );
    let mut a = ws_v2(&s, &alice, 1, None, None).await;
    let hello = next_json(&mut a).await;
    assert_eq!(hello["op"], 10);
    assert_eq!(hello["id"], "auth");
    assert_eq!(
        (hello["code"].clone(), hello["seq"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(hello["userName"], "alice");
    for i in 1..=5 {
        post_v2(&s, &bob, 1, &format!("m{i}")).await;
    }
    assert_eq!(room_seqs(&mut a, 5).await, [1, 2, 3, 4, 5]);
    drop(a);
    // Offline: ten more.
    let mut sent = Vec::new();
    for i in 6..=15 {
        sent.push(post_v2(&s, &bob, 1, &format!("m{i}")).await);
    }
    let mut a = ws_v2(&s, &alice, 1, Some(5), None).await;
    let hello = next_json(&mut a).await;
    assert_eq!(
        (hello["id"].clone(), hello["seq"].clone()),
        (json!("auth"), json!(15))
    );
    let mut replayed = Vec::new();
    for _ in 6..=15 {
        let v = next_json(&mut a).await;
        assert_eq!(v["op"], 3, "{v}");
        replayed.push((
            v["msgId"].as_str().unwrap().to_owned(),
            v["seq"].as_u64().unwrap(),
        ));
        assert!(
            v["createTime"].as_str().unwrap().len() == 19,
            "the original time: {v}"
        );
    }
    assert_eq!(replayed, sent, "exactly the missed ones, in order");
    post_v2(&s, &bob, 1, "live").await;
    let live = next_where(&mut a, |v| v["op"] == 3).await;
    assert_eq!(
        (live["msg"].clone(), live["seq"].clone()),
        (json!("live"), json!(16))
    );
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_live_meet_with_no_gap_and_no_duplicate() {
    // The replay (at most 200) covers what was missed, the posts still arriving included.
    const SINCE: u64 = 180;
    let s = start_with(|c| c.connect.replay_limit = 200).await;
    let (alice, bob) = (
        register(s.api(), "alice").await,
        register(s.api(), "bob").await,
    );
    for i in 1..=200 {
        post_v2(&s, &bob, 1, &format!("before {i}")).await;
    }
    // A sender keeps posting while alice reconnects from seq 180.
    let api = s.api();
    let sender = tokio::spawn(async move {
        let mut last = 0;
        for i in 0..200 {
            let body = json!({"msg": format!("during {i}"), "roomId": 1, "authToken": bob, "v": 2});
            last = post(api, "/push/pushRoom", &body.to_string()).await.json()["data"]["seq"]
                .as_u64()
                .unwrap();
        }
        last
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut a = ws_v2_authed(&s, &alice, 1, Some(SINCE), None).await;
    let last = sender.await.unwrap();
    let seqs = room_seqs(&mut a, (last - SINCE) as usize).await;
    assert_eq!(
        seqs,
        (SINCE + 1..=last).collect::<Vec<_>>(),
        "dense, in order, once"
    );
    a.expect_silence(Duration::from_millis(300)).await;
    eprintln!(
        "replayed and live: seqs {}..={last} exactly once",
        SINCE + 1
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_long_absence_replays_the_oldest_first_and_says_more() {
    let s = start_with(|c| c.connect.replay_limit = 10).await;
    let (alice, bob) = (
        register(s.api(), "alice").await,
        register(s.api(), "bob").await,
    );
    for i in 1..=25 {
        post_v2(&s, &bob, 1, &format!("m{i}")).await;
    }
    let mut a = ws_v2(&s, &alice, 1, Some(0), None).await;
    assert_eq!(next_json(&mut a).await["seq"], 25);
    assert_eq!(room_seqs(&mut a, 10).await, (1..=10).collect::<Vec<_>>());
    assert_eq!(
        next_json(&mut a).await,
        json!({"op":10,"id":"replay","code":0,"roomId":1,"more":true})
    );
    // The client pages the rest with op 9.
    let mut pushed = Vec::new();
    let page = command(
        &mut a,
        json!({"op":9,"id":"p1","roomId":1,"since":10,"limit":200}),
        &mut pushed,
    )
    .await;
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (11..=25).collect::<Vec<_>>());
    assert_eq!(page["more"], false);
    let before = command(
        &mut a,
        json!({"op":9,"id":"p2","roomId":1,"before":11,"limit":3}),
        &mut pushed,
    )
    .await;
    let seqs: Vec<u64> = before["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (seqs, before["more"].clone()),
        (vec![8, 9, 10], json!(true))
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn posts_over_the_socket_are_acknowledged_with_their_ids_and_retries_stored_once() {
    let s = start().await;
    let (alice, bob) = (
        register(s.api(), "alice").await,
        register(s.api(), "bob").await,
    );
    let mut a = ws_v2(&s, &alice, 1, None, None).await;
    let mut b = ws_v2(&s, &bob, 1, None, None).await;
    assert_eq!(next_json(&mut a).await["id"], "auth");
    assert_eq!(next_json(&mut b).await["id"], "auth");
    let mut pushed = Vec::new();
    let first = command(
        &mut a,
        json!({"op":3,"id":"post-1","roomId":1,"msg":"once"}),
        &mut pushed,
    )
    .await;
    assert_eq!(
        (first["code"].clone(), first["seq"].clone()),
        (json!(0), json!(1)),
        "{first}"
    );
    let again = command(
        &mut a,
        json!({"op":3,"id":"post-1","roomId":1,"msg":"once"}),
        &mut pushed,
    )
    .await;
    assert_eq!(again["msgId"], first["msgId"], "the same message");
    assert_eq!(again["seq"], 1);
    // Over REST too.
    let body = json!({"msg": "rest once", "roomId": 1, "authToken": bob, "v": 2, "id": "r-1"});
    let r1 = post(s.api(), "/push/pushRoom", &body.to_string())
        .await
        .json();
    let r2 = post(s.api(), "/push/pushRoom", &body.to_string())
        .await
        .json();
    assert_eq!(r1["data"], r2["data"]);
    assert_eq!(r1["data"]["seq"], 2);
    // bob saw each message once.
    let got = room_seqs(&mut b, 2).await;
    assert_eq!(got, [1, 2]);
    b.expect_silence(Duration::from_millis(300)).await;
    let page = command(&mut b, json!({"op":9,"id":"h","roomId":1}), &mut pushed).await;
    assert_eq!(
        page["messages"].as_array().unwrap().len(),
        2,
        "stored once each"
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn private_messages_reach_the_recipient_and_the_senders_other_connections() {
    let s = start().await;
    let (alice, bob) = (
        register(s.api(), "alice").await,
        register(s.api(), "bob").await,
    );
    let bob_id = user_id(s.api(), &bob).await;
    let mut a1 = ws_v2(&s, &alice, -1, None, None).await;
    let mut a2 = ws_v2(&s, &alice, -1, None, None).await;
    let mut b2 = ws_v2(&s, &bob, -1, None, None).await;
    let mut b1 = ws_join(s.ws(), &bob, -1).await; // a gochat (v1) client of bob's
    for c in [&mut a1, &mut a2, &mut b2] {
        assert_eq!(next_json(c).await["id"], "auth");
    }
    // Let every connection be admitted before the message goes out.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut pushed = Vec::new();
    let r = command(
        &mut a1,
        json!({"op":2,"id":"dm","toUserId":bob_id,"msg":"psst","roomId":1}),
        &mut pushed,
    )
    .await;
    assert_eq!(
        (r["code"].clone(), r["seq"].clone()),
        (json!(0), json!(1)),
        "alice's inbox seq"
    );
    let at_b2 = next_where(&mut b2, |v| v["op"] == 2).await;
    assert_eq!(
        (at_b2["msg"].clone(), at_b2["seq"].clone()),
        (json!("psst"), json!(1))
    );
    assert_eq!(at_b2["msgId"], r["msgId"]);
    let at_a2 = next_where(&mut a2, |v| v["op"] == 2).await;
    assert_eq!(
        at_a2["seq"], 1,
        "the sender's other connection, with the sender's seq"
    );
    let v1 = b1.next_text().await;
    assert!(
        v1.ends_with(r#""op":2,"createTime":""}"#),
        "v1 bytes, no stamp: {v1}"
    );
    a1.expect_silence(Duration::from_millis(300)).await; // the posting connection: reply only
    // Both directions in each inbox.
    let reply = command(
        &mut b2,
        json!({"op":2,"id":"back","toUserId":user_id(s.api(), &alice).await,"msg":"hi"}),
        &mut pushed,
    )
    .await;
    assert_eq!(reply["seq"], 2, "bob's inbox: received one, sent one");
    let inbox = command(&mut a2, json!({"op":9,"id":"i","roomId":0}), &mut pushed).await;
    let texts: Vec<&str> = inbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["msg"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["psst", "hi"]);
    s.server.shutdown().await;
}

#[tokio::test]
async fn bad_commands_get_clear_op10_errors_and_garbage_closes() {
    let s = start().await;
    let alice = register(s.api(), "alice").await;
    let mut a = ws_v2_authed(&s, &alice, 1, None, None).await;
    let mut pushed = Vec::new();
    for (cmd, message) in [
        (json!({"op":42,"id":"x"}), "unknown op 42"),
        (json!({"op":3,"id":"x","roomId":1}), "msg is required"),
        (
            json!({"op":3,"id":"x","roomId":1,"msg":"x".repeat(5000)}),
            "msg is longer than 4096 bytes",
        ),
        (json!({"op":8,"id":"x","roomId":9}), "not in room 9"),
        (
            json!({"op":2,"id":"x","toUserId":99999,"msg":"hi"}),
            "no user with id 99999",
        ),
    ] {
        let r = command(&mut a, cmd, &mut pushed).await;
        assert_eq!(
            (r["code"].clone(), r["message"].clone()),
            (json!(1), json!(message))
        );
    }
    let r = command(&mut a, json!({"op":1,"id":"ping"}), &mut pushed).await;
    assert_eq!(r, json!({"op":10,"id":"ping","code":0,"message":"ok"}));
    a.send_text("not json").await;
    match a.next_event(Duration::from_secs(5)).await {
        Event::Closed(code, _) => assert_eq!(code, Some(1008)),
        e => panic!("{e:?}"),
    }
    // A refused v2 auth says why before closing.
    let mut bad = ws_v2(&s, "no-such-token", 1, None, None).await;
    let r = next_json(&mut bad).await;
    assert_eq!(
        (r["id"].clone(), r["code"].clone()),
        (json!("auth"), json!(40000))
    );
    assert!(matches!(
        bad.next_event(Duration::from_secs(5)).await,
        Event::Closed(Some(1008), _)
    ));
    s.server.shutdown().await;
}

#[tokio::test]
async fn with_history_off_nothing_is_stored_and_since_is_refused() {
    let s = start_with(|c| c.history.enabled = false).await;
    let (alice, bob) = (
        register(s.api(), "alice").await,
        register(s.api(), "bob").await,
    );
    let mut a = ws_v2_authed(&s, &alice, 1, Some(0), None).await;
    let refused = next_json(&mut a).await;
    assert_eq!(
        refused,
        json!({"op":10,"id":"replay","code":1,"message":"history is disabled","roomId":1})
    );
    let body = json!({"msg": "m", "roomId": 1, "authToken": bob, "v": 2});
    let r = post(s.api(), "/push/pushRoom", &body.to_string())
        .await
        .json();
    assert!(
        r["data"]["msgId"].is_string() && r["data"].get("seq").is_none(),
        "{r}"
    );
    let live = next_where(&mut a, |v| v["op"] == 3).await;
    assert!(
        live["msgId"].is_string() && live.get("seq").is_none(),
        "{live}"
    );
    let mut pushed = Vec::new();
    let h = command(&mut a, json!({"op":9,"id":"h","roomId":1}), &mut pushed).await;
    assert_eq!(
        (h["code"].clone(), h["message"].clone()),
        (json!(1), json!("history is disabled"))
    );
    let rest = post(
        s.api(),
        "/push/history",
        &json!({"authToken": bob, "roomId": 1}).to_string(),
    )
    .await;
    assert_eq!(rest.json()["message"], "history is disabled");
    s.server.shutdown().await;
}

#[tokio::test]
async fn tcp_clients_speak_v2_too() {
    let s = start().await;
    let (alice, bob) = (
        register(s.api(), "alice").await,
        register(s.api(), "bob").await,
    );
    for i in 1..=3 {
        post_v2(&s, &bob, 1, &format!("m{i}")).await;
    }
    let mut t = TcpClient::connect(s.tcp()).await;
    t.send_json(&json!({"op":6,"authToken":alice,"roomId":1,"v":2,"since":1}))
        .await;
    let hello: Value = serde_json::from_str(&t.next_text().await).unwrap();
    assert_eq!(
        (hello["id"].clone(), hello["seq"].clone()),
        (json!("auth"), json!(3))
    );
    for seq in [2, 3] {
        let v: Value = serde_json::from_str(&t.next_text().await).unwrap();
        assert_eq!((v["op"].clone(), v["seq"].clone()), (json!(3), json!(seq)));
    }
    t.send_json(&json!({"op":3,"id":"t1","roomId":1,"msg":"from tcp"}))
        .await;
    let mut reply = Value::Null;
    for _ in 0..3 {
        let v: Value = serde_json::from_str(&t.next_text().await).unwrap();
        if v["op"] == 10 {
            reply = v;
            break;
        }
    }
    assert_eq!(
        (reply["id"].clone(), reply["seq"].clone()),
        (json!("t1"), json!(4))
    );
    s.server.shutdown().await;
}
