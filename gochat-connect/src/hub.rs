//! [`Hub`]: every connection of this server, sharded into buckets; fans deliveries out.

use crate::bucket::Bucket;
use crate::channel::{Channel, CloseReason, Framing};
use async_trait::async_trait;
use bytes::Bytes;
use gochat_core::model::{Delivery, RoomId, Target, UserId};
use gochat_core::protocol::{tcp, ws};
use gochat_core::rpc::{ConnectService, Fault};
use std::sync::Arc;
use std::sync::OnceLock;

/// All channels, in a fixed number of buckets chosen at start.
pub struct Hub {
    buckets: Vec<Bucket>,
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

/// Close reason for connections whose session was logged out.
pub const LOGGED_OUT: CloseReason = CloseReason {
    code: ws::close::POLICY,
    reason: "logged out",
};

impl Hub {
    /// A hub with `buckets` shards (at least one).
    pub fn new(buckets: usize) -> Self {
        Self {
            buckets: (0..buckets.max(1)).map(|_| Bucket::default()).collect(),
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
    pub fn close_token(&self, user: UserId, token: &str) -> usize {
        let mut n = 0;
        self.bucket(user).each_of_user(user, |ch| {
            if ch.token == token {
                ch.close(LOGGED_OUT);
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
}

#[async_trait]
impl ConnectService for Hub {
    async fn deliver(&self, deliveries: Vec<Delivery>) -> Result<(), Fault> {
        for d in &deliveries {
            match &d.target {
                Target::Room(room) => {
                    self.push_room(*room, &d.payload);
                }
                Target::User(user) => {
                    self.push_user(*user, &d.payload);
                }
                Target::Logout { user_id, token } => {
                    self.close_token(*user_id, token);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

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
        assert_eq!(slow.close_reason().map(|r| r.code), Some(1013));
        assert!(!fast.is_closed());
    }

    #[test]
    fn logout_closes_only_that_tokens_channels() {
        let hub = Hub::new(2);
        let (a, _ra) = chan(1, 5, 1, 4);
        let (b, _rb) = chan(2, 5, 1, 4);
        hub.put(a.clone());
        hub.put(b.clone());
        assert_eq!(hub.close_token(5, "t1"), 1);
        assert!(a.is_closed() && !b.is_closed());
    }
}
