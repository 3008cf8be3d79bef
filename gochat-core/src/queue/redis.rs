//! [`RedisQueue`]: the queue on a Redis stream with one consumer group for every task worker.

use super::{Queue, Receipt, Received};
use crate::model::Delivery;
use crate::redis_util::{self, items};
use crate::{Error, Result};
use async_trait::async_trait;
use redis::Value;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Where the stream is and how it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisQueueConfig {
    /// `redis://host:port/db`. Default `redis://127.0.0.1:6379`.
    pub url: String,
    /// Stream key. Default `gochat:deliveries`.
    pub stream: String,
    /// Consumer group shared by all task workers. Default `task`.
    pub group: String,
    /// Entries held (unacknowledged ones included) before `publish` waits. Default 65 536.
    pub capacity: usize,
    /// How long a handed-out entry stays unacknowledged before another consumer claims it.
    /// Default 30 s.
    pub claim_idle: Duration,
    /// How long `publish` waits for room in a full stream before failing. Default 10 s.
    pub publish_timeout: Duration,
}

impl Default for RedisQueueConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            stream: "gochat:deliveries".into(),
            group: "task".into(),
            capacity: 65_536,
            claim_idle: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(10),
        }
    }
}

/// Version byte in front of every encoded entry, so a future format can be told apart.
const FORMAT_V1: u8 = 1;

/// Append only while the stream is under its bound: one atomic step, so concurrent
/// publishers cannot overshoot it together.
const BOUNDED_XADD: &str = r"
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', 'd', ARGV[2])
";

/// The queue on Redis Streams.
///
/// - `publish` appends one entry (bincode behind a version byte); at `capacity` entries it
///   waits for acknowledgements, up to `publish_timeout`, then fails with
///   [`Error::QueueFull`] — it never drops an entry.
/// - `receive` first claims entries another consumer left unacknowledged for `claim_idle`
///   (`XAUTOCLAIM`), then reads new ones (`XREADGROUP … BLOCK`) on a connection of its own
///   with no response timeout.
/// - `ack` acknowledges and deletes the entries (`XACK` + `XDEL`), which is what keeps the
///   stream short: it holds only what is not yet delivered.
pub struct RedisQueue {
    config: RedisQueueConfig,
    conn: redis::aio::MultiplexedConnection,
    /// Blocking reads wait on the server; they get their own connection and take turns.
    blocking: tokio::sync::Mutex<redis::aio::MultiplexedConnection>,
    script: redis::Script,
    /// When stale entries were last looked for: claiming costs a round trip, so it runs at
    /// most every `claim_idle / 4` (and at the first receive).
    last_claim: Mutex<Option<Instant>>,
}

impl RedisQueue {
    /// Connect and make sure the stream and the group exist.
    pub async fn connect(config: RedisQueueConfig) -> Result<Self> {
        let mut conn = redis_util::connect(&config.url, false).await?;
        let created: redis::RedisResult<Value> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&config.stream)
            .arg(&config.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Ok(_) => {}
            // The group exists already: another worker made it. Not an error.
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(e.into()),
        }
        let blocking = redis_util::connect(&config.url, true).await?;
        Ok(Self {
            config,
            conn,
            blocking: tokio::sync::Mutex::new(blocking),
            script: redis::Script::new(BOUNDED_XADD),
            last_claim: Mutex::new(None),
        })
    }

    fn claim_due(&self) -> bool {
        let mut last = self.last_claim.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= self.config.claim_idle / 4);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    async fn claim_stale(&self, consumer: &str, max: usize) -> Result<Vec<Received>> {
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(consumer)
            .arg(self.config.claim_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(max)
            .query_async(&mut self.conn.clone())
            .await?;
        // [next-cursor, [entries…], [deleted ids…]]
        let mut parts = items(reply)?.into_iter();
        let entries = parts.nth(1).map(items).transpose()?.unwrap_or_default();
        decode_entries(entries)
    }
}

fn encode(d: &Delivery) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT_V1];
    bincode::serialize_into(&mut out, d).map_err(|e| Error::Decode(e.to_string()))?;
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Delivery> {
    match bytes.split_first() {
        Some((&FORMAT_V1, rest)) => {
            bincode::deserialize(rest).map_err(|e| Error::Decode(e.to_string()))
        }
        _ => Err(Error::Decode("unknown queue entry format".into())),
    }
}

fn parse_id(id: &str) -> Result<Receipt> {
    let (ms, seq) = id
        .split_once('-')
        .ok_or_else(|| Error::Decode(format!("stream id {id:?}")))?;
    let n = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| Error::Decode(format!("stream id {id:?}")))
    };
    Ok(Receipt(n(ms)?, n(seq)?))
}

