//! [`RecentIds`]: the delivery ids a connect server handled lately, so that a queue entry
//! delivered again (a task worker retried, or another worker claimed it) reaches no client
//! twice.

use gochat_core::model::Delivery;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// A bounded window of recent ids: the newest `capacity` are remembered, older ones are
/// forgotten first (a copy arriving after that many newer deliveries gets through; protocol
/// v2 clients still spot it by its `seq`).
pub struct RecentIds {
    /// Set and arrival order. A `std` mutex: one short section per delivered batch.
    window: Mutex<Window>,
    capacity: usize,
}

#[derive(Default)]
struct Window {
    ids: HashSet<i64>,
    order: VecDeque<i64>,
}

impl RecentIds {
    /// A window of `capacity` ids (0 turns deduplication off).
    pub fn new(capacity: usize) -> Self {
        Self {
            window: Mutex::default(),
            capacity,
        }
    }

    /// Keep only the deliveries whose id was not seen before (in the window or earlier in
    /// `batch`), and remember their ids.
    pub fn retain_new(&self, batch: &mut Vec<Delivery>) {
        if self.capacity == 0 {
            return;
        }
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        batch.retain(|d| {
            if !w.ids.insert(d.id) {
                return false;
            }
            w.order.push_back(d.id);
            if w.order.len() > self.capacity
                && let Some(old) = w.order.pop_front()
            {
                w.ids.remove(&old);
            }
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gochat_core::model::{PushKind, Target};

    fn batch(ids: &[i64]) -> Vec<Delivery> {
        ids.iter()
            .map(|&id| Delivery::new(id, Target::Room(1), PushKind::Message, bytes::Bytes::new()))
            .collect()
    }

    fn ids(b: &[Delivery]) -> Vec<i64> {
        b.iter().map(|d| d.id).collect()
    }

    #[test]
    fn a_redelivered_id_is_dropped_within_the_window() {
        let w = RecentIds::new(3);
        let mut b = batch(&[1, 2, 2, 3]);
        w.retain_new(&mut b);
        assert_eq!(ids(&b), [1, 2, 3], "a copy inside one batch too");
        let mut again = batch(&[3, 4, 1]);
        w.retain_new(&mut again);
        assert_eq!(ids(&again), [4, 1], "1 fell out of the window of 3");
    }

    #[test]
    fn zero_capacity_keeps_everything() {
        let w = RecentIds::new(0);
        let mut b = batch(&[1, 1]);
        w.retain_new(&mut b);
        assert_eq!(ids(&b), [1, 1]);
    }
}
