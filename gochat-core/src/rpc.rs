//! What the layers ask of each other, twice over: as object-safe traits
//! ([`LogicService`], [`ConnectService`]) that the layer crates implement and call, and as
//! the tarpc services ([`LogicRpc`], [`ConnectRpc`]) that carry those calls between
//! processes. The adapters between the two live here, so no service crate depends on
//! another and none of them touches tarpc.

use crate::model::{Delivery, Presence, RoomId, User, UserId};
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    /// Token from the auth frame.
    pub token: String,
    /// Room from the auth frame.
    pub room_id: RoomId,
    /// The connect server holding the connection.
    pub server_id: String,
}

/// A private message (REST `/push/push`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    /// Sender's token.
    pub token: String,
    /// Recipient.
    pub to_user_id: UserId,
    /// Room the conversation belongs to (echoed in the push).
    pub room_id: RoomId,
    /// The text.
    pub msg: String,
}

/// A room message (REST `/push/pushRoom`, TCP op 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPushRequest {
    /// Sender's token.
    pub token: String,
    /// The room.
    pub room_id: RoomId,
    /// The text.
    pub msg: String,
}

/// The logic layer, as api and connect see it.
#[async_trait]
pub trait LogicService: Send + Sync + 'static {
    /// Create a user and log it in; returns its token.
    async fn register(&self, name: String, password: String) -> Result<String, Fault>;
    /// Log a user in (revoking its previous login); returns the token.
    async fn login(&self, name: String, password: String) -> Result<String, Fault>;
    /// Who a token belongs to.
    async fn check_auth(&self, token: String) -> Result<User, Fault>;
    /// End a session and close the connections that used it.
    async fn logout(&self, token: String) -> Result<(), Fault>;
    /// Admit a connection: resolve its token, record its presence.
    async fn connect(&self, req: ConnectRequest) -> Result<User, Fault>;
    /// A connection closed: forget its presence and tell its room.
    async fn disconnect(&self, presence: Presence) -> Result<(), Fault>;
    /// Send a private message.
    async fn push(&self, req: PushRequest) -> Result<(), Fault>;
    /// Send a room message.
    async fn push_room(&self, req: RoomPushRequest) -> Result<(), Fault>;
    /// Push a room's online count to the room.
    async fn count(&self, token: String, room_id: RoomId) -> Result<(), Fault>;
    /// Push a room's roster to the room.
    async fn room_info(&self, token: String, room_id: RoomId) -> Result<(), Fault>;
    /// A connect server (re)starts: forget any presence a previous run of it left behind.
    async fn reset_server(&self, server_id: String) -> Result<(), Fault>;
}

/// A connect server, as task sees it.
#[async_trait]
pub trait ConnectService: Send + Sync + 'static {
    /// Hand deliveries to the connections they target, in order. Returns once every
    /// delivery is queued on its connections (or found to have none here).
    async fn deliver(&self, deliveries: Vec<Delivery>) -> Result<(), Fault>;
}

/// The logic layer's tarpc service.
#[tarpc::service]
pub trait LogicRpc {
    /// See [`LogicService::register`].
    async fn register(name: String, password: String) -> Result<String, Fault>;
    /// See [`LogicService::login`].
    async fn login(name: String, password: String) -> Result<String, Fault>;
    /// See [`LogicService::check_auth`].
    async fn check_auth(token: String) -> Result<User, Fault>;
    /// See [`LogicService::logout`].
    async fn logout(token: String) -> Result<(), Fault>;
    /// See [`LogicService::connect`].
    async fn connect(req: ConnectRequest) -> Result<User, Fault>;
    /// See [`LogicService::disconnect`].
    async fn disconnect(presence: Presence) -> Result<(), Fault>;
    /// See [`LogicService::push`].
    async fn push(req: PushRequest) -> Result<(), Fault>;
    /// See [`LogicService::push_room`].
    async fn push_room(req: RoomPushRequest) -> Result<(), Fault>;
    /// See [`LogicService::count`].
    async fn count(token: String, room_id: RoomId) -> Result<(), Fault>;
    /// See [`LogicService::room_info`].
    async fn room_info(token: String, room_id: RoomId) -> Result<(), Fault>;
    /// See [`LogicService::reset_server`].
    async fn reset_server(server_id: String) -> Result<(), Fault>;
}

/// The connect layer's tarpc service.
#[tarpc::service]
pub trait ConnectRpc {
    /// See [`ConnectService::deliver`].
    async fn deliver(deliveries: Vec<Delivery>) -> Result<(), Fault>;
}

/// Serves a [`LogicService`] as [`LogicRpc`].
#[derive(Clone)]
pub struct LogicRpcServer(pub Arc<dyn LogicService>);

