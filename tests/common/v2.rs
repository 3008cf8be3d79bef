//! Protocol-v2 helpers shared by the tests that speak it over raw sockets.

use super::*;
use serde_json::{Value, json};

/// Open a v2 WebSocket: the auth frame with `"v":2` and the replay points.
pub async fn ws_v2(
    s: &TestServer,
    token: &str,
    room: i64,
    since: Option<u64>,
    inbox: Option<u64>,
) -> Client {
    let mut auth = json!({"authToken": token, "roomId": room, "v": 2});
    if let Some(s) = since {
        auth["since"] = s.into();
    }
    if let Some(i) = inbox {
        auth["inboxSince"] = i.into();
    }
    let mut c = ws_open(s.ws()).await;
    c.send_text(&auth.to_string()).await;
    c
}

pub async fn next_json(c: &mut Client) -> Value {
    serde_json::from_str(&c.next_text().await).unwrap()
}

/// The next frame that satisfies `want` (others dropped).
pub async fn next_where(c: &mut Client, want: impl Fn(&Value) -> bool) -> Value {
    serde_json::from_str(&c.next_matching(want).await).unwrap()
}

/// Send a command; return its op-10 reply (frames before it are kept in `pushed`).
pub async fn command(c: &mut Client, cmd: Value, pushed: &mut Vec<Value>) -> Value {
    let id = cmd["id"].clone();
    c.send_text(&cmd.to_string()).await;
    loop {
        let v = next_json(c).await;
        if v["op"] == 10 && v["id"] == id {
            return v;
        }
        pushed.push(v);
    }
}

/// Post over REST as v2; returns (msgId, seq).
pub async fn post_v2(s: &TestServer, token: &str, room: i64, msg: &str) -> (String, u64) {
    let body = json!({"msg": msg, "roomId": room, "authToken": token, "v": 2});
    let r = post(s.api(), "/push/pushRoom", &body.to_string()).await;
    let v = r.json();
    assert_eq!(v["code"], 0, "{}", r.body);
    (
        v["data"]["msgId"].as_str().unwrap().to_owned(),
        v["data"]["seq"].as_u64().unwrap(),
    )
}

/// Room messages (op 3) with their seqs until `n` arrived.
pub async fn room_seqs(c: &mut Client, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        let v = next_json(c).await;
        if v["op"] == 3 {
            assert!(v["msgId"].is_string(), "v2 pushes carry msgId: {v}");
            seqs.push(v["seq"].as_u64().unwrap());
        }
    }
    seqs
}

/// [`ws_v2`], and its auth reply (op 10, id `auth`) read and checked.
pub async fn ws_v2_authed(
    s: &TestServer,
    token: &str,
    room: i64,
    since: Option<u64>,
    inbox: Option<u64>,
) -> Client {
    let mut c = ws_v2(s, token, room, since, inbox).await;
    assert_eq!(next_json(&mut c).await["id"], "auth");
    c
}
