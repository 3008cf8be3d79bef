//! Parsing request bodies: JSON whatever the Content-Type says, unknown fields ignored,
//! required fields present and non-empty (non-zero for integers), each failure named.

use gochat_core::model::{RoomId, UserId};
use serde_json::{Map, Value};

/// A parsed JSON object body.
pub struct Fields(Map<String, Value>);

/// Why a body was refused; the text goes to the client as the message.
pub type Invalid = String;

impl Fields {
    /// Parse a body that must be a JSON object.
    pub fn parse(body: &[u8]) -> Result<Self, Invalid> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err("request body is empty; send a JSON object".into());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Self(m)),
            Ok(_) => Err("request body must be a JSON object".into()),
            Err(e) => Err(format!("request body is not valid JSON: {e}")),
        }
    }

    /// A required, non-empty string field.
    pub fn string(&self, name: &str) -> Result<String, Invalid> {
        match self.0.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) | None | Some(Value::Null) => Err(format!("{name} is required")),
            Some(_) => Err(format!("{name} must be a string")),
        }
    }

    /// A required, non-zero integer field.
    pub fn int(&self, name: &str) -> Result<i64, Invalid> {
        match self.0.get(name) {
            None | Some(Value::Null) => Err(format!("{name} is required")),
            Some(v) => match v.as_i64() {
                Some(0) => Err(format!("{name} is required")),
                Some(n) => Ok(n),
                None => Err(format!("{name} must be an integer")),
            },
        }
    }

    /// An optional integer field (absent or null: `None`).
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, Invalid> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("{name} must be an integer")),
        }
    }

    /// An optional non-negative integer field (a seq, a limit).
    pub fn opt_count(&self, name: &str) -> Result<Option<u64>, Invalid> {
        match self.opt_int(name)? {
            Some(n) if n < 0 => Err(format!("{name} must not be negative")),
            n => Ok(n.map(|n| n as u64)),
        }
    }

    /// The protocol version the body asks for: 2 with `"v":2`, else 1.
    pub fn version(&self) -> u8 {
        match self.0.get("v").and_then(Value::as_i64) {
            Some(2) => 2,
            _ => 1,
        }
    }

    /// The optional idempotency key `id` (a string of at most 64 bytes).
    pub fn client_id(&self) -> Result<Option<String>, Invalid> {
        const MAX: usize = gochat_core::protocol::v2::MAX_ID_BYTES;
        match self.0.get("id") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= MAX => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(format!("id is longer than {MAX} bytes")),
            Some(_) => Err("id must be a string".into()),
        }
    }

    /// The room id (required, non-zero integer).
    pub fn room(&self) -> Result<RoomId, Invalid> {
        self.int("roomId")
    }

    /// `toUserId`: gochat's clients send a JSON string ("3"); an integer is accepted too.
    pub fn to_user(&self) -> Result<UserId, Invalid> {
        const NAME: &str = "toUserId";
        let id = match self.0.get(NAME) {
            None | Some(Value::Null) => return Err(format!("{NAME} is required")),
            Some(Value::String(s)) if s.is_empty() => return Err(format!("{NAME} is required")),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(v) => v.as_i64(),
        };
        match id {
            Some(0) => Err(format!("{NAME} is required")),
            Some(n) if n > 0 => Ok(n),
            _ => Err(format!("{NAME} must be a positive user id")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_are_named() {
        let f = Fields::parse(br#"{"a":"x","e":"","n":5,"z":0,"s":"3","b":true,"x":1}"#).unwrap();
        assert_eq!(f.string("a").unwrap(), "x");
        assert_eq!(f.string("e").unwrap_err(), "e is required");
        assert_eq!(f.string("missing").unwrap_err(), "missing is required");
        assert_eq!(f.string("n").unwrap_err(), "n must be a string");
        assert_eq!(f.int("n").unwrap(), 5);
        assert_eq!(f.int("z").unwrap_err(), "z is required");
        assert_eq!(f.int("s").unwrap_err(), "s must be an integer");
        assert_eq!(f.int("b").unwrap_err(), "b must be an integer");
    }

    #[test]
    fn to_user_id_is_a_string_or_integer() {
        let id = |b: &str| Fields::parse(b.as_bytes()).unwrap().to_user();
        assert_eq!(id(r#"{"toUserId":"3"}"#).unwrap(), 3);
        assert_eq!(id(r#"{"toUserId":3}"#).unwrap(), 3);
        assert!(id(r#"{"toUserId":"abc"}"#).is_err());
        assert!(id(r#"{"toUserId":"-2"}"#).is_err());
        assert_eq!(id(r#"{}"#).unwrap_err(), "toUserId is required");
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(Fields::parse(b"").is_err());
        assert!(Fields::parse(b"  ").is_err());
        assert!(Fields::parse(b"[1]").is_err());
        assert!(Fields::parse(b"{nope").is_err());
    }
}
