//! Everything a client sends that the server parses as JSON: the WebSocket / TCP auth frame
//! and pushes as a client decodes them. Never panics; an accepted auth frame has a token.
#![no_main]

use gochat_core::protocol::auth::decode_auth;
use gochat_core::protocol::push::decode_push;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = decode_auth(data) {
        assert!(!a.auth_token.is_empty());
    }
    let _ = decode_push(data);
});
