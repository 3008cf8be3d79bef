//! [`MemorySessions`]: the embedded, in-process sessions.

use super::Sessions;
use crate::Result;
use crate::hash::FastMap;
use crate::model::{NO_ROOM, Presence, RoomId, User, UserId};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Sessions and presence in one process. Expired tokens are removed when looked up and by a
/// sweep every [`SWEEP_EVERY`] logins, so the map stays bounded by live sessions.
#[derive(Default)]
pub struct MemorySessions {
    /// One lock for tokens and presence so that multi-key updates are atomic; sections are
    /// short map operations with no `.await`.
    state: Mutex<State>,
}

/// Logins between two sweeps of expired tokens.
pub const SWEEP_EVERY: u32 = 1024;

/// Open connections per connect server. Nearly always one server, so a short list of
/// interned ids: a `BTreeMap`'s first node is ~300 bytes, and this kept two per connection
/// (its user's, its room membership's) — the largest share of an idle connection after the
/// connect layer's own (docs/performance.md).
#[derive(Default)]
struct ServerCounts(Vec<(Arc<str>, u32)>);

impl ServerCounts {
    fn add(&mut self, server: &Arc<str>) {
        match self.0.iter_mut().find(|(s, _)| s == server) {
            Some((_, n)) => *n += 1,
            None => {
                self.0.reserve_exact(1);
                self.0.push((server.clone(), 1));
            }
        }
    }

    fn contains(&self, server: &str) -> bool {
        self.0.iter().any(|(s, _)| &**s == server)
    }

    /// One connection fewer on `server` (its entry goes at zero).
    fn decrement(&mut self, server: &str) {
        if let Some(i) = self.0.iter().position(|(s, _)| &**s == server) {
            self.0[i].1 -= 1;
            if self.0[i].1 == 0 {
                self.0.swap_remove(i);
            }
        }
    }

    fn remove(&mut self, server: &str) {
        self.0.retain(|(s, _)| &**s != server);
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn servers(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(s, _)| &**s)
    }
}

#[derive(Default)]
struct State {
    tokens: FastMap<String, (User, Instant)>,
    /// The current login token of each user (for single-login revocation).
    current: FastMap<UserId, String>,
    /// room → user → (name, connections per server).
    rooms: FastMap<RoomId, BTreeMap<UserId, (String, ServerCounts)>>,
    /// user → connections per server.
    users: FastMap<UserId, ServerCounts>,
    /// Open connections recorded per server, so that expiry finds the servers to check.
    per_server: ServerCounts,
    /// Each server id once, shared by every count that names it.
    server_ids: FastMap<String, Arc<str>>,
    /// When each server's presence lease runs out.
    leases: FastMap<String, Instant>,
    logins_since_sweep: u32,
}

impl State {
    fn server_id(&mut self, id: &str) -> Arc<str> {
        if let Some(s) = self.server_ids.get(id) {
            return s.clone();
        }
        let s: Arc<str> = id.into();
        self.server_ids.insert(id.to_owned(), s.clone());
        s
    }

    /// Returns whether this is the user's first connection in the room.
    fn join(&mut self, p: &Presence) -> bool {
        let server = self.server_id(&p.server_id);
        self.users.entry(p.user_id).or_default().add(&server);
        self.per_server.add(&server);
        if p.room_id != NO_ROOM {
            let member = self
                .rooms
                .entry(p.room_id)
                .or_default()
                .entry(p.user_id)
                .or_insert_with(|| (p.user_name.clone(), ServerCounts::default()));
            let first = member.1.is_empty();
            member.1.add(&server);
            return first;
        }
        false
    }

    /// Returns whether that was the user's last connection in the room.
    fn leave(&mut self, p: &Presence) -> bool {
        let mut last = false;
        if let Some(servers) = self.users.get_mut(&p.user_id) {
            if servers.contains(&p.server_id) {
                self.per_server.decrement(&p.server_id);
            }
            servers.decrement(&p.server_id);
            if servers.is_empty() {
                self.users.remove(&p.user_id);
            }
        }
        if let Some(room) = self.rooms.get_mut(&p.room_id) {
            if let Some(member) = room.get_mut(&p.user_id)
                && member.1.contains(&p.server_id)
            {
                member.1.decrement(&p.server_id);
                if member.1.is_empty() {
                    room.remove(&p.user_id);
                    last = true;
                }
            }
            if room.is_empty() {
                self.rooms.remove(&p.room_id);
            }
        }
        last
    }

    fn drop_server(&mut self, server_id: &str) {
        self.users.retain(|_, servers| {
            servers.remove(server_id);
            !servers.is_empty()
        });
        self.rooms.retain(|_, members| {
            members.retain(|_, (_, servers)| {
                servers.remove(server_id);
                !servers.is_empty()
            });
            !members.is_empty()
        });
        self.per_server.remove(server_id);
        self.leases.remove(server_id);
    }
}

