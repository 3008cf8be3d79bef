//! [`Codec`]: what a transport (WebSocket, raw TCP) tells the session driver — whole
//! inbound messages, what they mean before and after authentication, and its wire layout.

use crate::channel::Framing;
use crate::close::CloseReason;
use crate::writer::Wire;
use bytes::Bytes;
use gochat_core::model::RoomId;
use gochat_core::protocol::auth::AuthFrame;
use std::future::Future;

/// One whole inbound message.
pub(crate) enum Inbound {
    /// A text message (WebSocket text frame, TCP payload).
    Text(Bytes),
    /// A WebSocket Ping, to answer with [`Codec::pong`].
    Ping(Bytes),
    /// The peer's close frame.
    Close,
    /// Anything else (a Pong, a binary frame): a sign of life, nothing to do.
    Other,
}

/// What a text message means before the connection has authenticated.
pub(crate) enum PreAuth {
    /// The auth frame.
    Auth(AuthFrame),
    /// Nothing before authentication (TCP: an op that needs none).
    Skip,
    /// Close the connection.
    Refuse(CloseReason),
}

/// What a text message means on an authenticated connection.
pub(crate) enum AfterAuth {
    /// Nothing to do (a second auth frame, a keep-alive, an op with no meaning here).
    Ignore,
    /// Post `msg` to a room (the connection's own when `None`) as the session's user.
    Post {
        /// The room named in the frame, if any.
        room: Option<RoomId>,
        /// The text.
        msg: String,
    },
    /// Close the connection.
    Refuse(CloseReason),
}

/// A transport's framing, as the session driver needs it.
pub(crate) trait Codec: Send + 'static {
    /// How the hub frames pushes for this transport.
    const FRAMING: Framing;

    /// The next whole inbound message; `Err` with why the connection must end
    /// ([`crate::close::PEER_CLOSED`] when the peer went away).
    fn next(&mut self) -> impl Future<Output = Result<Inbound, CloseReason>> + Send;

    /// The meaning of a text message before authentication.
    fn pre_auth(payload: &[u8]) -> PreAuth;

    /// The meaning of a text message after authentication.
    fn after_auth(payload: &[u8]) -> AfterAuth;

    /// The answer to a Ping, if the transport has Pings.
    fn pong(payload: &[u8]) -> Option<Bytes>;

    /// Keep-alive and close frames.
    fn wire() -> Wire;

    /// Accept inbound messages up to `max` bytes from now on (a v2 connection posts).
    fn set_max_payload(&mut self, max: usize);
}
