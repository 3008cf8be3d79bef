//! [`RedisQueue`]: the queue on a Redis stream with one consumer group for every task worker.

use super::{Queue, Receipt, Received};
use crate::model::Delivery;
use crate::redis_util::{self, items};
use crate::{Error, Result};
use async_trait::async_trait;
use redis::Value;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Dead letters kept in the stream `<stream>:dead` (approximately; the oldest are
    /// trimmed). Default 10 000.
    pub dead_letters_kept: usize,
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
            dead_letters_kept: 10_000,
        }
    }
}

/// Version byte in front of every encoded entry, so another format can be told apart (and
/// dead-lettered, not misread). 3: deliveries carry a kind, a stamp and an origin.
const FORMAT: u8 = 3;

/// Append only while the stream is under its bound: one atomic step, so concurrent
/// publishers cannot overshoot it together.
const BOUNDED_XADD: &str = r"
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', 'd', ARGV[2])
";

/// Move pending entries to the dead-letter stream with their reasons, in one atomic step.
/// KEYS: stream, dead stream. ARGV: group, kept, then id / reason pairs. Returns how many
/// were pending (and so moved).
const DEAD_LETTER: &str = r"
local moved = 0
for i = 3, #ARGV, 2 do
  local id, reason = ARGV[i], ARGV[i + 1]
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    local data = ''
    local e = redis.call('XRANGE', KEYS[1], id, id)
    if #e > 0 then
      local fields = e[1][2]
      for j = 1, #fields, 2 do
        if fields[j] == 'd' then data = fields[j + 1] end
      end
    end
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'd', data, 'reason', reason, 'id', id)
    moved = moved + 1
  end
  redis.call('XDEL', KEYS[1], id)
end
return moved
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
/// - An entry that does not decode (corrupt, or written by a newer version) is moved to the
///   stream `<stream>:dead` with the reason as soon as it is read; so is any entry handed to
///   [`Queue::dead_letter`]. Dead letters keep the raw entry, its id and the reason.
pub struct RedisQueue {
    config: RedisQueueConfig,
    conn: redis_util::Conn,
    /// Blocking reads wait on the server; they get their own connection and take turns.
    blocking: tokio::sync::Mutex<redis_util::Conn>,
    script: redis::Script,
    dead_letter_script: redis::Script,
    /// Entries this process moved to the dead letters.
    dead_lettered: AtomicU64,
    /// When stale entries were last looked for: claiming costs a round trip, so it runs at
    /// most every `claim_idle / 4` (and at the first receive).
    last_claim: Mutex<Option<Instant>>,
}

impl RedisQueue {
    /// Connect and make sure the stream and the group exist.
    pub async fn connect(config: RedisQueueConfig) -> Result<Self> {
        let conn = redis_util::connect(&config.url, false).await?;
        let blocking = redis_util::connect(&config.url, true).await?;
        let q = Self {
            config,
            conn,
            blocking: tokio::sync::Mutex::new(blocking),
            script: redis::Script::new(BOUNDED_XADD),
            dead_letter_script: redis::Script::new(DEAD_LETTER),
            dead_lettered: AtomicU64::new(0),
            last_claim: Mutex::new(None),
        };
        q.ensure_group().await?;
        Ok(q)
    }

