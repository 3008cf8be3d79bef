//! The task behind a [`Live`](super::Live) connection: connect, authenticate with the
//! replay points of every log, rejoin the rooms, send what is pending again, then route
//! every frame — until the link is lost (reconnect, with backoff) or the session ends.

use super::link::{Endpoint, Inbound, Link};
use super::order::Order;
use super::{Command, HistoryPage, LiveConfig, LiveEvent, Message, Posted};
use crate::client::ClientError;
use gochat_core::model::{NO_ROOM, Range, RoomId, User, UserId};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

mod frames;
mod logs;
use frames::{num, refused};

/// How long the server has to answer the auth frame.
const AUTH_WAIT: Duration = Duration::from_secs(10);
/// Messages asked for per page while filling a gap.
const PAGE: usize = 200;
/// How long a history read, join or leave waits for its reply (across reconnects) before it
/// fails. Posts wait for ever: they are sent again until answered.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A log on the client: a room's messages, or the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Log {
    Room(RoomId),
    Inbox,
}

impl Log {
    fn room_id(self) -> RoomId {
        match self {
            Log::Room(r) => r,
            Log::Inbox => 0,
        }
    }
}

/// A command sent (or to send) and waiting for its op-10 reply.
enum Pending {
    Post {
        frame: Value,
        /// The log it goes into (the room's, or the inbox), and what to deliver once stored.
        log: Log,
        to: Option<UserId>,
        text: String,
        room_id: RoomId,
        reply: oneshot::Sender<Result<Posted, ClientError>>,
    },
    History {
        frame: Value,
        reply: oneshot::Sender<Result<HistoryPage, ClientError>>,
    },
    Join(RoomId, oneshot::Sender<Result<(), ClientError>>),
    Leave(oneshot::Sender<Result<(), ClientError>>),
}

/// Replies the driver asked for itself.
enum Internal {
    /// A rejoin of a room after a reconnect.
    Join(RoomId),
    /// A page filling a gap in a log.
    Page(Log),
}

/// How a session ended.
enum End {
    /// The link was lost: connect again.
    Reconnect(String),
    /// For good: the session ended, or the program closed.
    Stop(Option<u16>, String),
}

pub(super) struct Driver {
    config: LiveConfig,
    token: String,
    /// Rooms to be in.
    rooms: BTreeSet<RoomId>,
    /// What has been delivered of each log; known once the server told its seq.
    logs: HashMap<Log, Order<Message>>,
    /// The program's commands waiting for their replies, by id.
    pending: BTreeMap<String, Pending>,
    /// When the commands that may time out (all but posts) give up, by id.
    deadlines: HashMap<String, Instant>,
    /// The driver's own requests waiting for their replies, by id.
    internal: HashMap<String, Internal>,
    next_id: u64,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<LiveEvent>,
    /// The endpoint tried next.
    endpoint: usize,
    /// The link the driver starts with (made by `new`, which surfaces a bad token at once).
    first: Option<(Link, Value)>,
    /// Messages delivered since the last (re)connect, until the replay is over.
    recovering: Option<usize>,
    /// This connection's user (from the auth reply): the sender of its own posts.
    me: User,
    /// Names of the users seen, to name the recipient of an own private message.
    names: HashMap<UserId, String>,
}

/// Whether a close means the session is over (reconnecting would be refused again).
fn session_over(code: Option<u16>, reason: &str) -> bool {
    code == Some(1008)
        && (reason.contains("logged out")
            || reason.contains("revoked")
            || reason.contains("unknown or expired authToken"))
}

impl Driver {
    /// Connect once (so that a refused token fails the caller at once).
    pub(super) async fn new(
        token: String,
        config: LiveConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<LiveEvent>,
    ) -> Result<Self, ClientError> {
        let mut d = Self {
            rooms: config
                .rooms
                .iter()
                .copied()
                .filter(|r| *r != NO_ROOM)
                .collect(),
            config,
            token,
            logs: HashMap::new(),
            pending: BTreeMap::new(),
            deadlines: HashMap::new(),
            internal: HashMap::new(),
            next_id: 0,
            commands,
            events,
            endpoint: 0,
            first: None,
            recovering: None,
            me: User {
                id: 0,
                name: String::new(),
            },
            names: HashMap::new(),
        };
        let ep = d.config.endpoints[0];
        d.first = Some(d.connect(ep).await?);
        Ok(d)
    }

