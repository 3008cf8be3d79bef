//! Protocol v2 (PROTOCOL.md §6), sans-IO: the commands a v2 client sends, the op-10 replies,
//! stored messages as pushed (v1 keys and order, then `msgId` and `seq`), and join/leave
//! events. A client that never sends `"v":2` never meets any of it.

use crate::model::{Range, RoomId, StoredMessage, User, UserId};
use crate::protocol::push::{ChatMessage, OP_PRIVATE, OP_ROOM, encode_message};
use crate::protocol::time::format_utc;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Ping (op 1).
pub const OP_PING: i64 = 1;
/// A private message (op 2).
pub const OP_PRIVATE_POST: i64 = 2;
/// A room post (op 3).
pub const OP_ROOM_POST: i64 = 3;
/// Join one more room (op 7).
pub const OP_JOIN: i64 = 7;
/// Leave a room (op 8).
pub const OP_LEAVE: i64 = 8;
/// Read stored messages (op 9).
pub const OP_HISTORY: i64 = 9;
/// The server's reply to a command (op 10).
pub const OP_REPLY: i64 = 10;
/// A user joined a room (op 11).
pub const OP_JOINED: i64 = 11;
/// A user left a room (op 12).
pub const OP_LEFT: i64 = 12;
/// Longest `id` a command may carry, in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// A v2 command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// op 1.
    Ping,
    /// op 3: post `msg` to `room_id`.
    Post {
        /// The room.
        room_id: RoomId,
        /// The text.
        msg: String,
    },
    /// op 2: a private message.
    Private {
        /// The recipient.
        to_user_id: UserId,
        /// The text.
        msg: String,
        /// The room echoed in the push (0 when absent).
        room_id: RoomId,
    },
    /// op 7: join a room, replaying what was missed after `since`.
    Join {
        /// The room.
        room_id: RoomId,
        /// Replay messages with a seq above this.
        since: Option<u64>,
    },
    /// op 8: leave a room.
    Leave {
        /// The room.
        room_id: RoomId,
    },
    /// op 9: a page of a room's messages, or of the own inbox (`room_id` 0).
    History {
        /// The room; 0 is the inbox.
        room_id: RoomId,
        /// Which part.
        range: Range,
        /// At most this many (`None`: the server's default).
        limit: Option<usize>,
    },
}

/// A command frame: its `id` (to echo) and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The client's id of the command, echoed in the reply.
    pub id: Option<String>,
    /// The command, or why it cannot be carried out (answered with code 1).
    pub command: Result<Command, String>,
}

/// A frame that is not a JSON object with an integer `op`: the connection is closed, as in
/// v1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a v2 command must be a JSON object with an integer op")]
pub struct Malformed;

fn int(obj: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{key} must be an integer")),
    }
}

fn seq(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match int(obj, key)? {
        Some(n) if n < 0 => Err(format!("{key} must not be negative")),
        n => Ok(n.map(|n| n as u64)),
    }
}

fn text(obj: &Map<String, Value>, key: &str) -> Result<String, String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(format!("{key} is required")),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn required_room(obj: &Map<String, Value>) -> Result<RoomId, String> {
    match int(obj, "roomId")? {
        Some(r) if r != 0 => Ok(r),
        _ => Err("roomId is required".into()),
    }
}

/// Parse a command frame. `Err` closes the connection; a frame that parses but asks for
/// something impossible gives a `Request` whose `command` says why (code 1).
pub fn decode_command(bytes: &[u8]) -> Result<Request, Malformed> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(Malformed);
    };
    let op = obj.get("op").and_then(Value::as_i64).ok_or(Malformed)?;
    let (id, id_ok) = match obj.get("id") {
        None | Some(Value::Null) => (None, Ok(())),
        Some(Value::String(s)) if s.len() <= MAX_ID_BYTES => (Some(s.clone()), Ok(())),
        Some(Value::String(_)) => (None, Err(format!("id is longer than {MAX_ID_BYTES} bytes"))),
        Some(_) => (None, Err("id must be a string".to_owned())),
    };
    let command = id_ok.and_then(|()| command(op, &obj));
    Ok(Request { id, command })
}

fn command(op: i64, obj: &Map<String, Value>) -> Result<Command, String> {
    Ok(match op {
        OP_PING => Command::Ping,
        OP_ROOM_POST => Command::Post {
            room_id: required_room(obj)?,
            msg: text(obj, "msg")?,
        },
        OP_PRIVATE_POST => Command::Private {
            to_user_id: match int(obj, "toUserId")? {
                Some(u) if u > 0 => u,
                _ => return Err("toUserId must be a positive user id".into()),
            },
            msg: text(obj, "msg")?,
            room_id: int(obj, "roomId")?.unwrap_or(0),
        },
        OP_JOIN => Command::Join {
            room_id: required_room(obj)?,
            since: seq(obj, "since")?,
        },
        OP_LEAVE => Command::Leave {
            room_id: required_room(obj)?,
        },
        OP_HISTORY => {
            let range = match (seq(obj, "since")?, seq(obj, "before")?) {
                (Some(_), Some(_)) => return Err("give since or before, not both".into()),
                (Some(s), None) => Range::Since(s),
                (None, Some(b)) => Range::Before(b),
                (None, None) => Range::Latest,
            };
            let limit = match int(obj, "limit")? {
                Some(l) if l <= 0 => return Err("limit must be positive".into()),
                l => l.map(|l| l as usize),
            };
            Command::History {
                room_id: int(obj, "roomId")?.unwrap_or(0),
                range,
                limit,
            }
        }
        other => return Err(format!("unknown op {other}")),
    })
}

