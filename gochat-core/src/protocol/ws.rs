//! Server-to-client WebSocket frames, pre-encoded: a push is framed once and the same
//! bytes are written to every connection (server frames are never masked).

use bytes::Bytes;

/// A final, unmasked text frame holding `payload`.
pub fn text_frame(payload: &[u8]) -> Bytes {
    frame(0x81, payload)
}

/// A Ping control frame with an empty payload.
pub fn ping_frame() -> Bytes {
    Bytes::from_static(&[0x89, 0x00])
}

/// A Pong control frame echoing `payload` (control payloads are at most 125 bytes; longer
/// ones are truncated, which a conforming peer never sends).
pub fn pong_frame(payload: &[u8]) -> Bytes {
    frame(0x8A, &payload[..payload.len().min(125)])
}

/// A Close frame with a status code and a short reason (truncated to fit 125 bytes).
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut body = Vec::with_capacity(2 + reason.len());
    body.extend_from_slice(&code.to_be_bytes());
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    body.extend_from_slice(&reason.as_bytes()[..cut]);
    frame(0x88, &body)
}

fn frame(first: u8, payload: &[u8]) -> Bytes {
    let n = payload.len();
    let mut f = Vec::with_capacity(n + 10);
    f.push(first);
    if n < 126 {
        f.push(n as u8);
    } else if n <= usize::from(u16::MAX) {
        f.push(126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(payload);
    Bytes::from(f)
}

/// Close codes this server sends, with the reason text that goes with each.
pub mod close {
    /// Normal closure (server shutting down, or logout).
    pub const NORMAL: u16 = 1000;
    /// Going away: the server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy violation: bad or unknown auth frame, or logged out.
    pub const POLICY: u16 = 1008;
    /// Message too big: an inbound frame over the configured limit.
    pub const TOO_BIG: u16 = 1009;
    /// Try again later: this client did not read fast enough and its queue filled.
    pub const SLOW_CONSUMER: u16 = 1013;
    /// Private-use code: no frame or Pong within the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4000;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_by_length() {
        assert_eq!(&text_frame(b"hi")[..], b"\x81\x02hi");
        let f = text_frame(&[b'x'; 200]);
        assert_eq!((&f[..4], f.len()), (&[0x81, 126, 0, 200][..], 204));
        let f = text_frame(&vec![b'x'; 70_000]);
        assert_eq!(
            (&f[..10], f.len()),
            (&[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70][..], 70_010)
        );
    }

    #[test]
    fn close_frame_carries_code_and_reason() {
        assert_eq!(&close_frame(1009, "big")[..], b"\x88\x05\x03\xf1big");
        assert!(close_frame(1000, &"é".repeat(100)).len() <= 127);
    }
}
