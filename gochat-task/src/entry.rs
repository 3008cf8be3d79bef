//! [`Entry`]: one queue entry in a worker's hands, acknowledged once every connect server it
//! concerns has taken its part.

use gochat_core::queue::Receipt;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::UnboundedSender;

/// An entry in flight. Its parts (one per connect server) each call [`Entry::part_done`];
/// the last one sends the receipt to the acknowledger. Dropping an entry that is not done
/// (shutdown, a server given up on) leaves it unacknowledged in the queue, for a later claim.
pub struct Entry {
    receipt: Receipt,
    /// Parts not delivered yet.
    remaining: AtomicUsize,
    /// Where finished receipts go.
    done: UnboundedSender<Receipt>,
    /// Its place under `task.max_in_flight`, given back when the entry is dropped.
    _slot: OwnedSemaphorePermit,
}

impl Entry {
    /// An entry with `parts` parts to deliver.
    pub fn new(
        receipt: Receipt,
        parts: usize,
        done: UnboundedSender<Receipt>,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        let entry = Self {
            receipt,
            remaining: AtomicUsize::new(parts),
            done,
            _slot: slot,
        };
        if parts == 0 {
            entry.finish();
        }
        entry
    }

    /// One part was delivered (or its server is gone for good).
    pub fn part_done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }

    fn finish(&self) {
        // The acknowledger only stops after every sender is gone, so this cannot fail
        // while the entry lives; if it did, the entry would simply be redelivered.
        let _ = self.done.send(self.receipt);
    }
}