    /// Create the stream and the consumer group unless they exist (again, after a Redis
    /// that lost its data — without persistence — came back empty).
    async fn ensure_group(&self) -> Result<()> {
        let created: redis::RedisResult<Value> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        match created {
            Ok(_) => Ok(()),
            // The group exists already: another worker made it. Not an error.
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// After a failed read: if the group is gone, make it again (the caller retries).
    async fn recover(&self, e: redis::RedisError) -> Error {
        if e.code() == Some("NOGROUP") {
            tracing::warn!(
                "queue: consumer group of {} is gone (Redis lost its data?); creating it again",
                self.config.stream
            );
            if let Err(again) = self.ensure_group().await {
                return again;
            }
        }
        e.into()
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
        let reply: redis::RedisResult<Value> = redis::cmd("XAUTOCLAIM")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(consumer)
            .arg(self.config.claim_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(max)
            .query_async(&mut self.conn.clone())
            .await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return Err(self.recover(e).await),
        };
        // [next-cursor, [entries…], [deleted ids…]]
        let mut parts = items(reply)?.into_iter();
        let entries = parts.nth(1).map(items).transpose()?.unwrap_or_default();
        let mut claimed = self.decode_or_dead_letter(entries).await?;
        if let (Some(first), Some(last)) = (claimed.first(), claimed.last()) {
            let counts = self
                .delivery_counts(consumer, first.receipt, last.receipt, claimed.len())
                .await?;
            for r in &mut claimed {
                // Claimed entries were handed out before; without a count, say at least 2.
                r.deliveries = counts.get(&r.receipt).copied().unwrap_or(2);
            }
        }
        Ok(claimed)
    }

    /// How often each pending entry of `consumer` between `first` and `last` was handed out
    /// (`XPENDING` extended form: `[[id, consumer, idle, deliveries], …]`).
    async fn delivery_counts(
        &self,
        consumer: &str,
        first: Receipt,
        last: Receipt,
        max: usize,
    ) -> Result<std::collections::HashMap<Receipt, u32>> {
        let reply: Value = redis::cmd("XPENDING")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(stream_id(first))
            .arg(stream_id(last))
            .arg(max)
            .arg(consumer)
            .query_async(&mut self.conn.clone())
            .await?;
        let mut out = std::collections::HashMap::new();
        for row in items(reply)? {
            let mut f = items(row)?.into_iter();
            let (Some(id), Some(_), Some(_), Some(n)) = (f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            let n = match n {
                Value::Int(n) => u32::try_from(n).unwrap_or(u32::MAX),
                other => redis_util::text(other)?.parse().unwrap_or(2),
            };
            out.insert(parse_id(&redis_util::text(id)?)?, n);
        }
        Ok(out)
    }

    /// Decode entries; those that do not decode go to the dead letters at once, so that one
    /// bad entry never holds up the good ones read with it.
    async fn decode_or_dead_letter(&self, entries: Vec<Value>) -> Result<Vec<Received>> {
        let (good, bad) = decode_entries(entries)?;
        if !bad.is_empty() {
            for (receipt, reason) in &bad {
                tracing::error!(
                    "queue: entry {} of {} is undecodable, dead-lettered: {reason}",
                    stream_id(*receipt),
                    self.config.stream
                );
            }
            self.dead_letter(&bad).await?;
        }
        Ok(good)
    }
}

fn stream_id(r: Receipt) -> String {
    format!("{}-{}", r.0, r.1)
}

fn encode(d: &Delivery) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT];
    bincode::serialize_into(&mut out, d).map_err(|e| Error::Malformed {
        what: format!("delivery {}", d.id),
        source: e,
    })?;
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Delivery> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => bincode::deserialize(rest).map_err(|e| Error::Malformed {
            what: "queue entry".into(),
            source: e,
        }),
        Some((v, _)) => Err(Error::Decode(format!("queue entry format {v} is unknown"))),
        None => Err(Error::Decode("empty queue entry".into())),
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

/// Entries as `[[id, [field, value, …]], …]`, split into the decoded ones and those that are
/// not a delivery (with why). An entry whose fields are gone (deleted while pending) is
/// skipped.
#[allow(clippy::type_complexity)]
fn decode_entries(entries: Vec<Value>) -> Result<(Vec<Received>, Vec<(Receipt, String)>)> {
    let mut good = Vec::with_capacity(entries.len());
    let mut bad = Vec::new();
    for entry in entries {
        let mut e = items(entry)?.into_iter();
        let (Some(id), Some(fields)) = (e.next(), e.next()) else {
            continue;
        };
        let receipt = parse_id(&redis_util::text(id)?)?;
        let mut data = None;
        let mut fields = items(fields)?.into_iter();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            if redis_util::bytes(name)? == b"d" {
                data = Some(redis_util::bytes(value)?);
            }
        }
        match data.as_deref().map(decode) {
            Some(Ok(delivery)) => good.push(Received {
                receipt,
                delivery,
                deliveries: 1,
            }),
            Some(Err(e)) => bad.push((receipt, e.to_string())),
            None => bad.push((receipt, "entry has no field d".into())),
        }
    }
    Ok((good, bad))
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
        let reply: redis::RedisResult<Value> = {
            let mut conn = self.blocking.lock().await;
            cmd.query_async(&mut *conn).await
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return Err(self.recover(e).await),
        };
        // [[stream, [entries…]]] or nil on timeout
        let mut entries = Vec::new();
        for stream in items(reply)? {
            let mut s = items(stream)?.into_iter();
            if let Some(list) = s.nth(1) {
                entries.extend(items(list)?);
            }
        }
        self.decode_or_dead_letter(entries).await
    }

    async fn ack(&self, receipts: &[Receipt]) -> Result<()> {
        if receipts.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = receipts.iter().copied().map(stream_id).collect();
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

    async fn dead_letter(&self, entries: &[(Receipt, String)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut call = self.dead_letter_script.prepare_invoke();
        call.key(&self.config.stream)
            .key(format!("{}:dead", self.config.stream))
            .arg(&self.config.group)
            .arg(self.config.dead_letters_kept);
        for (receipt, reason) in entries {
            call.arg(stream_id(*receipt)).arg(reason);
        }
        let moved: u64 = call.invoke_async(&mut self.conn.clone()).await?;
        self.dead_lettered.fetch_add(moved, Ordering::Relaxed);
        Ok(())
    }

    fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }

    async fn depth(&self) -> Result<super::Depth> {
        // Acknowledged entries are deleted, so the stream's length is what is held.
        let held: u64 = redis::cmd("XLEN")
            .arg(&self.config.stream)
            .query_async(&mut self.conn.clone())
            .await?;
        let summary: Value = redis::cmd("XPENDING")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .query_async(&mut self.conn.clone())
            .await?;
        let pending = match summary {
            Value::Array(v) => match v.first() {
                Some(Value::Int(n)) => *n as u64,
                _ => 0,
            },
            _ => 0,
        };
        Ok(super::Depth { held, pending })
    }
}

#[cfg(test)]
mod tests;
