//! [`Live`]: a protocol-v2 connection that never loses a message. It reconnects by itself —
//! exponential backoff with jitter, over the connect servers it was given in turn — asks for
//! what it missed in every room it is in and in the inbox (`since` per log), fills any gap by
//! paging, drops copies, and hands the program every message once, in seq order per room and
//! for the inbox. Posts carry a client id and are sent again after a drop until the server
//! answers, so each is stored once. Events say what happened (reconnecting, recovered N,
//! history reset).
//!
//! ```no_run
//! # async fn demo() -> Result<(), gochat::client::ClientError> {
//! use gochat::client::{Client, live::{Endpoint, LiveConfig, LiveEvent, Transport}};
//! let mut client = Client::new("127.0.0.1:7070".parse().unwrap());
//! client.login("demo", "111111").await?;
//! let mut live = client
//!     .live(LiveConfig::new(Endpoint { addr: "127.0.0.1:7000".parse().unwrap(), transport: Transport::WebSocket }, 1))
//!     .await?;
//! live.post(1, "hello").await?;
//! while let Some(event) = live.next_event().await {
//!     if let LiveEvent::Message(m) = event {
//!         println!("#{:?} {}: {}", m.seq, m.from.name, m.text);
//!     }
//! }
//! # Ok(()) }
//! ```

mod driver;
mod link;
mod order;

pub use gochat_core::model::Range;
pub use link::{Endpoint, Transport};

use crate::client::ClientError;
use gochat_core::model::{RoomId, User, UserId};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How a [`Live`] connection behaves.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Connect servers, tried in turn (the next one after each failure).
    pub endpoints: Vec<Endpoint>,
    /// Rooms to be in from the start (the first is joined by the auth frame).
    pub rooms: Vec<RoomId>,
    /// First pause before reconnecting; doubles (with jitter) up to `backoff_max`.
    /// Default 100 ms.
    pub backoff_min: Duration,
    /// Longest pause before reconnecting. Default 5 s.
    pub backoff_max: Duration,
    /// How often the client pings; a connection silent for two of these (and a little) is
    /// taken for dead and replaced. Default 20 s.
    pub keepalive: Duration,
    /// How long a gap that opens while connected waits for the live stream to fill it
    /// before it is paged (`op 9`). Such a gap is nearly always in flight — a post's reply
    /// overtakes the fan-out of the messages stored before it — and paging each at once
    /// cost a history read for about every second post in a busy room. Default 1 s; at
    /// least 100 ms.
    pub gap_patience: Duration,
}

impl LiveConfig {
    /// One server, one room, the defaults otherwise.
    pub fn new(endpoint: Endpoint, room: RoomId) -> Self {
        Self {
            endpoints: vec![endpoint],
            rooms: vec![room],
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            keepalive: Duration::from_secs(20),
            gap_patience: Duration::from_secs(1),
        }
    }
}

/// A stored (or, with history off, just posted) chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub msg_id: i64,
    /// Its seq in its log (the room's, or this user's inbox); `None` with history off.
    pub seq: Option<u64>,
    /// The room it was posted to (a private message echoes one).
    pub room_id: RoomId,
    /// The sender.
    pub from: User,
    /// The recipient of a private message.
    pub to: Option<User>,
    /// The text, as sent (show it with care: it is anyone's).
    pub text: String,
    /// `YYYY-MM-DD HH:MM:SS` (room messages; empty for private ones, as gochat).
    pub create_time: String,
}

impl Message {
    /// Whether it is a private message.
    pub fn is_private(&self) -> bool {
        self.to.is_some()
    }
}

