//! [`Order`]: one log's messages delivered once, in seq order — copies dropped, gaps held
//! back and filled by paging — sans-IO, so it is tested without a server.
//!
//! A gap that opens while connected is nearly always in flight, not lost: a room's messages
//! reach a connection in the order the fan-out takes them, and a post's own reply (with its
//! seq) overtakes the fan-out of the messages stored just before it. So a gap is paged only
//! once it has stayed open for the log's patience; the live stream fills the rest. Paging
//! every gap at once cost a page read for about every second post of a client posting in a
//! busy room (docs/performance.md, "the posting socket's pages").

use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// The shortest patience: a page the server refuses is asked for again no faster than this.
pub(crate) const MIN_PATIENCE: Duration = Duration::from_millis(100);

/// What to do after a message or a page arrived.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome<T> {
    /// Messages to hand to the program now, in seq order.
    pub(crate) deliver: Vec<T>,
    /// Ask for the page of messages after this seq (a gap is due, or a page said `more`).
    pub(crate) page_since: Option<u64>,
}

/// A page request on its way.
#[derive(Debug, Clone, Copy)]
struct Asked {
    /// The highest seq held back when it was asked for.
    held_back: u64,
}

/// The state of one log (a room, or the inbox) on the client.
#[derive(Debug)]
pub(crate) struct Order<T> {
    /// The highest seq delivered: everything up to it has been handed over.
    last: u64,
    /// Messages past a gap, waiting for it to be filled.
    waiting: BTreeMap<u64, T>,
    /// A page request is on its way.
    paging: Option<Asked>,
    /// Since when the gap now open has waited for the live stream.
    gap_opened: Option<Instant>,
    /// How long a gap may wait for the live stream before it is paged.
    patience: Duration,
}

