//! [`Order`]: one log's messages delivered once, in seq order — copies dropped, gaps held
//! back and filled by paging — sans-IO, so it is tested without a server.

use std::collections::BTreeMap;

/// What to do after a message or a page arrived.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome<T> {
    /// Messages to hand to the program now, in seq order.
    pub(crate) deliver: Vec<T>,
    /// Ask for the page of messages after this seq (a gap is open).
    pub(crate) page_since: Option<u64>,
}

/// The state of one log (a room, or the inbox) on the client.
#[derive(Debug)]
pub(crate) struct Order<T> {
    /// The highest seq delivered: everything up to it has been handed over.
    last: u64,
    /// Messages past a gap, waiting for it to be filled.
    waiting: BTreeMap<u64, T>,
    /// A page request is on its way.
    paging: bool,
}

impl<T> Order<T> {
    /// A log delivered up to `last`.
    pub(crate) fn new(last: u64) -> Self {
        Self {
            last,
            waiting: BTreeMap::new(),
            paging: false,
        }
    }

    /// The highest seq delivered.
    pub(crate) fn last(&self) -> u64 {
        self.last
    }

    /// The server's history was reset: start again from nothing.
    pub(crate) fn reset(&mut self) {
        self.last = 0;
        self.waiting.clear();
        self.paging = false;
    }

    /// A page request was lost with its connection: the next arrival may ask again.
    pub(crate) fn forget_page(&mut self) {
        self.paging = false;
    }

    fn insert(&mut self, seq: u64, item: T) {
        if seq > self.last {
            self.waiting.entry(seq).or_insert(item);
        }
    }

    fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(item) = self.waiting.remove(&(self.last + 1)) {
            self.last += 1;
            out.push(item);
        }
        out
    }

    fn outcome(&mut self) -> Outcome<T> {
        let deliver = self.drain();
        let gap = !self.waiting.is_empty();
        let page_since = (gap && !self.paging).then(|| {
            self.paging = true;
            self.last
        });
        Outcome {
            deliver,
            page_since,
        }
    }

    /// Look again (a gap held back may now be paged).
    pub(crate) fn recheck(&mut self) -> Outcome<T> {
        self.outcome()
    }

    /// A message with `seq` arrived (live, or replayed).
    pub(crate) fn arrive(&mut self, seq: u64, item: T) -> Outcome<T> {
        self.insert(seq, item);
        self.outcome()
    }

    /// The page asked for arrived; `more` if the log holds more past it.
    pub(crate) fn page(&mut self, items: Vec<(u64, T)>, more: bool) -> Outcome<T> {
        self.paging = false;
        for (seq, item) in items {
            self.insert(seq, item);
        }
        let mut out = self.outcome();
        if !more && out.page_since.is_some() {
            // Nothing more to page, yet a gap stays: those messages are gone (retention).
            // Skip to what is there rather than wait for ever.
            if let Some((&first, _)) = self.waiting.first_key_value() {
                self.last = first - 1;
            }
            self.paging = false;
            out.deliver.extend(self.drain());
            out.page_since = None;
        } else if more && out.page_since.is_none() {
            self.paging = true;
            out.page_since = Some(self.last);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_messages_go_straight_through_and_copies_are_dropped() {
        let mut o = Order::new(5);
        assert_eq!(o.arrive(6, "a").deliver, ["a"]);
        assert_eq!(o.arrive(6, "a again").deliver, Vec::<&str>::new());
        assert_eq!(o.arrive(3, "old").deliver, Vec::<&str>::new());
        assert_eq!(o.last(), 6);
    }

    #[test]
    fn a_gap_is_held_back_and_paged_once() {
        let mut o = Order::new(5);
        let out = o.arrive(9, "i");
        assert_eq!((out.deliver.len(), out.page_since), (0, Some(5)));
        let out = o.arrive(10, "j");
        assert_eq!(
            (out.deliver.len(), out.page_since),
            (0, None),
            "one page at a time"
        );
        let out = o.page(vec![(6, "f"), (7, "g"), (8, "h"), (9, "i")], false);
        assert_eq!(out.deliver, ["f", "g", "h", "i", "j"], "in order, i once");
        assert_eq!(o.last(), 10);
    }

    #[test]
    fn a_long_gap_pages_on_and_a_vanished_one_is_skipped() {
        let mut o = Order::new(0);
        assert_eq!(o.arrive(5, "e").page_since, Some(0));
        let out = o.page(vec![(1, "a"), (2, "b")], true);
        assert_eq!((out.deliver, out.page_since), (vec!["a", "b"], Some(2)));
        // Seqs 3 and 4 were removed by retention: the last page has none of them.
        let out = o.page(vec![], false);
        assert_eq!((out.deliver, out.page_since), (vec!["e"], None));
        assert_eq!(o.last(), 5);
    }

    #[test]
    fn a_reset_starts_from_nothing() {
        let mut o = Order::new(40);
        o.reset();
        assert_eq!(o.arrive(1, "new").deliver, ["new"]);
    }
}
