//! [`Logic`]: the logic layer — its state, the helpers its parts share, and its
//! [`LogicService`] (each method answered in `accounts.rs`, `messages.rs` or `rooms.rs`).

use crate::password::Passwords;
use async_trait::async_trait;
use gochat_core::config::{HistoryConfig, LimitsConfig, LogicConfig};
use gochat_core::ids::Snowflake;
use gochat_core::model::{Delivery, Page, Presence, PushKind, RoomId, Target, User, UserId};
use gochat_core::rpc::{
    ConnectRequest, Fault, HistoryRequest, JoinRequest, LogicService, Posted, PushRequest,
    RoomPushRequest, Welcome,
};
use gochat_core::{Queue, Sessions, Store};
use std::sync::Arc;

/// Most recipient names kept in memory (about 64 MiB at the bound).
const NAME_CACHE_MAX: usize = 1_000_000;

/// Auth, sessions, presence, history and message routing. Stateless itself: everything it
/// knows is in the Store and the Sessions, so any number of instances can serve the same
/// cluster.
pub struct Logic {
    pub(crate) config: LogicConfig,
    /// What is stored and for how long (`[history]`).
    pub(crate) history: HistoryConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sessions: Arc<dyn Sessions>,
    pub(crate) queue: Arc<dyn Queue>,
    /// Message and delivery ids.
    pub(crate) ids: Snowflake,
    pub(crate) passwords: Passwords,
    /// Names of users looked up as recipients, by id. A user's id and name never change, so
    /// entries never go stale; the map is cleared when it reaches [`NAME_CACHE_MAX`].
    names: gochat_core::hash::FastDashMap<UserId, String>,
    /// `hash_workers` permits: argon2 is CPU- and memory-bound (19 MiB per hash by default),
    /// so a burst of logins queues here instead of starting hundreds of hashes at once, and
    /// leaves a core to the rest of the server.
    pub(crate) hashing: tokio::sync::Semaphore,
    /// `[limits]`: failed logins, posts, roster requests.
    pub(crate) limits: crate::limits::Limits,
    /// Held from reading a room's roster (or count) until it is queued, so that this
    /// instance queues a room's rosters in the order it read them: two leaves handled at
    /// once could otherwise queue the older roster last, and members would keep it. Striped
    /// by room; instances of a cluster are not ordered against each other.
    roster_order: [tokio::sync::Mutex<()>; ROSTER_STRIPES],
}

/// Locks in [`Logic::roster_order`]: rooms that share one only wait for each other's roster.
const ROSTER_STRIPES: usize = 64;

