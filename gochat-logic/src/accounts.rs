//! Accounts: registering, logging in and out (argon2id passwords, legacy SHA-1 rows
//! rehashed once, single-login revocation), and gochat's demo users.

use crate::password::Verdict;
use crate::service::{Error, Logic, internal, store_unavailable};
use crate::token::new_token;
use gochat_core::model::{PushKind, SessionEnd, Target, User, UserId};
use gochat_core::rpc::Fault;

/// gochat's message for a taken name (kept byte for byte for its clients).
pub const NAME_TAKEN: &str = "this user name already have , please login !!!";
/// gochat's message for a failed login.
pub const BAD_LOGIN: &str = "no this user or password error!";
/// The password gochat's demo users ship with.
const DEMO_PASSWORD: &str = "111111";

impl Logic {
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
        let min = self.limits.min_password_bytes.max(1);
        if password.len() < min || password.len() > self.config.max_password_bytes {
            return Err(Fault::Rejected(format!(
                "passWord must be {min} to {} bytes",
                self.config.max_password_bytes
            )));
        }
        Ok(())
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

    /// Close the connections that authenticated with `token`, wherever they are.
    async fn close_token(&self, user: UserId, token: String, end: SessionEnd) -> Result<(), Fault> {
        let target = Target::Token {
            user_id: user,
            token,
        };
        self.publish(target, PushKind::Close(end), Vec::new()).await
    }

    pub(crate) async fn register_user(
        &self,
        name: String,
        password: String,
    ) -> Result<String, Fault> {
        self.check_credentials(&name, &password)?;
        let hash = self.hash(&password).await?;
        let user = match self.store.create_user(&name, &hash).await {
            Ok(u) => u,
            Err(gochat_core::Error::NameTaken) => return Err(Fault::Rejected(NAME_TAKEN.into())),
            Err(e) => return Err(store_unavailable(e)),
        };
        self.start_session(&user).await
    }

    pub(crate) async fn log_in(&self, name: String, password: String) -> Result<String, Fault> {
        if name.is_empty() || password.is_empty() || password.len() > self.config.max_password_bytes
        {
            return Err(Fault::Rejected(BAD_LOGIN.into()));
        }
        // Before the store and the hasher: a locked name costs a map lookup.
        self.limits.login_attempt(&name)?;
        let found = self.store.user_by_name(&name).await.map_err(|e| {
            self.limits.login_refund(&name);
            store_unavailable(e)
        });
        let Some(record) = found? else {
            gochat_core::metrics::metrics().login("wrong");
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
            Verdict::Wrong => {
                gochat_core::metrics::metrics().login("wrong");
                return Err(Fault::Rejected(BAD_LOGIN.into()));
            }
            Verdict::Ok => {}
            Verdict::Rehash(new_hash) => {
                self.store
                    .set_password_hash(record.id, &new_hash)
                    .await
                    .map_err(store_unavailable)?;
            }
        }
        self.limits.login_succeeded(&name);
        gochat_core::metrics::metrics().login("ok");
        self.start_session(&record.user()).await
    }

    pub(crate) async fn log_out(&self, token: String) -> Result<(), Fault> {
        let user = self
            .sessions
            .logout(&token)
            .await
            .map_err(internal)?
            .ok_or(Fault::Session)?;
        self.close_token(user.id, token, SessionEnd::LoggedOut)
            .await
    }
}
