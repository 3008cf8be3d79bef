//! [`Bucket`]: one shard of the connections, indexed by room and by user.

use crate::channel::Channel;
use gochat_core::model::{NO_ROOM, RoomId, UserId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A shard. Channels are spread over buckets by a stable hash of the user id, so that a
/// room broadcast takes each bucket's lock in turn (short sections, no `.await`) and
/// concurrent broadcasts, joins and leaves contend on 1/N of the connections each.
#[derive(Default)]
pub struct Bucket {
    state: Mutex<Members>,
}

#[derive(Default)]
struct Members {
    rooms: HashMap<RoomId, Vec<Arc<Channel>>>,
    users: HashMap<UserId, Vec<Arc<Channel>>>,
}

fn detach(map: &mut HashMap<i64, Vec<Arc<Channel>>>, key: i64, channel_id: u64) {
    if let Some(list) = map.get_mut(&key) {
        list.retain(|c| c.id != channel_id);
        if list.is_empty() {
            map.remove(&key);
        }
    }
}

impl Bucket {
    fn lock(&self) -> MutexGuard<'_, Members> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a channel to its user and its room.
    pub fn put(&self, ch: Arc<Channel>) {
        let mut m = self.lock();
        if ch.room_id != NO_ROOM {
            m.rooms.entry(ch.room_id).or_default().push(ch.clone());
        }
        m.users.entry(ch.user_id).or_default().push(ch);
    }

    /// Remove a channel (by id) from its user and its room.
    pub fn remove(&self, ch: &Channel) {
        let mut m = self.lock();
        let Members { rooms, users } = &mut *m;
        detach(rooms, ch.room_id, ch.id);
        detach(users, ch.user_id, ch.id);
    }

    /// Call `f` on every channel in a room.
    pub fn each_in_room(&self, room: RoomId, mut f: impl FnMut(&Arc<Channel>)) {
        if let Some(list) = self.lock().rooms.get(&room) {
            list.iter().for_each(&mut f);
        }
    }

    /// Call `f` on every channel of a user.
    pub fn each_of_user(&self, user: UserId, mut f: impl FnMut(&Arc<Channel>)) {
        if let Some(list) = self.lock().users.get(&user) {
            list.iter().for_each(&mut f);
        }
    }

    /// Call `f` on every channel.
    pub fn each_channel(&self, mut f: impl FnMut(&Arc<Channel>)) {
        self.lock().users.values().flatten().for_each(&mut f);
    }

    /// Channels held.
    pub fn len(&self) -> usize {
        self.lock().users.values().map(Vec::len).sum()
    }

    /// Whether the bucket holds no channel.
    pub fn is_empty(&self) -> bool {
        self.lock().users.is_empty()
    }
}