/// One extra key of a reply, in order, with its value as JSON text (so that objects inside,
/// stored messages say, keep their own key order).
pub type Extra<'a> = (&'a str, Box<RawValue>);

/// A value as an [`Extra`]'s JSON text.
pub fn raw(v: impl serde::Serialize) -> Box<RawValue> {
    // Serialising plain values (numbers, strings, booleans) cannot fail; `null` if it did.
    serde_json::value::to_raw_value(&v).unwrap_or_default()
}

/// `{"op":10,"id":…,"code":…,"message":…,<extras…>}` (`id` omitted when the command had
/// none). Keys in this order, as PROTOCOL.md shows them.
pub fn encode_reply(id: Option<&str>, code: i32, message: &str, extras: &[Extra<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"op\":10");
    if let Some(id) = id {
        out.extend_from_slice(b",\"id\":");
        push_json(&mut out, &Value::from(id));
    }
    out.extend_from_slice(format!(",\"code\":{code},\"message\":").as_bytes());
    push_json(&mut out, &Value::from(message));
    for (k, v) in extras {
        out.push(b',');
        push_json(&mut out, &Value::from(*k));
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
    }
    out.push(b'}');
    out
}

fn push_json(out: &mut Vec<u8>, v: &Value) {
    // Serialising a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// A successful reply.
pub fn encode_ok(id: Option<&str>, extras: &[Extra<'_>]) -> Vec<u8> {
    encode_reply(id, 0, "ok", extras)
}

/// The reply to a v2 auth frame.
pub fn encode_auth_reply(user: &User, seq: u64, inbox_seq: u64) -> Vec<u8> {
    encode_ok(
        Some("auth"),
        &[
            ("userId", raw(user.id)),
            ("userName", raw(&user.name)),
            ("seq", raw(seq)),
            ("inboxSeq", raw(inbox_seq)),
        ],
    )
}

/// The frame that ends a replay that left messages behind: `{"op":10,"id":"replay",
/// "code":0,"roomId":R,"more":true}` (`roomId` 0 for the inbox).
pub fn encode_replay_more(room_id: RoomId) -> Vec<u8> {
    let mut out = b"{\"op\":10,\"id\":\"replay\",\"code\":0,\"roomId\":".to_vec();
    out.extend_from_slice(format!("{room_id},\"more\":true}}").as_bytes());
    out
}

/// A v1 push object with `msgId` (a decimal string) and, when stored, `seq` appended:
/// `{…v1 keys…,"msgId":"…","seq":n}`.
pub fn stamp(v1: &[u8], msg_id: i64, seq: Option<u64>) -> Vec<u8> {
    let body = v1.strip_suffix(b"}").unwrap_or(v1);
    let mut out = Vec::with_capacity(body.len() + 48);
    out.extend_from_slice(body);
    out.extend_from_slice(format!(",\"msgId\":\"{msg_id}\"").as_bytes());
    if let Some(seq) = seq {
        out.extend_from_slice(format!(",\"seq\":{seq}").as_bytes());
    }
    out.push(b'}');
    out
}

/// A stored message as its v1 object: room messages carry their original `createTime`,
/// private ones `""` (as gochat).
pub fn chat_message(m: &StoredMessage) -> ChatMessage {
    let (op, to_id, to_name, create_time) = match &m.to {
        Some(to) => (OP_PRIVATE, to.id, to.name.clone(), String::new()),
        None => (
            OP_ROOM,
            0,
            String::new(),
            format_utc(m.created_ms.div_euclid(1000)),
        ),
    };
    ChatMessage {
        code: 0,
        msg: m.msg.clone(),
        from_user_id: m.from.id,
        from_user_name: m.from.name.clone(),
        to_user_id: to_id,
        to_user_name: to_name,
        room_id: m.room_id,
        op,
        create_time,
    }
}

/// A stored message as a v2 push (op 2 or 3, with `msgId` and its `seq` in the log read).
pub fn encode_stored(m: &StoredMessage) -> Vec<u8> {
    stamp(&encode_message(&chat_message(m)), m.msg_id, Some(m.seq))
}

/// A page of stored messages as a JSON array, each object in the documented key order.
pub fn messages_json(messages: &[StoredMessage]) -> Box<RawValue> {
    let mut out = b"[".to_vec();
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&encode_stored(m));
    }
    out.push(b']');
    // Stored messages encode as JSON objects, so the array is JSON.
    RawValue::from_string(String::from_utf8_lossy(&out).into_owned()).unwrap_or_default()
}