/// What a [`Live`] connection tells the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// Connected (again) to `endpoint`.
    Connected {
        /// The server.
        endpoint: Endpoint,
        /// Whether this replaced a connection that was lost.
        reconnected: bool,
    },
    /// A message, once, in seq order for its room or the inbox.
    Message(Message),
    /// After a (re)connect: this many missed messages were recovered (replayed or paged).
    Recovered {
        /// How many.
        messages: usize,
    },
    /// A room's online count (op 4).
    Count(usize),
    /// A room's roster (op 5): decimal user id → name.
    Roster {
        /// The room.
        room_id: RoomId,
        /// Its members.
        users: gochat_core::protocol::push::Roster,
    },
    /// A user's first connection joined a room (op 11).
    Joined {
        /// The room.
        room_id: RoomId,
        /// Who.
        user: User,
    },
    /// A user's last connection left a room (op 12).
    Left {
        /// The room.
        room_id: RoomId,
        /// Who.
        user: User,
    },
    /// The server's history of a room (0: the inbox) is behind what this client saw — it
    /// was reset; the client starts that log again from the server's.
    HistoryReset {
        /// The room, 0 for the inbox.
        room_id: RoomId,
    },
    /// The connection was lost; the next attempt comes after `after`.
    Reconnecting {
        /// Attempts so far since the last good connection.
        attempt: u32,
        /// The pause before the next.
        after: Duration,
        /// Why the last connection ended or the last attempt failed.
        reason: String,
    },
    /// The connection ended for good (the session ended, or the program closed it).
    Closed {
        /// The server's close code, if any.
        code: Option<u16>,
        /// Why.
        reason: String,
    },
}

/// A posted message's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posted {
    /// Its id.
    pub msg_id: i64,
    /// Its seq (in the room, or the sender's inbox); `None` with history off.
    pub seq: Option<u64>,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The messages, ascending seq.
    pub messages: Vec<Message>,
    /// Whether more remain in the direction asked.
    pub more: bool,
}

/// What the program asks of the driver.
pub(crate) enum Command {
    Post {
        room_id: RoomId,
        to: Option<UserId>,
        text: String,
        reply: oneshot::Sender<Result<Posted, ClientError>>,
    },
    Join {
        room_id: RoomId,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Leave {
        room_id: RoomId,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    History {
        room_id: RoomId,
        range: Range,
        limit: Option<usize>,
        reply: oneshot::Sender<Result<HistoryPage, ClientError>>,
    },
    Close,
}

/// A self-healing v2 connection (see the module docs). Drop it or [`close`](Self::close) it
/// to end it.
pub struct Live {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<LiveEvent>,
    driver: tokio::task::JoinHandle<()>,
}

fn gone() -> ClientError {
    ClientError::Unsupported("the live connection is closed")
}

impl Live {
    pub(crate) async fn start(token: String, config: LiveConfig) -> Result<Self, ClientError> {
        if config.endpoints.is_empty() {
            return Err(ClientError::Unsupported(
                "a live connection needs an endpoint",
            ));
        }
        let (commands, rx) = mpsc::unbounded_channel();
        let (tx, events) = mpsc::unbounded_channel();
        let first = driver::Driver::new(token, config, rx, tx).await?;
        Ok(Self {
            commands,
            events,
            driver: tokio::spawn(first.run()),
        })
    }

    /// The next event; `None` once the connection ended for good and every event was read.
    pub async fn next_event(&mut self) -> Option<LiveEvent> {
        self.events.recv().await
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Command,
    ) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Post to a room; answered once it is stored (sent again after a drop, stored once).
    pub async fn post(&self, room_id: RoomId, text: &str) -> Result<Posted, ClientError> {
        let text = text.to_owned();
        self.ask(|reply| Command::Post {
            room_id,
            to: None,
            text,
            reply,
        })
        .await
    }

    /// Send a private message (`room_id` is echoed in the push).
    pub async fn send_private(
        &self,
        to: UserId,
        room_id: RoomId,
        text: &str,
    ) -> Result<Posted, ClientError> {
        let text = text.to_owned();
        self.ask(|reply| Command::Post {
            room_id,
            to: Some(to),
            text,
            reply,
        })
        .await
    }

    /// Join one more room (kept across reconnects).
    pub async fn join(&self, room_id: RoomId) -> Result<(), ClientError> {
        self.ask(|reply| Command::Join { room_id, reply }).await
    }

    /// Leave a room.
    pub async fn leave(&self, room_id: RoomId) -> Result<(), ClientError> {
        self.ask(|reply| Command::Leave { room_id, reply }).await
    }

    /// A page of a room's history (0: the inbox).
    pub async fn history(
        &self,
        room_id: RoomId,
        range: Range,
        limit: Option<usize>,
    ) -> Result<HistoryPage, ClientError> {
        self.ask(|reply| Command::History {
            room_id,
            range,
            limit,
            reply,
        })
        .await
    }

    /// Close the connection and wait for the driver to end.
    pub async fn close(mut self) {
        let _ = self.commands.send(Command::Close);
        let _ = (&mut self.driver).await;
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close);
    }
}
