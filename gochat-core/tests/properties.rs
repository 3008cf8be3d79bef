//! Property tests: every frame and payload type survives encode → decode unchanged, and the
//! decoders never panic on arbitrary bytes.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use gochat_core::model::{Range, StoredMessage, User};
use gochat_core::protocol::auth::decode_auth;
use gochat_core::protocol::push::{
    ChatMessage, OP_PRIVATE, OP_ROOM, Push, Roster, decode_push, encode_count, encode_message,
    encode_roster,
};
use gochat_core::protocol::tcp::{FrameError, MAX_PAYLOAD, decode_frame, encode_frame};
use gochat_core::protocol::v2::{
    Command, decode_command, encode_event, encode_reply, encode_stored, raw, stamp,
};
use gochat_core::protocol::ws::{close_frame, text_frame};
use proptest::prelude::*;

fn chat_message() -> impl Strategy<Value = ChatMessage> {
    (
        any::<String>(),
        any::<i64>(),
        any::<String>(),
        any::<i64>(),
        any::<String>(),
        any::<i64>(),
        prop_oneof![Just(OP_PRIVATE), Just(OP_ROOM)],
        "[0-9 :-]{0,19}",
    )
        .prop_map(
            |(msg, from, from_name, to, to_name, room, op, when)| ChatMessage {
                code: 0,
                msg,
                from_user_id: from,
                from_user_name: from_name,
                to_user_id: to,
                to_user_name: to_name,
                room_id: room,
                op,
                create_time: when,
            },
        )
}