/// op 11 (joined) or op 12 (left): `{"op":11,"roomId":1,"userId":3,"userName":"demo"}`.
pub fn encode_event(op: i64, room_id: RoomId, user: &User) -> Vec<u8> {
    let mut out = format!(
        "{{\"op\":{op},\"roomId\":{room_id},\"userId\":{},\"userName\":",
        user.id
    )
    .into_bytes();
    push_json(&mut out, &Value::from(user.name.as_str()));
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Request {
        decode_command(json.as_bytes()).unwrap()
    }

    #[test]
    fn commands_parse_with_their_ids() {
        assert_eq!(
            req(r#"{"op":3,"roomId":2,"msg":"hi","id":"c1"}"#),
            Request {
                id: Some("c1".into()),
                command: Ok(Command::Post {
                    room_id: 2,
                    msg: "hi".into()
                })
            }
        );
        assert_eq!(
            req(r#"{"op":2,"toUserId":3,"msg":"psst"}"#).command,
            Ok(Command::Private {
                to_user_id: 3,
                msg: "psst".into(),
                room_id: 0
            })
        );
        assert_eq!(
            req(r#"{"op":7,"roomId":5,"since":12}"#).command,
            Ok(Command::Join {
                room_id: 5,
                since: Some(12)
            })
        );
        assert_eq!(
            req(r#"{"op":9,"before":40,"limit":10}"#).command,
            Ok(Command::History {
                room_id: 0,
                range: Range::Before(40),
                limit: Some(10)
            })
        );
        assert_eq!(req(r#"{"op":1,"id":"p"}"#).command, Ok(Command::Ping));
    }

    #[test]
    fn impossible_commands_say_why_and_garbage_is_malformed() {
        let why = |j: &str| req(j).command.unwrap_err();
        assert_eq!(why(r#"{"op":42}"#), "unknown op 42");
        assert_eq!(why(r#"{"op":3,"msg":"x"}"#), "roomId is required");
        assert_eq!(why(r#"{"op":3,"roomId":1}"#), "msg is required");
        assert_eq!(
            why(r#"{"op":2,"toUserId":"3","msg":"x"}"#),
            "toUserId must be an integer"
        );
        assert_eq!(
            why(r#"{"op":9,"since":1,"before":2}"#),
            "give since or before, not both"
        );
        assert_eq!(why(r#"{"op":9,"since":-1}"#), "since must not be negative");
        assert_eq!(why(r#"{"op":9,"limit":0}"#), "limit must be positive");
        let long = format!(r#"{{"op":1,"id":"{}"}}"#, "x".repeat(65));
        assert_eq!(why(&long), "id is longer than 64 bytes");
        assert_eq!(decode_command(b"nope"), Err(Malformed));
        assert_eq!(decode_command(b"[1]"), Err(Malformed));
        assert_eq!(decode_command(br#"{"op":"3"}"#), Err(Malformed));
    }

    #[test]
    fn replies_keep_the_documented_key_order() {
        let user = User {
            id: 10,
            name: "alice".into(),
        };
        assert_eq!(
            String::from_utf8(encode_auth_reply(&user, 130, 52)).unwrap(),
            r#"{"op":10,"id":"auth","code":0,"message":"ok","userId":10,"userName":"alice","seq":130,"inboxSeq":52}"#
        );
        assert_eq!(
            String::from_utf8(encode_replay_more(1)).unwrap(),
            r#"{"op":10,"id":"replay","code":0,"roomId":1,"more":true}"#
        );
        assert_eq!(
            String::from_utf8(encode_reply(None, 1, "unknown op 42", &[])).unwrap(),
            r#"{"op":10,"code":1,"message":"unknown op 42"}"#
        );
        assert_eq!(
            String::from_utf8(encode_event(OP_JOINED, 1, &user)).unwrap(),
            r#"{"op":11,"roomId":1,"userId":10,"userName":"alice"}"#
        );
    }

    #[test]
    fn stored_messages_are_v1_objects_with_msg_id_and_seq() {
        let m = StoredMessage {
            msg_id: 7_000_000_000_000_000_001,
            seq: 6,
            room_id: 1,
            from: User {
                id: 10,
                name: "alice".into(),
            },
            to: None,
            msg: "hello".into(),
            created_ms: 1_795_721_492_123,
        };
        assert_eq!(
            String::from_utf8(encode_stored(&m)).unwrap(),
            r#"{"code":0,"msg":"hello","fromUserId":10,"fromUserName":"alice","toUserId":0,"toUserName":"","roomId":1,"op":3,"createTime":"2026-11-26 19:31:32","msgId":"7000000000000000001","seq":6}"#
        );
        assert_eq!(
            stamp(br#"{"op":2}"#, 5, None),
            br#"{"op":2,"msgId":"5"}"#.to_vec(),
            "history off: no seq"
        );
    }
}