/// Why the logic layer could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The argon2 parameters in the configuration are invalid.
    #[error("password hashing parameters")]
    Hash(#[from] crate::password::HashError),
    /// A backend failed.
    #[error("backend")]
    Backend(#[from] gochat_core::Error),
    /// A request to this logic layer failed (while creating the demo users, say).
    #[error("request refused")]
    Refused(#[from] Fault),
}

/// A backend failure as a client sees it: logged here with its cause, "internal error" there.
pub(crate) fn internal(e: impl std::fmt::Display) -> Fault {
    tracing::error!("logic: {e}");
    Fault::Internal(e.to_string())
}

/// The Store could not be used: the client is told so plainly (and may retry).
pub(crate) fn store_unavailable(e: impl std::fmt::Display) -> Fault {
    tracing::error!("logic: store: {e}");
    Fault::Unavailable(format!("store unavailable: {e}"))
}

/// Hashes at once: `configured`, or (0) one fewer than `cores`, at least one.
fn hash_workers(configured: usize, cores: usize) -> usize {
    match configured {
        0 => cores.saturating_sub(1).max(1),
        n => n,
    }
}

impl Logic {
    /// A logic layer over the given backends, with history on its defaults
    /// ([`Logic::with_history`] changes them).
    pub fn new(
        config: LogicConfig,
        store: Arc<dyn Store>,
        sessions: Arc<dyn Sessions>,
        queue: Arc<dyn Queue>,
    ) -> Result<Self, Error> {
        Ok(Self {
            ids: Snowflake::new(config.node_id),
            passwords: Passwords::new(config.argon2_memory_kib, config.argon2_iterations)?,
            names: gochat_core::hash::FastDashMap::default(),
            hashing: tokio::sync::Semaphore::new(hash_workers(
                config.hash_workers,
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            history: HistoryConfig::default(),
            limits: crate::limits::Limits::new(&LimitsConfig::default()),
            roster_order: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
            config,
            store,
            sessions,
            queue,
        })
    }

    /// The same layer with `history` (`[history]`: on or off, limits, retention).
    pub fn with_history(mut self, history: HistoryConfig) -> Self {
        self.history = history;
        self
    }

    /// The same layer with `limits` (`[limits]`) instead of the defaults.
    pub fn with_limits(mut self, limits: &LimitsConfig) -> Self {
        self.limits = crate::limits::Limits::new(limits);
        self
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ready(&self) -> Result<(), String> {
        let room = gochat_core::model::Log::Room(gochat_core::model::DEFAULT_ROOM);
        self.store
            .last_seq(room)
            .await
            .map(|_| ())
            .map_err(|e| format!("store: {}", gochat_core::error::with_causes(&e)))
    }

    /// The history settings in force.
    pub fn history_config(&self) -> &HistoryConfig {
        &self.history
    }

    /// A user by id, from the name cache or the store (a private message must not cost a
    /// database round trip).
    pub(crate) async fn user_by_id(&self, id: UserId) -> Result<Option<User>, Fault> {
        if let Some(name) = self.names.get(&id) {
            return Ok(Some(User {
                id,
                name: name.clone(),
            }));
        }
        let user = self.store.user_by_id(id).await.map_err(store_unavailable)?;
        if let Some(u) = &user {
            if self.names.len() >= NAME_CACHE_MAX {
                self.names.clear();
            }
            self.names.insert(u.id, u.name.clone());
        }
        Ok(user)
    }

    /// Hold while reading `room_id`'s members and queueing what was read (see
    /// [`Logic::roster_order`]).
    pub(crate) async fn roster_turn(&self, room_id: RoomId) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = room_id.rem_euclid(ROSTER_STRIPES as RoomId) as usize;
        self.roster_order[stripe].lock().await
    }

    /// The user a live token belongs to.
    pub(crate) async fn session(&self, token: &str) -> Result<User, Fault> {
        self.sessions
            .get(token)
            .await
            .map_err(internal)?
            .ok_or(Fault::Session)
    }

    /// Queue a delivery with a fresh id.
    pub(crate) async fn publish(
        &self,
        target: Target,
        kind: PushKind,
        payload: Vec<u8>,
    ) -> Result<(), Fault> {
        self.deliver(Delivery::new(self.ids.next_id(), target, kind, payload))
            .await
    }

    /// Queue a delivery.
    pub(crate) async fn deliver(&self, delivery: Delivery) -> Result<(), Fault> {
        self.queue.publish(delivery).await.map_err(internal)
    }
}

#[async_trait]
impl LogicService for Logic {
    async fn register(&self, name: String, password: String) -> Result<String, Fault> {
        self.register_user(name, password).await
    }

    async fn login(&self, name: String, password: String) -> Result<String, Fault> {
        self.log_in(name, password).await
    }

    async fn check_auth(&self, token: String) -> Result<User, Fault> {
        self.session(&token).await
    }

    async fn logout(&self, token: String) -> Result<(), Fault> {
        self.log_out(token).await
    }

    async fn connect(&self, req: ConnectRequest) -> Result<Welcome, Fault> {
        self.admit(req).await
    }

    async fn join(&self, req: JoinRequest) -> Result<u64, Fault> {
        self.join_room(req).await
    }

    async fn disconnect(&self, presence: Presence) -> Result<(), Fault> {
        self.release(presence).await
    }

    async fn push(&self, req: PushRequest) -> Result<Posted, Fault> {
        self.post_private(req).await
    }

    async fn push_room(&self, req: RoomPushRequest) -> Result<Posted, Fault> {
        self.post_room(req).await
    }

    async fn history(&self, req: HistoryRequest) -> Result<Page, Fault> {
        self.read_history(req).await
    }

    async fn count(&self, token: String, room_id: RoomId) -> Result<(), Fault> {
        self.push_count(token, room_id).await
    }

    async fn room_info(&self, token: String, room_id: RoomId) -> Result<(), Fault> {
        let user = self.session(&token).await?;
        self.limits.info(user.id)?;
        self.publish_roster(room_id, false).await
    }

    async fn sync_presence(
        &self,
        server_id: String,
        presences: Vec<Presence>,
        ttl_ms: u64,
    ) -> Result<(), Fault> {
        self.sync_server(server_id, presences, ttl_ms).await
    }

    async fn renew_presence(&self, server_id: String, ttl_ms: u64) -> Result<bool, Fault> {
        self.renew_server(server_id, ttl_ms).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashing_leaves_a_core_unless_told_otherwise() {
        use super::hash_workers;
        assert_eq!(hash_workers(0, 1), 1);
        assert_eq!(hash_workers(0, 2), 1);
        assert_eq!(hash_workers(0, 8), 7);
        assert_eq!(hash_workers(3, 2), 3);
    }
}
