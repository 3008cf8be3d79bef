//! What the layers ask of each other: object-safe traits ([`LogicService`],
//! [`ConnectService`]) that the layer crates implement and call. In one process a caller
//! holds the service itself; between processes the tarpc services ([`LogicRpc`],
//! [`ConnectRpc`]) carry the same calls. One macro writes all of it from one list of
//! methods per layer, so no service crate depends on another and none of them touches tarpc.

use crate::model::{Delivery, Origin, Page, Presence, Range, RoomId, User, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Why a request was refused. Crosses the wire, so it carries messages, not sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// No live session for the token (REST code 40000).
    #[error("Session error")]
    Session,
    /// The request was understood and refused; the message says why (REST code 1).
    #[error("{0}")]
    Rejected(String),
    /// The layer that should answer could not be reached (REST code 1).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Something failed inside the layer; details are in its log (REST code 1).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Fault {
    /// The REST envelope code for this fault (PROTOCOL.md §1).
    pub fn code(&self) -> i32 {
        match self {
            Fault::Session => 40_000,
            _ => 1,
        }
    }
}

/// A connect server asking logic to admit a new connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    /// Token from the auth frame.
    pub token: String,
    /// Room from the auth frame.
    pub room_id: RoomId,
    /// The connect server holding the connection.
    pub server_id: String,
    /// The connection's id on that server (the origin of its join event).
    pub channel_id: u64,
    /// The protocol version the connection speaks (1 or 2).
    pub version: u8,
}

/// What an admitted connection learns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Whose connection it is.
    pub user: User,
    /// The joined room's latest seq (0 without history, or for no room).
    pub room_seq: u64,
    /// The user's inbox's latest seq.
    pub inbox_seq: u64,
}

/// A v2 connection joining one more room (op 7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The connection's token.
    pub token: String,
    /// The room.
    pub room_id: RoomId,
    /// The connect server holding the connection.
    pub server_id: String,
    /// The connection's id there.
    pub channel_id: u64,
}

/// A private message (REST `/push/push`, v2 op 2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    /// Sender's token.
    pub token: String,
    /// Recipient.
    pub to_user_id: UserId,
    /// Room the conversation belongs to (echoed in the push).
    pub room_id: RoomId,
    /// The text.
    pub msg: String,
    /// The sender's idempotency key (v2), if any.
    pub client_id: Option<String>,
    /// The connection it was posted on (v2), if any.
    pub origin: Option<Origin>,
}

/// A room message (REST `/push/pushRoom`, TCP op 3, v2 op 3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPushRequest {
    /// Sender's token.
    pub token: String,
    /// The room.
    pub room_id: RoomId,
    /// The text.
    pub msg: String,
    /// The sender's idempotency key (v2), if any.
    pub client_id: Option<String>,
    /// The connection it was posted on (v2), if any.
    pub origin: Option<Origin>,
}

/// A posted message's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// Its id.
    pub msg_id: i64,
    /// Its seq in the room, or (private) in the sender's inbox; `None` without history.
    pub seq: Option<u64>,
}

/// A page of history (v2 op 9, REST `/push/history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRequest {
    /// The reader's token.
    pub token: String,
    /// The room; 0 reads the reader's own inbox.
    pub room_id: RoomId,
    /// Which part.
    pub range: Range,
    /// At most this many (the server's default when `None`, its page limit at most).
    pub limit: Option<usize>,
}

