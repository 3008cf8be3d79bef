//! [`Hub`]: every connection of this server, sharded into buckets; fans deliveries out,
//! framing each payload once per wire layout and protocol version.

use crate::bucket::Bucket;
use crate::channel::{Channel, Framing, HoldKey};
use crate::close::{self, CloseReason};
use crate::coalesce::{Coalescer, Offer};
use crate::dedup::RecentIds;
use async_trait::async_trait;
use bytes::Bytes;
use gochat_core::config::ConnectConfig;
use gochat_core::model::{Delivery, Presence, PushKind, RoomId, SessionEnd, Stamp, Target, UserId};
use gochat_core::protocol::v2;
use gochat_core::rpc::{ConnectService, Fault};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// All channels, in a fixed number of buckets chosen at start, and what fan-out needs
/// besides: the window of recent delivery ids and the roster/count coalescer.
pub struct Hub {
    buckets: Vec<Bucket>,
    /// This server's id: a delivery's origin names a channel here only if it names this.
    server_id: String,
    /// Drops deliveries handled lately (a redelivered queue entry).
    recent: RecentIds,
    /// Spaces out rosters and counts per room.
    coalescer: Coalescer,
}

/// Which payload a channel gets: the v1 object, or the v2 one stamped with the message's
/// seq in the room / sender's inbox, or in the recipient's inbox.
#[derive(Clone, Copy)]
enum Variant {
    V1,
    Seq,
    PeerSeq,
}

/// One delivery's payload, framed at most once per (variant, wire layout), however many
/// channels it goes to.
struct Frames<'a> {
    payload: &'a Bytes,
    stamp: Option<Stamp>,
    cache: [OnceLock<Option<Bytes>>; 6],
}

impl<'a> Frames<'a> {
    fn new(d: &'a Delivery) -> Self {
        Self {
            payload: &d.payload,
            stamp: d.stamp,
            cache: Default::default(),
        }
    }

    fn frame(&self, variant: Variant, framing: Framing) -> Option<Bytes> {
        let i = variant as usize * 2 + framing as usize;
        self.cache[i]
            .get_or_init(|| {
                let stamped;
                let payload: &[u8] = match (variant, self.stamp) {
                    (Variant::V1, _) | (_, None) => self.payload,
                    (Variant::Seq, Some(s)) => {
                        stamped = v2::stamp(self.payload, s.msg_id, s.seq);
                        &stamped
                    }
                    (Variant::PeerSeq, Some(s)) => {
                        stamped = v2::stamp(self.payload, s.msg_id, s.peer_seq);
                        &stamped
                    }
                };
                // A payload too big for a v1 TCP frame cannot reach TCP clients; logic
                // bounds message sizes well below the limit, so this is a huge roster.
                framing.frame(payload)
            })
            .clone()
    }

    /// Queue this delivery's `variant` on `ch`, held back if `hold` says so.
    fn push(&self, ch: &Channel, variant: Variant, hold: Option<(HoldKey, Option<u64>)>) {
        let Some(f) = self.frame(variant, ch.framing) else {
            return;
        };
        match hold {
            Some((key, Some(seq))) => ch.push_live(f, key, seq),
            _ => ch.push(f),
        }
    }
}

/// Who among a room's channels a room delivery reaches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audience {
    All,
    V1,
    V2,
}

impl Hub {
    /// A hub with `buckets` shards (at least one), no deduplication and no coalescing
    /// (benchmarks and tests of the fan-out itself).
    pub fn new(buckets: usize) -> Self {
        Self::with(buckets, String::new(), 0, Duration::ZERO)
    }

    /// A hub as `config` describes: buckets, server id, dedup window, roster interval.
    pub fn from_config(config: &ConnectConfig) -> Self {
        Self::with(
            config.buckets,
            config.server_id.clone(),
            config.dedup_window,
            config.roster_interval(),
        )
    }

    fn with(
        buckets: usize,
        server_id: String,
        dedup_window: usize,
        roster_interval: Duration,
    ) -> Self {
        Self {
            buckets: (0..buckets.max(1)).map(|_| Bucket::default()).collect(),
            server_id,
            recent: RecentIds::new(dedup_window),
            coalescer: Coalescer::new(roster_interval),
        }
    }

