//! [`RedisSessions`]: tokens and presence in Redis, shared by every logic instance.

use super::Sessions;
use crate::model::{Presence, RoomId, User, UserId};
use crate::redis_util::{self, items};
use crate::{Error, Result};
use async_trait::async_trait;
use redis::Value;
use std::time::Duration;

/// Where the sessions live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSessionsConfig {
    /// `redis://host:port/db`. Default `redis://127.0.0.1:6379`.
    pub url: String,
    /// Prefix of every key. Default `gochat:`.
    pub prefix: String,
}

impl Default for RedisSessionsConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            prefix: "gochat:".into(),
        }
    }
}

/// Keys (all under the prefix `p`):
///
/// | key | type | holds |
/// |---|---|---|
/// | `p token:<t>` | string, PX ttl | `{"id":…,"name":…}` |
/// | `p login:<uid>` | string, PX ttl | the user's current login token |
/// | `p room:<r>:conns` | hash | `<uid>|<server>` → open connections |
/// | `p room:<r>:users` | hash | uid → open connections (any server) |
/// | `p room:<r>:names` | hash | uid → name, for rosters |
/// | `p room:<r>:servers` | hash | server → open connections |
/// | `p user:<uid>:servers` | hash | server → open connections |
/// | `p server:<s>:rooms`, `p server:<s>:users` | sets | what to clean if server `s` dies |
/// | `p server:<s>:alive` | string, PX ttl | server `s`'s presence lease |
/// | `p servers` | set | servers with presence or a lease, for expiry |
///
/// Every multi-key update is one Lua script, so it is atomic. The scripts build keys from
/// the prefix, so this backend wants a single Redis (or a cluster with one hash slot).
pub struct RedisSessions {
    conn: redis_util::Conn,
    prefix: String,
    login: redis::Script,
    logout: redis::Script,
    join: redis::Script,
    leave: redis::Script,
    drop_server: redis::Script,
    sync_server: redis::Script,
    expire_servers: redis::Script,
}

const LOGIN: &str = r"
local p, token, uid, user, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local cur = p .. 'login:' .. uid
local old = redis.call('GET', cur)
if old then redis.call('DEL', p .. 'token:' .. old) end
redis.call('SET', p .. 'token:' .. token, user, 'PX', ttl)
redis.call('SET', cur, token, 'PX', ttl)
if old == token then return false end
return old
";

const LOGOUT: &str = r"
local p, token = ARGV[1], ARGV[2]
local user = redis.call('GET', p .. 'token:' .. token)
if not user then return false end
redis.call('DEL', p .. 'token:' .. token)
local uid = cjson.decode(user)['id']
local cur = p .. 'login:' .. string.format('%d', uid)
if redis.call('GET', cur) == token then redis.call('DEL', cur) end
return user
";

/// `join(p, s, u, name, r)`: one more connection of user `u` on server `s` in room `r`.
const JOIN_FN: &str = r"
local function join(p, s, u, name, r)
  redis.call('HINCRBY', p .. 'user:' .. u .. ':servers', s, 1)
  redis.call('SADD', p .. 'server:' .. s .. ':users', u)
  redis.call('SADD', p .. 'servers', s)
  if r ~= '-1' then
    local room = p .. 'room:' .. r
    redis.call('HINCRBY', room .. ':conns', u .. '|' .. s, 1)
    local n = redis.call('HINCRBY', room .. ':users', u, 1)
    redis.call('HSET', room .. ':names', u, name)
    redis.call('HINCRBY', room .. ':servers', s, 1)
    redis.call('SADD', p .. 'server:' .. s .. ':rooms', r)
    return n == 1
  end
  return false
end
";

/// Returns 1 when it was the user's first connection in the room.
const JOIN: &str =
    "if join(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]) then return 1 end return 0";

const LEAVE: &str = r"
local p, s, u, r = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local function dec(key, field, by)
  local n = redis.call('HINCRBY', key, field, -by)
  if n <= 0 then redis.call('HDEL', key, field) end
  return n
end
local us = p .. 'user:' .. u .. ':servers'
if redis.call('HEXISTS', us, s) == 1 then dec(us, s, 1) end
if r ~= '-1' then
  local room = p .. 'room:' .. r
  local f = u .. '|' .. s
  if redis.call('HEXISTS', room .. ':conns', f) == 1 then
    dec(room .. ':conns', f, 1)
    dec(room .. ':servers', s, 1)
    if dec(room .. ':users', u, 1) <= 0 then
      redis.call('HDEL', room .. ':names', u)
      return 1
    end
  end
end
return 0
";

