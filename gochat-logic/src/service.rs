//! [`Logic`]: the logic layer's [`LogicService`].

use crate::password::{Passwords, Verdict};
use crate::token::new_token;
use async_trait::async_trait;
use gochat_core::config::LogicConfig;
use gochat_core::ids::Snowflake;
use gochat_core::model::{
    Delivery, NO_ROOM, Presence, PushKind, RoomId, SessionEnd, Target, User, UserId,
};
use gochat_core::protocol::push::{
    ChatMessage, OP_PRIVATE, OP_ROOM, Roster, encode_count, encode_message, encode_roster,
};
use gochat_core::protocol::time::now_string;
use gochat_core::rpc::{ConnectRequest, Fault, LogicService, PushRequest, RoomPushRequest};
use gochat_core::{Queue, Sessions, Store};
use std::sync::Arc;
use std::time::Duration;

/// gochat's message for a taken name (kept byte for byte for its clients).
pub const NAME_TAKEN: &str = "this user name already have , please login !!!";
/// gochat's message for a failed login.
pub const BAD_LOGIN: &str = "no this user or password error!";

/// Most recipient names kept in memory (about 64 MiB at the bound).
const NAME_CACHE_MAX: usize = 1_000_000;

/// The password gochat's demo users ship with.
const DEMO_PASSWORD: &str = "111111";

/// Auth, sessions, presence and message routing. Stateless itself: everything it knows is
/// in the Store and the Sessions, so any number of instances can serve the same cluster.
pub struct Logic {
    config: LogicConfig,
    store: Arc<dyn Store>,
    sessions: Arc<dyn Sessions>,
    queue: Arc<dyn Queue>,
    ids: Snowflake,
    passwords: Passwords,
    /// Names of users looked up as recipients, by id. A user's id and name never change, so
    /// entries never go stale; the map is cleared when it reaches [`NAME_CACHE_MAX`].
    names: dashmap::DashMap<UserId, String>,
    /// One permit per core: argon2 is CPU- and memory-bound (19 MiB per hash by default), so
    /// a burst of logins queues here instead of starting hundreds of hashes at once.
    hashing: tokio::sync::Semaphore,
}

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

fn internal(e: impl std::fmt::Display) -> Fault {
    tracing::error!("logic: {e}");
    Fault::Internal(e.to_string())
}

impl Logic {
    /// A logic layer over the given backends.
    pub fn new(
        config: LogicConfig,
        store: Arc<dyn Store>,
        sessions: Arc<dyn Sessions>,
        queue: Arc<dyn Queue>,
    ) -> Result<Self, Error> {
        Ok(Self {
            ids: Snowflake::new(config.node_id),
            passwords: Passwords::new(config.argon2_memory_kib, config.argon2_iterations)?,
            names: dashmap::DashMap::new(),
            hashing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            config,
            store,
            sessions,
            queue,
        })
    }

