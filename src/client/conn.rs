//! [`Connection`]: one long connection (WebSocket or raw TCP) and the events it yields.

use super::ClientError;
use super::dial::dial;
use bytes::{Bytes, BytesMut};
use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload, WebSocketError};
use gochat_core::model::RoomId;
use gochat_core::protocol::push::{ChatMessage, Push, Roster, decode_push};
use gochat_core::protocol::tcp::{MAX_PAYLOAD, PING_PAYLOAD, decode_frame, encode_frame};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a connection yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A private message (op 2).
    Private(ChatMessage),
    /// A room message (op 3), the user's own included.
    Room(ChatMessage),
    /// The room's online count (op 4).
    Count(usize),
    /// The room's roster (op 5).
    Roster {
        /// The room.
        room_id: RoomId,
        /// Decimal user id → name.
        users: Roster,
    },
    /// The connection ended. WebSocket closes carry the server's code and reason (see
    /// docs/protocol.md); TCP has neither.
    Closed {
        /// The close code, if the server sent one.
        code: Option<u16>,
        /// Why.
        reason: String,
    },
}

impl From<Push> for Event {
    fn from(p: Push) -> Self {
        match p {
            Push::Private(m) => Event::Private(m),
            Push::Room(m) => Event::Room(m),
            Push::Count(n) => Event::Count(n),
            Push::Roster { room_id, users } => Event::Roster { room_id, users },
        }
    }
}

type Ws = FragmentCollector<TokioIo<hyper::upgrade::Upgraded>>;

enum Inner {
    Ws(Box<Ws>),
    Tcp { stream: TcpStream, buf: BytesMut },
    Done,
}

/// One authenticated long connection. `next_event` is not cancel-safe (a WebSocket frame
/// may be half read): give the connection a task of its own rather than racing it in a
/// `select!`.
pub struct Connection {
    inner: Inner,
    room: RoomId,
}

struct Spawner;

impl<F> hyper::rt::Executor<F> for Spawner
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut);
    }
}

/// A v1 auth frame.
fn auth_json(token: &str, room: RoomId) -> String {
    serde_json::json!({"authToken": token, "roomId": room}).to_string()
}

impl Connection {
    pub(super) async fn websocket(
        addr: SocketAddr,
        token: &str,
        room: RoomId,
        source: Option<IpAddr>,
        tls: Option<&super::Tls>,
    ) -> Result<Self, ClientError> {
        let stream = dial(addr, source).await?;
        let stream = super::tls::wrap(stream, addr, tls).await?;
        let req = hyper::Request::get("/ws")
            .header(hyper::header::HOST, addr.to_string())
            .header(hyper::header::UPGRADE, "websocket")
            .header(hyper::header::CONNECTION, "upgrade")
            .header(
                "Sec-WebSocket-Key",
                fastwebsockets::handshake::generate_key(),
            )
            .header("Sec-WebSocket-Version", "13")
            .body(Empty::<Bytes>::new())
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let (mut ws, _) = fastwebsockets::handshake::client(&Spawner, req, stream)
            .await
            .map_err(|e| ClientError::Http(format!("WebSocket handshake: {e}")))?;
        let auth = auth_json(token, room);
        ws.write_frame(Frame::text(Payload::Borrowed(auth.as_bytes())))
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Self {
            inner: Inner::Ws(Box::new(FragmentCollector::new(ws))),
            room,
        })
    }

    pub(super) async fn tcp(
        addr: SocketAddr,
        token: &str,
        room: RoomId,
        source: Option<IpAddr>,
    ) -> Result<Self, ClientError> {
        let mut stream = dial(addr, source).await?;
        let _ = stream.set_nodelay(true);
        let auth = serde_json::json!({"op": 6, "authToken": token, "roomId": room}).to_string();
        let frame =
            encode_frame(auth.as_bytes()).map_err(|e| ClientError::Protocol(e.to_string()))?;
        stream.write_all(&frame).await?;
        Ok(Self {
            inner: Inner::Tcp {
                stream,
                buf: BytesMut::new(),
            },
            room,
        })
    }

    /// The next event. After [`Event::Closed`] every call returns `Closed` again.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        match &mut self.inner {
            Inner::Ws(ws) => loop {
                match ws.read_frame().await {
                    Ok(frame) => match frame.opcode {
                        OpCode::Text => return decode(&frame.payload),
                        OpCode::Close => {
                            let p = &frame.payload;
                            let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                            let reason = String::from_utf8_lossy(p.get(2..).unwrap_or_default())
                                .into_owned();
                            self.inner = Inner::Done;
                            return Ok(Event::Closed { code, reason });
                        }
                        _ => {} // pings are answered by fastwebsockets itself
                    },
                    Err(e) => return Ok(self.ended(e.to_string())),
                }
            },
            Inner::Tcp { stream, buf } => loop {
                match decode_frame(buf, MAX_PAYLOAD) {
                    Ok(Some(p)) if &p[..] == PING_PAYLOAD => continue,
                    Ok(Some(p)) => return decode(&p),
                    Ok(None) => {}
                    Err(e) => return Ok(self.ended(e.to_string())),
                }
                match stream.read_buf(buf).await {
                    Ok(0) => return Ok(self.ended("connection closed by the server".into())),
                    Ok(_) => {}
                    Err(e) => return Ok(self.ended(e.to_string())),
                }
            },
            Inner::Done => Ok(Event::Closed {
                code: None,
                reason: "already closed".into(),
            }),
        }
    }

    fn ended(&mut self, reason: String) -> Event {
        self.inner = Inner::Done;
        Event::Closed { code: None, reason }
    }

    /// Post to the room this connection joined, over the connection itself (TCP op 3). Over
    /// a WebSocket, gochat's clients post through REST: use [`super::Client::send_room`].
    pub async fn post(&mut self, msg: &str) -> Result<(), ClientError> {
        match &mut self.inner {
            Inner::Tcp { stream, .. } => {
                let body =
                    serde_json::json!({"op": 3, "roomId": self.room, "msg": msg}).to_string();
                let frame = encode_frame(body.as_bytes())
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                Ok(stream.write_all(&frame).await?)
            }
            Inner::Ws(_) => Err(ClientError::Unsupported(
                "WebSocket clients post through REST (Client::send_room)",
            )),
            Inner::Done => Err(ClientError::Unsupported("the connection is closed")),
        }
    }

    /// Close politely (WebSocket close frame; TCP shutdown).
    pub async fn close(mut self) -> Result<(), ClientError> {
        match &mut self.inner {
            Inner::Ws(ws) => ws
                .write_frame(Frame::close(1000, b""))
                .await
                .map_err(|e: WebSocketError| ClientError::Protocol(e.to_string())),
            Inner::Tcp { stream, .. } => Ok(stream.shutdown().await?),
            Inner::Done => Ok(()),
        }
    }
}

fn decode(payload: &[u8]) -> Result<Event, ClientError> {
    decode_push(payload)
        .map(Event::from)
        .map_err(|e| ClientError::Protocol(e.to_string()))
}