/// `drop(p, s)`: forget everything recorded for server `s`, its lease included.
const DROP_FN: &str = r"
local function drop(p, s)
  local suffix = '|' .. s
  for _, r in ipairs(redis.call('SMEMBERS', p .. 'server:' .. s .. ':rooms')) do
    local room = p .. 'room:' .. r
    local conns = redis.call('HGETALL', room .. ':conns')
    for i = 1, #conns, 2 do
      local f, n = conns[i], tonumber(conns[i + 1])
      if string.sub(f, -#suffix) == suffix then
        redis.call('HDEL', room .. ':conns', f)
        local u = string.sub(f, 1, #f - #suffix)
        if redis.call('HINCRBY', room .. ':users', u, -n) <= 0 then
          redis.call('HDEL', room .. ':users', u)
          redis.call('HDEL', room .. ':names', u)
        end
      end
    end
    redis.call('HDEL', room .. ':servers', s)
  end
  for _, u in ipairs(redis.call('SMEMBERS', p .. 'server:' .. s .. ':users')) do
    redis.call('HDEL', p .. 'user:' .. u .. ':servers', s)
  end
  redis.call('DEL', p .. 'server:' .. s .. ':rooms', p .. 'server:' .. s .. ':users',
    p .. 'server:' .. s .. ':alive')
  redis.call('SREM', p .. 'servers', s)
end
";

const DROP_SERVER: &str = "drop(ARGV[1], ARGV[2])";

/// ARGV: prefix, server, ttl ms, then (user, name, room) per connection.
const SYNC_SERVER: &str = r"
local p, s = ARGV[1], ARGV[2]
drop(p, s)
for i = 4, #ARGV, 3 do join(p, s, ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
redis.call('SET', p .. 'server:' .. s .. ':alive', '1', 'PX', ARGV[3])
redis.call('SADD', p .. 'servers', s)
";

const EXPIRE_SERVERS: &str = r"
local p = ARGV[1]
local dead = {}
for _, s in ipairs(redis.call('SMEMBERS', p .. 'servers')) do
  if redis.call('EXISTS', p .. 'server:' .. s .. ':alive') == 0 then
    drop(p, s)
    dead[#dead + 1] = s
  end
end
return dead
";

/// A script made of Lua helper functions and a body that calls them.
fn script(parts: &[&str]) -> redis::Script {
    redis::Script::new(&parts.concat())
}

fn encode_user(u: &User) -> String {
    serde_json::json!({"id": u.id, "name": u.name}).to_string()
}

fn decode_user(v: Value) -> Result<Option<User>> {
    match v {
        Value::Nil | Value::Boolean(false) => Ok(None),
        v => {
            let text = redis_util::text(v)?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::Malformed {
                    what: format!("session {text:?}"),
                    source: Box::new(e),
                })
        }
    }
}

fn sorted_keys(v: Value) -> Result<Vec<String>> {
    let mut keys = items(v)?
        .into_iter()
        .map(redis_util::text)
        .collect::<Result<Vec<_>>>()?;
    keys.sort();
    Ok(keys)
}

impl RedisSessions {
    /// Connect.
    pub async fn connect(config: RedisSessionsConfig) -> Result<Self> {
        Ok(Self {
            conn: redis_util::connect(&config.url, false).await?,
            prefix: config.prefix,
            login: redis::Script::new(LOGIN),
            logout: redis::Script::new(LOGOUT),
            join: script(&[JOIN_FN, JOIN]),
            leave: redis::Script::new(LEAVE),
            drop_server: script(&[DROP_FN, DROP_SERVER]),
            sync_server: script(&[JOIN_FN, DROP_FN, SYNC_SERVER]),
            expire_servers: script(&[DROP_FN, EXPIRE_SERVERS]),
        })
    }

    fn conn(&self) -> redis_util::Conn {
        self.conn.clone()
    }

    fn alive_key(&self, server_id: &str) -> String {
        format!("{}server:{server_id}:alive", self.prefix)
    }

    async fn hkeys(&self, key: String) -> Result<Vec<String>> {
        let v: Value = redis::cmd("HKEYS")
            .arg(key)
            .query_async(&mut self.conn())
            .await?;
        sorted_keys(v)
    }
}

#[async_trait]
impl Sessions for RedisSessions {
    async fn login(&self, token: &str, user: &User, ttl: Duration) -> Result<Option<String>> {
        let old: Value = self
            .login
            .arg(&self.prefix)
            .arg(token)
            .arg(user.id)
            .arg(encode_user(user))
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut self.conn())
            .await?;
        match old {
            Value::Nil | Value::Boolean(false) => Ok(None),
            v => Ok(Some(redis_util::text(v)?)),
        }
    }

    async fn get(&self, token: &str) -> Result<Option<User>> {
        let v: Value = redis::cmd("GET")
            .arg(format!("{}token:{token}", self.prefix))
            .query_async(&mut self.conn())
            .await?;
        decode_user(v)
    }

    async fn logout(&self, token: &str) -> Result<Option<User>> {
        let v: Value = self
            .logout
            .arg(&self.prefix)
            .arg(token)
            .invoke_async(&mut self.conn())
            .await?;
        decode_user(v)
    }

    async fn join(&self, p: &Presence) -> Result<bool> {
        let first: i64 = self
            .join
            .arg(&self.prefix)
            .arg(&p.server_id)
            .arg(p.user_id)
            .arg(&p.user_name)
            .arg(p.room_id)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(first == 1)
    }

    async fn leave(&self, p: &Presence) -> Result<bool> {
        let last: i64 = self
            .leave
            .arg(&self.prefix)
            .arg(&p.server_id)
            .arg(p.user_id)
            .arg(p.room_id)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(last == 1)
    }

    async fn room_size(&self, room: RoomId) -> Result<usize> {
        let n: usize = redis::cmd("HLEN")
            .arg(format!("{}room:{room}:names", self.prefix))
            .query_async(&mut self.conn())
            .await?;
        Ok(n)
    }

    async fn roster(&self, room: RoomId) -> Result<Vec<User>> {
        let v: Value = redis::cmd("HGETALL")
            .arg(format!("{}room:{room}:names", self.prefix))
            .query_async(&mut self.conn())
            .await?;
        let pairs: Vec<(Value, Value)> = match v {
            Value::Map(pairs) => pairs,
            v => {
                let mut flat = items(v)?.into_iter();
                let mut pairs = Vec::new();
                while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                    pairs.push((k, v));
                }
                pairs
            }
        };
        let mut users = pairs
            .into_iter()
            .map(|(k, v)| {
                let id = redis_util::text(k)?;
                Ok(User {
                    id: id
                        .parse()
                        .map_err(|_| Error::Decode(format!("user id {id:?} in a roster")))?,
                    name: redis_util::text(v)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        users.sort_by_key(|u| u.id);
        Ok(users)
    }

    async fn room_servers(&self, room: RoomId) -> Result<Vec<String>> {
        self.hkeys(format!("{}room:{room}:servers", self.prefix))
            .await
    }

    async fn user_servers(&self, user: UserId) -> Result<Vec<String>> {
        self.hkeys(format!("{}user:{user}:servers", self.prefix))
            .await
    }

    async fn users_servers(&self, users: &[UserId]) -> Result<Vec<Vec<String>>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.cmd("HKEYS")
                .arg(format!("{}user:{user}:servers", self.prefix));
        }
        // A pipeline answers every command or fails; the router checks the count for every
        // backend.
        let replies: Vec<Value> = pipe.query_async(&mut self.conn()).await?;
        replies.into_iter().map(sorted_keys).collect()
    }

    async fn drop_server(&self, server_id: &str) -> Result<()> {
        let _: Value = self
            .drop_server
            .arg(&self.prefix)
            .arg(server_id)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn sync_server(
        &self,
        server_id: &str,
        presences: &[Presence],
        ttl: Duration,
    ) -> Result<()> {
        let mut call = self.sync_server.prepare_invoke();
        call.arg(&self.prefix)
            .arg(server_id)
            .arg(ttl.as_millis().max(1) as u64);
        for p in presences.iter().filter(|p| p.server_id == server_id) {
            call.arg(p.user_id).arg(&p.user_name).arg(p.room_id);
        }
        let _: Value = call.invoke_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn renew_server(&self, server_id: &str, ttl: Duration) -> Result<bool> {
        let renewed: i64 = redis::cmd("PEXPIRE")
            .arg(self.alive_key(server_id))
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut self.conn())
            .await?;
        Ok(renewed == 1)
    }

    async fn server_alive(&self, server_id: &str) -> Result<bool> {
        let n: i64 = redis::cmd("EXISTS")
            .arg(self.alive_key(server_id))
            .query_async(&mut self.conn())
            .await?;
        Ok(n == 1)
    }

    async fn expire_servers(&self) -> Result<Vec<String>> {
        let dead: Value = self
            .expire_servers
            .arg(&self.prefix)
            .invoke_async(&mut self.conn())
            .await?;
        sorted_keys(dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let url =
            std::env::var("GOCHAT_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        crate::conformance::sessions::run_all(|| {
            let prefix = format!(
                "gochat-test:{}:{}:",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let url = url.clone();
            async move {
                RedisSessions::connect(RedisSessionsConfig { url, prefix })
                    .await
                    .expect("Redis must be running for these tests (scripts/test.sh starts one)")
            }
        })
        .await;
    }
}
