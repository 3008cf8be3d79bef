//! [`Hub`]: every connection of this server, sharded into buckets; fans deliveries out.

use crate::bucket::Bucket;
use crate::channel::{Channel, Framing};
use crate::close::{self, CloseReason};
use crate::coalesce::{Coalescer, Offer};
use crate::dedup::RecentIds;
use async_trait::async_trait;
use bytes::Bytes;
use gochat_core::config::ConnectConfig;
use gochat_core::model::{Delivery, Presence, PushKind, RoomId, SessionEnd, Target, UserId};
use gochat_core::protocol::{tcp, ws};
use gochat_core::rpc::{ConnectService, Fault};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// All channels, in a fixed number of buckets chosen at start, and what fan-out needs
/// besides: the window of recent delivery ids and the roster/count coalescer.
pub struct Hub {
    buckets: Vec<Bucket>,
    /// Drops deliveries handled lately (a redelivered queue entry).
    recent: RecentIds,
    /// Spaces out rosters and counts per room.
    coalescer: Coalescer,
}

/// One payload framed at most once per wire layout, however many channels it goes to.
struct Frames<'a> {
    payload: &'a Bytes,
    ws: OnceLock<Bytes>,
    tcp: OnceLock<Option<Bytes>>,
}

impl<'a> Frames<'a> {
    fn new(payload: &'a Bytes) -> Self {
        Self {
            payload,
            ws: OnceLock::new(),
            tcp: OnceLock::new(),
        }
    }

    fn push_to(&self, ch: &Channel) {
        match ch.framing {
            Framing::WebSocket => {
                ch.push(self.ws.get_or_init(|| ws::text_frame(self.payload)).clone())
            }
            Framing::Tcp => {
                // A payload too big for a v1 frame cannot reach TCP clients; logic bounds
                // message sizes well below the limit, so this is a roster of thousands.
                if let Some(f) = self
                    .tcp
                    .get_or_init(|| tcp::encode_frame(self.payload).ok())
                {
                    ch.push(f.clone());
                }
            }
        }
    }
}

impl Hub {
    /// A hub with `buckets` shards (at least one), no deduplication and no coalescing
    /// (benchmarks and tests of the fan-out itself).
    pub fn new(buckets: usize) -> Self {
        Self::with(buckets, 0, Duration::ZERO)
    }

    /// A hub as `config` describes: buckets, dedup window, roster interval.
    pub fn from_config(config: &ConnectConfig) -> Self {
        Self::with(
            config.buckets,
            config.dedup_window,
            config.roster_interval(),
        )
    }

    fn with(buckets: usize, dedup_window: usize, roster_interval: Duration) -> Self {
        Self {
            buckets: (0..buckets.max(1)).map(|_| Bucket::default()).collect(),
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
        self.bucket(ch.user_id).put(ch);
    }

    /// Remove a channel.
    pub fn remove(&self, ch: &Channel) {
        self.bucket(ch.user_id).remove(ch);
    }

    /// Open channels.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(Bucket::len).sum()
    }

