//! [`Peers`]: find a layer instance in the Registry and dial it through the Transport.

use super::Transport;
use crate::hash::FastDashMap;
use crate::registry::{Instance, Kind, Registry};
use crate::rpc::{ConnectService, LogicService};
use crate::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::watch;

/// How long a call waits for a logic instance to be registered before failing (logic
/// instances restart; a cluster starts in any order).
pub const LOGIC_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a logic instance that did not answer a dial is passed over.
pub const UNREACHABLE_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Clients for the logic instances and connect servers of a cluster: watches the registry,
/// dials through the transport once per address and reuses the client.
pub struct Peers {
    transport: Arc<dyn Transport>,
    logic_list: watch::Receiver<Vec<Instance>>,
    connect_list: watch::Receiver<Vec<Instance>>,
    /// Dialed clients by address. Entries for instances that left are harmless: an address
    /// is only looked up after the registry lists it.
    logic_clients: FastDashMap<String, Arc<dyn LogicService>>,
    connect_clients: FastDashMap<String, Arc<dyn ConnectService>>,
    /// Round-robin cursor over logic instances.
    next_logic: AtomicUsize,
    /// Logic addresses whose last dial failed, and when.
    unreachable: FastDashMap<String, std::time::Instant>,
}

impl Peers {
    /// Start watching `registry`.
    pub async fn new(registry: &dyn Registry, transport: Arc<dyn Transport>) -> Result<Self> {
        Ok(Self {
            transport,
            logic_list: registry.watch(Kind::Logic).await?,
            connect_list: registry.watch(Kind::Connect).await?,
            logic_clients: FastDashMap::default(),
            connect_clients: FastDashMap::default(),
            next_logic: AtomicUsize::new(0),
            unreachable: FastDashMap::default(),
        })
    }

    /// A logic instance, round-robin over those registered. When none is registered it waits
    /// up to [`LOGIC_WAIT`] for one (they restart, or the cluster is starting). An instance
    /// that does not answer a dial is passed over for [`UNREACHABLE_PAUSE`]: one killed
    /// stays registered until its lease expires, and every call sent its way would fail.
    pub async fn logic(&self) -> Result<Arc<dyn LogicService>> {
        if self.logic_list.borrow().is_empty() {
            let mut list = self.logic_list.clone();
            let _ = tokio::time::timeout(LOGIC_WAIT, list.wait_for(|l| !l.is_empty())).await;
        }
        let start = self.next_logic.fetch_add(1, Ordering::Relaxed);
        let Some(first) = self.logic_in_turn(start, 0) else {
            return Err(Error::NoInstance {
                kind: Kind::Logic,
                id: None,
            });
        };
        if let Some(client) = self.answering_logic(&first).await? {
            return Ok(client);
        }
        let mut i = 1;
        while let Some(addr) = self.logic_in_turn(start, i) {
            if let Some(client) = self.answering_logic(&addr).await? {
                return Ok(client);
            }
            i += 1;
        }
        // None answers: the first in turn, whose call says why.
        self.logic_client(&first).await
    }

    /// The address `i` places after the cursor `start`, while `i` is within the list.
    fn logic_in_turn(&self, start: usize, i: usize) -> Option<String> {
        let list = self.logic_list.borrow();
        (i < list.len()).then(|| list[(start + i) % list.len()].addr.clone())
    }

    /// The client for `addr` if it answers a dial; `None` if it did not (now, or within
    /// [`UNREACHABLE_PAUSE`]).
    async fn answering_logic(&self, addr: &str) -> Result<Option<Arc<dyn LogicService>>> {
        let failed_at = self.unreachable.get(addr).map(|at| *at);
        if failed_at.is_some_and(|at| at.elapsed() < UNREACHABLE_PAUSE) {
            return Ok(None);
        }
        let client = self.logic_client(addr).await?;
        if client.reachable().await {
            if failed_at.is_some() {
                self.unreachable.remove(addr);
            }
            return Ok(Some(client));
        }
        tracing::warn!("peers: logic instance {addr} is registered but does not answer");
        self.unreachable
            .insert(addr.to_owned(), std::time::Instant::now());
        Ok(None)
    }

    async fn logic_client(&self, addr: &str) -> Result<Arc<dyn LogicService>> {
        if let Some(c) = self.logic_clients.get(addr) {
            return Ok(c.clone());
        }
        let client = self.transport.logic(addr).await?;
        self.logic_clients.insert(addr.to_owned(), client.clone());
        Ok(client)
    }

    /// The connect server registered as `server_id`, or `None` if none is (it left or died).
    pub async fn connect(&self, server_id: &str) -> Result<Option<Arc<dyn ConnectService>>> {
        let addr = {
            let list = self.connect_list.borrow();
            match list.iter().find(|i| i.id == server_id) {
                Some(i) => i.addr.clone(),
                None => return Ok(None),
            }
        };
        if let Some(c) = self.connect_clients.get(&addr) {
            return Ok(Some(c.clone()));
        }
        let client = self.transport.connect(&addr).await?;
        self.connect_clients.insert(addr, client.clone());
        Ok(Some(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MemoryRegistry;
    use crate::transport::TcpTransport;
    use std::time::Duration;
    use tokio::net::TcpListener;

    fn logic_at(id: &str, addr: std::net::SocketAddr) -> Instance {
        Instance {
            kind: Kind::Logic,
            id: id.into(),
            addr: addr.to_string(),
        }
    }

    #[tokio::test]
    async fn a_registered_logic_instance_that_does_not_answer_is_passed_over() {
        // A listener is all a dial needs; the other address had one, gone now (killed).
        let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let registry = MemoryRegistry::new();
        registry
            .register(logic_at("live", live.local_addr().unwrap()))
            .await
            .unwrap();
        registry
            .register(logic_at("dead", dead_addr))
            .await
            .unwrap();
        let transport = Arc::new(TcpTransport::new("127.0.0.1"));
        let peers = Peers::new(&registry, transport).await.unwrap();
        for turn in 0..6 {
            let logic = peers.logic().await.unwrap();
            assert!(
                logic.reachable().await,
                "turn {turn}: handed the instance that does not answer"
            );
        }
        // It comes back on its address: once the pause is over it takes its turns again.
        let back = TcpListener::bind(dead_addr).await.unwrap();
        tokio::time::sleep(UNREACHABLE_PAUSE).await;
        for _ in 0..2 {
            peers.logic().await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), back.accept())
            .await
            .expect("the instance that came back was dialed again")
            .unwrap();
    }
}
