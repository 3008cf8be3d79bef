//! WebSocket frames (RFC 6455), sans-IO. Server-to-client frames are pre-encoded: a push is
//! framed once and the same bytes are written to every connection (server frames are never
//! masked). Client-to-server frames are decoded by [`decode_client_frame`] from a buffer the
//! caller fills, so an idle connection needs no more than a few hundred bytes of it.

use bytes::{Buf, Bytes, BytesMut};

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

/// Opcodes.
pub mod opcode {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// Text.
    pub const TEXT: u8 = 0x1;
    /// Binary.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// One decoded client frame, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// Last frame of its message.
    pub fin: bool,
    /// See [`opcode`].
    pub opcode: u8,
    /// The unmasked payload.
    pub payload: Bytes,
}

/// Why bytes from a client are not a valid frame; the connection is then closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsFrameError {
    /// A reserved bit is set (no extension was negotiated).
    #[error("reserved bits set")]
    Reserved,
    /// An opcode RFC 6455 does not define.
    #[error("unknown opcode {0:#x}")]
    Opcode(u8),
    /// Client frames must be masked, server frames must not be.
    #[error("wrong masking: client frames are masked, server frames are not")]
    Unmasked,
    /// A control frame that is fragmented or longer than 125 bytes.
    #[error("malformed control frame")]
    Control,
    /// A payload over the limit (its declared length).
    #[error("frame of {0} bytes is over the limit")]
    TooBig(u64),
}

/// Take one whole client frame off the front of `buf`: `Ok(None)` when more bytes are
/// needed; an error as soon as the header shows the frame is invalid or over `max_payload`
/// (before its payload is read). Client frames must be masked.
pub fn decode_client_frame(
    buf: &mut BytesMut,
    max_payload: usize,
) -> Result<Option<ClientFrame>, WsFrameError> {
    decode_frame(buf, max_payload, true)
}

/// Take one whole server frame (unmasked) off the front of `buf`, for clients; like
/// [`decode_client_frame`] otherwise.
pub fn decode_server_frame(
    buf: &mut BytesMut,
    max_payload: usize,
) -> Result<Option<ClientFrame>, WsFrameError> {
    decode_frame(buf, max_payload, false)
}

fn decode_frame(
    buf: &mut BytesMut,
    max_payload: usize,
    masked: bool,
) -> Result<Option<ClientFrame>, WsFrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(WsFrameError::Reserved);
    }
    let (fin, op) = (b0 & 0x80 != 0, b0 & 0x0F);
    if !matches!(op, 0x0..=0x2 | 0x8..=0xA) {
        return Err(WsFrameError::Opcode(op));
    }
    if (b1 & 0x80 != 0) != masked {
        return Err(WsFrameError::Unmasked);
    }
    let (len, header) = match b1 & 0x7F {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(n), 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if op >= 0x8 && (!fin || len > 125) {
        return Err(WsFrameError::Control);
    }
    if len > max_payload as u64 {
        return Err(WsFrameError::TooBig(len));
    }
    let mask_len = if masked { 4 } else { 0 };
    let total = header + mask_len + len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    mask[..mask_len].copy_from_slice(&buf[header..header + mask_len]);
    buf.advance(header + mask_len);
    let mut payload = buf.split_to(len as usize);
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(Some(ClientFrame {
        fin,
        opcode: op,
        payload: payload.freeze(),
    }))
}

/// A masked client frame (what a client sends), for clients and tests.
pub fn encode_client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let n = payload.len();
    let mut f = Vec::with_capacity(n + 14);
    f.push(0x80 | (opcode & 0x0F));
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n <= usize::from(u16::MAX) {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Close codes this server sends (each reason, with its text, is in gochat-connect's
/// `close` module).
pub mod close {
    /// Normal closure: the client closed.
    pub const NORMAL: u16 = 1000;
    /// Going away: the server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error: bytes that are not a valid client frame.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Policy violation: bad or unknown auth frame, no auth in time, logged out, revoked.
    pub const POLICY: u16 = 1008;
    /// Message too big: an inbound frame over the configured limit.
    pub const TOO_BIG: u16 = 1009;
    /// Internal error: logic could not be reached to admit the connection.
    pub const UNAVAILABLE: u16 = 1011;
    /// Try again later: the client's queue filled (it did not read), or the server is full.
    pub const TRY_AGAIN_LATER: u16 = 1013;
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
    fn client_frames_decode_in_pieces_and_unmask() {
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let wire = encode_client_frame(opcode::TEXT, &payload, [9, 8, 7, 6]);
            let mut buf = BytesMut::new();
            let mut got = None;
            for chunk in wire.chunks(7) {
                buf.extend_from_slice(chunk);
                if let Some(f) = decode_client_frame(&mut buf, 100_000).unwrap() {
                    got = Some(f);
                }
            }
            let f = got.expect("frame decoded");
            assert!(f.fin && f.opcode == opcode::TEXT);
            assert_eq!(&f.payload[..], &payload[..]);
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn server_frames_decode_unmasked() {
        let mut b = BytesMut::from(&text_frame(&[7u8; 300])[..]);
        b.extend_from_slice(&ping_frame());
        let f = decode_server_frame(&mut b, 1 << 20).unwrap().unwrap();
        assert_eq!((f.opcode, f.payload.len()), (opcode::TEXT, 300));
        let p = decode_server_frame(&mut b, 1 << 20).unwrap().unwrap();
        assert_eq!(p.opcode, opcode::PING);
        assert!(b.is_empty());
        let mut masked = BytesMut::from(&encode_client_frame(opcode::TEXT, b"x", [1; 4])[..]);
        assert_eq!(
            decode_server_frame(&mut masked, 512),
            Err(WsFrameError::Unmasked)
        );
    }

    #[test]
    fn bad_client_frames_are_errors() {
        let mut b = BytesMut::from(&text_frame(b"hi")[..]);
        assert_eq!(
            decode_client_frame(&mut b, 512),
            Err(WsFrameError::Unmasked)
        );
        let mut b = BytesMut::from(&encode_client_frame(opcode::TEXT, &[0; 513], [1; 4])[..]);
        assert_eq!(
            decode_client_frame(&mut b, 512),
            Err(WsFrameError::TooBig(513))
        );
        // The size is refused from the header alone, before the payload arrives.
        let mut b = BytesMut::from(&encode_client_frame(opcode::TEXT, &[0; 70_000], [1; 4])[..10]);
        assert_eq!(
            decode_client_frame(&mut b, 512),
            Err(WsFrameError::TooBig(70_000))
        );
        let mut b = BytesMut::from(&encode_client_frame(opcode::PING, &[0; 126], [1; 4])[..]);
        assert_eq!(decode_client_frame(&mut b, 512), Err(WsFrameError::Control));
        let mut b = BytesMut::from(&[0xC1u8, 0x80, 0, 0, 0, 0][..]);
        assert_eq!(
            decode_client_frame(&mut b, 512),
            Err(WsFrameError::Reserved)
        );
        let mut b = BytesMut::from(&[0x83u8, 0x80, 0, 0, 0, 0][..]);
        assert_eq!(
            decode_client_frame(&mut b, 512),
            Err(WsFrameError::Opcode(3))
        );
        let mut b = BytesMut::from(&[0x81u8][..]);
        assert_eq!(decode_client_frame(&mut b, 512), Ok(None));
    }

    #[test]
    fn close_frame_carries_code_and_reason() {
        assert_eq!(&close_frame(1009, "big")[..], b"\x88\x05\x03\xf1big");
        assert!(close_frame(1000, &"é".repeat(100)).len() <= 127);
    }
}
