//! The outbound half of a connection: drains the channel's queue into batched writes,
//! sends keep-alives, notices idleness, and writes the close frame.
//!
//! Timers run by deadline, not by tick: the writer keeps "next ping at" and "idle since"
//! as instants and sleeps until the earlier one, so a ping is sent exactly when due and a
//! peer that answers it (its Pong moves "idle since") is never closed as idle.

use crate::channel::Channel;
use crate::close::{self, CloseReason};
use crate::sink::Sink;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWrite;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a close frame may take to write before the socket is just dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What a wire layout needs from the writer besides data frames.
pub struct Wire {
    /// The keep-alive frame (a WebSocket Ping, or TCP's `ping msg`).
    pub ping: Bytes,
    /// The frame announcing a close, if the layout has one (TCP has none).
    pub close: fn(CloseReason) -> Option<Bytes>,
}

/// When the peer was last heard from, in milliseconds since `start`. Written by the reader,
/// read by the writer's idle check.
pub struct LastSeen {
    start: Instant,
    ms: AtomicU64,
}

impl Default for LastSeen {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            ms: AtomicU64::new(0),
        }
    }
}

impl LastSeen {
    /// Record that the peer sent something now.
    pub fn touch(&self) {
        self.ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// When the peer was last heard from.
    fn at(&self) -> Instant {
        self.start + Duration::from_millis(self.ms.load(Ordering::Relaxed))
    }
}

/// Keep-alive timing.
#[derive(Clone, Copy)]
pub struct Liveness {
    /// Send a ping this often.
    pub ping_every: Duration,
    /// Close when nothing was heard for this long.
    pub idle_timeout: Duration,
}

/// Write until the channel is closed, the peer goes away, or `shutdown` fires; then send
/// the close frame (when there is one and the socket is still usable).
pub(crate) async fn run<W: AsyncWrite + Unpin>(
    sink: &Sink<W>,
    ch: &Channel,
    wire: &Wire,
    live: Liveness,
    last_seen: &LastSeen,
    shutdown: &CancellationToken,
) {
    let mut next_ping = Instant::now() + live.ping_every;
    let timer = tokio::time::sleep_until(next_ping.min(last_seen.at() + live.idle_timeout));
    tokio::pin!(timer);
    // Empty (no allocation) until the first frame; then kept, cleared, for the next burst.
    let mut batch: Vec<Bytes> = Vec::new();
    let reason = loop {
        tokio::select! {
            biased;
            _ = ch.closed() => break ch.close_reason(),
            _ = shutdown.cancelled() => break Some(close::SHUTTING_DOWN),
            () = sink.readable() => {
                let written = tokio::select! {
                    r = sink.write_queued(&mut batch) => r.is_ok(),
                    // Kicked while stuck writing to a peer that does not read: the frame
                    // in flight is cut, so no close frame can follow; just drop the socket.
                    _ = ch.closed() => return,
                };
                if !written {
                    return;
                }
            }
            _ = &mut timer => {
                let now = Instant::now();
                let idle_at = last_seen.at() + live.idle_timeout;
                if now >= idle_at {
                    ch.close(close::IDLE);
                    continue;
                }
                if now >= next_ping {
                    next_ping = now + live.ping_every;
                    let ok = tokio::select! {
                        r = sink.write_one(&wire.ping) => r.is_ok(),
                        _ = ch.closed() => return,
                    };
                    if !ok {
                        return;
                    }
                }
                timer.as_mut().reset(next_ping.min(idle_at));
            }
        }
    };
    // Boxed: inlined, these two timeouts would be part of the writer's future, which lives
    // as long as the connection.
    Box::pin(sink.goodbye(reason.and_then(wire.close), CLOSE_GRACE)).await;
}
