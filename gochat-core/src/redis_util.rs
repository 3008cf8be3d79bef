//! Small helpers shared by the Redis backends.

use crate::{Error, Result};
use redis::Value;

/// A connection that reconnects by itself: a command sent while Redis is away fails, and
/// the next one goes over a new connection once Redis is back (a plain multiplexed
/// connection stays broken for good after a Redis restart).
pub(crate) type Conn = redis::aio::ConnectionManager;

/// Longest pause between two reconnection attempts.
const RECONNECT_MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Connect to the server at `url`: for ordinary commands (5 s response timeout), or — with
/// `blocking` — for blocking reads, with no response timeout (they wait on the server by
/// design, and must never share the ordinary connection). Fails, naming `url`, if Redis
/// does not answer now.
pub(crate) async fn connect(url: &str, blocking: bool) -> Result<Conn> {
    let client = redis::Client::open(url)?;
    let timeout = (!blocking).then_some(std::time::Duration::from_secs(5));
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(timeout)
        .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
        .set_max_delay(RECONNECT_MAX_DELAY)
        .set_number_of_retries(usize::MAX);
    redis::aio::ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|source| Error::RedisAt {
            url: url.to_owned(),
            source,
        })
}

/// The elements of an array reply (RESP2 arrays, RESP3 sets); `Nil` is empty.
pub(crate) fn items(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        other => Err(Error::Decode(format!("expected an array, got {other:?}"))),
    }
}

/// A bulk or simple string reply as bytes.
pub(crate) fn bytes(v: Value) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        other => Err(Error::Decode(format!("expected a string, got {other:?}"))),
    }
}

/// A string reply as UTF-8 text.
pub(crate) fn text(v: Value) -> Result<String> {
    String::from_utf8(bytes(v)?).map_err(|e| Error::Decode(e.to_string()))
}
