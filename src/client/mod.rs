//! An async gochat client: registers or logs in over REST, connects over WebSocket or raw
//! TCP, yields typed events, sends room and private messages, and reports closes with
//! their reason. Works against gochat (Go) servers too — it speaks only PROTOCOL.md.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gochat::client::ClientError> {
//! use gochat::client::{Client, Event};
//! let mut client = Client::new("127.0.0.1:7070".parse().unwrap());
//! client.login("demo", "111111").await?;
//! let mut conn = client.connect_ws("127.0.0.1:7000".parse().unwrap(), 1).await?;
//! client.send_room(1, "hello").await?;
//! while let Event::Room(m) | Event::Private(m) = conn.next_event().await? {
//!     println!("{}: {}", m.from_user_name, m.msg);
//! }
//! # Ok(()) }
//! ```

mod conn;
mod dial;
mod http;
pub mod live;
mod tls;

pub use conn::{Connection, Event};
pub use gochat_core::protocol::push::{ChatMessage, Roster};
pub use tls::Tls;

use gochat_core::model::{RoomId, User, UserId};
use serde_json::json;
use std::net::SocketAddr;

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket failed.
    #[error("i/o")]
    Io(#[from] std::io::Error),
    /// The HTTP exchange failed.
    #[error("http: {0}")]
    Http(String),
    /// The server answered with a non-zero code.
    #[error("refused ({code}): {message}")]
    Refused {
        /// gochat's code (1 failure, 40000 session error).
        code: i64,
        /// The server's message.
        message: String,
    },
    /// The server sent something this client does not understand.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The call needs a logged-in client.
    #[error("not logged in")]
    NotLoggedIn,
    /// The operation is not available on this transport.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// A user's session against one server: the REST address (one kept-alive connection, shared
/// by clones) and, once logged in, the token.
#[derive(Debug, Clone)]
pub struct Client {
    rest: http::Rest,
    token: Option<String>,
    user: Option<User>,
    tls: Option<Tls>,
}

impl Client {
    /// A client for the REST API at `api` (not logged in).
    pub fn new(api: SocketAddr) -> Self {
        Self {
            rest: http::Rest::new(api, None),
            token: None,
            user: None,
            tls: None,
        }
    }

    /// A client for a server with `[tls]` on: REST over HTTPS, WebSockets over WSS, with
    /// the certificates `tls` trusts.
    pub fn new_tls(api: SocketAddr, tls: Tls) -> Self {
        Self {
            rest: http::Rest::new(api, Some(tls.clone())),
            token: None,
            user: None,
            tls: Some(tls),
        }
    }

    /// A client for another user that shares this one's REST connection (calls take turns
    /// on it): many users, few sockets — a load generator's thousands of users.
    pub fn sharing_connection(&self) -> Self {
        Self {
            rest: self.rest.clone(),
            token: None,
            user: None,
            tls: self.tls.clone(),
        }
    }

    /// The same session (user and token) on a REST connection of its own, opened at its
    /// first call, by the task and runtime that makes it: calls no longer take turns with
    /// this client's.
    pub fn on_own_connection(&self) -> Self {
        Self {
            rest: self.rest.reopened(),
            ..self.clone()
        }
    }

    /// The session token, once logged in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Who is logged in.
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    fn session(&self) -> Result<&str, ClientError> {
        self.token.as_deref().ok_or(ClientError::NotLoggedIn)
    }

    /// Create an account and log in as it.
    pub async fn register(&mut self, name: &str, password: &str) -> Result<User, ClientError> {
        self.start("/user/register", name, password).await
    }

    /// Log in.
    pub async fn login(&mut self, name: &str, password: &str) -> Result<User, ClientError> {
        self.start("/user/login", name, password).await
    }

    async fn start(&mut self, path: &str, name: &str, password: &str) -> Result<User, ClientError> {
        let data = self
            .rest
            .call(path, &json!({"userName": name, "passWord": password}))
            .await?;
        let token = data
            .as_str()
            .ok_or_else(|| ClientError::Protocol(format!("token is not a string: {data}")))?
            .to_owned();
        self.token = Some(token);
        let user = self.check_auth().await?;
        self.user = Some(user.clone());
        Ok(user)
    }

    /// Who the token belongs to (fails with code 40000 once it is no longer valid).
    pub async fn check_auth(&self) -> Result<User, ClientError> {
        let data = self
            .rest
            .call("/user/checkAuth", &json!({"authToken": self.session()?}))
            .await?;
        match (data["userId"].as_i64(), data["userName"].as_str()) {
            (Some(id), Some(name)) => Ok(User {
                id,
                name: name.to_owned(),
            }),
            _ => Err(ClientError::Protocol(format!("checkAuth data {data}"))),
        }
    }

    /// End the session (the server closes connections that used it).
    pub async fn logout(&mut self) -> Result<(), ClientError> {
        self.rest
            .call("/user/logout", &json!({"authToken": self.session()?}))
            .await?;
        self.token = None;
        self.user = None;
        Ok(())
    }

    /// Post to a room.
    pub async fn send_room(&self, room: RoomId, msg: &str) -> Result<(), ClientError> {
        let body = json!({"msg": msg, "roomId": room, "authToken": self.session()?, "op": 3});
        self.rest.call("/push/pushRoom", &body).await.map(drop)
    }

    /// Send a private message.
    pub async fn send_private(
        &self,
        to: UserId,
        room: RoomId,
        msg: &str,
    ) -> Result<(), ClientError> {
        let body = json!({"msg": msg, "toUserId": to.to_string(), "roomId": room, "authToken": self.session()?});
        self.rest.call("/push/push", &body).await.map(drop)
    }

    /// Ask the server to push the room's online count (op 4) to the room.
    pub async fn request_count(&self, room: RoomId) -> Result<(), ClientError> {
        let body = json!({"roomId": room, "authToken": self.session()?});
        self.rest.call("/push/count", &body).await.map(drop)
    }

    /// Ask the server to push the room's roster (op 5) to the room.
    pub async fn request_roster(&self, room: RoomId) -> Result<(), ClientError> {
        let body = json!({"roomId": room, "authToken": self.session()?});
        self.rest.call("/push/getRoomInfo", &body).await.map(drop)
    }

    /// Open a WebSocket to `ws` (path `/ws`) and join `room` (`-1`: private messages only).
    pub async fn connect_ws(
        &self,
        ws: SocketAddr,
        room: RoomId,
    ) -> Result<Connection, ClientError> {
        Connection::websocket(ws, self.session()?, room, None, self.tls.as_ref()).await
    }

    /// [`connect_ws`](Self::connect_ws) from a chosen local address (to have more than one
    /// address's ports for many connections). The local port is picked by the client, in
    /// turn from 10 000 up, skipping ports in use: the kernel's own pick for a bound address
    /// searches its whole range on every connection.
    pub async fn connect_ws_from(
        &self,
        ws: SocketAddr,
        room: RoomId,
        source: std::net::IpAddr,
    ) -> Result<Connection, ClientError> {
        Connection::websocket(ws, self.session()?, room, Some(source), self.tls.as_ref()).await
    }

    /// Open a self-healing protocol-v2 connection (see [`live`]): reconnects, recovers
    /// what it missed, hands over every message once, in order.
    pub async fn live(&self, config: live::LiveConfig) -> Result<live::Live, ClientError> {
        live::Live::start(self.session()?.to_owned(), config).await
    }

    /// Open a raw TCP connection to `tcp` and join `room`.
    pub async fn connect_tcp(
        &self,
        tcp: SocketAddr,
        room: RoomId,
    ) -> Result<Connection, ClientError> {
        Connection::tcp(tcp, self.session()?, room, None).await
    }
}