    /// Create gochat's demo users (`demo`, `test`, `admin`, password `111111`) if missing.
    pub async fn ensure_demo_users(&self) -> Result<(), Error> {
        for name in ["demo", "test", "admin"] {
            if self.store.user_by_name(name).await?.is_none() {
                let hash = self.hash(DEMO_PASSWORD).await?;
                match self.store.create_user(name, &hash).await {
                    Ok(_) | Err(gochat_core::Error::NameTaken) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// A user by id, from the name cache or the store (a private message must not cost a
    /// database round trip).
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, Fault> {
        if let Some(name) = self.names.get(&id) {
            return Ok(Some(User {
                id,
                name: name.clone(),
            }));
        }
        let user = self.store.user_by_id(id).await.map_err(internal)?;
        if let Some(u) = &user {
            if self.names.len() >= NAME_CACHE_MAX {
                self.names.clear();
            }
            self.names.insert(u.id, u.name.clone());
        }
        Ok(user)
    }

    async fn hash(&self, password: &str) -> Result<String, Fault> {
        let (p, pw) = (self.passwords.clone(), password.to_owned());
        let _permit = self.hashing.acquire().await.map_err(internal)?;
        tokio::task::spawn_blocking(move || p.hash(&pw))
            .await
            .map_err(internal)?
            .map_err(internal)
    }

    fn check_credentials(&self, name: &str, password: &str) -> Result<(), Fault> {
        let bad_name = name.is_empty()
            || name.len() > self.config.max_name_bytes
            || name.chars().any(char::is_control)
            || name.trim() != name;
        if bad_name {
            return Err(Fault::Rejected(format!(
                "userName must be 1 to {} bytes, without control characters or surrounding spaces",
                self.config.max_name_bytes
            )));
        }
        if password.is_empty() || password.len() > self.config.max_password_bytes {
            return Err(Fault::Rejected(format!(
                "passWord must be 1 to {} bytes",
                self.config.max_password_bytes
            )));
        }
        Ok(())
    }

    fn check_msg(&self, msg: &str) -> Result<(), Fault> {
        if msg.is_empty() {
            return Err(Fault::Rejected("msg is empty".into()));
        }
        if msg.len() > self.config.max_msg_bytes {
            return Err(Fault::Rejected(format!(
                "msg is longer than {} bytes",
                self.config.max_msg_bytes
            )));
        }
        Ok(())
    }

    async fn session(&self, token: &str) -> Result<User, Fault> {
        self.sessions
            .get(token)
            .await
            .map_err(internal)?
            .ok_or(Fault::Session)
    }

    /// Log `user` in with a new token; the connections of the login it revokes are closed.
    async fn start_session(&self, user: &User) -> Result<String, Fault> {
        let token = new_token();
        let revoked = self
            .sessions
            .login(&token, user, self.config.session_ttl())
            .await
            .map_err(internal)?;
        if let Some(old) = revoked {
            self.close_token(user.id, old, SessionEnd::Revoked).await?;
        }
        Ok(token)
    }

    async fn publish(&self, target: Target, kind: PushKind, payload: Vec<u8>) -> Result<(), Fault> {
        let delivery = Delivery {
            id: self.ids.next_id(),
            target,
            kind,
            payload: payload.into(),
        };
        self.queue.publish(delivery).await.map_err(internal)
    }

    async fn publish_roster(&self, room_id: RoomId) -> Result<(), Fault> {
        let users = self.sessions.roster(room_id).await.map_err(internal)?;
        let roster: Roster = users
            .into_iter()
            .map(|u| (u.id.to_string(), u.name))
            .collect();
        self.publish(
            Target::Room(room_id),
            PushKind::Roster,
            encode_roster(room_id, &roster),
        )
        .await
    }

    /// Close the connections that authenticated with `token`, wherever they are.
    async fn close_token(&self, user: UserId, token: String, end: SessionEnd) -> Result<(), Fault> {
        self.publish(
            Target::Token {
                user_id: user,
                token,
            },
            PushKind::Close(end),
            Vec::new(),
        )
        .await
    }
}

#[async_trait]
impl LogicService for Logic {
    async fn register(&self, name: String, password: String) -> Result<String, Fault> {
        self.check_credentials(&name, &password)?;
        let hash = self.hash(&password).await?;
        let user = match self.store.create_user(&name, &hash).await {
            Ok(u) => u,
            Err(gochat_core::Error::NameTaken) => return Err(Fault::Rejected(NAME_TAKEN.into())),
            Err(e) => return Err(internal(e)),
        };
        self.start_session(&user).await
    }

    async fn login(&self, name: String, password: String) -> Result<String, Fault> {
        if name.is_empty() || password.is_empty() || password.len() > self.config.max_password_bytes
        {
            return Err(Fault::Rejected(BAD_LOGIN.into()));
        }
        let Some(record) = self.store.user_by_name(&name).await.map_err(internal)? else {
            return Err(Fault::Rejected(BAD_LOGIN.into()));
        };
        let (p, pw, stored) = (
            self.passwords.clone(),
            password,
            record.password_hash.clone(),
        );
        let verdict = {
            let _permit = self.hashing.acquire().await.map_err(internal)?;
            tokio::task::spawn_blocking(move || p.verify(&pw, &stored))
                .await
                .map_err(internal)?
        };
        match verdict {
            Verdict::Wrong => return Err(Fault::Rejected(BAD_LOGIN.into())),
            Verdict::Ok => {}
            Verdict::Rehash(new_hash) => {
                self.store
                    .set_password_hash(record.id, &new_hash)
                    .await
                    .map_err(internal)?;
            }
        }
        self.start_session(&record.user()).await
    }

    async fn check_auth(&self, token: String) -> Result<User, Fault> {
        self.session(&token).await
    }

    async fn logout(&self, token: String) -> Result<(), Fault> {
        let user = self
            .sessions
            .logout(&token)
            .await
            .map_err(internal)?
            .ok_or(Fault::Session)?;
        self.close_token(user.id, token, SessionEnd::LoggedOut)
            .await
    }

    async fn connect(&self, req: ConnectRequest) -> Result<User, Fault> {
        let user = self.session(&req.token).await?;
        self.sessions
            .join(&Presence {
                server_id: req.server_id,
                user_id: user.id,
                user_name: user.name.clone(),
                room_id: req.room_id,
            })
            .await
            .map_err(internal)?;
        Ok(user)
    }

    async fn disconnect(&self, presence: Presence) -> Result<(), Fault> {
        self.sessions.leave(&presence).await.map_err(internal)?;
        if presence.room_id != NO_ROOM {
            self.publish_roster(presence.room_id).await?;
        }
        Ok(())
    }

    async fn push(&self, req: PushRequest) -> Result<(), Fault> {
        let from = self.session(&req.token).await?;
        self.check_msg(&req.msg)?;
        let Some(to) = self.user_by_id(req.to_user_id).await? else {
            return Err(Fault::Rejected(format!(
                "no user with id {}",
                req.to_user_id
            )));
        };
        let msg = ChatMessage {
            code: 0,
            msg: req.msg,
            from_user_id: from.id,
            from_user_name: from.name,
            to_user_id: to.id,
            to_user_name: to.name,
            room_id: req.room_id,
            op: OP_PRIVATE,
            create_time: String::new(),
        };
        self.publish(Target::User(to.id), PushKind::Message, encode_message(&msg))
            .await
    }

    async fn push_room(&self, req: RoomPushRequest) -> Result<(), Fault> {
        let from = self.session(&req.token).await?;
        self.check_msg(&req.msg)?;
        let msg = ChatMessage {
            code: 0,
            msg: req.msg,
            from_user_id: from.id,
            from_user_name: from.name,
            to_user_id: 0,
            to_user_name: String::new(),
            room_id: req.room_id,
            op: OP_ROOM,
            create_time: now_string(),
        };
        self.publish(
            Target::Room(req.room_id),
            PushKind::Message,
            encode_message(&msg),
        )
        .await
    }

    async fn count(&self, token: String, room_id: RoomId) -> Result<(), Fault> {
        self.session(&token).await?;
        let n = self.sessions.roster(room_id).await.map_err(internal)?.len();
        self.publish(Target::Room(room_id), PushKind::Count, encode_count(n))
            .await
    }

    async fn room_info(&self, token: String, room_id: RoomId) -> Result<(), Fault> {
        self.session(&token).await?;
        self.publish_roster(room_id).await
    }

    async fn sync_presence(
        &self,
        server_id: String,
        presences: Vec<Presence>,
        ttl_ms: u64,
    ) -> Result<(), Fault> {
        self.sessions
            .sync_server(&server_id, &presences, Duration::from_millis(ttl_ms))
            .await
            .map_err(internal)
    }

    async fn renew_presence(&self, server_id: String, ttl_ms: u64) -> Result<bool, Fault> {
        self.sessions
            .renew_server(&server_id, Duration::from_millis(ttl_ms))
            .await
            .map_err(internal)
    }
}
