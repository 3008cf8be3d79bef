//! [`Coalescer`]: at most one roster (op 5) and one count (op 4) per room per interval,
//! whatever the churn.
//!
//! Every connection that opens or closes makes logic publish the room's roster; a thousand
//! of them a second would send every member a thousand full rosters a second. Here the
//! first update of a room goes out at once; later ones within `interval` only replace a
//! pending copy, and the newest is sent when the interval is over — so members always end
//! with the latest roster, and two pushes of one kind to one room are `interval` apart.

use bytes::Bytes;
use gochat_core::model::{PushKind, RoomId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Per-room throttle state.
pub struct Coalescer {
    interval: Duration,
    /// (room, kind) → when the next push may go and what waits for it. A `std` mutex: each
    /// section is a map lookup, never across an `.await`.
    slots: Mutex<HashMap<(RoomId, PushKind), Slot>>,
    /// Wakes the flusher when something starts waiting.
    pending: Notify,
}

struct Slot {
    next_at: Instant,
    waiting: Option<Bytes>,
}

/// What to do with an update offered to the coalescer.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Push it now.
    Now,
    /// Held; the flusher sends the newest held copy when the interval is over.
    Held,
}

impl Coalescer {
    /// Pushes of one kind to one room at least `interval` apart (zero: no coalescing).
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            slots: Mutex::default(),
            pending: Notify::new(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<(RoomId, PushKind), Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Offer an update of `kind` for `room`, at `now`.
    pub fn offer(&self, room: RoomId, kind: PushKind, payload: &Bytes, now: Instant) -> Offer {
        if self.interval.is_zero() {
            return Offer::Now;
        }
        let mut slots = self.slots();
        match slots.get_mut(&(room, kind)) {
            Some(slot) if slot.next_at > now => {
                let first = slot.waiting.is_none();
                slot.waiting = Some(payload.clone());
                drop(slots);
                if first {
                    self.pending.notify_one();
                }
                Offer::Held
            }
            _ => {
                slots.insert(
                    (room, kind),
                    Slot {
                        next_at: now + self.interval,
                        waiting: None,
                    },
                );
                Offer::Now
            }
        }
    }

    /// Take the held updates whose interval is over at `now` (and forget idle rooms);
    /// returns them and when the next one falls due.
    #[allow(clippy::type_complexity)]
    pub fn due(&self, now: Instant) -> (Vec<(RoomId, PushKind, Bytes)>, Option<Instant>) {
        let mut out = Vec::new();
        let mut next = None::<Instant>;
        let interval = self.interval;
        self.slots().retain(|&(room, kind), slot| {
            if slot.next_at > now {
                if slot.waiting.is_some() {
                    next = Some(next.map_or(slot.next_at, |n| n.min(slot.next_at)));
                }
                return true;
            }
            match slot.waiting.take() {
                Some(payload) => {
                    out.push((room, kind, payload));
                    slot.next_at = now + interval;
                    true
                }
                // Nothing sent for a whole interval: the next update may go at once.
                None => false,
            }
        });
        (out, next)
    }

    /// Wait until something is held (or may be).
    pub async fn something_held(&self) {
        self.pending.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROSTER: PushKind = PushKind::Roster { on_leave: true };

    #[test]
    fn the_first_goes_at_once_then_the_newest_after_the_interval() {
        let c = Coalescer::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let p = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert_eq!(c.offer(1, ROSTER, &p("a"), t0), Offer::Now);
        assert_eq!(c.offer(2, ROSTER, &p("x"), t0), Offer::Now, "per room");
        assert_eq!(
            c.offer(1, PushKind::Count, &p("n"), t0),
            Offer::Now,
            "per kind"
        );
        for s in ["b", "c", "d"] {
            assert_eq!(c.offer(1, ROSTER, &p(s), t0), Offer::Held);
        }
        let (due, next) = c.due(t0 + Duration::from_millis(500));
        assert!(due.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        let (due, _) = c.due(t1);
        assert_eq!(due, [(1, ROSTER, p("d"))], "only the newest");
        // Sent at t1, so the next may go at t1 + 1 s.
        assert_eq!(
            c.offer(1, ROSTER, &p("e"), t1 + Duration::from_millis(10)),
            Offer::Held
        );
        let t2 = t1 + Duration::from_secs(5);
        assert_eq!(c.due(t2).0, [(1, ROSTER, p("e"))]);
        // A whole interval with nothing held: the slot is forgotten.
        let quiet = t2 + Duration::from_secs(2);
        assert!(c.due(quiet).0.is_empty());
        assert_eq!(
            c.offer(1, ROSTER, &p("f"), quiet),
            Offer::Now,
            "after a quiet interval it goes at once again"
        );
    }

    #[test]
    fn zero_interval_never_holds() {
        let c = Coalescer::new(Duration::ZERO);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(c.offer(1, ROSTER, &Bytes::new(), now), Offer::Now);
        }
    }
}