    fn emit(&self, e: LiveEvent) {
        let _ = self.events.send(e);
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}-{}", self.next_id, rand::random::<u32>())
    }

    /// Dial, authenticate with the replay points, and return the link and the auth reply.
    async fn connect(&mut self, ep: Endpoint) -> Result<(Link, Value), ClientError> {
        let mut link = Link::open(ep).await?;
        let first_room = self.rooms.first().copied().unwrap_or(NO_ROOM);
        let mut auth = json!({"authToken": self.token, "roomId": first_room, "v": 2, "op": 6});
        if let Some(o) = self.logs.get(&Log::Room(first_room)) {
            auth["since"] = o.last().into();
        }
        if let Some(o) = self.logs.get(&Log::Inbox) {
            auth["inboxSince"] = o.last().into();
        }
        link.send(auth.to_string().as_bytes()).await?;
        let deadline = Instant::now() + AUTH_WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, link.inbound.recv()).await;
            match next {
                Err(_) => return Err(ClientError::Protocol("no answer to the auth frame".into())),
                Ok(None) => return Err(ClientError::Protocol("connection lost".into())),
                Ok(Some(Inbound::Ping(p))) => link.pong(&p).await?,
                Ok(Some(Inbound::Closed(code, reason))) => {
                    return Err(ClientError::Refused {
                        code: i64::from(code.unwrap_or(0)),
                        message: reason,
                    });
                }
                Ok(Some(Inbound::Text(t))) => {
                    let v: Value = serde_json::from_slice(&t)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    if v["op"] == 10 && v["id"] == "auth" {
                        if v["code"] != 0 {
                            return Err(refused(&v));
                        }
                        return Ok((link, v));
                    }
                }
            }
        }
    }

    /// Learn the logs' seqs from the auth reply; a seq below what was delivered means the
    /// server's history was reset.
    fn welcome(&mut self, reply: &Value) {
        self.me = User {
            id: num(reply, "userId"),
            name: reply["userName"].as_str().unwrap_or_default().to_owned(),
        };
        if let Some(r) = self.rooms.first().copied() {
            self.baseline(Log::Room(r), reply["seq"].as_u64().unwrap_or(0));
        }
        self.baseline(Log::Inbox, reply["inboxSeq"].as_u64().unwrap_or(0));
    }

    pub(super) async fn run(mut self) {
        let mut reconnected = false;
        let mut attempt = 0u32;
        loop {
            let connected = match self.first.take() {
                Some(first) => Ok(first),
                None => {
                    let ep = self.config.endpoints[self.endpoint % self.config.endpoints.len()];
                    self.connect(ep).await
                }
            };
            let why = match connected {
                Ok((link, reply)) => {
                    attempt = 0;
                    let ep = self.config.endpoints[self.endpoint % self.config.endpoints.len()];
                    self.emit(LiveEvent::Connected {
                        endpoint: ep,
                        reconnected,
                    });
                    self.welcome(&reply);
                    match self.session(link).await {
                        End::Reconnect(why) => why,
                        End::Stop(code, reason) => return self.stop(code, reason),
                    }
                }
                Err(ClientError::Refused {
                    code: 40_000,
                    message,
                }) => {
                    return self.stop(None, format!("session ended: {message}"));
                }
                Err(ClientError::Refused { code, message })
                    if session_over(u16::try_from(code).ok(), &message) =>
                {
                    return self.stop(u16::try_from(code).ok(), message);
                }
                Err(e) => e.to_string(),
            };
            reconnected = true;
            attempt += 1;
            self.endpoint += 1;
            let after = self.backoff(attempt);
            self.emit(LiveEvent::Reconnecting {
                attempt,
                after,
                reason: why,
            });
            if !self.wait_offline(after).await {
                return self.stop(Some(1000), "closed by the program".into());
            }
        }
    }

    /// Exponential backoff with jitter: half to the whole of `min × 2^(attempt-1)`, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .config
            .backoff_min
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.config.backoff_max);
        base.mul_f64(0.5 + rand::random::<f64>() / 2.0)
    }

    /// Sleep `pause`, taking the program's commands meanwhile (they wait for the next link);
    /// `false` if the program closed.
    async fn wait_offline(&mut self, pause: Duration) -> bool {
        let until = Instant::now() + pause;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return true,
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Close) => return false,
                    Some(cmd) => self.submit(cmd, None).await,
                },
            }
        }
    }

    fn stop(&mut self, code: Option<u16>, reason: String) {
        for (_, p) in std::mem::take(&mut self.pending) {
            let e = || ClientError::Refused {
                code: 40_000,
                message: reason.clone(),
            };
            match p {
                Pending::Post { reply, .. } => drop(reply.send(Err(e()))),
                Pending::History { reply, .. } => drop(reply.send(Err(e()))),
                Pending::Join(_, r) | Pending::Leave(r) => drop(r.send(Err(e()))),
            }
        }
        self.emit(LiveEvent::Closed { code, reason });
    }

    /// Record a command and send it if there is a link.
    async fn submit(&mut self, cmd: Command, link: Option<&mut Link>) {
        let (id, frame) = match cmd {
            Command::Close => return,
            Command::Post {
                room_id,
                to,
                text,
                reply,
            } => {
                // The id is the idempotency key: the same frame is sent again after a drop.
                let id = self.id("post-");
                let (frame, log) = match to {
                    None => (
                        json!({"op": 3, "id": &id, "roomId": room_id, "msg": text}),
                        Log::Room(room_id),
                    ),
                    Some(to) => (
                        json!({"op": 2, "id": &id, "toUserId": to, "roomId": room_id, "msg": text}),
                        Log::Inbox,
                    ),
                };
                self.pending.insert(
                    id.clone(),
                    Pending::Post {
                        frame: frame.clone(),
                        log,
                        to,
                        text,
                        room_id,
                        reply,
                    },
                );
                (id, frame)
            }
            Command::History {
                room_id,
                range,
                limit,
                reply,
            } => {
                let id = self.id("history-");
                let mut frame = json!({"op": 9, "id": &id, "roomId": room_id});
                match range {
                    Range::Since(s) => frame["since"] = s.into(),
                    Range::Before(b) => frame["before"] = b.into(),
                    Range::Latest => {}
                }
                if let Some(l) = limit {
                    frame["limit"] = l.into();
                }
                self.pending.insert(
                    id.clone(),
                    Pending::History {
                        frame: frame.clone(),
                        reply,
                    },
                );
                (id, frame)
            }
            Command::Join { room_id, reply } => {
                self.rooms.insert(room_id);
                let id = self.id("join-");
                self.pending
                    .insert(id.clone(), Pending::Join(room_id, reply));
                let mut frame = json!({"op": 7, "id": &id, "roomId": room_id});
                if let Some(o) = self.logs.get(&Log::Room(room_id)) {
                    frame["since"] = o.last().into();
                }
                (id, frame)
            }
            Command::Leave { room_id, reply } => {
                self.rooms.remove(&room_id);
                let id = self.id("leave-");
                self.pending.insert(id.clone(), Pending::Leave(reply));
                let frame = json!({"op": 8, "id": &id, "roomId": room_id});
                (id, frame)
            }
        };
        if !matches!(self.pending.get(&id), Some(Pending::Post { .. })) {
            self.deadlines
                .insert(id.clone(), Instant::now() + REQUEST_TIMEOUT);
        }
        if let Some(link) = link
            && link.send(frame.to_string().as_bytes()).await.is_err()
        {
            // The link is failing: the reader will report it; the command is resent then.
            tracing::debug!("live: sending {id} failed; it goes again after the reconnect");
        }
    }

    /// After (re)connecting: rejoin the other rooms, send again what was not answered, and
    /// mark the end of the replay with a ping whose reply follows it.
    async fn resume(&mut self, link: &mut Link) -> Result<(), ClientError> {
        self.internal.clear();
        for o in self.logs.values_mut() {
            o.forget_page();
        }
        let rooms: Vec<RoomId> = self.rooms.iter().skip(1).copied().collect();
        for room in rooms {
            let id = self.id("rejoin-");
            self.internal.insert(id.clone(), Internal::Join(room));
            let mut frame = json!({"op": 7, "id": &id, "roomId": room});
            if let Some(o) = self.logs.get(&Log::Room(room)) {
                frame["since"] = o.last().into();
            }
            link.send(frame.to_string().as_bytes()).await?;
        }
        let ids: Vec<String> = self.pending.keys().cloned().collect();
        for id in ids {
            let frame = match self.pending.get(&id) {
                Some(Pending::Post { frame, .. } | Pending::History { frame, .. }) => frame.clone(),
                // A join or leave is done by the reconnect itself (the rooms set).
                Some(Pending::Join(..) | Pending::Leave(_)) => {
                    if let Some(Pending::Join(_, r) | Pending::Leave(r)) = self.pending.remove(&id)
                    {
                        let _ = r.send(Ok(()));
                    }
                    continue;
                }
                None => continue,
            };
            link.send(frame.to_string().as_bytes()).await?;
        }
        self.recovering = Some(0);
        link.send(br#"{"op":1,"id":"sync"}"#).await
    }

    async fn session(&mut self, mut link: Link) -> End {
        if let Err(e) = self.resume(&mut link).await {
            return End::Reconnect(e.to_string());
        }
        let keepalive = self.config.keepalive;
        let mut heard = Instant::now();
        let mut tick = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
        let mut expiry = tokio::time::interval(Duration::from_secs(1));
        loop {
            let due = self.next_gap_due();
            tokio::select! {
                inbound = link.inbound.recv() => {
                    heard = Instant::now();
                    match inbound {
                        None => return End::Reconnect("connection lost".into()),
                        Some(Inbound::Closed(code, reason)) => {
                            if session_over(code, &reason) {
                                return End::Stop(code, reason);
                            }
                            return End::Reconnect(format!("closed ({code:?}) {reason}"));
                        }
                        Some(Inbound::Ping(p)) => {
                            if link.pong(&p).await.is_err() {
                                return End::Reconnect("connection lost".into());
                            }
                        }
                        Some(Inbound::Text(t)) => {
                            if let Err(e) = self.on_text(&t, &mut link).await {
                                return End::Reconnect(e.to_string());
                            }
                        }
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Close) => {
                        link.close().await;
                        return End::Stop(Some(1000), "closed by the program".into());
                    }
                    Some(cmd) => self.submit(cmd, Some(&mut link)).await,
                },
                _ = expiry.tick() => self.expire(),
                _ = logs::gap_due(due) => {
                    if let Err(e) = self.page_due_gaps(&mut link).await {
                        return End::Reconnect(e.to_string());
                    }
                }
                _ = tick.tick() => {
                    if heard.elapsed() > keepalive * 2 + Duration::from_secs(5) {
                        return End::Reconnect("the server went silent".into());
                    }
                    if link.send(br#"{"op":1,"id":"keepalive"}"#).await.is_err() {
                        return End::Reconnect("connection lost".into());
                    }
                }
            }
        }
    }

    /// Fail the commands whose reply did not come in time.
    fn expire(&mut self) {
        let now = Instant::now();
        let late: Vec<String> = self
            .deadlines
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            self.deadlines.remove(&id);
            let e = || ClientError::Protocol(format!("no reply within {REQUEST_TIMEOUT:?}"));
            match self.pending.remove(&id) {
                Some(Pending::History { reply, .. }) => drop(reply.send(Err(e()))),
                Some(Pending::Join(_, r) | Pending::Leave(r)) => drop(r.send(Err(e()))),
                Some(post @ Pending::Post { .. }) => drop(self.pending.insert(id, post)),
                None => {}
            }
        }
    }
}
