//! [`Bucket`]: one shard of the connections, indexed by room and by user.

use crate::channel::Channel;
use gochat_core::hash::FastMap;
use gochat_core::model::{RoomId, UserId};
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;

/// A shard. Channels are spread over buckets by a stable hash of the user id, so that a
/// room broadcast takes each bucket's lock in turn (short sections, no `.await`) and
/// concurrent broadcasts, joins and leaves contend on 1/N of the connections each.
///
/// The lock is `parking_lot`'s: it is eventually fair, so a join or leave waiting behind
/// back-to-back broadcasts of a huge room gets its turn within about half a millisecond
/// instead of starving (std's futex mutex lets the broadcaster take it again at once).
#[derive(Default)]
pub struct Bucket {
    state: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    rooms: FastMap<RoomId, Members>,
    users: FastMap<UserId, Members>,
}

/// The channels of one room (or user): a dense list for fast broadcast, and each channel's
/// position in it, so that removal is O(1) (`swap_remove`, then fix the moved one's index).
#[derive(Default)]
struct Members {
    list: Vec<Arc<Channel>>,
    at: FastMap<u64, usize>,
}

impl Members {
    fn insert(&mut self, ch: Arc<Channel>) {
        if self.at.contains_key(&ch.id) {
            return;
        }
        self.at.insert(ch.id, self.list.len());
        self.list.push(ch);
    }

    fn remove(&mut self, channel_id: u64) {
        let Some(i) = self.at.remove(&channel_id) else {
            return;
        };
        self.list.swap_remove(i);
        if let Some(moved) = self.list.get(i) {
            self.at.insert(moved.id, i);
        }
    }
}

fn detach(map: &mut FastMap<i64, Members>, key: i64, channel_id: u64) {
    if let Some(members) = map.get_mut(&key) {
        members.remove(channel_id);
        if members.list.is_empty() {
            map.remove(&key);
        }
    }
}

impl Bucket {
    fn lock(&self) -> MutexGuard<'_, Index> {
        self.state.lock()
    }

    /// Add a channel to its user and its rooms.
    pub fn put(&self, ch: Arc<Channel>) {
        let mut m = self.lock();
        for room in ch.rooms() {
            m.rooms.entry(room).or_default().insert(ch.clone());
        }
        m.users.entry(ch.user_id).or_default().insert(ch);
    }

    /// Remove a channel (by id) from its user and its rooms, in O(1) each.
    pub fn remove(&self, ch: &Channel) {
        let mut m = self.lock();
        let Index { rooms, users } = &mut *m;
        for room in ch.rooms() {
            detach(rooms, room, ch.id);
        }
        detach(users, ch.user_id, ch.id);
    }

    /// Put a channel (already held here) in one more room; `false` if it was in it.
    pub fn join_room(&self, ch: &Arc<Channel>, room: RoomId) -> bool {
        let mut m = self.lock();
        if !ch.add_room(room) {
            return false;
        }
        m.rooms.entry(room).or_default().insert(ch.clone());
        true
    }

    /// Take a channel out of one room; `false` if it was not in it.
    pub fn leave_room(&self, ch: &Channel, room: RoomId) -> bool {
        let mut m = self.lock();
        if !ch.remove_room(room) {
            return false;
        }
        detach(&mut m.rooms, room, ch.id);
        true
    }

    /// Call `f` on every channel in a room.
    pub fn each_in_room(&self, room: RoomId, mut f: impl FnMut(&Arc<Channel>)) {
        if let Some(m) = self.lock().rooms.get(&room) {
            m.list.iter().for_each(&mut f);
        }
    }

    /// Call `f` on every channel of a user.
    pub fn each_of_user(&self, user: UserId, mut f: impl FnMut(&Arc<Channel>)) {
        if let Some(m) = self.lock().users.get(&user) {
            m.list.iter().for_each(&mut f);
        }
    }

    /// Call `f` on every channel.
    pub fn each_channel(&self, mut f: impl FnMut(&Arc<Channel>)) {
        self.lock()
            .users
            .values()
            .flat_map(|m| m.list.iter())
            .for_each(&mut f);
    }

    /// Channels held.
    pub fn len(&self) -> usize {
        self.lock().users.values().map(|m| m.list.len()).sum()
    }

    /// Whether the bucket holds no channel.
    pub fn is_empty(&self) -> bool {
        self.lock().users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Framing;

    fn ch(id: u64, user: UserId, room: RoomId) -> Arc<Channel> {
        Arc::new(
            Channel::new(
                id,
                user,
                String::new(),
                room,
                String::new(),
                Framing::WebSocket,
                1,
            )
            .0,
        )
    }

    fn ids_in(b: &Bucket, room: RoomId) -> Vec<u64> {
        let mut v = Vec::new();
        b.each_in_room(room, |c| v.push(c.id));
        v.sort();
        v
    }

    #[test]
    fn removal_from_the_middle_keeps_everyone_else() {
        let b = Bucket::default();
        let chans: Vec<_> = (0..5).map(|i| ch(i, i as i64, 1)).collect();
        chans.iter().for_each(|c| b.put(c.clone()));
        b.remove(&chans[1]);
        b.remove(&chans[1]); // twice: harmless
        assert_eq!(ids_in(&b, 1), [0, 2, 3, 4]);
        b.remove(&chans[4]); // the last one
        b.remove(&chans[0]); // the first one, moving another into its place
        assert_eq!(ids_in(&b, 1), [2, 3]);
        b.put(chans[0].clone());
        assert_eq!(ids_in(&b, 1), [0, 2, 3]);
        assert_eq!(b.len(), 3);
        for c in &chans {
            b.remove(c);
        }
        assert!(b.is_empty());
        assert!(ids_in(&b, 1).is_empty());
    }
}
