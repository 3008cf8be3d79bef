//! [`SqliteSessions`]: the standalone sessions that survive a restart — tokens kept in the
//! SQLite file beside users and history, presence in memory (it is re-asserted by the
//! connect layer anyway).

use super::{MemorySessions, Sessions};
use crate::Result;
use crate::model::{Presence, RoomId, User, UserId};
use crate::store::SqliteStore;
use async_trait::async_trait;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Tokens in SQLite (written through before a login answers, read at open), served from
/// memory; presence in memory. A restart of the process logs nobody out.
pub struct SqliteSessions {
    store: SqliteStore,
    /// Every live token and all presence: the fast path of every request.
    memory: MemorySessions,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl SqliteSessions {
    /// Sessions in `store`'s file, with the logins still valid loaded.
    pub async fn open(store: SqliteStore) -> Result<Self> {
        let memory = MemorySessions::new();
        let now = now_ms();
        for (token, user, expires_ms) in store.live_logins(now).await? {
            let left = Duration::from_millis((expires_ms - now).max(0) as u64);
            memory.login(&token, &user, left).await?;
        }
        Ok(Self { store, memory })
    }
}

#[async_trait]
impl Sessions for SqliteSessions {
    async fn login(&self, token: &str, user: &User, ttl: Duration) -> Result<Option<String>> {
        let expires = now_ms() + ttl.as_millis() as i64;
        self.store.save_login(user, token, expires).await?;
        self.memory.login(token, user, ttl).await
    }

    async fn get(&self, token: &str) -> Result<Option<User>> {
        self.memory.get(token).await
    }

    async fn logout(&self, token: &str) -> Result<Option<User>> {
        let user = self.memory.logout(token).await?;
        if user.is_some() {
            self.store.delete_login(token).await?;
        }
        Ok(user)
    }

    async fn join(&self, presence: &Presence) -> Result<bool> {
        self.memory.join(presence).await
    }

    async fn leave(&self, presence: &Presence) -> Result<bool> {
        self.memory.leave(presence).await
    }

    async fn roster(&self, room: RoomId) -> Result<Vec<User>> {
        self.memory.roster(room).await
    }

    async fn room_size(&self, room: RoomId) -> Result<usize> {
        self.memory.room_size(room).await
    }

    async fn room_servers(&self, room: RoomId) -> Result<Vec<String>> {
        self.memory.room_servers(room).await
    }

    async fn user_servers(&self, user: UserId) -> Result<Vec<String>> {
        self.memory.user_servers(user).await
    }

    async fn drop_server(&self, server_id: &str) -> Result<()> {
        self.memory.drop_server(server_id).await
    }

    async fn sync_server(
        &self,
        server_id: &str,
        presences: &[Presence],
        ttl: Duration,
    ) -> Result<()> {
        self.memory.sync_server(server_id, presences, ttl).await
    }

    async fn renew_server(&self, server_id: &str, ttl: Duration) -> Result<bool> {
        self.memory.renew_server(server_id, ttl).await
    }

    async fn server_alive(&self, server_id: &str) -> Result<bool> {
        self.memory.server_alive(server_id).await
    }

    async fn expire_servers(&self) -> Result<Vec<String>> {
        self.memory.expire_servers().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        crate::conformance::sessions::run_all(|| async {
            SqliteSessions::open(SqliteStore::in_memory().unwrap())
                .await
                .unwrap()
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logins_survive_a_reopen_and_logouts_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gochat.db");
        let (a, b) = (
            User {
                id: 1,
                name: "a".into(),
            },
            User {
                id: 2,
                name: "b".into(),
            },
        );
        {
            let s = SqliteSessions::open(SqliteStore::open(&path).unwrap())
                .await
                .unwrap();
            s.login("ta-1", &a, Duration::from_secs(3600))
                .await
                .unwrap();
            s.login("ta-2", &a, Duration::from_secs(3600))
                .await
                .unwrap(); // revokes ta-1
            s.login("tb", &b, Duration::from_secs(3600)).await.unwrap();
            s.logout("tb").await.unwrap();
            s.login(
                "short",
                &User {
                    id: 3,
                    name: "c".into(),
                },
                Duration::from_millis(1),
            )
            .await
            .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let s = SqliteSessions::open(SqliteStore::open(&path).unwrap())
            .await
            .unwrap();
        assert_eq!(
            s.get("ta-2").await.unwrap(),
            Some(a),
            "the current login survives"
        );
        assert_eq!(s.get("ta-1").await.unwrap(), None, "a revoked one does not");
        assert_eq!(s.get("tb").await.unwrap(), None, "nor a logged-out one");
        assert_eq!(s.get("short").await.unwrap(), None, "nor an expired one");
    }
}
