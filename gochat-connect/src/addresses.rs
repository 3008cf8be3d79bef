//! Per-address connection limits (`[limits]`): new connections per second (a token bucket
//! with a burst) and connections open at once, checked right after accept, before the
//! handshake. Addresses in `trusted_networks` are exempt.

use gochat_core::config::LimitsConfig;
use gochat_core::limits::{AddressTicket, Buckets, Networks, OpenCount, OpenTicket, PerAddress};
use gochat_core::model::UserId;
use std::net::IpAddr;
use std::sync::Arc;

pub(crate) struct AddressLimits {
    trusted: Networks,
    rate: Option<Buckets<IpAddr>>,
    open: Option<Arc<PerAddress>>,
    /// Open connections per user (after authentication), trusted networks included.
    per_user: Option<Arc<OpenCount<UserId>>>,
}

impl AddressLimits {
    pub(crate) fn new(c: &LimitsConfig) -> Self {
        Self {
            trusted: Networks::parse(&c.trusted_networks).unwrap_or_default(),
            rate: Buckets::new(
                f64::from(c.connections_per_ip_per_sec),
                c.connection_burst_per_ip,
            ),
            open: PerAddress::new(c.open_connections_per_ip),
            per_user: OpenCount::new(c.open_connections_per_user),
        }
    }

    /// Count an authenticated connection of `user`: `Err` when the user has its maximum
    /// open here already.
    pub(crate) fn admit_user(&self, user: UserId) -> Result<Option<OpenTicket<UserId>>, ()> {
        match &self.per_user {
            Some(count) => count.admit(user).map(Some).ok_or(()),
            None => Ok(None),
        }
    }

    /// Admit a connection from `ip`: `Err` if over a limit; else what counts it open (none
    /// when no open-connection limit applies), to be held until it closes.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Option<AddressTicket>, ()> {
        if self.trusted.contains(ip) {
            return Ok(None);
        }
        if let Some(r) = &self.rate
            && r.take(&ip).is_err()
        {
            return Err(());
        }
        match &self.open {
            Some(open) => open.admit(ip).map(Some).ok_or(()),
            None => Ok(None),
        }
    }
}
