//! Push payloads: one JSON object per frame, keys in gochat's order, zero fields omitted
//! where gochat omits them.

use crate::model::{RoomId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Operation code of a private message.
pub const OP_PRIVATE: i32 = 2;
/// Operation code of a room message.
pub const OP_ROOM: i32 = 3;
/// Operation code of an online-count update.
pub const OP_COUNT: i32 = 4;
/// Operation code of a roster update.
pub const OP_ROSTER: i32 = 5;

/// A chat message (op 2 or op 3). Field order is gochat's key order on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// Always 0.
    pub code: i32,
    /// The text.
    pub msg: String,
    /// Sender's id.
    pub from_user_id: UserId,
    /// Sender's name.
    pub from_user_name: String,
    /// Recipient's id (0 in a room message).
    pub to_user_id: UserId,
    /// Recipient's name ("" in a room message).
    pub to_user_name: String,
    /// The room the message belongs to.
    pub room_id: RoomId,
    /// [`OP_PRIVATE`] or [`OP_ROOM`].
    pub op: i32,
    /// `YYYY-MM-DD HH:MM:SS` for room messages, "" for private ones (as gochat).
    pub create_time: String,
}

#[derive(Serialize)]
struct CountPush {
    #[serde(skip_serializing_if = "is_zero")]
    count: usize,
    op: i32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RosterPush<'a> {
    op: i32,
    #[serde(skip_serializing_if = "is_zero_i64")]
    room_id: RoomId,
    #[serde(skip_serializing_if = "is_zero")]
    count: usize,
    room_user_info: &'a BTreeMap<String, String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// The roster of a room as pushed in op 5: decimal user id → user name. A `BTreeMap` of
/// strings sorts keys the way Go's `encoding/json` does (lexically), which gochat's clients see.
pub type Roster = BTreeMap<String, String>;

/// Encode an op 2 or op 3 message.
pub fn encode_message(m: &ChatMessage) -> Vec<u8> {
    // Serializing plain strings and integers into a Vec cannot fail.
    serde_json::to_vec(m).unwrap_or_default()
}

/// Encode an op 4 online count: `{"count":2,"op":4}` (`count` omitted when 0).
pub fn encode_count(count: usize) -> Vec<u8> {
    serde_json::to_vec(&CountPush {
        count,
        op: OP_COUNT,
    })
    .unwrap_or_default()
}

/// Encode an op 5 roster: `{"op":5,"roomId":1,"count":2,"roomUserInfo":{…}}`
/// (`roomId` and `count` omitted when 0).
pub fn encode_roster(room_id: RoomId, roster: &Roster) -> Vec<u8> {
    serde_json::to_vec(&RosterPush {
        op: OP_ROSTER,
        room_id,
        count: roster.len(),
        room_user_info: roster,
    })
    .unwrap_or_default()
}

/// A push as a client decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// op 2.
    Private(ChatMessage),
    /// op 3.
    Room(ChatMessage),
    /// op 4.
    Count(usize),
    /// op 5.
    Roster {
        /// The room (0 if omitted).
        room_id: RoomId,
        /// Members by decimal user id.
        users: Roster,
    },
}

/// Why a payload is not a push.
#[derive(Debug, thiserror::Error)]
#[error("not a gochat push: {0}")]
pub struct PushDecodeError(String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyPush {
    op: i32,
    #[serde(default)]
    count: usize,
    #[serde(default)]
    room_id: RoomId,
    #[serde(default)]
    room_user_info: Roster,
}

/// Decode a push received from the server (used by clients and tests).
pub fn decode_push(bytes: &[u8]) -> Result<Push, PushDecodeError> {
    let head: AnyPush =
        serde_json::from_slice(bytes).map_err(|e| PushDecodeError(e.to_string()))?;
    match head.op {
        OP_PRIVATE | OP_ROOM => {
            let m: ChatMessage =
                serde_json::from_slice(bytes).map_err(|e| PushDecodeError(e.to_string()))?;
            Ok(if head.op == OP_PRIVATE {
                Push::Private(m)
            } else {
                Push::Room(m)
            })
        }
        OP_COUNT => Ok(Push::Count(head.count)),
        OP_ROSTER => Ok(Push::Roster {
            room_id: head.room_id,
            users: head.room_user_info,
        }),
        op => Err(PushDecodeError(format!("unknown op {op}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(op: i32) -> ChatMessage {
        ChatMessage {
            code: 0,
            msg: "hi \"there\"".into(),
            from_user_id: 10,
            from_user_name: "alice".into(),
            to_user_id: if op == OP_PRIVATE { 3 } else { 0 },
            to_user_name: if op == OP_PRIVATE { "demo" } else { "" }.into(),
            room_id: 1,
            op,
            create_time: if op == OP_ROOM {
                "2026-11-26 19:31:32"
            } else {
                ""
            }
            .into(),
        }
    }

    #[test]
    fn private_message_bytes_are_gochats() {
        assert_eq!(
            String::from_utf8(encode_message(&msg(OP_PRIVATE))).unwrap(),
            r#"{"code":0,"msg":"hi \"there\"","fromUserId":10,"fromUserName":"alice","toUserId":3,"toUserName":"demo","roomId":1,"op":2,"createTime":""}"#
        );
    }

    #[test]
    fn room_message_bytes_are_gochats() {
        assert_eq!(
            String::from_utf8(encode_message(&msg(OP_ROOM))).unwrap(),
            r#"{"code":0,"msg":"hi \"there\"","fromUserId":10,"fromUserName":"alice","toUserId":0,"toUserName":"","roomId":1,"op":3,"createTime":"2026-11-26 19:31:32"}"#
        );
    }

    #[test]
    fn count_omits_zero() {
        assert_eq!(encode_count(2), br#"{"count":2,"op":4}"#);
        assert_eq!(encode_count(0), br#"{"op":4}"#);
    }

    #[test]
    fn roster_sorts_keys_like_go_and_omits_zeros() {
        let mut r = Roster::new();
        r.insert("3".into(), "demo".into());
        r.insert("10".into(), "alice".into());
        assert_eq!(
            encode_roster(1, &r),
            br#"{"op":5,"roomId":1,"count":2,"roomUserInfo":{"10":"alice","3":"demo"}}"#
        );
        assert_eq!(
            encode_roster(0, &Roster::new()),
            br#"{"op":5,"roomUserInfo":{}}"#
        );
    }

    #[test]
    fn decode_round_trips_every_op() {
        for op in [OP_PRIVATE, OP_ROOM] {
            let m = msg(op);
            let got = decode_push(&encode_message(&m)).unwrap();
            assert_eq!(
                got,
                if op == OP_PRIVATE {
                    Push::Private(m)
                } else {
                    Push::Room(m)
                }
            );
        }
        assert_eq!(decode_push(&encode_count(7)).unwrap(), Push::Count(7));
        let mut r = Roster::new();
        r.insert("1".into(), "x".into());
        assert_eq!(
            decode_push(&encode_roster(9, &r)).unwrap(),
            Push::Roster {
                room_id: 9,
                users: r
            }
        );
        assert!(decode_push(b"{\"op\":9}").is_err());
        assert!(decode_push(b"nope").is_err());
    }
}
