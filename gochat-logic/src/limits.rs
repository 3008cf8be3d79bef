//! The abuse limits logic enforces (`[limits]`): failed logins per user name (checked before
//! the password is hashed), posts and roster/count requests per user, the shortest password
//! a registration takes. Kept in this instance's memory.

use gochat_core::config::LimitsConfig;
use gochat_core::limits::{Buckets, Lockout};
use gochat_core::model::UserId;
use gochat_core::rpc::Fault;
use std::time::Duration;

pub(crate) struct Limits {
    pub(crate) min_password_bytes: usize,
    names: Option<Lockout<String>>,
    posts: Option<Buckets<UserId>>,
    info: Option<Buckets<UserId>>,
}

/// "0.4 s", "15 s", "3 min": how long to wait, as a person reads it.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{:.1} s", s.max(0.1))
    } else if s < 120.0 {
        format!("{} s", s.ceil() as u64)
    } else {
        format!("{} min", (s / 60.0).ceil() as u64)
    }
}

impl Limits {
    pub(crate) fn new(c: &LimitsConfig) -> Self {
        Self {
            min_password_bytes: c.min_password_bytes,
            names: Lockout::new(c.login_failures_per_name, c.login_lockout()),
            posts: Buckets::new(f64::from(c.posts_per_sec), c.post_burst),
            info: Buckets::new(f64::from(c.info_per_sec), c.info_burst),
        }
    }

    /// Before a login's password is looked at: count the attempt as a failure (so that
    /// concurrent guesses cannot all pass), unless the name is locked.
    pub(crate) fn login_attempt(&self, name: &str) -> Result<(), Fault> {
        match self.names.as_ref().map(|l| l.attempt(&name.to_owned())) {
            Some(Err(left)) => {
                let m = gochat_core::metrics::metrics();
                m.limited("login_failures_per_name");
                m.login("locked");
                Err(Fault::Rejected(format!(
                    "too many failed logins for this user name: locked, try again in {}",
                    human(left)
                )))
            }
            _ => Ok(()),
        }
    }

    /// The attempt never got to the password (the store failed): not a failure.
    pub(crate) fn login_refund(&self, name: &str) {
        if let Some(l) = &self.names {
            l.refund(&name.to_owned());
        }
    }

    /// The password was right: the name's failures are forgotten.
    pub(crate) fn login_succeeded(&self, name: &str) {
        if let Some(l) = &self.names {
            l.succeeded(&name.to_owned());
        }
    }

    /// A post by `user`, room or private, over REST or a socket.
    pub(crate) fn post(&self, user: UserId) -> Result<(), Fault> {
        take(&self.posts, user, "posts", "posts")
    }

    /// A roster or count request by `user`.
    pub(crate) fn info(&self, user: UserId) -> Result<(), Fault> {
        take(&self.info, user, "roster and count requests", "info")
    }
}

fn take(
    b: &Option<Buckets<UserId>>,
    user: UserId,
    what: &str,
    label: &'static str,
) -> Result<(), Fault> {
    match b.as_ref().map(|b| b.take(&user)) {
        Some(Err(wait)) => {
            gochat_core::metrics::metrics().limited(label);
            Err(Fault::Rejected(format!(
                "rate limited: too many {what}; retry in {}",
                human(wait)
            )))
        }
        _ => Ok(()),
    }
}
