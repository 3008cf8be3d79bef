//! Accepting connections, for every listener of every layer (HTTP, WebSocket, raw TCP, RPC):
//! one accept loop with backoff, and [`Admission`], the connection limit of a listener as
//! RAII permits with eviction of idle connections under pressure.
//!
//! A listener's limit holds under any burst because the permit is taken as each socket is
//! accepted, by the accept loop itself (not later, in the connection's task), and a
//! connection returns its permit when its [`Ticket`] drops — even when its task panics. When every permit is taken, the oldest connection that is only waiting
//! (an HTTP connection between requests, a long connection that has not authenticated yet)
//! is evicted to make room: a few thousand idle sockets cannot lock real users out.
//!
//! An evicted connection hands its place over at once but closes in its own time (its task
//! has to run to notice), so its socket is briefly over the limit. How many may be leaving
//! at once is bounded ([`Admission::max_leaving`]): a flood that evicts faster than the
//! evicted close is refused instead, and the descriptors in use stay within the limit plus
//! that allowance — which the process's descriptor budget reserves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A connection becomes a candidate for eviction only after waiting this long: one that
/// just arrived gets the time to send its request or its auth frame, so a flood of new
/// sockets is refused rather than pushing out a real user's fresh connection.
pub const EVICTABLE_AFTER: Duration = Duration::from_millis(500);
/// First pause after a failed `accept` (out of descriptors and the like); doubles up to
/// [`ACCEPT_BACKOFF_MAX`] while failures last.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// Longest pause between failed `accept`s.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A ticket's permit, kept where an eviction can take it over at once (the evicted
/// connection then closes in its own time, a moment over the limit).
type Slot = Arc<Mutex<Place>>;

/// Where a ticket's place stands.
enum Place {
    /// It holds its permit.
    Held(OwnedSemaphorePermit),
    /// An eviction took its permit; its connection is closing and counts as leaving.
    Leaving,
    /// Given back.
    Freed,
}

/// What the evictable map holds of a connection.
struct Evictable {
    kick: CancellationToken,
    since: Instant,
    slot: Slot,
}

/// The connection limit of a listener (or of several sharing one budget).
pub struct Admission {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Connections that may be evicted, in the order they became evictable (oldest first).
    /// A `std` mutex: sections are one map operation, never across an `.await`.
    evictable: Mutex<BTreeMap<u64, Evictable>>,
    /// Orders the evictable entries.
    next: AtomicU64,
    /// Connections evicted so far.
    evicted: AtomicU64,
    /// Connections refused so far (full, and nothing to evict).
    refused: AtomicU64,
    /// Evicted connections whose tickets have not dropped yet (their sockets still open).
    leaving: AtomicUsize,
    /// At most this many may be leaving; beyond it, a full listener refuses.
    max_leaving: usize,
}