impl LogicRpc for LogicRpcServer {
    async fn register(
        self,
        _: tarpc::context::Context,
        name: String,
        password: String,
    ) -> Result<String, Fault> {
        self.0.register(name, password).await
    }
    async fn login(
        self,
        _: tarpc::context::Context,
        name: String,
        password: String,
    ) -> Result<String, Fault> {
        self.0.login(name, password).await
    }
    async fn check_auth(self, _: tarpc::context::Context, token: String) -> Result<User, Fault> {
        self.0.check_auth(token).await
    }
    async fn logout(self, _: tarpc::context::Context, token: String) -> Result<(), Fault> {
        self.0.logout(token).await
    }
    async fn connect(self, _: tarpc::context::Context, req: ConnectRequest) -> Result<User, Fault> {
        self.0.connect(req).await
    }
    async fn disconnect(self, _: tarpc::context::Context, presence: Presence) -> Result<(), Fault> {
        self.0.disconnect(presence).await
    }
    async fn push(self, _: tarpc::context::Context, req: PushRequest) -> Result<(), Fault> {
        self.0.push(req).await
    }
    async fn push_room(
        self,
        _: tarpc::context::Context,
        req: RoomPushRequest,
    ) -> Result<(), Fault> {
        self.0.push_room(req).await
    }
    async fn count(
        self,
        _: tarpc::context::Context,
        token: String,
        room_id: RoomId,
    ) -> Result<(), Fault> {
        self.0.count(token, room_id).await
    }
    async fn room_info(
        self,
        _: tarpc::context::Context,
        token: String,
        room_id: RoomId,
    ) -> Result<(), Fault> {
        self.0.room_info(token, room_id).await
    }
    async fn reset_server(
        self,
        _: tarpc::context::Context,
        server_id: String,
    ) -> Result<(), Fault> {
        self.0.reset_server(server_id).await
    }
}

/// Serves a [`ConnectService`] as [`ConnectRpc`].
#[derive(Clone)]
pub struct ConnectRpcServer(pub Arc<dyn ConnectService>);

impl ConnectRpc for ConnectRpcServer {
    async fn deliver(
        self,
        _: tarpc::context::Context,
        deliveries: Vec<Delivery>,
    ) -> Result<(), Fault> {
        self.0.deliver(deliveries).await
    }
}

/// Dials a fresh client (a new connection or in-process channel).
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

/// A [`LogicService`] reached over tarpc (in-process or TCP).
pub type RemoteLogic = Redial<LogicRpcClient>;

/// A [`ConnectService`] reached over tarpc (in-process or TCP).
pub type RemoteConnect = Redial<ConnectRpcClient>;

fn ctx() -> tarpc::context::Context {
    tarpc::context::current()
}

#[async_trait]
impl LogicService for RemoteLogic {
    async fn register(&self, name: String, password: String) -> Result<String, Fault> {
        self.settle(self.get().await?.register(ctx(), name, password).await)
    }
    async fn login(&self, name: String, password: String) -> Result<String, Fault> {
        self.settle(self.get().await?.login(ctx(), name, password).await)
    }
    async fn check_auth(&self, token: String) -> Result<User, Fault> {
        self.settle(self.get().await?.check_auth(ctx(), token).await)
    }
    async fn logout(&self, token: String) -> Result<(), Fault> {
        self.settle(self.get().await?.logout(ctx(), token).await)
    }
    async fn connect(&self, req: ConnectRequest) -> Result<User, Fault> {
        self.settle(self.get().await?.connect(ctx(), req).await)
    }
    async fn disconnect(&self, presence: Presence) -> Result<(), Fault> {
        self.settle(self.get().await?.disconnect(ctx(), presence).await)
    }
    async fn push(&self, req: PushRequest) -> Result<(), Fault> {
        self.settle(self.get().await?.push(ctx(), req).await)
    }
    async fn push_room(&self, req: RoomPushRequest) -> Result<(), Fault> {
        self.settle(self.get().await?.push_room(ctx(), req).await)
    }
    async fn count(&self, token: String, room_id: RoomId) -> Result<(), Fault> {
        self.settle(self.get().await?.count(ctx(), token, room_id).await)
    }
    async fn room_info(&self, token: String, room_id: RoomId) -> Result<(), Fault> {
        self.settle(self.get().await?.room_info(ctx(), token, room_id).await)
    }
    async fn reset_server(&self, server_id: String) -> Result<(), Fault> {
        self.settle(self.get().await?.reset_server(ctx(), server_id).await)
    }
}

#[async_trait]
impl ConnectService for RemoteConnect {
    async fn deliver(&self, deliveries: Vec<Delivery>) -> Result<(), Fault> {
        self.settle(self.get().await?.deliver(ctx(), deliveries).await)
    }
}
