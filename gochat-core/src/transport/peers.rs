//! [`Peers`]: find a layer instance in the Registry and dial it through the Transport.

use super::Transport;
use crate::registry::{Instance, Kind, Registry};
use crate::rpc::{ConnectService, LogicService};
use crate::{Error, Result};
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::watch;

/// How long a call waits for a logic instance to be registered before failing (logic
/// instances restart; a cluster starts in any order).
pub const LOGIC_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Clients for the logic instances and connect servers of a cluster: watches the registry,
/// dials through the transport once per address and reuses the client.
pub struct Peers {
    transport: Arc<dyn Transport>,
    logic_list: watch::Receiver<Vec<Instance>>,
    connect_list: watch::Receiver<Vec<Instance>>,
    /// Dialed clients by address. Entries for instances that left are harmless: an address
    /// is only looked up after the registry lists it.
    logic_clients: DashMap<String, Arc<dyn LogicService>>,
    connect_clients: DashMap<String, Arc<dyn ConnectService>>,
    /// Round-robin cursor over logic instances.
    next_logic: AtomicUsize,
}

impl Peers {
    /// Start watching `registry`.
    pub async fn new(registry: &dyn Registry, transport: Arc<dyn Transport>) -> Result<Self> {
        Ok(Self {
            transport,
            logic_list: registry.watch(Kind::Logic).await?,
            connect_list: registry.watch(Kind::Connect).await?,
            logic_clients: DashMap::new(),
            connect_clients: DashMap::new(),
            next_logic: AtomicUsize::new(0),
        })
    }

    /// A logic instance, round-robin over those registered. When none is registered it waits
    /// up to [`LOGIC_WAIT`] for one (they restart, or the cluster is starting).
    pub async fn logic(&self) -> Result<Arc<dyn LogicService>> {
        if self.logic_list.borrow().is_empty() {
            let mut list = self.logic_list.clone();
            let _ = tokio::time::timeout(LOGIC_WAIT, list.wait_for(|l| !l.is_empty())).await;
        }
        let addr = {
            let list = self.logic_list.borrow();
            if list.is_empty() {
                return Err(Error::NoInstance {
                    kind: Kind::Logic,
                    id: None,
                });
            }
            list[self.next_logic.fetch_add(1, Ordering::Relaxed) % list.len()]
                .addr
                .clone()
        };
        if let Some(c) = self.logic_clients.get(&addr) {
            return Ok(c.clone());
        }
        let client = self.transport.logic(&addr).await?;
        self.logic_clients.insert(addr, client.clone());
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
