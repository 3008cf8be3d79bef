//! [`Link`]: one connection (WebSocket or raw TCP) as a stream of inbound text messages and
//! a writer of outbound ones. A reader task owns the read half, so receiving is an mpsc
//! `recv` — cancel-safe, fit for `select!` beside the writer.

use crate::client::ClientError;
use bytes::{Bytes, BytesMut};
use gochat_core::protocol::tcp::{self, MAX_PAYLOAD, PING_PAYLOAD};
use gochat_core::protocol::ws::{decode_server_frame, encode_client_frame, opcode};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Largest frame the client accepts from a server (a history page of 200 messages fits).
const MAX_INBOUND: usize = 4 << 20;

/// How a client reaches a connect server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket, path `/ws`.
    WebSocket,
    /// gochat's raw TCP (`v1` frames).
    Tcp,
}

/// A connect server to dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Its address.
    pub addr: SocketAddr,
    /// WebSocket or TCP.
    pub transport: Transport,
}

/// What the reader saw.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A text message.
    Text(Bytes),
    /// A keep-alive to answer (WebSocket Ping payload, or TCP's `ping msg`).
    Ping(Bytes),
    /// The server closed (with its code and reason, on a WebSocket) or the socket broke.
    Closed(Option<u16>, String),
}

/// One live connection.
pub(crate) struct Link {
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    transport: Transport,
    /// Stops the reader when the link is dropped.
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
    }
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

impl Link {
    /// Dial `to` (WebSocket: with the upgrade handshake).
    pub(crate) async fn open(to: Endpoint) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(to.addr).await?;
        let _ = stream.set_nodelay(true);
        match to.transport {
            Transport::Tcp => {
                let (r, w) = stream.into_split();
                Ok(Self::start(r, Box::new(w), Transport::Tcp))
            }
            Transport::WebSocket => {
                let req = hyper::Request::get("/ws")
                    .header(hyper::header::HOST, to.addr.to_string())
                    .header(hyper::header::UPGRADE, "websocket")
                    .header(hyper::header::CONNECTION, "upgrade")
                    .header(
                        "Sec-WebSocket-Key",
                        fastwebsockets::handshake::generate_key(),
                    )
                    .header("Sec-WebSocket-Version", "13")
                    .body(Empty::<Bytes>::new())
                    .map_err(|e| ClientError::Http(e.to_string()))?;
                let (ws, _) = fastwebsockets::handshake::client(&Spawner, req, stream)
                    .await
                    .map_err(|e| ClientError::Http(format!("WebSocket handshake: {e}")))?;
                let io: TokioIo<hyper::upgrade::Upgraded> = ws.into_inner();
                let (r, w) = tokio::io::split(io);
                Ok(Self::start(r, Box::new(w), Transport::WebSocket))
            }
        }
    }

    fn start<R>(r: R, writer: Box<dyn AsyncWrite + Send + Unpin>, transport: Transport) -> Self
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let (tx, inbound) = mpsc::channel(1024);
        let reader = tokio::spawn(read(r, transport, tx));
        Self {
            inbound,
            writer,
            transport,
            reader,
        }
    }

    /// Send one text message.
    pub(crate) async fn send(&mut self, text: &[u8]) -> Result<(), ClientError> {
        let frame = match self.transport {
            Transport::WebSocket => encode_client_frame(opcode::TEXT, text, rand::random()),
            Transport::Tcp => tcp::encode_frame(text)
                .map_err(|e| ClientError::Protocol(e.to_string()))?
                .to_vec(),
        };
        self.writer.write_all(&frame).await?;
        Ok(())
    }

    /// Answer a keep-alive: a WebSocket Pong, or (TCP) a frame of our own.
    pub(crate) async fn pong(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        match self.transport {
            Transport::WebSocket => {
                let frame = encode_client_frame(opcode::PONG, payload, rand::random());
                self.writer.write_all(&frame).await?;
                Ok(())
            }
            Transport::Tcp => self.send(br#"{"op":1,"id":"keepalive"}"#).await,
        }
    }

    /// Close politely (a WebSocket close frame), ignoring a socket already gone.
    pub(crate) async fn close(mut self) {
        if self.transport == Transport::WebSocket {
            let frame = encode_client_frame(opcode::CLOSE, &1000u16.to_be_bytes(), rand::random());
            let _ = self.writer.write_all(&frame).await;
        }
        let _ = self.writer.shutdown().await;
    }
}

/// One step of decoding what the reader has buffered.
enum Step {
    /// A message to hand over.
    Item(Inbound),
    /// A frame consumed with nothing to report (a Pong): decode on.
    Skip,
    /// More bytes are needed.
    More,
    /// The connection is over.
    End(Inbound),
}

fn step(buf: &mut BytesMut, transport: Transport) -> Step {
    match transport {
        Transport::WebSocket => match decode_server_frame(buf, MAX_INBOUND) {
            Ok(Some(f)) => match f.opcode {
                opcode::TEXT => Step::Item(Inbound::Text(f.payload)),
                opcode::PING => Step::Item(Inbound::Ping(f.payload)),
                opcode::CLOSE => {
                    let p = &f.payload;
                    let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                    let reason = String::from_utf8_lossy(p.get(2..).unwrap_or_default());
                    Step::End(Inbound::Closed(code, reason.into_owned()))
                }
                _ => Step::Skip,
            },
            Ok(None) => Step::More,
            Err(e) => Step::End(Inbound::Closed(
                None,
                format!("bad frame from the server: {e}"),
            )),
        },
        Transport::Tcp => match tcp::decode_frame(buf, MAX_PAYLOAD) {
            Ok(Some(p)) if &p[..] == PING_PAYLOAD => Step::Item(Inbound::Ping(p)),
            Ok(Some(p)) => Step::Item(Inbound::Text(p)),
            Ok(None) => Step::More,
            Err(e) => Step::End(Inbound::Closed(
                None,
                format!("bad frame from the server: {e}"),
            )),
        },
    }
}

async fn read<R: AsyncRead + Unpin>(mut r: R, transport: Transport, tx: mpsc::Sender<Inbound>) {
    let mut buf = BytesMut::with_capacity(4096);
    let ended = loop {
        match step(&mut buf, transport) {
            Step::Item(item) => {
                if tx.send(item).await.is_err() {
                    return; // the link was dropped
                }
                continue;
            }
            Step::Skip => continue,
            Step::End(why) => break why,
            Step::More => {}
        }
        match r.read_buf(&mut buf).await {
            Ok(0) => break Inbound::Closed(None, "connection closed by the server".into()),
            Ok(_) => {}
            Err(e) => break Inbound::Closed(None, e.to_string()),
        }
    };
    let _ = tx.send(ended).await;
}
