//! Each log's [`Order`] on a [`Driver`]: messages handed to the program once and in seq
//! order, gaps held back and paged once their patience ran out, or at once when a replay
//! said there is more.

use super::{Driver, Internal, Log, PAGE, Pending};
use crate::client::ClientError;
use crate::client::live::link::Link;
use crate::client::live::order::{Order, Outcome};
use crate::client::live::{LiveEvent, Message};
use serde_json::json;
use tokio::time::Instant;

/// Resolves at `due`, or never without one.
pub(super) async fn gap_due(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// The order of `log`, delivered up to `last` if it is new.
    fn order(&mut self, log: Log, last: u64) -> &mut Order<Message> {
        let patience = self.config.gap_patience;
        self.logs
            .entry(log)
            .or_insert_with(|| Order::new(last, patience))
    }

    /// The server gave `log`'s newest seq (an auth or join reply): where a new log starts.
    /// A seq below what was delivered means the server's history was reset.
    pub(super) fn baseline(&mut self, log: Log, seq: u64) {
        let o = self.order(log, seq);
        if o.last() > seq {
            o.reset();
            self.emit(LiveEvent::HistoryReset {
                room_id: log.room_id(),
            });
        }
    }

    /// Hand over what a log's order says, and ask for a page if a gap is due.
    pub(super) async fn settle(
        &mut self,
        log: Log,
        out: Outcome<Message>,
        link: &mut Link,
    ) -> Result<(), ClientError> {
        for m in out.deliver {
            if let Some(n) = self.recovering.as_mut() {
                *n += 1;
            }
            self.emit(LiveEvent::Message(m));
        }
        if let Some(since) = out.page_since {
            if self.posting_to(log) {
                // The gap is likely our own post, whose reply (with its seq) is on its way:
                // let it wait rather than page now.
                if let Some(o) = self.logs.get_mut(&log) {
                    o.wait_again(Instant::now());
                }
                return Ok(());
            }
            let id = self.id("page-");
            self.internal.insert(id.clone(), Internal::Page(log));
            let frame =
                json!({"op": 9, "id": &id, "roomId": log.room_id(), "since": since, "limit": PAGE});
            link.send(frame.to_string().as_bytes()).await?;
        }
        Ok(())
    }

    /// When the first gap left to the live stream is due to be paged.
    pub(super) fn next_gap_due(&self) -> Option<Instant> {
        self.logs.values().filter_map(Order::gap_due).min()
    }

    /// Page the gaps whose patience ran out.
    pub(super) async fn page_due_gaps(&mut self, link: &mut Link) -> Result<(), ClientError> {
        let now = Instant::now();
        let due: Vec<Log> = self
            .logs
            .iter()
            .filter(|(_, o)| o.gap_due().is_some_and(|t| t <= now))
            .map(|(log, _)| *log)
            .collect();
        for log in due {
            if let Some(o) = self.logs.get_mut(&log) {
                let out = o.recheck(now);
                self.settle(log, out, link).await?;
            }
        }
        Ok(())
    }

    /// Whether a post into `log` is waiting for its reply.
    fn posting_to(&self, log: Log) -> bool {
        self.pending
            .values()
            .any(|p| matches!(p, Pending::Post { log: l, .. } if *l == log))
    }

    /// Ask for the rest of a log after a replay that said `more`.
    pub(super) async fn page_on(&mut self, log: Log, link: &mut Link) -> Result<(), ClientError> {
        let out = match self.logs.get_mut(&log) {
            Some(o) => o.page_on(),
            None => return Ok(()),
        };
        self.settle(log, out, link).await
    }

    /// A message arrived in `log` (live, replayed, or our own post's reply).
    pub(super) async fn arrive(
        &mut self,
        log: Log,
        m: Message,
        link: &mut Link,
    ) -> Result<(), ClientError> {
        self.names.insert(m.from.id, m.from.name.clone());
        let Some(seq) = m.seq else {
            // History off: no seq to order by.
            self.emit(LiveEvent::Message(m));
            return Ok(());
        };
        let out = self
            .order(log, seq.saturating_sub(1))
            .arrive(seq, m, Instant::now());
        self.settle(log, out, link).await
    }
}
