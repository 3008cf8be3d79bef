//! Parsing request bodies: JSON whatever the Content-Type says, unknown fields ignored,
//! required fields present and non-empty (non-zero for integers), each failure named.
//!
//! A body is checked whole, but only the fields a route asks for are parsed into values:
//! building a `serde_json::Value` tree of every field was a tenth of a REST request's
//! instructions (callgrind, docs/performance.md).

use gochat_core::model::{RoomId, UserId};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::error::Category;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A JSON object body: its fields in order, each value still as its text.
pub struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

/// Why a body was refused; the text goes to the client as the message.
pub type Invalid = String;

impl<'a> Fields<'a> {
    /// Parse a body that must be a JSON object.
    pub fn parse(body: &'a [u8]) -> Result<Self, Invalid> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err("request body is empty; send a JSON object".into());
        }
        match serde_json::from_slice::<Fields<'a>>(body) {
            Ok(f) => Ok(f),
            // Valid JSON of another type (the values themselves are never checked for type).
            Err(e) if e.classify() == Category::Data => {
                Err("request body must be a JSON object".into())
            }
            Err(e) => Err(format!("request body is not valid JSON: {e}")),
        }
    }

    /// The value of field `name` (the last one, as a JSON map would keep it).
    fn get(&self, name: &str) -> Option<Value> {
        let (_, raw) = self.0.iter().rev().find(|(k, _)| k == name)?;
        // The text was checked as JSON when the body was parsed; what can still fail is
        // nesting past serde_json's depth limit, which only arrays and objects reach: it
        // reads as an empty array, the wrong type for every field a route reads.
        Some(serde_json::from_str(raw.get()).unwrap_or(Value::Array(Vec::new())))
    }

    /// A required, non-empty string field.
    pub fn string(&self, name: &str) -> Result<String, Invalid> {
        match self.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(Value::String(_)) | None | Some(Value::Null) => Err(format!("{name} is required")),
            Some(_) => Err(format!("{name} must be a string")),
        }
    }

    /// A required, non-zero integer field.
    pub fn int(&self, name: &str) -> Result<i64, Invalid> {
        match self.get(name) {
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
        match self.get(name) {
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
        match self.get("v").as_ref().and_then(Value::as_i64) {
            Some(2) => 2,
            _ => 1,
        }
    }

    /// The optional idempotency key `id` (a string of at most 64 bytes).
    pub fn client_id(&self) -> Result<Option<String>, Invalid> {
        const MAX: usize = gochat_core::protocol::v2::MAX_ID_BYTES;
        match self.get("id") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= MAX => Ok(Some(s)),
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
        let id = match self.get(NAME) {
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

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Object<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'a>, M::Error> {
                let mut fields = Vec::new();
                while let Some((Key(k), v)) = map.next_entry::<Key<'a>, &'a RawValue>()? {
                    fields.push((k, v));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(Object(std::marker::PhantomData))
    }
}

/// A field's name: borrowed from the body, unless it had escapes to undo.
#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

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
        let msg = |b: &[u8]| Fields::parse(b).err().unwrap();
        assert_eq!(msg(b"[1]"), "request body must be a JSON object");
        assert_eq!(msg(br#""text""#), "request body must be a JSON object");
        assert!(msg(br#"{"a":1} x"#).starts_with("request body is not valid JSON"));
        // A value no route asks for is still checked: the body is JSON as a whole.
        assert!(msg(br#"{"roomId":1,"other":[1,}"#).starts_with("request body is not valid JSON"));
        // Nesting deeper than serde_json parses into a value: a field it cannot read.
        let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        assert_eq!(
            Fields::parse(deep.as_bytes())
                .unwrap()
                .opt_int("a")
                .unwrap_err(),
            "a must be an integer"
        );
    }

    #[test]
    fn fields_read_as_a_json_map_would_hold_them() {
        // The last of a repeated field counts; an escaped name is still its name.
        let f = Fields::parse(br#"{"roomId":1,"roomId":7,"\u0061uthToken":"t","n":null}"#).unwrap();
        assert_eq!(f.room().unwrap(), 7);
        assert!(
            matches!(f.0[0].0, Cow::Borrowed("roomId")),
            "a plain name is borrowed"
        );
        assert_eq!(f.string("authToken").unwrap(), "t");
        assert_eq!(f.opt_int("n").unwrap(), None);
        assert_eq!(f.string("msg").unwrap_err(), "msg is required");
        let f = Fields::parse(br#"{"msg":"caf\u00e9 \"quoted\"","v":2,"id":"k1"}"#).unwrap();
        assert_eq!(f.string("msg").unwrap(), "caf\u{e9} \"quoted\"");
        assert_eq!(f.version(), 2);
        assert_eq!(f.client_id().unwrap().as_deref(), Some("k1"));
    }
}
