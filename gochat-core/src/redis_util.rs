//! Small helpers shared by the Redis backends.

use crate::{Error, Result};
use redis::Value;

/// Connect twice to the server at `url`: a multiplexed connection for ordinary commands
/// (its default 500 ms response timeout stays), and — on request — one without a response
/// timeout for blocking reads, which must never share the multiplexed one.
pub(crate) async fn connect(
    url: &str,
    blocking: bool,
) -> Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    let config = if blocking {
        redis::AsyncConnectionConfig::new().set_response_timeout(None)
    } else {
        redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(5)))
    };
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
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
