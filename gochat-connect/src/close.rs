//! Every reason this server closes a connection for, with its code and text (docs/protocol.md
//! lists them). WebSocket clients receive both in the close frame; TCP has no close frame,
//! so a TCP client just sees the connection end (the reason is logged).

use gochat_core::protocol::ws::close;

/// Why the server closes a connection: a close code and a reason (PROTOCOL.md, **ext**).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    /// WebSocket close code (see `gochat_core::protocol::ws::close`).
    pub code: u16,
    /// Short human-readable reason.
    pub reason: &'static str,
}

impl CloseReason {
    /// The reason as a metrics label: one of this file's fixed texts.
    pub fn reason_label(&self) -> &'static str {
        if self.reason.is_empty() {
            "peer closed"
        } else {
            self.reason
        }
    }
}

const fn reason(code: u16, reason: &'static str) -> CloseReason {
    CloseReason { code, reason }
}

/// The peer closed (or its socket broke); nothing is sent back but the echo of a close.
pub const PEER_CLOSED: CloseReason = reason(close::NORMAL, "");
/// The server is shutting down.
pub const SHUTTING_DOWN: CloseReason = reason(close::GOING_AWAY, "server shutting down");
/// Bytes that are not a valid WebSocket client frame.
pub const MALFORMED_FRAME: CloseReason = reason(close::PROTOCOL_ERROR, "malformed frame");
/// A first frame that is not an auth frame.
pub const BAD_AUTH: CloseReason = reason(
    close::POLICY,
    "first frame must be {\"authToken\":…,\"roomId\":…}",
);
/// A token logic does not know (or that expired).
pub const UNKNOWN_TOKEN: CloseReason = reason(close::POLICY, "unknown or expired authToken");
/// No auth frame within `connect.auth_timeout_secs`.
pub const AUTH_TIMEOUT: CloseReason = reason(close::POLICY, "no auth frame in time");
/// The session was logged out.
pub const LOGGED_OUT: CloseReason = reason(close::POLICY, "logged out");
/// A later login of the same user revoked this session's token.
pub const REVOKED: CloseReason = reason(close::POLICY, "session revoked by a later login");
/// An inbound frame over the size limit.
pub const TOO_BIG: CloseReason = reason(close::TOO_BIG, "frame over the size limit");
/// Logic could not be reached to admit the connection.
pub const UNAVAILABLE: CloseReason = reason(close::UNAVAILABLE, "service unavailable");
/// The client did not read and its outbound queue filled.
pub const SLOW_CONSUMER: CloseReason =
    reason(close::TRY_AGAIN_LATER, "slow consumer: outbound queue full");
/// The server holds `connect.max_connections` and none of them could make room.
pub const SERVER_FULL: CloseReason = reason(close::TRY_AGAIN_LATER, "connection limit reached");
/// Authenticated, but no turn to be admitted came within `connect.admission_wait_secs`.
pub const BUSY: CloseReason = reason(close::TRY_AGAIN_LATER, "server busy");
/// Over a per-address limit (`[limits]`: new connections per second, or open at once).
pub const ADDRESS_LIMIT: CloseReason = reason(
    close::TRY_AGAIN_LATER,
    "too many connections from this address",
);
/// The user has `open_connections_per_user` connections open on this server already.
pub const USER_LIMIT: CloseReason =
    reason(close::TRY_AGAIN_LATER, "too many connections for this user");
/// The server was full and this connection, not yet authenticated, made room for another.
pub const EVICTED: CloseReason = reason(
    close::TRY_AGAIN_LATER,
    "server full: closed before authenticating",
);
/// Nothing heard from the peer (no frame, no Pong) for the idle timeout.
pub const IDLE: CloseReason = reason(close::IDLE_TIMEOUT, "idle timeout");
/// TCP: a header that is not `v1`, a bad length, or a payload over the limit.
pub const BAD_TCP_FRAME: CloseReason = reason(close::POLICY, "malformed v1 frame");
/// TCP: an op 3 before op 6.
pub const NOT_AUTHENTICATED: CloseReason = reason(close::POLICY, "op 3 before op 6");
/// TCP: a payload that is not a JSON object with an integer `op`.
pub const BAD_JSON: CloseReason = reason(
    close::POLICY,
    "payload is not a JSON object with an integer op",
);
