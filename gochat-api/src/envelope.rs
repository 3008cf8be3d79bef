//! gochat's reply envelope `{"code":…,"data":…,"message":…}` and the CORS headers every
//! reply carries (PROTOCOL.md §1).

use bytes::Bytes;
use gochat_core::rpc::Fault;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    CONTENT_TYPE, HeaderValue,
};
use serde::Serialize;

/// gochat's message for an unknown path or method.
pub const BAD_URL: &str = "please check request url !";

/// Code of a successful reply.
pub const OK: i32 = 0;
/// Code of a failed request.
pub const FAIL: i32 = 1;

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    code: i32,
    data: T,
    message: &'a str,
}

/// An HTTP response body.
pub type Body = Full<Bytes>;

/// Add gochat's CORS headers.
pub fn with_cors(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    // The `http` crate's constants: a string name is parsed anew in every response.
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Origin, X-Requested-With, Content-Type, Accept"),
    );
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS, POST, PUT, DELETE"),
    );
    resp
}

/// HTTP 200 with the envelope, as JSON, with CORS.
pub fn reply<T: Serialize>(code: i32, data: T, message: &str) -> Response<Body> {
    // Serialising a struct of an integer, a string and plain data cannot fail.
    let body = serde_json::to_vec(&Envelope {
        code,
        data,
        message,
    })
    .unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    with_cors(resp)
}

/// Success with `data`.
pub fn ok<T: Serialize>(data: T, message: &str) -> Response<Body> {
    reply(OK, data, message)
}

/// Failure with code 1 and `data: null`.
pub fn fail(message: &str) -> Response<Body> {
    reply(FAIL, (), message)
}

/// gochat's reply to an unknown path or method (HTTP 200, code 1).
pub fn bad_url() -> Response<Body> {
    fail(BAD_URL)
}

/// The reply for a refusal from logic.
pub fn fault(f: &Fault) -> Response<Body> {
    reply(f.code(), (), &f.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response<Body>) -> String {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn envelope_bytes() {
        assert_eq!(
            body(ok("tok", "login success")).await,
            r#"{"code":0,"data":"tok","message":"login success"}"#
        );
        assert_eq!(
            body(bad_url()).await,
            r#"{"code":1,"data":null,"message":"please check request url !"}"#
        );
        assert_eq!(
            body(fault(&Fault::Session)).await,
            r#"{"code":40000,"data":null,"message":"Session error"}"#
        );
    }
}
