//! A connection's outbound queue: frames pushed by fan-out, drained by its writer.
//!
//! Bounded like `tokio::sync::mpsc`, but it costs nothing while empty: a Tokio channel
//! allocates its first block of 32 slots up front (~1.5 KB with its state), which was the
//! largest single share of an idle connection (docs/performance.md, "Idle memory: where it
//! went"). Here an idle queue is an empty `VecDeque` behind a lock, and the writer sleeps
//! on a [`Notify`].

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Notify;

/// A drained queue keeps at most this many slots; a burst's larger buffer is given back.
const KEEP_SLOTS: usize = 128;

/// The queue's state, shared by both ends.
struct Shared {
    state: Mutex<State>,
    /// Woken on the push that makes the queue non-empty (a permit is kept if the writer is
    /// not waiting yet, so no wake-up is lost).
    ready: Notify,
    capacity: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    /// The receiving end is gone: pushes are dropped.
    closed: bool,
}

/// The pushing end (held by the [`Channel`](crate::Channel)).
pub(crate) struct Outbox(Arc<Shared>);

/// The receiving end: the connection's writer (or a test) takes frames from it.
pub struct Outgoing(Arc<Shared>);

/// A push found the queue at capacity.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// A queue of at most `capacity` frames (at least one).
pub(crate) fn outbox(capacity: usize) -> (Outbox, Outgoing) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        ready: Notify::new(),
        capacity: capacity.max(1),
    });
    (Outbox(shared.clone()), Outgoing(shared))
}

impl Outbox {
    /// Queue `frame`; dropped silently once the receiving end is gone.
    pub(crate) fn push(&self, frame: Bytes) -> Result<(), Full> {
        let mut st = self.0.state.lock();
        if st.closed {
            return Ok(());
        }
        if st.frames.len() >= self.0.capacity {
            return Err(Full);
        }
        let was_empty = st.frames.is_empty();
        st.frames.push_back(frame);
        drop(st);
        // A writer that found frames waiting drains them before it sleeps again.
        if was_empty {
            self.0.ready.notify_one();
        }
        Ok(())
    }

    /// Frames the queue holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.0.capacity
    }
}

impl Outgoing {
    /// Resolves once a frame may be waiting (it may already have been taken: callers drain
    /// and accept finding nothing).
    pub async fn readable(&self) {
        if !self.0.state.lock().frames.is_empty() {
            return;
        }
        self.0.ready.notified().await;
    }

    /// Move up to `max` waiting frames, oldest first, to the end of `batch`.
    pub fn drain_into(&self, batch: &mut Vec<Bytes>, max: usize) {
        let mut st = self.0.state.lock();
        let n = st.frames.len().min(max);
        batch.extend(st.frames.drain(..n));
        if st.frames.is_empty() && st.frames.capacity() > KEEP_SLOTS {
            st.frames = VecDeque::new();
        }
    }

    /// Put `frames` back at the head of the queue, in their order, and wake the writer:
    /// what a write that could not wait left unwritten. They were queued once already, so
    /// the capacity is not checked again.
    pub(crate) fn put_back(&self, frames: Vec<Bytes>) {
        if frames.is_empty() {
            return;
        }
        let mut st = self.0.state.lock();
        for f in frames.into_iter().rev() {
            st.frames.push_front(f);
        }
        drop(st);
        self.0.ready.notify_one();
    }

    /// The oldest frame, once there is one.
    pub async fn recv(&self) -> Bytes {
        loop {
            if let Some(f) = self.try_recv() {
                return f;
            }
            self.readable().await;
        }
    }

    /// The oldest waiting frame, if any.
    pub fn try_recv(&self) -> Option<Bytes> {
        self.0.state.lock().frames.pop_front()
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        let mut st = self.0.state.lock();
        st.closed = true;
        st.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn frames_come_out_in_order_up_to_capacity() {
        let (tx, rx) = outbox(3);
        for i in 0..3u8 {
            tx.push(Bytes::from(vec![i])).unwrap();
        }
        assert_eq!(tx.push(Bytes::new()), Err(Full));
        let mut batch = Vec::new();
        rx.drain_into(&mut batch, 2);
        assert_eq!(batch, [Bytes::from(vec![0]), Bytes::from(vec![1])]);
        assert_eq!(rx.try_recv(), Some(Bytes::from(vec![2])));
        assert_eq!(rx.try_recv(), None);
        tx.push(Bytes::new()).unwrap();
    }

    #[test]
    fn a_drained_burst_gives_its_buffer_back() {
        let (tx, rx) = outbox(10_000);
        for _ in 0..5_000 {
            tx.push(Bytes::new()).unwrap();
        }
        let mut batch = Vec::new();
        while rx.try_recv().is_some() {}
        rx.drain_into(&mut batch, 64);
        assert_eq!(rx.0.state.lock().frames.capacity(), 0);
    }

    #[test]
    fn frames_put_back_come_out_first_and_in_order() {
        let (tx, rx) = outbox(2);
        tx.push(Bytes::from_static(b"c")).unwrap();
        tx.push(Bytes::from_static(b"d")).unwrap();
        rx.put_back(vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        let mut batch = Vec::new();
        rx.drain_into(&mut batch, 8);
        assert_eq!(
            batch,
            [b"a", b"b", b"c", b"d"].map(|f| Bytes::from_static(f))
        );
    }

    #[test]
    fn pushes_after_the_receiver_went_are_dropped() {
        let (tx, rx) = outbox(1);
        drop(rx);
        assert_eq!(tx.push(Bytes::new()), Ok(()));
        assert_eq!(tx.push(Bytes::new()), Ok(()), "never full: nothing is kept");
    }

    #[tokio::test]
    async fn the_writer_wakes_for_a_push_made_before_or_while_it_waits() {
        let (tx, rx) = outbox(8);
        tx.push(Bytes::from_static(b"early")).unwrap();
        rx.readable().await;
        assert_eq!(rx.try_recv(), Some(Bytes::from_static(b"early")));
        let pusher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.push(Bytes::from_static(b"late")).unwrap();
            tx
        });
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .map(|f| assert_eq!(f, Bytes::from_static(b"late")))
            .expect("the push woke the writer");
        drop(pusher.await);
    }
}
