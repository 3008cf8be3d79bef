//! A connection's write half and outbound queue, shared by its writer loop and its reader.
//!
//! Frames are written by whoever holds the write half's lock, and only as drained from the
//! queue under it, so they go out in the order they were queued. The writer loop waits for
//! the lock; the reader only tries it, to write a command's reply at once: during a fan-out
//! round the writer has been woken with the round's other writers and waits its turn, and a
//! reply left to it waited ~5 ms of a socket post's 19 ms (docs/performance.md, "where the
//! reply waits"). The reader never waits for the socket: what it cannot write at once stays
//! queued for the writer, the rest of a frame cut short included.

use crate::channel::Channel;
use crate::outbox::Outgoing;
use bytes::Bytes;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Most queued frames one `writev` carries: one syscall for a burst instead of one per frame.
pub const BATCH: usize = 64;

pub(crate) struct Sink<W> {
    half: tokio::sync::Mutex<Half<W>>,
    rx: Outgoing,
}

struct Half<W> {
    w: W,
    /// A write that could not wait stopped inside a frame, whose rest is at the head of the
    /// queue: until it is written, no close frame may follow.
    rest_queued: bool,
}

impl<W: AsyncWrite + Unpin> Sink<W> {
    pub(crate) fn new(w: W, rx: Outgoing) -> Self {
        Self {
            half: tokio::sync::Mutex::new(Half {
                w,
                rest_queued: false,
            }),
            rx,
        }
    }

    /// Resolves once frames may be waiting (they may have been written already).
    pub(crate) async fn readable(&self) {
        self.rx.readable().await;
    }

    /// Write up to [`BATCH`] queued frames in one `writev`, waiting for the socket as long as
    /// it takes; `batch` is the caller's buffer, kept between calls.
    pub(crate) async fn write_queued(&self, batch: &mut Vec<Bytes>) -> std::io::Result<()> {
        let mut half = self.half.lock().await;
        batch.clear();
        self.rx.drain_into(batch, BATCH);
        if batch.is_empty() {
            return Ok(()); // the reader wrote them
        }
        write_all_vectored(&mut half.w, batch).await?;
        // A TLS stream may keep records back when the socket was full; plain TCP has none.
        half.w.flush().await?;
        half.rest_queued = false;
        batch.clear();
        Ok(())
    }

    /// Write `frame` alone (a keep-alive), waiting for the socket.
    pub(crate) async fn write_one(&self, frame: &[u8]) -> std::io::Result<()> {
        let mut half = self.half.lock().await;
        if half.rest_queued {
            return Ok(()); // a frame is cut: the writer is about to finish it; skip this ping
        }
        half.w.write_all(frame).await?;
        half.w.flush().await
    }

    /// Write what is queued now, if the writer is not mid-write and the socket takes it
    /// without waiting; whatever is left stays queued for the writer. Called by the reader
    /// after queueing a reply.
    pub(crate) fn write_now(&self, ch: &Channel) {
        let Ok(mut half) = self.half.try_lock() else {
            return; // the writer is writing, and will take the reply with what follows
        };
        // Checked under the lock: a writer cut short by a close let go of it only after
        // the close was recorded, and nothing may follow a cut frame.
        if ch.close_reason().is_some() {
            return;
        }
        let mut batch = Vec::new();
        self.rx.drain_into(&mut batch, BATCH);
        if batch.is_empty() {
            return;
        }
        let written = write_without_waiting(&mut half.w, &batch);
        let (mut rest, cut) = unwritten(batch, written);
        if written > 0 {
            // Nothing written leaves an earlier cut frame's rest still at the head.
            half.rest_queued = cut;
        }
        if rest.is_empty() && flush_without_waiting(&mut half.w).is_pending() {
            rest.push(Bytes::new()); // an empty frame: the writer writes nothing, then flushes
        }
        self.rx.put_back(rest);
    }

    /// Write the close frame (if any), then shut the socket, each within `grace`.
    pub(crate) async fn goodbye(&self, close_frame: Option<Bytes>, grace: Duration) {
        let mut half = self.half.lock().await;
        if let Some(frame) = close_frame.filter(|_| !half.rest_queued) {
            let _ = tokio::time::timeout(grace, async {
                half.w.write_all(&frame).await?;
                half.w.flush().await
            })
            .await;
        }
        let _ = tokio::time::timeout(grace, half.w.shutdown()).await;
    }
}

