//! gochat's TCP framing, both directions, big-endian: 2 bytes ASCII `v1`, 2 bytes total
//! length **including** the 4 header bytes, then the payload.

use bytes::{Buf, Bytes, BytesMut};

/// The two magic bytes that open every frame.
pub const MAGIC: [u8; 2] = *b"v1";
/// Header length.
pub const HEADER_LEN: usize = 4;
/// Largest payload a frame may carry (total length fits in a signed 16-bit integer).
pub const MAX_PAYLOAD: usize = 32_763;
/// The keep-alive payload the server sends.
pub const PING_PAYLOAD: &[u8] = b"ping msg";

/// Why bytes are not a valid frame. Any of these closes that connection.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The first two bytes are not `v1`.
    #[error("frame header is not v1")]
    BadMagic,
    /// The declared length is under the header's own 4 bytes.
    #[error("frame length {0} is shorter than its header")]
    TooShort(usize),
    /// The declared payload is over the limit.
    #[error("frame payload of {0} bytes is over the limit")]
    TooLong(usize),
}

/// Frame `payload` for the wire.
pub fn encode_frame(payload: &[u8]) -> Result<Bytes, FrameError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(FrameError::TooLong(payload.len()));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&((HEADER_LEN + payload.len()) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(Bytes::from(out))
}

/// Take one whole frame's payload off the front of `buf`: `Ok(None)` when more bytes are
/// needed (a partial frame is not an error), an error as soon as the header is known bad.
/// `max_payload` may lower [`MAX_PAYLOAD`] for inbound frames.
pub fn decode_frame(buf: &mut BytesMut, max_payload: usize) -> Result<Option<Bytes>, FrameError> {
    if !buf.is_empty() && buf[0] != MAGIC[0] || buf.len() >= 2 && buf[1] != MAGIC[1] {
        return Err(FrameError::BadMagic);
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if total < HEADER_LEN {
        return Err(FrameError::TooShort(total));
    }
    let payload = total - HEADER_LEN;
    if payload > max_payload.min(MAX_PAYLOAD) {
        return Err(FrameError::TooLong(payload));
    }
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    Ok(Some(buf.split_to(payload).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial_frames() {
        let f = encode_frame(b"hello").unwrap();
        assert_eq!(&f[..], b"v1\x00\x09hello");
        let mut buf = BytesMut::new();
        for (i, b) in f.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = decode_frame(&mut buf, MAX_PAYLOAD).unwrap();
            if i + 1 < f.len() {
                assert_eq!(got, None, "after {} bytes", i + 1);
            } else {
                assert_eq!(got.as_deref(), Some(&b"hello"[..]));
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn many_frames_in_one_buffer() {
        let mut buf = BytesMut::new();
        for i in 0..1000 {
            buf.extend_from_slice(&encode_frame(format!("{i}").as_bytes()).unwrap());
        }
        for i in 0..1000 {
            let p = decode_frame(&mut buf, MAX_PAYLOAD).unwrap().unwrap();
            assert_eq!(p, format!("{i}").as_bytes());
        }
        assert_eq!(decode_frame(&mut buf, MAX_PAYLOAD), Ok(None));
    }

    #[test]
    fn bad_headers_are_errors() {
        let mut b = BytesMut::from(&b"x"[..]);
        assert_eq!(decode_frame(&mut b, MAX_PAYLOAD), Err(FrameError::BadMagic));
        let mut b = BytesMut::from(&b"v2\x00\x05a"[..]);
        assert_eq!(decode_frame(&mut b, MAX_PAYLOAD), Err(FrameError::BadMagic));
        let mut b = BytesMut::from(&b"v1\x00\x03"[..]);
        assert_eq!(
            decode_frame(&mut b, MAX_PAYLOAD),
            Err(FrameError::TooShort(3))
        );
        let mut b = BytesMut::from(&b"v1\xff\xff"[..]);
        assert_eq!(
            decode_frame(&mut b, MAX_PAYLOAD),
            Err(FrameError::TooLong(65_531))
        );
        let mut b = BytesMut::from(&b"v1\x00\x10"[..]);
        assert_eq!(decode_frame(&mut b, 8), Err(FrameError::TooLong(12)));
        assert_eq!(
            encode_frame(&vec![0; MAX_PAYLOAD + 1]),
            Err(FrameError::TooLong(32_764))
        );
        // An empty payload is a valid frame.
        let mut b = BytesMut::from(&b"v1\x00\x04"[..]);
        assert_eq!(decode_frame(&mut b, MAX_PAYLOAD), Ok(Some(Bytes::new())));
    }
}
