//! The abuse limits the api enforces per client address (`[limits]`): failed logins (counted
//! before logic hashes the password) and registrations. Addresses in `trusted_networks` are
//! exempt; behind a proxy listed in `trusted_proxies`, the address is the last one of its
//! `X-Forwarded-For`.

use gochat_core::config::LimitsConfig;
use gochat_core::limits::{Buckets, Lockout, Networks};
use hyper::Request;
use std::net::IpAddr;
use std::time::Duration;

/// Per-address limits of one api server.
pub struct ApiLimits {
    trusted: Networks,
    proxies: Networks,
    logins: Option<Lockout<IpAddr>>,
    registrations: Option<Buckets<IpAddr>>,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self::new(&LimitsConfig::default())
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        format!("{} s", s.max(1))
    } else {
        format!("{} min", s.div_ceil(60))
    }
}

impl ApiLimits {
    /// From `[limits]` (already validated: unparsable networks are left out).
    pub fn new(c: &LimitsConfig) -> Self {
        let refill = 1.0 / c.registration_refill_secs.max(1) as f64;
        Self {
            trusted: Networks::parse(&c.trusted_networks).unwrap_or_default(),
            proxies: Networks::parse(&c.trusted_proxies).unwrap_or_default(),
            logins: Lockout::new(c.login_failures_per_ip, c.login_lockout()),
            registrations: Buckets::new(refill, c.registrations_per_ip),
        }
    }

    /// The client address of `req`, if the per-address limits apply to it.
    pub fn client<B>(&self, req: &Request<B>) -> Option<IpAddr> {
        let peer = gochat_core::http::peer_of(req)?.ip();
        let ip = if self.proxies.contains(peer) {
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(peer)
        } else {
            peer
        };
        (!self.trusted.contains(ip)).then_some(ip)
    }

    /// A login from `ip` starts: counted as a failure until it succeeds.
    pub fn login(&self, ip: IpAddr) -> Result<(), String> {
        match self.logins.as_ref().map(|l| l.attempt(&ip)) {
            Some(Err(left)) => {
                gochat_core::metrics::metrics().limited("login_failures_per_ip");
                Err(format!(
                    "too many failed logins from this address: locked, try again in {}",
                    human(left)
                ))
            }
            _ => Ok(()),
        }
    }

    /// The login from `ip` succeeded.
    pub fn login_ok(&self, ip: IpAddr) {
        if let Some(l) = &self.logins {
            l.refund(&ip);
        }
    }

    /// A registration from `ip`.
    pub fn register(&self, ip: IpAddr) -> Result<(), String> {
        match self.registrations.as_ref().map(|b| b.take(&ip)) {
            Some(Err(wait)) => {
                gochat_core::metrics::metrics().limited("registrations_per_ip");
                Err(format!(
                    "too many registrations from this address; retry in {}",
                    human(wait)
                ))
            }
            _ => Ok(()),
        }
    }
}
