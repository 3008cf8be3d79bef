//! Abuse limits, kept in memory by the process that enforces them: token buckets (a rate
//! with a burst), lockouts after repeated failures, counted open connections per address,
//! and the trusted networks that none of the per-address limits apply to.
//!
//! Each check is a map lookup and a little arithmetic, made before the expensive work it
//! protects (a password hash, a store write), so a client over its limit costs almost
//! nothing and never slows anyone else.

use crate::hash::FastDashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entries a limiter keeps before it forgets the idle ones.
const SWEEP_AT: usize = 100_000;

/// Token buckets by key: `burst` tokens at most, `per_sec` added back each second.
pub struct Buckets<K: Hash + Eq> {
    map: FastDashMap<K, (f64, Instant)>,
    per_sec: f64,
    burst: f64,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// Buckets of `burst` tokens refilled at `per_sec`; `None` (no limit) when `burst` is 0.
    pub fn new(per_sec: f64, burst: u32) -> Option<Self> {
        (burst > 0).then(|| Self {
            map: FastDashMap::default(),
            per_sec: per_sec.max(0.0),
            burst: f64::from(burst),
        })
    }

    /// Take a token for `key`; when there is none, how long until there is.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        self.sweep();
        let now = Instant::now();
        let mut e = self.map.entry(key.clone()).or_insert((self.burst, now));
        let (tokens, at) = *e;
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.per_sec).min(self.burst);
        if tokens >= 1.0 {
            *e = (tokens - 1.0, now);
            Ok(())
        } else {
            *e = (tokens, now);
            Err(wait_for(1.0 - tokens, self.per_sec))
        }
    }

    fn sweep(&self) {
        if self.map.len() >= SWEEP_AT {
            // A bucket full again is the same as no bucket.
            let now = Instant::now();
            self.map.retain(|_, (t, at)| {
                *t + now.duration_since(*at).as_secs_f64() * self.per_sec < self.burst
            });
        }
    }
}

fn wait_for(tokens: f64, per_sec: f64) -> Duration {
    if per_sec <= 0.0 {
        Duration::MAX
    } else {
        Duration::from_secs_f64(tokens / per_sec)
    }
}

/// Lockouts by key: `max` failures within `window` lock the key until the window ends.
pub struct Lockout<K: Hash + Eq> {
    map: FastDashMap<K, (u32, Instant)>,
    max: u32,
    window: Duration,
}

impl<K: Hash + Eq + Clone> Lockout<K> {
    /// `None` (no limit) when `max` is 0.
    pub fn new(max: u32, window: Duration) -> Option<Self> {
        (max > 0).then(|| Self {
            map: FastDashMap::default(),
            max,
            window,
        })
    }

    /// Count an attempt for `key` as a failure until it turns out otherwise
    /// ([`succeeded`](Self::succeeded), [`refund`](Self::refund)), unless `key` is locked:
    /// checked and counted at once, so concurrent attempts cannot all slip under the limit.
    pub fn attempt(&self, key: &K) -> Result<(), Duration> {
        self.sweep();
        let now = Instant::now();
        let mut e = self.map.entry(key.clone()).or_insert((0, now));
        if now.duration_since(e.1) >= self.window {
            *e = (0, now);
        }
        if e.0 >= self.max {
            return Err(self.window.saturating_sub(now.duration_since(e.1)));
        }
        e.0 += 1;
        Ok(())
    }

    /// Take back one attempt of `key` (it did not fail).
    pub fn refund(&self, key: &K) {
        if let Some(mut e) = self.map.get_mut(key) {
            e.0 = e.0.saturating_sub(1);
        }
    }

    fn sweep(&self) {
        if self.map.len() >= SWEEP_AT {
            self.map
                .retain(|_, (_, since)| since.elapsed() < self.window);
        }
    }

    /// A success clears `key`'s failures.
    pub fn succeeded(&self, key: &K) {
        self.map.remove(key);
    }
}

/// Networks the per-address limits do not apply to (parsed from `a.b.c.d/n` or `x::/n`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<(IpAddr, u8)>);

