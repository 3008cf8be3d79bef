//! [`Entry`]: one queue entry in a worker's hands, acknowledged once every connect server it
//! concerns has taken its part.

use gochat_core::queue::Receipt;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::UnboundedSender;

/// The receipts a worker holds right now. A queue hands an unacknowledged entry out again
/// after its claim-idle time — to any consumer, this one included — while this worker may
/// still be retrying it; such a copy is recognised here and skipped.
#[derive(Default, Clone)]
pub struct InFlight(Arc<Mutex<HashSet<Receipt>>>);

impl InFlight {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<Receipt>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this worker holds `receipt`.
    pub fn holds(&self, receipt: &Receipt) -> bool {
        self.set().contains(receipt)
    }
}

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
    /// The worker's set of held receipts, which this entry leaves when dropped.
    in_flight: InFlight,
}

impl Entry {
    /// An entry with `parts` parts to deliver.
    pub fn new(
        receipt: Receipt,
        parts: usize,
        done: UnboundedSender<Receipt>,
        slot: OwnedSemaphorePermit,
        in_flight: InFlight,
    ) -> Self {
        in_flight.set().insert(receipt);
        let entry = Self {
            receipt,
            remaining: AtomicUsize::new(parts),
            done,
            _slot: slot,
            in_flight,
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

impl Drop for Entry {
    fn drop(&mut self) {
        self.in_flight.set().remove(&self.receipt);
    }
}