proptest! {
    #[test]
    fn chat_messages_round_trip(m in chat_message()) {
        let got = decode_push(&encode_message(&m)).unwrap();
        let want = if m.op == OP_PRIVATE { Push::Private(m) } else { Push::Room(m) };
        prop_assert_eq!(got, want);
    }

    #[test]
    fn counts_round_trip(n in any::<u32>()) {
        prop_assert_eq!(decode_push(&encode_count(n as usize)).unwrap(), Push::Count(n as usize));
    }

    #[test]
    fn rosters_round_trip(room in any::<i64>(), users in proptest::collection::btree_map(any::<u32>(), any::<String>(), 0..20)) {
        let roster: Roster = users.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        prop_assert_eq!(
            decode_push(&encode_roster(room, &roster)).unwrap(),
            Push::Roster { room_id: room, users: roster }
        );
    }

    #[test]
    fn auth_frames_round_trip(token in ".+", room in any::<i64>(), extra in any::<String>()) {
        let json = serde_json::json!({"authToken": token, "roomId": room, "op": 6, "msg": extra});
        let a = decode_auth(json.to_string().as_bytes()).unwrap();
        prop_assert_eq!((a.auth_token, a.room_id), (token, room));
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_auth(&bytes);
        let _ = decode_push(&bytes);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decode_frame(&mut buf, MAX_PAYLOAD) {}
    }

    #[test]
    fn tcp_frames_round_trip_in_any_chunking(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..20),
        chunk in 1usize..64,
    ) {
        let wire: Vec<u8> = payloads.iter().flat_map(|p| encode_frame(p).unwrap().to_vec()).collect();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(p) = decode_frame(&mut buf, MAX_PAYLOAD).unwrap() {
                got.push(p.to_vec());
            }
        }
        prop_assert_eq!(got, payloads);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn oversized_tcp_payloads_are_refused(extra in 1usize..1000) {
        prop_assert_eq!(encode_frame(&vec![0; MAX_PAYLOAD + extra]), Err(FrameError::TooLong(MAX_PAYLOAD + extra)));
    }

    #[test]
    fn websocket_text_frames_carry_their_payload(payload in proptest::collection::vec(any::<u8>(), 0..70_000)) {
        let f = text_frame(&payload);
        prop_assert_eq!(f[0], 0x81);
        let (len, header) = match f[1] {
            126 => (u16::from_be_bytes([f[2], f[3]]) as usize, 4),
            127 => (u64::from_be_bytes(f[2..10].try_into().unwrap()) as usize, 10),
            n => (n as usize, 2),
        };
        prop_assert!(f[1] & 0x80 == 0, "server frames are unmasked");
        prop_assert_eq!(len, payload.len());
        prop_assert_eq!(&f[header..], &payload[..]);
    }

    #[test]
    fn close_frames_stay_valid_control_frames(code in any::<u16>(), reason in any::<String>()) {
        let f = close_frame(code, &reason);
        prop_assert_eq!(f[0], 0x88);
        prop_assert!(f[1] as usize <= 125 && f.len() == 2 + f[1] as usize);
        prop_assert_eq!(u16::from_be_bytes([f[2], f[3]]), code);
        prop_assert!(std::str::from_utf8(&f[4..]).is_ok(), "reason cut on a char boundary");
    }

    #[test]
    fn v2_commands_round_trip(
        room in 1i64..i64::MAX,
        to in 1i64..i64::MAX,
        msg in ".+",
        id in proptest::option::of("[ -~]{0,64}"),
        since in proptest::option::of(any::<u32>()),
        limit in proptest::option::of(1u32..1000),
    ) {
        let with_id = |mut v: serde_json::Value| {
            if let Some(id) = &id {
                v["id"] = id.clone().into();
            }
            v.to_string()
        };
        let post = decode_command(with_id(serde_json::json!({"op":3,"roomId":room,"msg":msg})).as_bytes()).unwrap();
        prop_assert_eq!(post.id.clone(), id.clone());
        prop_assert_eq!(post.command, Ok(Command::Post { room_id: room, msg: msg.clone() }));
        let dm = decode_command(with_id(serde_json::json!({"op":2,"toUserId":to,"msg":msg})).as_bytes()).unwrap();
        prop_assert_eq!(dm.command, Ok(Command::Private { to_user_id: to, msg: msg.clone(), room_id: 0 }));
        let mut h = serde_json::json!({"op":9,"roomId":room});
        if let Some(s) = since { h["since"] = s.into(); }
        if let Some(l) = limit { h["limit"] = l.into(); }
        let page = decode_command(with_id(h).as_bytes()).unwrap();
        prop_assert_eq!(page.command, Ok(Command::History {
            room_id: room,
            range: since.map_or(Range::Latest, |s| Range::Since(u64::from(s))),
            limit: limit.map(|l| l as usize),
        }));
    }

    #[test]
    fn v2_replies_and_events_are_json_with_their_values(
        id in proptest::option::of(any::<String>()),
        code in any::<i32>(),
        message in any::<String>(),
        seq in any::<u64>(),
        name in any::<String>(),
        user in any::<i64>(),
        room in any::<i64>(),
    ) {
        let r: serde_json::Value = serde_json::from_slice(&encode_reply(id.as_deref(), code, &message, &[("seq", raw(seq))])).unwrap();
        prop_assert_eq!(r["op"].as_i64(), Some(10));
        prop_assert_eq!(r["id"].as_str(), id.as_deref());
        prop_assert_eq!((r["code"].as_i64(), r["message"].as_str(), r["seq"].as_u64()), (Some(code as i64), Some(message.as_str()), Some(seq)));
        let e: serde_json::Value = serde_json::from_slice(&encode_event(11, room, &User { id: user, name: name.clone() })).unwrap();
        prop_assert_eq!((e["roomId"].as_i64(), e["userId"].as_i64(), e["userName"].as_str()), (Some(room), Some(user), Some(name.as_str())));
    }

    #[test]
    fn stamped_and_stored_messages_keep_the_v1_object_and_add_their_ids(
        m in chat_message(),
        msg_id in any::<i64>(),
        seq in proptest::option::of(any::<u64>()),
    ) {
        let v1 = encode_message(&m);
        let v2 = stamp(&v1, msg_id, seq);
        prop_assert!(v2.starts_with(&v1[..v1.len() - 1]), "v1 keys first, in order");
        let want = if m.op == OP_PRIVATE { Push::Private(m.clone()) } else { Push::Room(m.clone()) };
        prop_assert_eq!(decode_push(&v2).unwrap(), want, "a v1 decoder still reads it");
        let v: serde_json::Value = serde_json::from_slice(&v2).unwrap();
        let id_text = msg_id.to_string();
        prop_assert_eq!(v["msgId"].as_str(), Some(id_text.as_str()));
        prop_assert_eq!(v["seq"].as_u64(), seq);
        let stored = StoredMessage {
            msg_id,
            seq: seq.unwrap_or(1),
            room_id: m.room_id,
            from: User { id: m.from_user_id, name: m.from_user_name.clone() },
            to: None,
            msg: m.msg.clone(),
            created_ms: 0,
        };
        let s: serde_json::Value = serde_json::from_slice(&encode_stored(&stored)).unwrap();
        prop_assert_eq!((s["op"].as_i64(), s["msg"].as_str(), s["seq"].as_u64()), (Some(3), Some(m.msg.as_str()), Some(stored.seq)));
    }

    #[test]
    fn the_v2_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_command(&bytes);
    }
}