/// Writes, from one list of methods, the four faces of a layer's service: the object-safe
/// trait the layer implements and its callers use (`$service`), the tarpc service that
/// carries it between processes (`$rpc`, whose client tarpc names `$client`), the adapter
/// serving a `$service` as `$rpc` (`$server`), and the `$service` a remote `$client`
/// provides (`$remote`, a [`Redial`]). In-process callers hold the `$service` itself.
macro_rules! layer_service {
    (
        $(#[$doc:meta])*
        service $service:ident, rpc $rpc:ident, client $client:ident,
        server $server:ident, remote $remote:ident {
            $(
                $(#[$mdoc:meta])*
                fn $method:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;
            )*
        }
    ) => {
        $(#[$doc])*
        #[async_trait]
        pub trait $service: Send + Sync + 'static {
            $(
                $(#[$mdoc])*
                async fn $method(&self, $($arg: $ty),*) -> Result<$ret, Fault>;
            )*

            /// Whether a call could reach the service now. A remote one dials if it has no
            /// connection; one in this process always can.
            async fn reachable(&self) -> bool {
                true
            }
        }

        #[doc = concat!("[`", stringify!($service), "`] as a tarpc service, between processes.")]
        #[tarpc::service]
        pub trait $rpc {
            $(
                #[doc = concat!("See [`", stringify!($service), "::", stringify!($method), "`].")]
                async fn $method($($arg: $ty),*) -> Result<$ret, Fault>;
            )*
        }

        #[doc = concat!("Serves a [`", stringify!($service), "`] as [`", stringify!($rpc), "`].")]
        #[derive(Clone)]
        pub struct $server(pub Arc<dyn $service>);

        impl $rpc for $server {
            $(
                async fn $method(
                    self,
                    _: tarpc::context::Context,
                    $($arg: $ty),*
                ) -> Result<$ret, Fault> {
                    let r = self.0.$method($($arg),*).await;
                    crate::metrics::metrics().rpc(stringify!($method), r.is_err());
                    r
                }
            )*
        }

        #[doc = concat!("A [`", stringify!($service), "`] in another process, over tarpc.")]
        pub type $remote = Redial<$client>;

        #[async_trait]
        impl $service for $remote {
            $(
                async fn $method(&self, $($arg: $ty),*) -> Result<$ret, Fault> {
                    self.settle(self.get().await?.$method(ctx(), $($arg),*).await)
                }
            )*

            async fn reachable(&self) -> bool {
                self.get().await.is_ok()
            }
        }
    };
}

layer_service! {
    /// The logic layer, as api and connect see it.
    service LogicService, rpc LogicRpc, client LogicRpcClient,
    server LogicRpcServer, remote RemoteLogic {
        /// Create a user and log it in; returns its token.
        fn register(name: String, password: String) -> String;
        /// Log a user in (revoking its previous login and closing that login's connections);
        /// returns the token.
        fn login(name: String, password: String) -> String;
        /// Who a token belongs to.
        fn check_auth(token: String) -> User;
        /// End a session and close the connections that used it.
        fn logout(token: String) -> ();
        /// Admit a connection: resolve its token, record its presence (announcing a user's
        /// first connection to the room's v2 members).
        fn connect(req: ConnectRequest) -> Welcome;
        /// A v2 connection joins one more room; returns the room's latest seq.
        fn join(req: JoinRequest) -> u64;
        /// A connection closed or left a room: forget that presence and tell the room.
        fn disconnect(presence: Presence) -> ();
        /// Send a private message (stored first, when history is on).
        fn push(req: PushRequest) -> Posted;
        /// Send a room message (stored first, when history is on).
        fn push_room(req: RoomPushRequest) -> Posted;
        /// Read stored messages of a room, or of the reader's inbox.
        fn history(req: HistoryRequest) -> Page;
        /// Push a room's online count to the room.
        fn count(token: String, room_id: RoomId) -> ();
        /// Push a room's roster to the room.
        fn room_info(token: String, room_id: RoomId) -> ();
        /// A connect server asserts the complete list of its live connections, replacing
        /// whatever presence was recorded for it, and takes its presence lease for `ttl_ms`.
        fn sync_presence(server_id: String, presences: Vec<Presence>, ttl_ms: u64) -> ();
        /// A connect server renews its presence lease; `false` means it lapsed (or the
        /// backend lost it) and the server must `sync_presence`.
        fn renew_presence(server_id: String, ttl_ms: u64) -> bool;
    }
}

layer_service! {
    /// A connect server, as task sees it.
    service ConnectService, rpc ConnectRpc, client ConnectRpcClient,
    server ConnectRpcServer, remote RemoteConnect {
        /// Hand deliveries to the connections they target, in order. Returns once every
        /// delivery is queued on its connections (or found to have none here); a delivery
        /// this server handled recently (same id) is dropped.
        fn deliver(deliveries: Vec<Delivery>) -> ();
    }
}

/// Dials a fresh client (a new connection to the peer).
pub type Dial<C> =
    Box<dyn Fn() -> futures::future::BoxFuture<'static, crate::Result<C>> + Send + Sync>;

/// A client that is dialed on first use and again after its connection broke, so a peer
/// that restarts is reached again without anyone rebuilding the caller.
pub struct Redial<C> {
    current: std::sync::Mutex<Option<C>>,
    dial: Dial<C>,
    peer: String,
}

impl<C: Clone> Redial<C> {
    /// A client for `peer`, made by `dial` when needed.
    pub fn new(peer: impl Into<String>, dial: Dial<C>) -> Self {
        Self {
            current: std::sync::Mutex::new(None),
            dial,
            peer: peer.into(),
        }
    }

    /// Where the client points.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    async fn get(&self) -> Result<C, Fault> {
        if let Some(c) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(c);
        }
        let c = (self.dial)()
            .await
            .map_err(|e| Fault::Unavailable(format!("{}: {e}", self.peer)))?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Turn a call's outcome into the service's: a broken connection is forgotten (the next
    /// call dials again) and reported as unavailable.
    fn settle<T>(&self, r: Result<Result<T, Fault>, tarpc::client::RpcError>) -> Result<T, Fault> {
        use tarpc::client::RpcError;
        match r {
            Ok(inner) => inner,
            Err(e) => {
                if matches!(
                    e,
                    RpcError::Shutdown | RpcError::Send(_) | RpcError::Channel(_)
                ) {
                    *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Err(Fault::Unavailable(format!("{}: {e}", self.peer)))
            }
        }
    }
}

fn ctx() -> tarpc::context::Context {
    tarpc::context::current()
}