/// Entries as `[[id, [field, value, …]], …]`; an entry whose fields are gone (deleted while
/// pending) is skipped.
fn decode_entries(entries: Vec<Value>) -> Result<Vec<Received>> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut e = items(entry)?.into_iter();
        let (Some(id), Some(fields)) = (e.next(), e.next()) else {
            continue;
        };
        let receipt = parse_id(&redis_util::text(id)?)?;
        let mut fields = items(fields)?.into_iter();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            if redis_util::bytes(name)? == b"d" {
                out.push(Received {
                    receipt,
                    delivery: decode(&redis_util::bytes(value)?)?,
                });
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl Queue for RedisQueue {
    async fn publish(&self, delivery: Delivery) -> Result<()> {
        let payload = encode(&delivery)?;
        let deadline = Instant::now() + self.config.publish_timeout;
        loop {
            let added: Value = self
                .script
                .key(&self.config.stream)
                .arg(self.config.capacity)
                .arg(payload.as_slice())
                .invoke_async(&mut self.conn.clone())
                .await?;
            if !matches!(added, Value::Nil | Value::Boolean(false)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::QueueFull);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn receive(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Received>> {
        let max = max.max(1);
        if self.claim_due() {
            let stale = self.claim_stale(consumer, max).await?;
            if !stale.is_empty() {
                return Ok(stale);
            }
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.config.group)
            .arg(consumer)
            .arg("COUNT")
            .arg(max);
        let block_ms = wait.as_millis() as u64;
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(&self.config.stream).arg(">");
        // Cancel-safe: a cancelled wait drops the connection's pending reply with the future;
        // an entry delivered into it stays pending in the group and is claimed later.
        let reply: Value = {
            let mut conn = self.blocking.lock().await;
            cmd.query_async(&mut *conn).await?
        };
        // [[stream, [entries…]]] or nil on timeout
        let mut entries = Vec::new();
        for stream in items(reply)? {
            let mut s = items(stream)?.into_iter();
            if let Some(list) = s.nth(1) {
                entries.extend(items(list)?);
            }
        }
        decode_entries(entries)
    }

    async fn ack(&self, receipts: &[Receipt]) -> Result<()> {
        if receipts.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = receipts
            .iter()
            .map(|r| format!("{}-{}", r.0, r.1))
            .collect();
        redis::pipe()
            .cmd("XACK")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(&ids)
            .ignore()
            .cmd("XDEL")
            .arg(&self.config.stream)
            .arg(&ids)
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::queue as suite;

    /// A fresh stream per factory call, so suites never see each other's entries.
    fn unique(name: &str) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "gochat-test:{}:{}:{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn redis_url() -> String {
        std::env::var("GOCHAT_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    #[tokio::test]
    async fn conformance() {
        suite::run_all(|cfg| async move {
            RedisQueue::connect(RedisQueueConfig {
                url: redis_url(),
                stream: unique("q"),
                capacity: cfg.capacity,
                claim_idle: cfg.claim_idle(),
                ..RedisQueueConfig::default()
            })
            .await
            .expect("Redis must be running for these tests (scripts/test.sh starts one)")
        })
        .await;
    }

    #[test]
    fn entries_round_trip_behind_a_version_byte() {
        let d = suite::delivery(7);
        let bytes = encode(&d).unwrap();
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(decode(&bytes).unwrap(), d);
        assert!(decode(&[9, 1, 2]).is_err());
        assert!(decode(&[]).is_err());
    }

    #[tokio::test]
    async fn acknowledged_entries_leave_the_stream() {
        let stream = unique("trim");
        let q = RedisQueue::connect(RedisQueueConfig {
            url: redis_url(),
            stream: stream.clone(),
            ..RedisQueueConfig::default()
        })
        .await
        .unwrap();
        for i in 0..50 {
            q.publish(suite::delivery(i)).await.unwrap();
        }
        let got = q
            .receive("c", 100, Duration::from_millis(100))
            .await
            .unwrap();
        let receipts: Vec<_> = got.iter().map(|r| r.receipt).collect();
        q.ack(&receipts).await.unwrap();
        let len: usize = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut q.conn.clone())
            .await
            .unwrap();
        assert_eq!(len, 0, "acknowledged entries must not accumulate");
        let _: () = redis::cmd("DEL")
            .arg(&stream)
            .query_async(&mut q.conn.clone())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_full_stream_makes_publish_fail_not_drop() {
        let q = RedisQueue::connect(RedisQueueConfig {
            url: redis_url(),
            stream: unique("full"),
            capacity: 3,
            publish_timeout: Duration::from_millis(200),
            ..RedisQueueConfig::default()
        })
        .await
        .unwrap();
        for i in 0..3 {
            q.publish(suite::delivery(i)).await.unwrap();
        }
        assert!(matches!(
            q.publish(suite::delivery(3)).await,
            Err(Error::QueueFull)
        ));
        let got = q
            .receive("c", 10, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(|r| r.delivery.id).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        q.ack(&[got[0].receipt]).await.unwrap();
        q.publish(suite::delivery(3)).await.unwrap();
    }
}