impl MemorySessions {
    /// Empty sessions.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Sessions for MemorySessions {
    async fn login(&self, token: &str, user: &User, ttl: Duration) -> Result<Option<String>> {
        let now = Instant::now();
        let mut st = self.lock();
        st.logins_since_sweep += 1;
        if st.logins_since_sweep >= SWEEP_EVERY {
            st.logins_since_sweep = 0;
            st.tokens.retain(|_, (_, exp)| *exp > now);
        }
        st.tokens
            .insert(token.to_owned(), (user.clone(), now + ttl));
        let previous = st.current.insert(user.id, token.to_owned());
        if let Some(old) = &previous {
            st.tokens.remove(old);
        }
        Ok(previous.filter(|old| old != token))
    }

    async fn get(&self, token: &str) -> Result<Option<User>> {
        let mut st = self.lock();
        match st.tokens.get(token) {
            Some((user, exp)) if *exp > Instant::now() => Ok(Some(user.clone())),
            Some(_) => {
                if let Some((user, _)) = st.tokens.remove(token)
                    && st.current.get(&user.id).is_some_and(|t| t == token)
                {
                    st.current.remove(&user.id);
                }
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn logout(&self, token: &str) -> Result<Option<User>> {
        let mut st = self.lock();
        let Some((user, exp)) = st.tokens.remove(token) else {
            return Ok(None);
        };
        if st.current.get(&user.id).is_some_and(|t| t == token) {
            st.current.remove(&user.id);
        }
        Ok((exp > Instant::now()).then_some(user))
    }

    async fn join(&self, p: &Presence) -> Result<bool> {
        Ok(self.lock().join(p))
    }

    async fn leave(&self, p: &Presence) -> Result<bool> {
        Ok(self.lock().leave(p))
    }

    async fn room_size(&self, room: RoomId) -> Result<usize> {
        Ok(self.lock().rooms.get(&room).map_or(0, |m| m.len()))
    }

    async fn roster(&self, room: RoomId) -> Result<Vec<User>> {
        let st = self.lock();
        Ok(st
            .rooms
            .get(&room)
            .map(|m| {
                m.iter()
                    .map(|(id, (name, _))| User {
                        id: *id,
                        name: name.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn room_servers(&self, room: RoomId) -> Result<Vec<String>> {
        let st = self.lock();
        let mut servers: Vec<String> = st
            .rooms
            .get(&room)
            .into_iter()
            .flat_map(|m| m.values().flat_map(|(_, s)| s.servers().map(str::to_owned)))
            .collect();
        servers.sort();
        servers.dedup();
        Ok(servers)
    }

    async fn user_servers(&self, user: UserId) -> Result<Vec<String>> {
        let st = self.lock();
        let mut servers: Vec<String> = st
            .users
            .get(&user)
            .map(|s| s.servers().map(str::to_owned).collect())
            .unwrap_or_default();
        servers.sort();
        Ok(servers)
    }

    async fn drop_server(&self, server_id: &str) -> Result<()> {
        self.lock().drop_server(server_id);
        Ok(())
    }

    async fn sync_server(
        &self,
        server_id: &str,
        presences: &[Presence],
        ttl: Duration,
    ) -> Result<()> {
        let mut st = self.lock();
        st.drop_server(server_id);
        for p in presences.iter().filter(|p| p.server_id == server_id) {
            st.join(p);
        }
        st.leases.insert(server_id.to_owned(), Instant::now() + ttl);
        Ok(())
    }

    async fn renew_server(&self, server_id: &str, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut st = self.lock();
        match st.leases.get_mut(server_id) {
            Some(until) if *until > now => {
                *until = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn server_alive(&self, server_id: &str) -> Result<bool> {
        let now = Instant::now();
        Ok(self
            .lock()
            .leases
            .get(server_id)
            .is_some_and(|until| *until > now))
    }

    async fn expire_servers(&self) -> Result<Vec<String>> {
        let now = Instant::now();
        let mut st = self.lock();
        let mut dead: Vec<String> = st
            .per_server
            .servers()
            .chain(st.leases.keys().map(String::as_str))
            .filter(|s| st.leases.get(*s).is_none_or(|until| *until <= now))
            .map(str::to_owned)
            .collect();
        dead.sort();
        dead.dedup();
        for s in &dead {
            st.drop_server(s);
        }
        Ok(dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        crate::conformance::sessions::run_all(|| async { MemorySessions::new() }).await;
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_expire_with_the_clock() {
        let s = MemorySessions::new();
        let u = User {
            id: 1,
            name: "a".into(),
        };
        s.login("t", &u, Duration::from_secs(10)).await.unwrap();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(s.get("t").await.unwrap(), Some(u));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(s.get("t").await.unwrap(), None);
        assert_eq!(s.logout("t").await.unwrap(), None);
    }
}
