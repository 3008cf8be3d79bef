//! Prometheus metrics of this process (prometheus-client, the official crate), one registry
//! for every layer it runs; rendered by [`render`] for `GET /metrics`. Label handles are
//! resolved once, so counting on a hot path is an atomic add. Label values come from fixed
//! sets (transport, kind, close reason…), never from users.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::LazyLock;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Transport {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Posted {
    kind: &'static str,
    via: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Limit {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: &'static str,
}

/// Every metric; see docs/operations.md for what each means.
pub struct Metrics {
    registry: Registry,
    connections_open: Family<Transport, Gauge>,
    connections_admitted: Family<Transport, Counter>,
    connections_closed: Family<Reason, Counter>,
    posted: Family<Posted, Counter>,
    /// Messages stored (each once, whatever its number of logs).
    pub stored: Counter,
    /// Posts that repeated a client id and were not stored again.
    pub duplicates: Counter,
    /// History pages read (op 9, `/push/history`, replays after a reconnect).
    pub history_pages: Counter,
    logins: Family<Outcome, Counter>,
    limited: Family<Limit, Counter>,
    /// Frames handed to connections' queues (one per recipient and message).
    pub frames_delivered: Counter,
    /// Time from a message's post to its hand-off to the recipients' connections.
    pub delivery_latency: Histogram,
    /// How long a store append took, as logic saw it.
    pub store_append: Histogram,
    /// Messages per store commit (SQLite group commit, PostgreSQL batch).
    pub store_batch: Histogram,
    /// Store batches that failed as a whole and were run again write by write.
    pub store_batches_retried: Counter,
    /// Queue entries delivered and acknowledged by task.
    pub queue_acked: Counter,
    /// Queue entries given up on and dead-lettered.
    pub queue_dead_lettered: Counter,
    /// Queue entries handed out again (claimed after their claim-idle time).
    pub queue_redelivered: Counter,
    /// Entries the queue holds, not yet acknowledged (as a task worker last saw it).
    pub queue_held: Gauge,
    /// Of those, handed out and not yet acknowledged.
    pub queue_pending: Gauge,
    /// Room memberships of this connect server's connections (a connection in 3 rooms: 3).
    pub room_memberships: Gauge,
    /// Authenticated connections waiting for a turn to be admitted
    /// (`connect.admissions_in_flight`).
    pub admissions_waiting: Gauge,
    rpc_calls: Family<Method, Counter>,
    rpc_errors: Family<Method, Counter>,
}

fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18)) // 0.1 ms … 13 s
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("gochat");
        let m = Self {
            registry: Registry::default(),
            connections_open: Family::default(),
            connections_admitted: Family::default(),
            connections_closed: Family::default(),
            posted: Family::default(),
            stored: Counter::default(),
            history_pages: Counter::default(),
            duplicates: Counter::default(),
            logins: Family::default(),
            limited: Family::default(),
            frames_delivered: Counter::default(),
            delivery_latency: latency_buckets(),
            store_append: latency_buckets(),
            store_batch: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            store_batches_retried: Counter::default(),
            queue_acked: Counter::default(),
            queue_dead_lettered: Counter::default(),
            queue_redelivered: Counter::default(),
            queue_held: Gauge::default(),
            queue_pending: Gauge::default(),
            room_memberships: Gauge::default(),
            admissions_waiting: Gauge::default(),
            rpc_calls: Family::default(),
            rpc_errors: Family::default(),
        };
        let r = &mut registry;
        r.register(
            "connections_open",
            "Long connections open now, by transport",
            m.connections_open.clone(),
        );
        r.register(
            "connections_admitted",
            "Connections authenticated and admitted, by transport",
            m.connections_admitted.clone(),
        );
        r.register(
            "connections_closed",
            "Connections closed, by close reason",
            m.connections_closed.clone(),
        );
        r.register(
            "messages_posted",
            "Messages accepted from senders, by kind and by where they came in",
            m.posted.clone(),
        );
        r.register(
            "messages_stored",
            "Messages stored in history",
            m.stored.clone(),
        );
        r.register(
            "messages_duplicate",
            "Posts that repeated a client id and were not stored again",
            m.duplicates.clone(),
        );
        r.register(
            "history_pages",
            "History pages read: op 9, /push/history, replays after a reconnect",
            m.history_pages.clone(),
        );
        r.register("logins", "Login attempts, by result", m.logins.clone());
        r.register(
            "limited",
            "Requests and connections refused by an abuse limit, by limit",
            m.limited.clone(),
        );
        r.register(
            "frames_delivered",
            "Message frames handed to recipients' connections",
            m.frames_delivered.clone(),
        );
        r.register_with_unit(
            "delivery_latency",
            "From a message's post to its hand-off to the recipients' connections",
            Unit::Seconds,
            m.delivery_latency.clone(),
        );
        r.register_with_unit(
            "store_append",
            "Store append latency as logic sees it",
            Unit::Seconds,
            m.store_append.clone(),
        );
        r.register(
            "store_batch_messages",
            "Messages per store commit",
            m.store_batch.clone(),
        );
        r.register(
            "store_batches_retried",
            "Store batches that failed as a whole and were run again write by write",
            m.store_batches_retried.clone(),
        );
        r.register(
            "queue_acked",
            "Queue entries delivered and acknowledged",
            m.queue_acked.clone(),
        );
        r.register(
            "queue_dead_lettered",
            "Queue entries dead-lettered",
            m.queue_dead_lettered.clone(),
        );
        r.register(
            "queue_redelivered",
            "Queue entries handed out again after their claim-idle time",
            m.queue_redelivered.clone(),
        );
        r.register(
            "queue_held",
            "Entries in the queue not yet acknowledged",
            m.queue_held.clone(),
        );
        r.register(
            "queue_pending",
            "Entries handed out to a worker and not yet acknowledged",
            m.queue_pending.clone(),
        );
        r.register(
            "room_memberships",
            "Room memberships of this server's connections",
            m.room_memberships.clone(),
        );
        r.register(
            "admissions_waiting",
            "Authenticated connections waiting for a turn to be admitted",
            m.admissions_waiting.clone(),
        );
        r.register(
            "rpc_calls",
            "RPC calls served, by method",
            m.rpc_calls.clone(),
        );
        r.register(
            "rpc_errors",
            "RPC calls that failed, by method",
            m.rpc_errors.clone(),
        );
        Self { registry, ..m }
    }

    /// A long connection was admitted (`transport` "ws" or "tcp"); it counts as open until
    /// [`closed`](Self::closed).
    pub fn admitted(&self, transport: &'static str) {
        let t = Transport { transport };
        self.connections_admitted.get_or_create(&t).inc();
        self.connections_open.get_or_create(&t).inc();
    }

    /// An admitted connection closed, for `reason`.
    pub fn closed(&self, transport: &'static str, reason: &'static str) {
        self.connections_open
            .get_or_create(&Transport { transport })
            .dec();
        self.connections_closed
            .get_or_create(&Reason { reason })
            .inc();
    }

    /// A connection refused or closed before admission, for `reason`.
    pub fn refused(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&Reason { reason })
            .inc();
    }

    /// A message accepted: `kind` "room" or "private", `via` "rest" or "socket".
    pub fn posted(&self, kind: &'static str, via: &'static str) {
        self.posted.get_or_create(&Posted { kind, via }).inc();
    }

    /// A login ended: "ok", "wrong" or "locked".
    pub fn login(&self, result: &'static str) {
        self.logins.get_or_create(&Outcome { result }).inc();
    }

    /// Something was refused by `limit`.
    pub fn limited(&self, limit: &'static str) {
        self.limited.get_or_create(&Limit { limit }).inc();
    }

    /// An RPC call of `method` was served, and whether it failed.
    pub fn rpc(&self, method: &'static str, failed: bool) {
        let m = Method { method };
        self.rpc_calls.get_or_create(&m).inc();
        if failed {
            self.rpc_errors.get_or_create(&m).inc();
        }
    }

    /// Observe `d` in seconds.
    pub fn seconds(h: &Histogram, d: Duration) {
        h.observe(d.as_secs_f64());
    }
}

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    static M: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &M
}

/// The Prometheus text exposition of every metric (`Content-Type:` [`CONTENT_TYPE`]).
pub fn render() -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &metrics().registry);
    out
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_the_prefix_units_and_labels() {
        let m = metrics();
        m.posted("room", "rest");
        m.admitted("ws");
        Metrics::seconds(&m.delivery_latency, Duration::from_millis(3));
        let text = render();
        assert!(
            text.contains(r#"gochat_messages_posted_total{kind="room",via="rest"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"gochat_connections_open{transport="ws"}"#),
            "{text}"
        );
        assert!(
            text.contains("gochat_delivery_latency_seconds_bucket"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
