//! [`EtcdRegistry`]: instances under leases in etcd, watched by prefix.

use super::{Instance, Kind, Registry};
use crate::Result;
use async_trait::async_trait;
use etcd_client::{Client, EventType, GetOptions, PutOptions, WatchOptions};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where the registry lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdRegistryConfig {
    /// etcd client endpoints. Default `["http://127.0.0.1:2379"]`.
    pub endpoints: Vec<String>,
    /// Key prefix. Default `gochat/`.
    pub prefix: String,
    /// Lease time-to-live: an instance that dies disappears within this. Default 10 s.
    pub lease_ttl: Duration,
}

impl Default for EtcdRegistryConfig {
    fn default() -> Self {
        Self {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "gochat/".into(),
            lease_ttl: Duration::from_secs(10),
        }
    }
}

/// The registry in etcd. Each registered instance is the key `<prefix><kind>/<id>` (value:
/// the instance as JSON) attached to a lease of its own, kept alive every TTL/3 by a task of
/// this registry; if the process dies the lease lapses and etcd deletes the key. Watches run
/// one task per kind, rebuilt from a fresh read if the watch stream breaks.
pub struct EtcdRegistry {
    client: Client,
    config: EtcdRegistryConfig,
    /// Lease and keep-alive stopper of each instance this process registered.
    leases: Mutex<HashMap<(Kind, String), (i64, CancellationToken)>>,
    /// The current list of each kind, once someone watches it.
    watches: Mutex<HashMap<Kind, watch::Sender<Vec<Instance>>>>,
    /// Owns the keep-alive and watch tasks; `shutdown` stops them.
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl EtcdRegistry {
    /// Connect to etcd.
    pub async fn connect(config: EtcdRegistryConfig) -> Result<Self> {
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(5));
        let at = |source| crate::Error::EtcdAt {
            endpoints: config.endpoints.clone(),
            source,
        };
        let mut client = Client::connect(config.endpoints.clone(), Some(opts))
            .await
            .map_err(at)?;
        // The connection is made lazily: ask once, so that a wrong address fails here,
        // naming itself, rather than at the first registration.
        client.status().await.map_err(at)?;
        Ok(Self {
            client,
            config,
            leases: Mutex::default(),
            watches: Mutex::default(),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        })
    }

    fn kind_prefix(&self, kind: Kind) -> String {
        format!("{}{kind}/", self.config.prefix)
    }

    fn key(&self, kind: Kind, id: &str) -> String {
        format!("{}{id}", self.kind_prefix(kind))
    }

    async fn read(client: &mut Client, prefix: &str) -> Result<(BTreeMap<String, Instance>, i64)> {
        let resp = client
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut out = BTreeMap::new();
        for kv in resp.kvs() {
            if let Some(i) = parse(kv.value()) {
                out.insert(i.id.clone(), i);
            }
        }
        Ok((out, revision))
    }
}

fn parse(value: &[u8]) -> Option<Instance> {
    serde_json::from_slice(value).ok()
}

fn sorted(map: &BTreeMap<String, Instance>) -> Vec<Instance> {
    map.values().cloned().collect()
}

/// Grant a lease of `ttl` and put `key` under it; returns the lease id.
async fn put_under_new_lease(
    client: &mut Client,
    key: &str,
    value: &str,
    ttl: Duration,
) -> Result<i64, etcd_client::Error> {
    let lease = client
        .lease_grant(ttl.as_secs().max(1) as i64, None)
        .await?
        .id();
    client
        .put(key, value, Some(PutOptions::new().with_lease(lease)))
        .await?;
    Ok(lease)
}

/// Keep one lease alive until `stop`; if it lapses anyway (etcd restarted, a long pause),
/// grant a new one and put the key again.
async fn keep_alive(
    mut client: Client,
    key: String,
    value: String,
    ttl: Duration,
    mut lease: i64,
    stop: CancellationToken,
) {
    let every = ttl / 3;
    loop {
        let alive = async {
            let (mut keeper, mut stream) = client.lease_keep_alive(lease).await?;
            loop {
                keeper.keep_alive().await?;
                match stream.message().await? {
                    Some(r) if r.ttl() > 0 => {}
                    _ => return Ok::<(), etcd_client::Error>(()), // lapsed: re-register
                }
                tokio::time::sleep(every).await;
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            r = alive => {
                if let Err(e) = r {
                    tracing::warn!("etcd keep-alive of {key} failed: {e}");
                }
            }
        }
        // Re-register after a pause, until it works or we are told to stop.
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            match put_under_new_lease(&mut client, &key, &value, ttl).await {
                Ok(id) => {
                    lease = id;
                    break;
                }
                Err(e) => tracing::warn!("etcd re-registration of {key} failed: {e}"),
            }
        }
    }
}