    /// Whether no channel is open.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(Bucket::is_empty)
    }

    /// Queue `payload` on every channel in a room; returns how many.
    pub fn push_room(&self, room: RoomId, payload: &Bytes) -> usize {
        let frames = Frames::new(payload);
        let mut n = 0;
        for b in &self.buckets {
            b.each_in_room(room, |ch| {
                frames.push_to(ch);
                n += 1;
            });
        }
        n
    }

    /// Queue `payload` on every channel of a user; returns how many.
    pub fn push_user(&self, user: UserId, payload: &Bytes) -> usize {
        let frames = Frames::new(payload);
        let mut n = 0;
        self.bucket(user).each_of_user(user, |ch| {
            frames.push_to(ch);
            n += 1;
        });
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
            b.each_channel(|ch| out.push(ch.presence(server_id)));
        }
        out
    }

    /// A roster or count for a room: now, or held by the coalescer for the flusher.
    fn push_coalesced(&self, room: RoomId, kind: PushKind, payload: &Bytes) {
        if self
            .coalescer
            .offer(room, kind, payload, tokio::time::Instant::now())
            == Offer::Now
        {
            self.push_room(room, payload);
        }
    }

    /// Send held rosters and counts when their interval is over, until `shutdown`.
    pub async fn run_coalescer(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let (due, next) = self.coalescer.due(tokio::time::Instant::now());
            for (room, _, payload) in &due {
                self.push_room(*room, payload);
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
}

#[async_trait]
impl ConnectService for Hub {
    async fn deliver(&self, mut deliveries: Vec<Delivery>) -> Result<(), Fault> {
        self.recent.retain_new(&mut deliveries);
        for d in &deliveries {
            match (&d.target, d.kind) {
                (Target::Token { user_id, token }, PushKind::Close(end)) => {
                    let reason = match end {
                        SessionEnd::LoggedOut => close::LOGGED_OUT,
                        SessionEnd::Revoked => close::REVOKED,
                    };
                    self.close_token(*user_id, token, reason);
                }
                (Target::Room(room), kind @ (PushKind::Roster | PushKind::Count)) => {
                    self.push_coalesced(*room, kind, &d.payload);
                }
                (Target::Room(room), _) => {
                    self.push_room(*room, &d.payload);
                }
                (Target::User(user), _) => {
                    self.push_user(*user, &d.payload);
                }
                // Only closes are aimed at a token.
                (Target::Token { .. }, _) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn delivery(id: i64, target: Target, kind: PushKind, payload: &'static [u8]) -> Delivery {
        Delivery {
            id,
            target,
            kind,
            payload: Bytes::from_static(payload),
        }
    }

    #[tokio::test]
    async fn redeliveries_are_dropped_and_rosters_coalesced() {
        let hub = Hub::with(2, 64, Duration::from_secs(60));
        let (a, mut ra) = chan(1, 10, 1, 64);
        hub.put(a.clone());
        let m = |id| delivery(id, Target::Room(1), PushKind::Message, b"m");
        hub.deliver(vec![m(1), m(2)]).await.unwrap();
        hub.deliver(vec![m(2), m(3)]).await.unwrap(); // 2 again: a redelivery
        let r = |id| delivery(id, Target::Room(1), PushKind::Roster, b"r");
        hub.deliver(vec![r(10), r(11), r(12)]).await.unwrap();
        let mut got = 0;
        while ra.try_recv().is_ok() {
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

    fn chan(
        id: u64,
        user: UserId,
        room: RoomId,
        queue: usize,
    ) -> (Arc<Channel>, mpsc::Receiver<Bytes>) {
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
        let (a, mut ra) = chan(1, 10, 1, 8);
        let (b, mut rb) = chan(2, 11, 1, 8);
        let (c, mut rc) = chan(3, 12, 2, 8);
        let (a2, mut ra2) = chan(4, 10, -1, 8);
        for ch in [&a, &b, &c, &a2] {
            hub.put(ch.clone());
        }
        assert_eq!(hub.len(), 4);
        assert_eq!(hub.push_room(1, &Bytes::from_static(b"{}")), 2);
        let fa = ra.try_recv().unwrap();
        let fb = rb.try_recv().unwrap();
        assert_eq!(&fa[..], b"\x81\x02{}");
        assert_eq!(
            fa.as_ptr(),
            fb.as_ptr(),
            "one encoding shared by every channel"
        );
        assert!(rc.try_recv().is_err() && ra2.try_recv().is_err());
        assert_eq!(hub.push_user(10, &Bytes::from_static(b"p")), 2);
        assert!(ra.try_recv().is_ok() && ra2.try_recv().is_ok());
        hub.remove(&a);
        assert_eq!(hub.push_room(1, &Bytes::from_static(b"x")), 1);
        assert_eq!(hub.len(), 3);
    }

    #[test]
    fn full_queue_closes_only_the_slow_channel() {
        let hub = Hub::new(2);
        let (slow, _keep) = chan(1, 1, 1, 2);
        let (fast, mut rf) = chan(2, 2, 1, 64);
        hub.put(slow.clone());
        hub.put(fast.clone());
        for _ in 0..5 {
            hub.push_room(1, &Bytes::from_static(b"m"));
            while rf.try_recv().is_ok() {}
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
