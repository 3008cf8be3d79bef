//! [`MemoryRegistry`]: the embedded, in-process registry.

use super::{Instance, Kind, Registry};
use crate::Result;
use async_trait::async_trait;
use tokio::sync::watch;

/// An in-process registry: instances live until deregistered (a process cannot outlive
/// itself, so there is no lease).
pub struct MemoryRegistry {
    logic: watch::Sender<Vec<Instance>>,
    connect: watch::Sender<Vec<Instance>>,
}

impl Default for MemoryRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            logic: watch::Sender::new(Vec::new()),
            connect: watch::Sender::new(Vec::new()),
        }
    }

    fn of(&self, kind: Kind) -> &watch::Sender<Vec<Instance>> {
        match kind {
            Kind::Logic => &self.logic,
            Kind::Connect => &self.connect,
        }
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn register(&self, instance: Instance) -> Result<()> {
        self.of(instance.kind).send_modify(|list| {
            list.retain(|i| i.id != instance.id);
            list.push(instance);
            list.sort();
        });
        Ok(())
    }

    async fn deregister(&self, kind: Kind, id: &str) -> Result<()> {
        self.of(kind).send_if_modified(|list| {
            let before = list.len();
            list.retain(|i| i.id != id);
            list.len() != before
        });
        Ok(())
    }

    async fn list(&self, kind: Kind) -> Result<Vec<Instance>> {
        Ok(self.of(kind).borrow().clone())
    }

    async fn watch(&self, kind: Kind) -> Result<watch::Receiver<Vec<Instance>>> {
        Ok(self.of(kind).subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        crate::conformance::registry::run_all(|| async { MemoryRegistry::new() }).await;
    }
}
