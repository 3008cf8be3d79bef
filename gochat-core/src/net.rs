//! Accepting connections, for every listener of every layer (HTTP, WebSocket, raw TCP, RPC):
//! one accept loop with backoff, and [`Admission`], the connection limit of a listener as
//! RAII permits with eviction of idle connections under pressure.
//!
//! A listener's limit holds under any burst because the permit is taken as each socket is
//! accepted, by the accept loop itself (not later, in the connection's task), and a
//! connection returns its permit when its [`Ticket`] drops — even when its task panics. When every permit is taken, the oldest connection that is only waiting
//! (an HTTP connection between requests, a long connection that has not authenticated yet)
//! is evicted to make room: a few thousand idle sockets cannot lock real users out.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a full listener waits for an evicted connection to hand back its permit.
pub const EVICTION_WAIT: Duration = Duration::from_millis(250);
/// A connection becomes a candidate for eviction only after waiting this long: one that
/// just arrived gets the time to send its request or its auth frame, so a flood of new
/// sockets is refused rather than pushing out a real user's fresh connection.
pub const EVICTABLE_AFTER: Duration = Duration::from_millis(500);
/// First pause after a failed `accept` (out of descriptors and the like); doubles up to
/// [`ACCEPT_BACKOFF_MAX`] while failures last.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// Longest pause between failed `accept`s.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The connection limit of a listener (or of several sharing one budget).
pub struct Admission {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Connections that may be evicted, in the order they became evictable (oldest first),
    /// with when. A `std` mutex: sections are one map operation, never across an `.await`.
    evictable: Mutex<BTreeMap<u64, (CancellationToken, Instant)>>,
    /// Orders the evictable entries.
    next: AtomicU64,
    /// Connections evicted so far.
    evicted: AtomicU64,
    /// Connections refused so far (full, and nothing to evict).
    refused: AtomicU64,
}

/// One admitted connection's place under its listener's limit; dropping it frees the place.
pub struct Ticket {
    admission: Arc<Admission>,
    _permit: OwnedSemaphorePermit,
    /// Fired when the connection is evicted.
    kick: CancellationToken,
    /// Its key in the evictable map while it is evictable.
    key: Mutex<Option<u64>>,
}

impl Admission {
    /// A limit of `limit` connections (at least one).
    pub fn new(limit: usize) -> Arc<Self> {
        let limit = limit.max(1);
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            evictable: Mutex::default(),
            next: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
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

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, (CancellationToken, Instant)>> {
        // The map holds plain tokens; a panic elsewhere leaves it usable.
        self.evictable.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more connection: at once if one is free; else by evicting the
    /// connection evictable the longest (if for at least [`EVICTABLE_AFTER`]) and waiting
    /// up to [`EVICTION_WAIT`] for its place; `None` when the listener is full of
    /// connections that are busy or just arrived.
    pub async fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let victim = {
                    let mut map = self.map();
                    match map.first_key_value() {
                        Some((_, (_, since))) if since.elapsed() >= EVICTABLE_AFTER => {
                            map.pop_first()
                        }
                        _ => None,
                    }
                };
                let freed = match victim {
                    Some((_, (kick, _))) => {
                        self.evicted.fetch_add(1, Ordering::Relaxed);
                        kick.cancel();
                        let wait = self.permits.clone().acquire_owned();
                        tokio::time::timeout(EVICTION_WAIT, wait).await.ok()
                    }
                    None => None,
                };
                match freed {
                    Some(Ok(p)) => p,
                    _ => {
                        self.refused.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                }
            }
        };
        Some(Ticket {
            admission: self.clone(),
            _permit: permit,
            kick: CancellationToken::new(),
            key: Mutex::new(None),
        })
    }
}

impl Ticket {
    fn key(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.key.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Allow (or stop allowing) this connection to be evicted when the listener is full.
    /// Each time it becomes evictable it goes to the back of the line.
    pub fn set_evictable(&self, evictable: bool) {
        let mut key = self.key();
        if let Some(k) = key.take() {
            self.admission.map().remove(&k);
        }
        if evictable && !self.kick.is_cancelled() {
            let k = self.admission.next.fetch_add(1, Ordering::Relaxed);
            self.admission
                .map()
                .insert(k, (self.kick.clone(), Instant::now()));
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
        if let Some(k) = self.key().take() {
            self.admission.map().remove(&k);
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
        let ticket = match &admission {
            Some(a) => tokio::select! {
                t = a.admit() => t,
                _ = shutdown.cancelled() => return,
            },
            None => None,
        };
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

    #[tokio::test]
    async fn the_limit_holds_and_dropped_tickets_return_their_place() {
        let a = Admission::new(2);
        let t1 = a.admit().await.unwrap();
        let t2 = a.admit().await.unwrap();
        assert_eq!(a.in_use(), 2);
        assert!(a.admit().await.is_none(), "full, nothing evictable");
        assert_eq!(a.refused(), 1);
        drop(t1);
        let t3 = a.admit().await.unwrap();
        drop((t2, t3));
        assert_eq!(a.in_use(), 0);
    }

    #[tokio::test]
    async fn a_full_listener_evicts_its_oldest_idle_connection() {
        let a = Admission::new(2);
        let old = a.admit().await.unwrap();
        let busy = a.admit().await.unwrap();
        old.set_evictable(true);
        assert!(
            a.admit().await.is_none(),
            "a connection that just arrived stays"
        );
        tokio::time::sleep(EVICTABLE_AFTER).await;
        let a2 = a.clone();
        let newcomer = tokio::spawn(async move { a2.admit().await.map(|_| ()) });
        // The evicted connection notices and goes away, handing back its place.
        tokio::time::timeout(Duration::from_secs(1), old.evicted())
            .await
            .unwrap();
        drop(old);
        assert!(newcomer.await.unwrap().is_some());
        assert_eq!(a.evicted(), 1);
        assert_eq!(a.refused(), 1);
        assert!(!busy.is_evicted(), "a busy connection is never evicted");
    }

    #[tokio::test]
    async fn a_panicking_holder_returns_its_place() {
        let a = Admission::new(1);
        let t = a.admit().await.unwrap();
        let crashed = tokio::spawn(async move {
            let _held = t;
            panic!("session bug");
        });
        assert!(crashed.await.is_err());
        assert!(a.admit().await.is_some(), "the panic returned the permit");
    }
}