    /// The bucket of a user: a stable hash (SplitMix64's finaliser), so every process puts
    /// a user in the same bucket and ids that are close together still spread out.
    fn bucket(&self, user: UserId) -> &Bucket {
        let mut x = user as u64;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        &self.buckets[(x % self.buckets.len() as u64) as usize]
    }

    /// Add a channel.
    pub fn put(&self, ch: Arc<Channel>) {
        memberships(ch.room_count() as i64);
        self.bucket(ch.user_id).put(ch);
    }

    /// Remove a channel.
    pub fn remove(&self, ch: &Channel) {
        memberships(-(ch.room_count() as i64));
        self.bucket(ch.user_id).remove(ch);
    }

    /// Put a channel in one more room; `false` if it was in it already.
    pub fn join_room(&self, ch: &Arc<Channel>, room: RoomId) -> bool {
        let joined = self.bucket(ch.user_id).join_room(ch, room);
        if joined {
            memberships(1);
        }
        joined
    }

    /// Take a channel out of a room; `false` if it was not in it.
    pub fn leave_room(&self, ch: &Channel, room: RoomId) -> bool {
        let left = self.bucket(ch.user_id).leave_room(ch, room);
        if left {
            memberships(-1);
        }
        left
    }

    /// Open channels.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(Bucket::len).sum()
    }

    /// Whether no channel is open.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(Bucket::is_empty)
    }

    /// Queue `payload` as is on every channel in a room; returns how many.
    pub fn push_room(&self, room: RoomId, payload: &Bytes) -> usize {
        let d = Delivery::new(0, Target::Room(room), PushKind::Count, payload.clone());
        self.fan_out_room(room, &Frames::new(&d), Audience::All, None)
    }

    /// Queue `payload` as is on every channel of a user; returns how many.
    pub fn push_user(&self, user: UserId, payload: &Bytes) -> usize {
        let d = Delivery::new(0, Target::User(user), PushKind::Message, payload.clone());
        let frames = Frames::new(&d);
        let mut n = 0;
        self.bucket(user).each_of_user(user, |ch| {
            frames.push(ch, Variant::V1, None);
            n += 1;
        });
        n
    }

    /// A room delivery to its `audience`; a stored message of the room is held back on v2
    /// channels replaying it; `skip` is the channel it came from.
    fn fan_out_room(
        &self,
        room: RoomId,
        frames: &Frames<'_>,
        audience: Audience,
        skip: Option<u64>,
    ) -> usize {
        let seq = frames.stamp.and_then(|s| s.seq);
        let mut n = 0;
        for b in &self.buckets {
            b.each_in_room(room, |ch| {
                let v2 = ch.version >= 2;
                let wanted = match audience {
                    Audience::All => true,
                    Audience::V1 => !v2,
                    Audience::V2 => v2 && skip != Some(ch.id),
                };
                if wanted {
                    let variant = if v2 { Variant::Seq } else { Variant::V1 };
                    frames.push(ch, variant, v2.then_some((HoldKey::Room(room), seq)));
                    n += 1;
                }
            });
        }
        n
    }

    /// A private message: the recipient's connections (v2 ones stamped with the recipient's
    /// inbox seq), and the sender's other v2 connections (with the sender's).
    fn fan_out_conversation(
        &self,
        from: UserId,
        to: UserId,
        frames: &Frames<'_>,
        skip: Option<u64>,
    ) -> usize {
        let (seq, peer) = (
            frames.stamp.and_then(|s| s.seq),
            frames.stamp.and_then(|s| s.peer_seq),
        );
        let mut n = 0;
        self.bucket(to).each_of_user(to, |ch| match ch.version {
            1 => {
                frames.push(ch, Variant::V1, None);
                n += 1;
            }
            _ if from == to && skip == Some(ch.id) => {}
            _ if from == to => {
                frames.push(ch, Variant::Seq, Some((HoldKey::Inbox, seq)));
                n += 1;
            }
            _ => {
                frames.push(ch, Variant::PeerSeq, Some((HoldKey::Inbox, peer)));
                n += 1;
            }
        });
        if from != to {
            self.bucket(from).each_of_user(from, |ch| {
                if ch.version >= 2 && skip != Some(ch.id) {
                    frames.push(ch, Variant::Seq, Some((HoldKey::Inbox, seq)));
                    n += 1;
                }
            });
        }
        n
    }

    /// Close a user's channels that authenticated with `token`; returns how many.
    pub fn close_token(&self, user: UserId, token: &str, reason: CloseReason) -> usize {
        let mut n = 0;
        self.bucket(user).each_of_user(user, |ch| {
            if ch.token == token {
                ch.close(reason);
                n += 1;
            }
        });
        n
    }

    /// Close every channel (server shutdown).
    pub fn close_all(&self, reason: CloseReason) {
        for b in &self.buckets {
            b.each_channel(|ch| ch.close(reason));
        }
    }

    /// The presence of every open channel, as server `server_id` asserts it to logic.
    pub fn presences(&self, server_id: &str) -> Vec<Presence> {
        let mut out = Vec::new();
        for b in &self.buckets {
            b.each_channel(|ch| out.extend(ch.presences(server_id)));
        }
        out
    }

    /// The audience of a roster or count.
    fn audience(kind: PushKind) -> Audience {
        match kind {
            PushKind::Roster { on_leave: true } => Audience::V1,
            PushKind::Event => Audience::V2,
            _ => Audience::All,
        }
    }

    /// Send held rosters and counts when their interval is over, until `shutdown`.
    pub async fn run_coalescer(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let (due, next) = self.coalescer.due(tokio::time::Instant::now());
            for (room, kind, payload) in &due {
                let d = Delivery::new(0, Target::Room(*room), *kind, payload.clone());
                self.fan_out_room(*room, &Frames::new(&d), Self::audience(*kind), None);
            }
            let until_due = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = until_due => {}
                _ = self.coalescer.something_held() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// The channel id `d` came from, if it came from a channel of this server.
    fn origin_here(&self, d: &Delivery) -> Option<u64> {
        d.origin
            .as_ref()
            .filter(|o| o.server_id == self.server_id)
            .map(|o| o.channel_id)
    }
}

