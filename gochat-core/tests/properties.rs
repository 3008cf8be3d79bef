//! Property tests: every frame and payload type survives encode → decode unchanged, and the
//! decoders never panic on arbitrary bytes.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use gochat_core::protocol::auth::decode_auth;
use gochat_core::protocol::push::{
    ChatMessage, OP_PRIVATE, OP_ROOM, Push, Roster, decode_push, encode_count, encode_message,
    encode_roster,
};
use gochat_core::protocol::tcp::{FrameError, MAX_PAYLOAD, decode_frame, encode_frame};
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
}
