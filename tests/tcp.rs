//! PROTOCOL.md §3: raw TCP clients beside WebSocket clients, and hostile TCP input.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;

/// A WebSocket client and a TCP client in room 1, both admitted and receiving.
async fn mixed_room(s: &TestServer) -> (String, Client, String, TcpClient) {
    let (ws_token, tcp_token) = (
        register(s.api(), "webuser").await,
        register(s.api(), "device").await,
    );
    let mut ws = ws_join(s.ws(), &ws_token, 1).await;
    let mut tcp = TcpClient::join(s.tcp(), &tcp_token, 1).await;
    let want = r#"{"count":2,"op":4}"#;
    let body = format!(r#"{{"roomId":1,"authToken":"{ws_token}"}}"#);
    loop {
        post(s.api(), "/push/count", &body).await;
        if let Event::Text(t) = ws.next_event(Duration::from_millis(300)).await
            && t == want
        {
            break;
        }
    }
    tcp.next_matching(|v| v["count"] == 2).await;
    (ws_token, ws, tcp_token, tcp)
}

#[tokio::test]
async fn tcp_and_websocket_users_share_a_room_byte_for_byte() {
    let s = start().await;
    let (ws_token, mut ws, tcp_token, mut tcp) = mixed_room(&s).await;
    let (ws_id, tcp_id) = (
        user_id(s.api(), &ws_token).await,
        user_id(s.api(), &tcp_token).await,
    );

    // TCP → room: the WebSocket user gets it, the TCP sender gets the same bytes back.
    tcp.send_json(
        &serde_json::json!({"op": 3, "msg": "from a device", "roomId": 1, "authToken": tcp_token}),
    )
    .await;
    let on_ws = ws.next_matching(|v| v["op"] == 3).await;
    let on_tcp = tcp.next_matching(|v| v["op"] == 3).await;
    assert_eq!(on_ws, on_tcp, "one encoding for both transports");
    let when = serde_json::from_str::<serde_json::Value>(&on_ws).unwrap()["createTime"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        on_ws,
        format!(
            r#"{{"code":0,"msg":"from a device","fromUserId":{tcp_id},"fromUserName":"device","toUserId":0,"toUserName":"","roomId":1,"op":3,"createTime":"{when}"}}"#
        )
    );

    // WebSocket side (over REST) → room: the TCP user gets it in a v1 frame.
    push_room(s.api(), &ws_token, 1, "from a browser").await;
    let on_tcp = tcp.next_matching(|v| v["op"] == 3).await;
    let on_ws = ws.next_matching(|v| v["op"] == 3).await;
    assert_eq!(on_ws, on_tcp);
    assert!(
        on_tcp.contains(&format!(r#""fromUserId":{ws_id},"fromUserName":"webuser""#)),
        "{on_tcp}"
    );

    // Private messages reach TCP users too.
    push_private(s.api(), &ws_token, tcp_id, "psst").await;
    let p = tcp.next_matching(|v| v["op"] == 2).await;
    assert_eq!(
        p,
        format!(
            r#"{{"code":0,"msg":"psst","fromUserId":{ws_id},"fromUserName":"webuser","toUserId":{tcp_id},"toUserName":"device","roomId":1,"op":2,"createTime":""}}"#
        )
    );
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_post_is_always_from_the_sessions_user() {
    let s = start().await;
    let (ws_token, mut ws, tcp_token, mut tcp) = mixed_room(&s).await;
    let tcp_id = user_id(s.api(), &tcp_token).await;
    // fix: gochat trusted fromUserId (and the token) in the frame.
    tcp.send_json(&serde_json::json!({
        "op": 3, "msg": "spoof?", "roomId": 1,
        "fromUserId": 1, "fromUserName": "admin", "authToken": ws_token,
    }))
    .await;
    let got = ws.next_matching(|v| v["op"] == 3).await;
    assert!(
        got.contains(&format!(r#""fromUserId":{tcp_id},"fromUserName":"device""#)),
        "{got}"
    );
    tcp.next_matching(|v| v["op"] == 3).await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_post_before_authentication_is_rejected() {
    let s = start().await;
    let (ws_token, mut ws, _, _tcp) = mixed_room(&s).await;
    let mut intruder = TcpClient::connect(s.tcp()).await;
    intruder
        .send_json(
            &serde_json::json!({"op": 3, "msg": "sneaky", "roomId": 1, "authToken": ws_token}),
        )
        .await;
    intruder.expect_closed().await;
    ws.expect_silence(Duration::from_millis(500)).await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_frame_written_one_byte_at_a_time_still_authenticates() {
    let s = start().await;
    let (ws_token, mut ws, _, _) = mixed_room(&s).await;
    let t = register(s.api(), "slowpoke").await;
    let mut slow = TcpClient::connect(s.tcp()).await;
    let frame = v1(serde_json::json!({"op": 6, "authToken": t, "roomId": 1})
        .to_string()
        .as_bytes());
    for b in &frame {
        slow.send_raw(&[*b]).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    push_room(s.api(), &ws_token, 1, "hello slowpoke").await;
    slow.next_matching(|v| v["msg"] == "hello slowpoke").await;
    ws.next_matching(|v| v["msg"] == "hello slowpoke").await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_thousand_frames_in_one_write_arrive_in_order() {
    let s = start().await;
    let (_, mut ws, _, _) = mixed_room(&s).await;
    let t = register(s.api(), "burst").await;
    let mut burst = TcpClient::connect(s.tcp()).await;
    let mut bytes = v1(serde_json::json!({"op": 6, "authToken": t, "roomId": 1})
        .to_string()
        .as_bytes());
    for n in 0..999 {
        bytes.extend(v1(serde_json::json!({"op": 3, "msg": format!("b{n}")})
            .to_string()
            .as_bytes()));
    }
    burst.send_raw(&bytes).await;
    for n in 0..999 {
        let got = ws.next_matching(|v| v["op"] == 3).await;
        assert!(
            got.contains(&format!(r#""msg":"b{n}""#)),
            "expected b{n}, got {got}"
        );
    }
    s.server.shutdown().await;
}

#[tokio::test]
async fn malformed_input_closes_only_that_connection() {
    let s = start().await;
    let (ws_token, mut ws, _, mut tcp) = mixed_room(&s).await;
    let t = register(s.api(), "prober").await;
    let auth = v1(serde_json::json!({"op": 6, "authToken": t, "roomId": 1})
        .to_string()
        .as_bytes());
    let mut over = b"v1".to_vec();
    over.extend_from_slice(&65_535u16.to_be_bytes());
    let closing: Vec<(&str, Vec<u8>)> = vec![
        ("1 byte, not v", b"x".to_vec()),
        (
            "4 bytes: an empty payload is not JSON",
            b"v1\x00\x04".to_vec(),
        ),
        ("5 bytes: payload not JSON", b"v1\x00\x05x".to_vec()),
        ("header not v1", b"v2\x00\x09hello".to_vec()),
        ("length under the header", b"v1\x00\x02".to_vec()),
        ("declared length past the limit", over),
        ("payload not JSON", v1(b"hello there")),
        ("JSON but no op", v1(br#"{"authToken":"x"}"#)),
        (
            "unknown token",
            v1(br#"{"op":6,"authToken":"nope","roomId":1}"#),
        ),
    ];
    for (what, bytes) in closing {
        for authenticated_first in [false, true] {
            let mut c = TcpClient::connect(s.tcp()).await;
            if authenticated_first && !what.contains("token") {
                c.send_raw(&auth).await;
            }
            c.send_raw(&bytes).await;
            tokio::time::timeout(Duration::from_secs(6), c.expect_closed())
                .await
                .unwrap_or_else(|_| panic!("{what}: not closed"));
        }
    }
    // Partial frames (1 and 3 bytes of a valid header) are not errors: the server waits
    // for the rest (until the auth timeout).
    for partial in [&b"v"[..], &b"v1\x00"[..]] {
        let mut c = TcpClient::connect(s.tcp()).await;
        c.send_raw(partial).await;
        c.expect_open(Duration::from_millis(300)).await;
    }
    // Everyone else kept working throughout.
    push_room(s.api(), &ws_token, 1, "still fine").await;
    ws.next_matching(|v| v["msg"] == "still fine").await;
    tcp.next_matching(|v| v["msg"] == "still fine").await;
    s.server.shutdown().await;
}