fn memberships(by: i64) {
    gochat_core::metrics::metrics().room_memberships.inc_by(by);
}

/// Count a message's frames handed to `n` connections, and the time since it was posted
/// (its id is a snowflake: it carries the moment logic took the post).
fn delivered(d: &Delivery, n: usize) {
    let m = gochat_core::metrics::metrics();
    m.frames_delivered.inc_by(n as u64);
    let posted = gochat_core::ids::timestamp_ms(d.id);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_millis() as i64);
    if d.id > 0 && now >= posted {
        m.delivery_latency.observe((now - posted) as f64 / 1000.0);
    }
}

#[async_trait]
impl ConnectService for Hub {
    async fn deliver(&self, mut deliveries: Vec<Delivery>) -> Result<(), Fault> {
        self.recent.retain_new(&mut deliveries);
        for d in &deliveries {
            let frames = Frames::new(d);
            let skip = self.origin_here(d);
            match (&d.target, d.kind) {
                (Target::Token { user_id, token }, PushKind::Close(end)) => {
                    let reason = match end {
                        SessionEnd::LoggedOut => close::LOGGED_OUT,
                        SessionEnd::Revoked => close::REVOKED,
                    };
                    self.close_token(*user_id, token, reason);
                }
                // Only closes are aimed at a token.
                (Target::Token { .. }, _) => {}
                (Target::Room(room), kind @ (PushKind::Roster { .. } | PushKind::Count)) => {
                    let now = tokio::time::Instant::now();
                    if self.coalescer.offer(*room, kind, &d.payload, now) == Offer::Now {
                        self.fan_out_room(*room, &frames, Self::audience(kind), None);
                    }
                }
                (Target::Room(room), kind) => {
                    let n = self.fan_out_room(*room, &frames, Self::audience(kind), skip);
                    if kind == PushKind::Message {
                        delivered(d, n);
                    }
                }
                (Target::Conversation { from, to }, _) => {
                    let n = self.fan_out_conversation(*from, *to, &frames, skip);
                    delivered(d, n);
                }
                (Target::User(user), _) => {
                    self.bucket(*user).each_of_user(*user, |ch| {
                        frames.push(ch, Variant::V1, None);
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outgoing;

    fn delivery(id: i64, target: Target, kind: PushKind, payload: &'static [u8]) -> Delivery {
        Delivery::new(id, target, kind, Bytes::from_static(payload))
    }

    #[tokio::test]
    async fn redeliveries_are_dropped_and_rosters_coalesced() {
        let hub = Hub::with(2, String::new(), 64, Duration::from_secs(60));
        let (a, ra) = chan(1, 10, 1, 64);
        hub.put(a.clone());
        let m = |id| delivery(id, Target::Room(1), PushKind::Message, b"m");
        hub.deliver(vec![m(1), m(2)]).await.unwrap();
        hub.deliver(vec![m(2), m(3)]).await.unwrap(); // 2 again: a redelivery
        let r = |id| {
            delivery(
                id,
                Target::Room(1),
                PushKind::Roster { on_leave: false },
                b"r",
            )
        };
        hub.deliver(vec![r(10), r(11), r(12)]).await.unwrap();
        let mut got = 0;
        while ra.try_recv().is_some() {
            got += 1;
        }
        assert_eq!(
            got,
            3 + 1,
            "messages 1, 2, 3 once each; one roster now, two held"
        );
        let (due, _) = hub
            .coalescer
            .due(tokio::time::Instant::now() + Duration::from_secs(61));
        assert_eq!(
            due.len(),
            1,
            "the newest held roster goes after the interval"
        );
    }

    #[tokio::test]
    async fn closes_name_their_cause() {
        let hub = Hub::new(1);
        let (a, _ra) = chan(1, 5, 1, 4);
        hub.put(a.clone());
        hub.deliver(vec![delivery(
            1,
            Target::Token {
                user_id: 5,
                token: "t1".into(),
            },
            PushKind::Close(SessionEnd::Revoked),
            b"",
        )])
        .await
        .unwrap();
        assert_eq!(a.close_reason(), Some(close::REVOKED));
    }

    fn chan(id: u64, user: UserId, room: RoomId, queue: usize) -> (Arc<Channel>, Outgoing) {
        let (c, rx) = Channel::new(
            id,
            user,
            format!("u{user}"),
            room,
            format!("t{id}"),
            Framing::WebSocket,
            queue,
        );
        (Arc::new(c), rx)
    }

    #[test]
    fn room_and_user_fan_out_encode_once_and_respect_membership() {
        let hub = Hub::new(4);
        let (a, ra) = chan(1, 10, 1, 8);
        let (b, rb) = chan(2, 11, 1, 8);
        let (c, rc) = chan(3, 12, 2, 8);
        let (a2, ra2) = chan(4, 10, -1, 8);
        for ch in [&a, &b, &c, &a2] {
            hub.put(ch.clone());
        }
        assert_eq!(hub.len(), 4);
        assert_eq!(hub.push_room(1, &Bytes::from_static(b"{}")), 2);
        let fa = ra.try_recv().expect("a frame");
        let fb = rb.try_recv().expect("a frame");
        assert_eq!(&fa[..], b"\x81\x02{}");
        assert_eq!(
            fa.as_ptr(),
            fb.as_ptr(),
            "one encoding shared by every channel"
        );
        assert!(rc.try_recv().is_none() && ra2.try_recv().is_none());
        assert_eq!(hub.push_user(10, &Bytes::from_static(b"p")), 2);
        assert!(ra.try_recv().is_some() && ra2.try_recv().is_some());
        hub.remove(&a);
        assert_eq!(hub.push_room(1, &Bytes::from_static(b"x")), 1);
        assert_eq!(hub.len(), 3);
    }

    #[test]
    fn full_queue_closes_only_the_slow_channel() {
        let hub = Hub::new(2);
        let (slow, _keep) = chan(1, 1, 1, 2);
        let (fast, rf) = chan(2, 2, 1, 64);
        hub.put(slow.clone());
        hub.put(fast.clone());
        for _ in 0..5 {
            hub.push_room(1, &Bytes::from_static(b"m"));
            while rf.try_recv().is_some() {}
        }
        assert_eq!(slow.close_reason(), Some(close::SLOW_CONSUMER));
        assert!(!fast.is_closed());
    }

    #[test]
    fn logout_closes_only_that_tokens_channels() {
        let hub = Hub::new(2);
        let (a, _ra) = chan(1, 5, 1, 4);
        let (b, _rb) = chan(2, 5, 1, 4);
        hub.put(a.clone());
        hub.put(b.clone());
        assert_eq!(hub.close_token(5, "t1", close::LOGGED_OUT), 1);
        assert!(a.is_closed() && !b.is_closed());
    }
}