/// Mirror one kind's keys into `tx` until `stop`.
async fn mirror(
    mut client: Client,
    prefix: String,
    tx: watch::Sender<Vec<Instance>>,
    stop: CancellationToken,
    mut first: Option<(BTreeMap<String, Instance>, i64)>,
) {
    loop {
        let run = async {
            // The snapshot `watch` already read, then a fresh read whenever the watch has to
            // be rebuilt.
            let (mut current, revision) = match first.take() {
                Some(snapshot) => snapshot,
                None => EtcdRegistry::read(&mut client, &prefix).await?,
            };
            tx.send_replace(sorted(&current));
            let opts = WatchOptions::new()
                .with_prefix()
                .with_start_revision(revision + 1);
            let mut stream = client.watch(prefix.as_str(), Some(opts)).await?;
            while let Some(resp) = stream.message().await? {
                if resp.canceled() {
                    break;
                }
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let id = String::from_utf8_lossy(kv.key())
                        .trim_start_matches(prefix.as_str())
                        .to_owned();
                    match ev.event_type() {
                        EventType::Put => {
                            if let Some(i) = parse(kv.value()) {
                                current.insert(id, i);
                            }
                        }
                        EventType::Delete => {
                            current.remove(&id);
                        }
                    }
                }
                tx.send_if_modified(|list| {
                    let next = sorted(&current);
                    let changed = *list != next;
                    *list = next;
                    changed
                });
            }
            Ok::<(), crate::Error>(())
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            r = run => {
                if let Err(e) = r {
                    tracing::warn!("etcd watch of {prefix} broke: {e}");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

#[async_trait]
impl Registry for EtcdRegistry {
    async fn register(&self, instance: Instance) -> Result<()> {
        let mut client = self.client.clone();
        let key = self.key(instance.kind, &instance.id);
        let value = serde_json::to_string(&instance).map_err(|e| crate::Error::Malformed {
            what: format!("instance {}", instance.id),
            source: Box::new(e),
        })?;
        let ttl = self.config.lease_ttl;
        let lease = put_under_new_lease(&mut client, &key, &value, ttl).await?;
        let stop = self.shutdown.child_token();
        let previous = self
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((instance.kind, instance.id.clone()), (lease, stop.clone()));
        if let Some((_, old)) = previous {
            old.cancel();
        }
        self.tasks
            .spawn(keep_alive(client, key, value, ttl, lease, stop));
        Ok(())
    }

    async fn deregister(&self, kind: Kind, id: &str) -> Result<()> {
        let entry = self
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(kind, id.to_owned()));
        let mut client = self.client.clone();
        if let Some((lease, stop)) = entry {
            stop.cancel();
            // Revoking deletes the key with it; a lease already gone is fine.
            let _ = client.lease_revoke(lease).await;
        }
        client.delete(self.key(kind, id), None).await?;
        Ok(())
    }

    async fn list(&self, kind: Kind) -> Result<Vec<Instance>> {
        let (map, _) = Self::read(&mut self.client.clone(), &self.kind_prefix(kind)).await?;
        Ok(sorted(&map))
    }

    async fn watch(&self, kind: Kind) -> Result<watch::Receiver<Vec<Instance>>> {
        if let Some(tx) = self
            .watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&kind)
        {
            return Ok(tx.subscribe());
        }
        // Read before returning, so the first value a caller sees is the real list, not an
        // empty placeholder (a task that saw "no connect servers" would drop deliveries).
        let prefix = self.kind_prefix(kind);
        let snapshot = Self::read(&mut self.client.clone(), &prefix).await?;
        let mut watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = watches.get(&kind) {
            return Ok(tx.subscribe()); // another caller won the race
        }
        let tx = watch::Sender::new(sorted(&snapshot.0));
        let rx = tx.subscribe();
        watches.insert(kind, tx.clone());
        drop(watches);
        self.tasks.spawn(mirror(
            self.client.clone(),
            prefix,
            tx,
            self.shutdown.child_token(),
            Some(snapshot),
        ));
        Ok(rx)
    }

    /// Stop keep-alives and watches (registered instances then lapse within the TTL unless
    /// deregistered first).
    async fn close(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn etcd_endpoint() -> String {
        std::env::var("GOCHAT_TEST_ETCD").unwrap_or_else(|_| "http://127.0.0.1:2379".into())
    }

    fn unique_prefix() -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "gochat-test/{}/{}/",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    async fn registry(ttl: Duration) -> EtcdRegistry {
        EtcdRegistry::connect(EtcdRegistryConfig {
            endpoints: vec![etcd_endpoint()],
            prefix: unique_prefix(),
            lease_ttl: ttl,
        })
        .await
        .expect("etcd must be running for these tests (scripts/test.sh starts one)")
    }

    #[tokio::test]
    async fn conformance() {
        crate::conformance::registry::run_all(|| registry(Duration::from_secs(10))).await;
    }

    #[tokio::test]
    async fn a_dead_registrant_disappears_within_the_lease_ttl() {
        let prefix = unique_prefix();
        let config = EtcdRegistryConfig {
            endpoints: vec![etcd_endpoint()],
            prefix,
            lease_ttl: Duration::from_secs(2),
        };
        let dying = EtcdRegistry::connect(config.clone()).await.unwrap();
        let observer = EtcdRegistry::connect(config).await.unwrap();
        let mut w = observer.watch(Kind::Connect).await.unwrap();
        dying
            .register(Instance {
                kind: Kind::Connect,
                id: "c1".into(),
                addr: "127.0.0.1:1".into(),
            })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.wait_for(|l| l.len() == 1))
            .await
            .unwrap()
            .unwrap();
        // Kept alive past several TTLs while its process lives.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(observer.list(Kind::Connect).await.unwrap().len(), 1);
        // The process "dies": keep-alives stop, nobody deregisters.
        dying.close().await;
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(8), w.wait_for(|l| l.is_empty()))
            .await
            .expect("the dead instance was still listed long after its lease TTL")
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "gone within TTL (+ etcd's expiry sweep)"
        );
        observer.close().await;
    }
}