/// One admitted connection's place under its listener's limit; dropping it frees the place.
pub struct Ticket {
    admission: Arc<Admission>,
    /// The permit (taken away if the connection is evicted).
    slot: Slot,
    /// Fired when the connection is evicted.
    kick: CancellationToken,
    /// Its key in the evictable map while it is evictable.
    key: Mutex<Option<u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data (a map, an option); a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Admission {
    /// A limit of `limit` connections (at least one).
    pub fn new(limit: usize) -> Arc<Self> {
        let limit = limit.max(1);
        Arc::new(Self {
            max_leaving: Self::max_leaving(limit),
            leaving: AtomicUsize::new(0),
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            evictable: Mutex::default(),
            next: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// How many evicted connections may be closing at once under a limit of `limit`: a
    /// sixteenth of it, between 8 and 64 — enough that eviction keeps up with a flood
    /// (each closes within a few scheduler turns), few enough to reserve descriptors for.
    pub fn max_leaving(limit: usize) -> usize {
        (limit / 16).clamp(8, 64)
    }

    /// Evicted connections still closing.
    pub fn leaving(&self) -> usize {
        self.leaving.load(Ordering::Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections holding a place now.
    pub fn in_use(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// Connections evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// A place for one more connection: a free one, or else the place of the connection
    /// evictable the longest (if for at least [`EVICTABLE_AFTER`]), which is told to go;
    /// `None` when the listener is full of connections that are busy or just arrived.
    /// Never waits.
    pub fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let ticket = |permit| Ticket {
            admission: self.clone(),
            slot: Arc::new(Mutex::new(Place::Held(permit))),
            kick: CancellationToken::new(),
            key: Mutex::new(None),
        };
        loop {
            if let Ok(p) = self.permits.clone().try_acquire_owned() {
                return Some(ticket(p));
            }
            let victim = match self.leaving() < self.max_leaving {
                true => {
                    let mut map = lock(&self.evictable);
                    match map.first_key_value() {
                        Some((_, v)) if v.since.elapsed() >= EVICTABLE_AFTER => map.pop_first(),
                        _ => None,
                    }
                }
                false => None, // too many sockets still closing: refuse, do not add one
            };
            let Some((_, victim)) = victim else {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            victim.kick.cancel();
            // Its permit is ours now and it counts as leaving until its ticket drops; if it
            // already gave the permit back (it was closing anyway), the semaphore has it
            // and the next round takes it.
            // It may have been evicted already: it made itself evictable again between
            // being taken from the map and being kicked. Then it stays as it was, leaving
            // (counted once) or freed.
            let mut place = lock(&victim.slot);
            match std::mem::replace(&mut *place, Place::Leaving) {
                Place::Held(p) => {
                    self.leaving.fetch_add(1, Ordering::Relaxed);
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                    return Some(ticket(p));
                }
                other => *place = other,
            }
        }
    }
}

impl Ticket {
    /// Allow (or stop allowing) this connection to be evicted when the listener is full.
    /// Each time it becomes evictable it goes to the back of the line.
    pub fn set_evictable(&self, evictable: bool) {
        let mut key = lock(&self.key);
        if let Some(k) = key.take() {
            lock(&self.admission.evictable).remove(&k);
        }
        if evictable && !self.kick.is_cancelled() {
            let k = self.admission.next.fetch_add(1, Ordering::Relaxed);
            let entry = Evictable {
                kick: self.kick.clone(),
                since: Instant::now(),
                slot: self.slot.clone(),
            };
            lock(&self.admission.evictable).insert(k, entry);
            *key = Some(k);
        }
    }

    /// Resolves when this connection has been evicted.
    pub async fn evicted(&self) {
        self.kick.cancelled().await
    }

    /// Whether this connection has been evicted.
    pub fn is_evicted(&self) -> bool {
        self.kick.is_cancelled()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(k) = lock(&self.key).take() {
            lock(&self.admission.evictable).remove(&k);
        }
        // The permit (if an eviction did not take it) goes back as the slot drops; an
        // evicted connection stops counting as leaving.
        let was = std::mem::replace(&mut *lock(&self.slot), Place::Freed);
        if let Place::Leaving = was {
            self.admission.leaving.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Accept connections on `listener` until `shutdown` fires, handing each to `on_accept`
/// with its place under `admission` — or `None` when the listener is full and nothing could
/// be evicted, for the caller to refuse the connection its own way. Without an admission
/// every connection is taken (`None` too). A failing `accept` (out of descriptors, say)
/// backs off instead of spinning.
pub async fn accept_loop<F>(
    listener: TcpListener,
    admission: Option<Arc<Admission>>,
    shutdown: CancellationToken,
    mut on_accept: F,
) where
    F: FnMut(TcpStream, SocketAddr, Option<Ticket>),
{
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("accept failed, pausing {backoff:?}: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        backoff = ACCEPT_BACKOFF;
        // The place is taken right after accept, before anything else happens on the
        // socket: at most one accepted socket per listener is ever over the limit, and only
        // while it is being refused.
        let ticket = admission.as_ref().and_then(|a| a.admit());
        let _ = stream.set_nodelay(true);
        on_accept(stream, peer, ticket);
    }
}

/// This process's open-file limit (the soft one), if it can be read.
pub fn descriptor_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_and_dropped_tickets_return_their_place() {
        let a = Admission::new(2);
        let t1 = a.admit().unwrap();
        let t2 = a.admit().unwrap();
        assert_eq!(a.in_use(), 2);
        assert!(a.admit().is_none(), "full, nothing evictable");
        assert_eq!(a.refused(), 1);
        drop(t1);
        let t3 = a.admit().unwrap();
        drop((t2, t3));
        assert_eq!(a.in_use(), 0);
    }

    #[tokio::test]
    async fn a_full_listener_hands_the_oldest_idle_place_to_a_newcomer() {
        let a = Admission::new(2);
        let old = a.admit().unwrap();
        let busy = a.admit().unwrap();
        old.set_evictable(true);
        assert!(a.admit().is_none(), "a connection that just arrived stays");
        tokio::time::sleep(EVICTABLE_AFTER).await;
        let newcomer = a.admit().expect("the idle one makes room");
        assert!(old.is_evicted(), "and is told to go");
        assert!(!busy.is_evicted(), "a busy connection is never evicted");
        assert_eq!((a.evicted(), a.refused()), (1, 1));
        assert_eq!(a.in_use(), 2, "the evicted one no longer counts");
        drop(old); // closing in its own time frees nothing more
        assert_eq!(a.in_use(), 2);
        drop((newcomer, busy));
        assert_eq!(a.in_use(), 0);
    }

    #[tokio::test]
    async fn a_connection_evicted_twice_counts_as_leaving_once() {
        let a = Admission::new(1);
        let old = a.admit().unwrap();
        old.set_evictable(true);
        tokio::time::sleep(EVICTABLE_AFTER).await;
        let new = a.admit().expect("the old one is evicted");
        assert_eq!(a.leaving(), 1);
        // The race: it made itself evictable again after an eviction took it from the map
        // and before the eviction kicked it.
        let again = Evictable {
            kick: old.kick.clone(),
            since: Instant::now(),
            slot: old.slot.clone(),
        };
        lock(&a.evictable).insert(u64::MAX, again);
        tokio::time::sleep(EVICTABLE_AFTER).await;
        assert!(a.admit().is_none(), "it has no place left to give");
        assert_eq!(a.leaving(), 1, "still leaving, once");
        drop(old);
        assert_eq!((a.leaving(), a.in_use()), (0, 1));
        drop(new);
        assert_eq!(a.in_use(), 0);
    }

    #[tokio::test]
    async fn evictions_stop_while_too_many_evicted_sockets_are_still_open() {
        let a = Admission::new(8);
        assert_eq!(Admission::max_leaving(8), 8);
        let old: Vec<Ticket> = (0..8).map(|_| a.admit().unwrap()).collect();
        old.iter().for_each(|t| t.set_evictable(true));
        tokio::time::sleep(EVICTABLE_AFTER).await;
        let new: Vec<Ticket> = (0..8).map(|_| a.admit().unwrap()).collect();
        assert_eq!(
            (a.evicted(), a.leaving()),
            (8, 8),
            "eight evicted, none closed yet"
        );
        new.iter().for_each(|t| t.set_evictable(true));
        tokio::time::sleep(EVICTABLE_AFTER).await;
        assert!(
            a.admit().is_none(),
            "evictable ones wait until the evicted close"
        );
        let mut old = old;
        drop(old.pop());
        assert_eq!(a.leaving(), 7);
        let newest = a.admit().expect("one closed: one more may be evicted");
        assert_eq!((a.evicted(), a.leaving(), a.in_use()), (9, 8, 8));
        drop((old, new, newest));
        assert_eq!((a.leaving(), a.in_use()), (0, 0));
    }

    #[tokio::test]
    async fn a_panicking_holder_returns_its_place() {
        let a = Admission::new(1);
        let t = a.admit().unwrap();
        let crashed = tokio::spawn(async move {
            let _held = t;
            panic!("session bug");
        });
        assert!(crashed.await.is_err());
        assert!(a.admit().is_some(), "the panic returned the permit");
    }
}
