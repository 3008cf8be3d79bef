//! The auth frame a client sends first: `{"authToken":"<token>","roomId":<int>}`.

use crate::model::RoomId;

/// A parsed auth frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFrame {
    /// The session token from login/register.
    pub auth_token: String,
    /// The room to join: 0 when missing or not an integer (as gochat), `-1` for no room.
    pub room_id: RoomId,
    /// Protocol version: 2 when the frame says `"v":2`, else 1 (gochat's clients).
    pub version: u8,
    /// v2: replay the room's messages with a seq above this.
    pub since: Option<u64>,
    /// v2: replay the inbox's messages with a seq above this.
    pub inbox_since: Option<u64>,
}

/// Why a frame is not an auth frame.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFrameError {
    /// Not a JSON object.
    #[error("auth frame is not a JSON object")]
    NotJson,
    /// `authToken` is missing, empty or not a string.
    #[error("auth frame has no authToken")]
    NoToken,
}

/// Parse an auth frame. Unknown fields are ignored (TCP clients also send `op`, `msg`).
pub fn decode_auth(bytes: &[u8]) -> Result<AuthFrame, AuthFrameError> {
    let serde_json::Value::Object(mut obj) =
        serde_json::from_slice(bytes).map_err(|_| AuthFrameError::NotJson)?
    else {
        return Err(AuthFrameError::NotJson);
    };
    let auth_token = match obj.remove("authToken") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        _ => return Err(AuthFrameError::NoToken),
    };
    let version = match obj.get("v").and_then(|v| v.as_i64()) {
        Some(2) => 2,
        _ => 1,
    };
    // Only a v2 frame's replay points mean anything; a negative or mistyped one is none.
    let seq = |key: &str| {
        (version == 2)
            .then(|| obj.get(key).and_then(|v| v.as_u64()))
            .flatten()
    };
    Ok(AuthFrame {
        room_id: obj.get("roomId").and_then(|v| v.as_i64()).unwrap_or(0),
        version,
        since: seq("since"),
        inbox_since: seq("inboxSince"),
        auth_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_and_room() {
        assert_eq!(
            decode_auth(br#"{"authToken":"abc","roomId":1}"#),
            Ok(AuthFrame {
                auth_token: "abc".into(),
                room_id: 1,
                version: 1,
                since: None,
                inbox_since: None,
            })
        );
        assert_eq!(
            decode_auth(br#"{"authToken":"abc","roomId":-1,"op":6}"#)
                .unwrap()
                .room_id,
            -1
        );
    }

    #[test]
    fn v2_frames_carry_their_replay_points() {
        let a = decode_auth(br#"{"authToken":"t","roomId":1,"v":2,"since":120,"inboxSince":45}"#)
            .unwrap();
        assert_eq!(
            (a.version, a.since, a.inbox_since),
            (2, Some(120), Some(45))
        );
        let v1 = decode_auth(br#"{"authToken":"t","roomId":1,"since":120}"#).unwrap();
        assert_eq!((v1.version, v1.since), (1, None), "v1 ignores since");
        let bad = decode_auth(br#"{"authToken":"t","v":2,"since":-3,"inboxSince":"x"}"#).unwrap();
        assert_eq!((bad.since, bad.inbox_since), (None, None));
        assert_eq!(
            decode_auth(br#"{"authToken":"t","v":3}"#).unwrap().version,
            1
        );
    }

    #[test]
    fn missing_or_mistyped_room_is_zero() {
        assert_eq!(decode_auth(br#"{"authToken":"a"}"#).unwrap().room_id, 0);
        assert_eq!(
            decode_auth(br#"{"authToken":"a","roomId":"1"}"#)
                .unwrap()
                .room_id,
            0
        );
        assert_eq!(
            decode_auth(br#"{"authToken":"a","roomId":1.5}"#)
                .unwrap()
                .room_id,
            0
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode_auth(b"hello"), Err(AuthFrameError::NotJson));
        assert_eq!(decode_auth(b"[1,2]"), Err(AuthFrameError::NotJson));
        assert_eq!(decode_auth(b"{}"), Err(AuthFrameError::NoToken));
        assert_eq!(
            decode_auth(br#"{"authToken":""}"#),
            Err(AuthFrameError::NoToken)
        );
        assert_eq!(
            decode_auth(br#"{"authToken":5}"#),
            Err(AuthFrameError::NoToken)
        );
    }
}
