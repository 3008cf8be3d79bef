//! The TCP `v1` frame decoder on arbitrary bytes, fed in arbitrary chunks: it never panics,
//! never yields a payload over the limit, and what it yields re-encodes to the bytes it
//! consumed.
#![no_main]

use bytes::BytesMut;
use gochat_core::protocol::tcp::{MAX_PAYLOAD, decode_frame, encode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, the rest is the stream.
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut buf = BytesMut::new();
    let mut consumed = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decode_frame(&mut buf, MAX_PAYLOAD) {
                Ok(Some(p)) => {
                    assert!(p.len() <= MAX_PAYLOAD);
                    consumed.extend_from_slice(
                        &encode_frame(&p).expect("a decoded payload re-encodes"),
                    );
                }
                Ok(None) => break,
                Err(_) => return, // the connection would be closed here
            }
        }
    }
    assert!(
        stream.starts_with(&consumed),
        "decoded frames are a prefix of the input"
    );
});
