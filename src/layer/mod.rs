//! [`Layers`]: which of gochat's layers a process runs.

/// Which layers a [`Server`](crate::Server) runs. Standalone is [`Layers::ALL`]; each
/// service binary runs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    /// REST API and web page.
    pub api: bool,
    /// Auth, sessions, routing.
    pub logic: bool,
    /// Queue consumer.
    pub task: bool,
    /// Long connections.
    pub connect: bool,
}

impl Layers {
    /// Every layer (standalone).
    pub const ALL: Self = Self {
        api: true,
        logic: true,
        task: true,
        connect: true,
    };
    /// Only the api layer.
    pub const API: Self = Self {
        api: true,
        logic: false,
        task: false,
        connect: false,
    };
    /// Only the logic layer.
    pub const LOGIC: Self = Self {
        api: false,
        logic: true,
        task: false,
        connect: false,
    };
    /// Only the task layer.
    pub const TASK: Self = Self {
        api: false,
        logic: false,
        task: true,
        connect: false,
    };
    /// Only the connect layer.
    pub const CONNECT: Self = Self {
        api: false,
        logic: false,
        task: false,
        connect: true,
    };
}

pub(crate) mod api;
pub(crate) mod connect;
pub(crate) mod logic;
pub(crate) mod task;

use gochat_core::Registry;
use gochat_core::registry::{Instance, Kind};
use std::sync::Arc;

/// An instance this process put in the registry, to take out again when it stops.
pub(crate) struct Registration {
    registry: Arc<dyn Registry>,
    kind: Kind,
    id: String,
}

impl Registration {
    /// List `kind`/`id` at `addr`.
    pub(crate) async fn new(
        registry: Arc<dyn Registry>,
        kind: Kind,
        id: String,
        addr: String,
    ) -> gochat_core::Result<Self> {
        registry
            .register(Instance {
                kind,
                id: id.clone(),
                addr,
            })
            .await?;
        Ok(Self { registry, kind, id })
    }

    /// Whether the registry lists this instance (for `/readyz`).
    pub(crate) async fn check(&self) -> Result<(), String> {
        let listed = self
            .registry
            .list(self.kind)
            .await
            .map_err(|e| format!("registry: {}", gochat_core::error::with_causes(&e)))?;
        if listed.iter().any(|i| i.id == self.id) {
            Ok(())
        } else {
            Err(format!("not registered as {} {}", self.kind, self.id))
        }
    }

    /// Leave the registry (peers stop calling this instance).
    pub(crate) async fn leave(&self) {
        if let Err(e) = self.registry.deregister(self.kind, &self.id).await {
            tracing::warn!(
                "leaving the registry as {} {} failed: {e}",
                self.kind,
                self.id
            );
        }
    }
}