impl<T> Order<T> {
    /// A log delivered up to `last`, whose gaps are paged once open for `patience` (at
    /// least [`MIN_PATIENCE`]).
    pub(crate) fn new(last: u64, patience: Duration) -> Self {
        Self {
            last,
            waiting: BTreeMap::new(),
            paging: None,
            gap_opened: None,
            patience: patience.max(MIN_PATIENCE),
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
        self.paging = None;
        self.gap_opened = None;
    }

    /// A page request was lost with its connection: the next look may ask again.
    pub(crate) fn forget_page(&mut self) {
        self.paging = None;
    }

    /// Not now (a post's reply, with the seq that may fill the gap, is on its way; or a page
    /// could not fill it): let the gap wait its patience again.
    pub(crate) fn wait_again(&mut self, now: Instant) {
        self.paging = None;
        if !self.waiting.is_empty() {
            self.gap_opened = Some(now);
        }
    }

    /// When the open gap is due to be paged, if one is open and not being paged.
    pub(crate) fn gap_due(&self) -> Option<Instant> {
        match (self.paging, self.waiting.is_empty()) {
            (None, false) => self.gap_opened.map(|t| t + self.patience),
            _ => None,
        }
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

    /// Ask for the page after `last` (unless one is on its way).
    fn ask(&mut self) -> Option<u64> {
        if self.paging.is_some() {
            return None;
        }
        let held_back = self
            .waiting
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.last);
        self.paging = Some(Asked { held_back });
        Some(self.last)
    }

    fn outcome(&mut self, now: Instant) -> Outcome<T> {
        let deliver = self.drain();
        if self.waiting.is_empty() {
            self.gap_opened = None;
            return Outcome {
                deliver,
                page_since: None,
            };
        }
        let opened = *self.gap_opened.get_or_insert(now);
        let due = now >= opened + self.patience;
        Outcome {
            deliver,
            page_since: if due { self.ask() } else { None },
        }
    }

    /// Look again (a gap held back may be due now).
    pub(crate) fn recheck(&mut self, now: Instant) -> Outcome<T> {
        self.outcome(now)
    }

    /// A message with `seq` arrived (live, or replayed).
    pub(crate) fn arrive(&mut self, seq: u64, item: T, now: Instant) -> Outcome<T> {
        self.insert(seq, item);
        self.outcome(now)
    }

    /// Page on now, whatever the gaps: a replay said the log holds more.
    pub(crate) fn page_on(&mut self) -> Outcome<T> {
        Outcome {
            deliver: Vec::new(),
            page_since: self.ask(),
        }
    }

    /// The page asked for arrived; `more` if the log holds more past it.
    ///
    /// A page holds every message of the log after the seq it was asked for, up to its last
    /// one — and, when it says no more, up to the log's head as it was read, which was past
    /// every message held back when it was asked for. A seq missing below that is gone
    /// (retention removed it) and is skipped. A gap above it opened after the page was
    /// read, and is waited for like any other.
    pub(crate) fn page(&mut self, items: Vec<(u64, T)>, more: bool, now: Instant) -> Outcome<T> {
        let asked = self.paging.take();
        let last_item = items.iter().map(|(s, _)| *s).max();
        let top = match (more, asked) {
            (false, Some(a)) => last_item.unwrap_or(0).max(a.held_back),
            _ => last_item.unwrap_or(0),
        };
        for (seq, item) in items {
            self.insert(seq, item);
        }
        let mut deliver = self.drain();
        while let Some(&first) = self.waiting.keys().next().filter(|&&s| s <= top) {
            self.last = first - 1;
            deliver.extend(self.drain());
        }
        if more {
            return Outcome {
                deliver,
                page_since: self.ask(),
            };
        }
        // What is still missing is above the page: it waits its patience again.
        self.wait_again(now);
        let mut out = self.outcome(now);
        deliver.append(&mut out.deliver);
        out.deliver = deliver;
        out
    }

    /// The page asked for was refused: what is missing waits its patience again, rather
    /// than being asked for again at once.
    pub(crate) fn page_refused(&mut self, now: Instant) -> Outcome<T> {
        self.wait_again(now);
        self.outcome(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENCE: Duration = Duration::from_millis(500);

    fn at(ms: u64) -> Instant {
        // One origin for every test's clock.
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(Instant::now) + Duration::from_millis(ms)
    }

    #[test]
    fn in_order_messages_go_straight_through_and_copies_are_dropped() {
        let mut o = Order::new(5, PATIENCE);
        assert_eq!(o.arrive(6, "a", at(0)).deliver, ["a"]);
        assert_eq!(o.arrive(6, "a again", at(0)).deliver, Vec::<&str>::new());
        assert_eq!(o.arrive(3, "old", at(0)).deliver, Vec::<&str>::new());
        assert_eq!(o.last(), 6);
        assert_eq!(o.gap_due(), None);
    }

    #[test]
    fn a_gap_the_live_stream_fills_in_time_is_never_paged() {
        let mut o = Order::new(5, PATIENCE);
        let out = o.arrive(7, "g", at(0));
        assert_eq!((out.deliver.len(), out.page_since), (0, None));
        assert_eq!(o.gap_due(), Some(at(500)));
        let out = o.arrive(8, "h", at(300));
        assert_eq!(out.page_since, None, "still within its patience");
        let out = o.arrive(6, "f", at(400));
        assert_eq!((out.deliver, out.page_since), (vec!["f", "g", "h"], None));
        assert_eq!(o.gap_due(), None);
    }

    #[test]
    fn a_gap_still_open_after_its_patience_is_paged_once() {
        let mut o = Order::new(5, PATIENCE);
        assert_eq!(o.arrive(9, "i", at(0)).page_since, None);
        assert_eq!(o.recheck(at(499)).page_since, None);
        assert_eq!(o.recheck(at(500)).page_since, Some(5), "due");
        let out = o.arrive(10, "j", at(600));
        assert_eq!(
            (out.deliver.len(), out.page_since),
            (0, None),
            "one page at a time"
        );
        assert_eq!(o.gap_due(), None, "being paged");
        let out = o.page(vec![(6, "f"), (7, "g"), (8, "h"), (9, "i")], false, at(700));
        assert_eq!(out.deliver, ["f", "g", "h", "i", "j"], "in order, i once");
        assert_eq!((o.last(), o.gap_due()), (10, None));
    }

    #[test]
    fn a_long_gap_pages_on_and_a_vanished_one_is_skipped() {
        let mut o = Order::new(0, PATIENCE);
        o.arrive(5, "e", at(0));
        assert_eq!(o.recheck(at(500)).page_since, Some(0));
        let out = o.page(vec![(1, "a"), (2, "b")], true, at(600));
        assert_eq!((out.deliver, out.page_since), (vec!["a", "b"], Some(2)));
        // Seqs 3 and 4 were removed by retention (5 too, since): the last page is empty.
        let out = o.page(Vec::new(), false, at(700));
        assert_eq!((out.deliver, out.page_since), (vec!["e"], None));
        assert_eq!(o.last(), 5);
    }

    /// Retention removed the oldest messages: a page that says `more` starts past a hole.
    /// The hole is skipped, and paging goes on from the page's end rather than asking for
    /// the same page for ever.
    #[test]
    fn a_hole_at_the_start_of_a_page_with_more_is_skipped() {
        let mut o = Order::new(10, PATIENCE);
        assert_eq!(o.page_on().page_since, Some(10));
        let out = o.page(vec![(15, "o"), (16, "p")], true, at(0));
        assert_eq!((out.deliver, out.page_since), (vec!["o", "p"], Some(16)));
    }

    /// A message stored after the page was read can arrive live before the page does, with
    /// one in flight ahead of it: that gap is above the page, so it is waited for, not
    /// skipped (skipping it would drop the message in flight when it comes).
    #[test]
    fn a_gap_above_the_page_is_waited_for_not_skipped() {
        let mut o = Order::new(10, PATIENCE);
        o.arrive(15, "o", at(0));
        assert_eq!(o.recheck(at(500)).page_since, Some(10));
        o.arrive(17, "q", at(550)); // 16 is in flight
        let items = vec![(11, "k"), (12, "l"), (13, "m"), (14, "n"), (15, "o")];
        let out = o.page(items, false, at(600));
        assert_eq!(out.deliver, ["k", "l", "m", "n", "o"]);
        assert_eq!((out.page_since, o.last()), (None, 15));
        assert_eq!(
            o.arrive(16, "p", at(650)).deliver,
            ["p", "q"],
            "16 was not skipped"
        );
    }

    #[test]
    fn a_refused_page_is_asked_again_only_after_the_patience() {
        let mut o = Order::new(5, PATIENCE);
        o.arrive(7, "g", at(0));
        assert_eq!(o.recheck(at(500)).page_since, Some(5));
        assert_eq!(o.page_refused(at(600)).page_since, None);
        assert_eq!(o.gap_due(), Some(at(1100)));
        assert_eq!(o.recheck(at(1100)).page_since, Some(5));
    }

    #[test]
    fn no_patience_still_asks_for_a_refused_page_at_most_every_tenth_of_a_second() {
        let mut o = Order::new(5, Duration::ZERO);
        assert_eq!(o.arrive(7, "g", at(0)).page_since, None);
        assert_eq!(o.recheck(at(100)).page_since, Some(5));
        assert_eq!(o.page_refused(at(150)).page_since, None);
        assert_eq!(o.gap_due(), Some(at(250)));
    }

    #[test]
    fn waiting_for_an_own_post_restarts_the_patience() {
        let mut o = Order::new(5, PATIENCE);
        o.arrive(7, "g", at(0));
        assert_eq!(o.recheck(at(500)).page_since, Some(5));
        o.wait_again(at(500));
        assert_eq!(o.gap_due(), Some(at(1000)));
    }

    #[test]
    fn a_reset_starts_from_nothing() {
        let mut o = Order::new(40, PATIENCE);
        o.reset();
        assert_eq!(o.arrive(1, "new", at(0)).deliver, ["new"]);
    }
}