impl Networks {
    /// Parse every entry; the error names the one that does not parse.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        list.iter()
            .map(|s| {
                let (ip, len) = s.split_once('/').unwrap_or((s, ""));
                let ip: IpAddr = ip.parse().map_err(|_| format!("{s:?}: not an address"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let len = if len.is_empty() {
                    max
                } else {
                    len.parse::<u8>()
                        .ok()
                        .filter(|l| *l <= max)
                        .ok_or_else(|| format!("{s:?}: prefix length not 0..={max}"))?
                };
                Ok((ip, len))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `ip` is in one of the networks (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|(net, len)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix(u32::from(*n).into(), u32::from(a).into(), *len, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix(u128::from(*n), u128::from(a), *len, 128),
            _ => false,
        })
    }
}

fn prefix(net: u128, addr: u128, len: u8, bits: u32) -> bool {
    if len == 0 {
        return true;
    }
    let shift = bits - u32::from(len);
    (net >> shift) == (addr >> shift)
}

/// Open connections counted per key (an address, a user), up to `max` each.
pub struct OpenCount<K: Hash + Eq> {
    open: FastDashMap<K, u32>,
    max: u32,
}

/// One counted connection; uncounted when dropped.
pub struct OpenTicket<K: Hash + Eq + Clone> {
    owner: Arc<OpenCount<K>>,
    key: K,
}

/// Open connections per client address.
pub type PerAddress = OpenCount<IpAddr>;
/// One connection counted against its address.
pub type AddressTicket = OpenTicket<IpAddr>;

impl<K: Hash + Eq + Clone> OpenCount<K> {
    /// `None` (no limit) when `max` is 0.
    pub fn new(max: u32) -> Option<Arc<Self>> {
        (max > 0).then(|| {
            Arc::new(Self {
                open: FastDashMap::default(),
                max,
            })
        })
    }

    /// Count one more connection for `key`, unless it has `max` open.
    pub fn admit(self: &Arc<Self>, key: K) -> Option<OpenTicket<K>> {
        let mut n = self.open.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(OpenTicket {
            owner: self.clone(),
            key,
        })
    }

    /// How many are open for `key`.
    pub fn open(&self, key: &K) -> u32 {
        self.open.get(key).map_or(0, |n| *n)
    }
}

impl<K: Hash + Eq + Clone> Drop for OpenTicket<K> {
    fn drop(&mut self) {
        self.owner.open.remove_if_mut(&self.key, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let b = Buckets::new(10.0, 5).unwrap();
        for _ in 0..5 {
            b.take(&1).unwrap();
        }
        let wait = b.take(&1).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(b.take(&2).is_ok(), "another key is not affected");
        std::thread::sleep(Duration::from_millis(150));
        assert!(b.take(&1).is_ok(), "refilled");
        assert!(Buckets::<u8>::new(1.0, 0).is_none());
    }

    #[test]
    fn a_lockout_locks_after_max_failures_for_the_window() {
        let l = Lockout::new(3, Duration::from_millis(50)).unwrap();
        for _ in 0..3 {
            assert!(l.attempt(&"bob").is_ok());
        }
        assert!(l.attempt(&"bob").is_err());
        assert!(l.attempt(&"alice").is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(l.attempt(&"bob").is_ok(), "the window ended");
        l.attempt(&"carol").unwrap();
        l.succeeded(&"carol");
        assert!(l.map.get(&"carol").is_none());
        // Attempts count before their outcome is known; a refund takes one back.
        for _ in 0..3 {
            l.attempt(&"dave").unwrap();
        }
        assert!(l.attempt(&"dave").is_err(), "a fourth attempt in flight");
        l.refund(&"dave");
        assert!(l.attempt(&"dave").is_ok());
    }

    #[test]
    fn networks_match_by_prefix_and_reject_nonsense() {
        let n =
            Networks::parse(&["127.0.0.0/8".into(), "::1/128".into(), "10.1.2.3".into()]).unwrap();
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "10.1.2.3",
            "::ffff:127.0.0.2",
        ] {
            assert!(n.contains(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["128.0.0.1", "10.1.2.4", "::2"] {
            assert!(!n.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(
            Networks::parse(&["0.0.0.0/0".into()])
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["nope", "10.0.0.0/33", "::/129", "1.2.3.4/x"] {
            assert!(Networks::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn open_connections_per_address_are_counted_and_released() {
        let p = PerAddress::new(2).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = p.admit(ip).unwrap();
        let _b = p.admit(ip).unwrap();
        assert!(p.admit(ip).is_none());
        assert!(p.admit("10.0.0.2".parse().unwrap()).is_some());
        drop(a);
        assert_eq!(p.open(&ip), 1);
        assert!(p.admit(ip).is_some());
    }
}