/// `batch` less its first `written` bytes, and whether they end inside a frame.
fn unwritten(batch: Vec<Bytes>, mut written: usize) -> (Vec<Bytes>, bool) {
    let mut rest = Vec::new();
    let mut cut = false;
    for frame in batch {
        if written >= frame.len() {
            written -= frame.len();
        } else if written > 0 {
            rest.push(frame.slice(written..));
            (written, cut) = (0, true);
        } else {
            rest.push(frame);
        }
    }
    (rest, cut)
}

/// `writev` as much of `bufs` as the socket takes now; how many bytes that was. An error
/// stops it like a full socket: the writer meets the error again and ends the connection.
fn write_without_waiting<W: AsyncWrite + Unpin>(w: &mut W, bufs: &[Bytes]) -> usize {
    let mut cx = Context::from_waker(Waker::noop());
    let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    let mut written = 0;
    while !rest.is_empty() {
        match Pin::new(&mut *w).poll_write_vectored(&mut cx, rest) {
            Poll::Ready(Ok(n)) if n > 0 => {
                written += n;
                IoSlice::advance_slices(&mut rest, n);
            }
            _ => break,
        }
    }
    written
}

fn flush_without_waiting<W: AsyncWrite + Unpin>(w: &mut W) -> Poll<()> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(w).poll_flush(&mut cx) {
        Poll::Ready(_) => Poll::Ready(()),
        Poll::Pending => Poll::Pending,
    }
}

/// `writev` until every byte of `bufs` is written.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    bufs: &[Bytes],
) -> std::io::Result<()> {
    if let [one] = bufs {
        return w.write_all(one).await;
    }
    let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = w.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Framing;
    use tokio::io::{AsyncReadExt, DuplexStream, duplex};

    /// A channel whose socket is one end of an in-memory pipe holding `pipe` bytes.
    fn sink(pipe: usize) -> (Channel, Sink<DuplexStream>, DuplexStream) {
        let (ch, rx) = Channel::new(1, 1, "a".into(), 1, "t".into(), Framing::WebSocket, 64);
        let (ours, peer) = duplex(pipe);
        (ch.v2(), Sink::new(ours, rx), peer)
    }

    async fn read_exactly(peer: &mut DuplexStream, n: usize) -> Vec<u8> {
        let mut got = vec![0; n];
        let read = tokio::time::timeout(Duration::from_secs(5), peer.read_exact(&mut got));
        read.await.expect("the bytes arrive").unwrap();
        got
    }

    #[tokio::test]
    async fn a_reply_is_written_at_once_behind_what_was_queued_before_it() {
        let (ch, sink, mut peer) = sink(1024);
        ch.push(Bytes::from_static(b"delivery;"));
        ch.push(Bytes::from_static(b"reply;"));
        sink.write_now(&ch);
        assert_eq!(read_exactly(&mut peer, 15).await, b"delivery;reply;");
        assert_eq!(sink.rx.try_recv(), None, "nothing was left for the writer");
    }

    #[tokio::test]
    async fn what_the_socket_does_not_take_is_left_to_the_writer_in_order() {
        // The pipe takes 4 bytes: the first frame is cut, its rest goes back to the queue.
        let (ch, sink, mut peer) = sink(4);
        ch.push(Bytes::from_static(b"abcdef"));
        ch.push(Bytes::from_static(b"gh"));
        sink.write_now(&ch);
        assert!(sink.half.try_lock().unwrap().rest_queued);
        // A frame queued meanwhile goes after the rest; the writer finishes all three.
        ch.push(Bytes::from_static(b"ij"));
        let writer = async {
            let mut batch = Vec::new();
            sink.write_queued(&mut batch).await.unwrap();
        };
        let (_, got) = tokio::join!(writer, read_exactly(&mut peer, 10));
        assert_eq!(got, b"abcdefghij");
        assert!(!sink.half.try_lock().unwrap().rest_queued);
    }

    #[tokio::test]
    async fn a_cut_frame_gets_no_close_frame_after_it() {
        let (ch, sink, mut peer) = sink(4);
        ch.push(Bytes::from_static(b"abcdef"));
        sink.write_now(&ch);
        sink.goodbye(
            Some(Bytes::from_static(b"CLOSE")),
            Duration::from_millis(100),
        )
        .await;
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(
            got, b"abcd",
            "the socket is shut after the cut, with nothing else"
        );
    }

    #[tokio::test]
    async fn nothing_is_written_while_the_writer_writes_or_once_the_channel_closed() {
        let (ch, sink, mut peer) = sink(1024);
        ch.push(Bytes::from_static(b"one;"));
        let held = sink.half.try_lock().unwrap();
        sink.write_now(&ch);
        drop(held);
        ch.close(crate::close::SLOW_CONSUMER);
        sink.write_now(&ch);
        drop(sink);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty(), "wrote {got:?}");
    }
}
