//! [`State`]: what every request of the api layer shares.

use bytes::Bytes;
use gochat_core::Peers;
use gochat_core::config::ApiConfig;
use gochat_core::rpc::{Fault, LogicService};
use std::sync::Arc;

/// Where requests find the logic layer.
#[derive(Clone)]
pub enum LogicRef {
    /// The instances registered in a cluster, round-robin.
    Peers(Arc<Peers>),
    /// One service, called directly (an embedding, or a stub in tests).
    Direct(Arc<dyn LogicService>),
}

impl LogicRef {
    /// A logic instance to call.
    pub async fn get(&self) -> Result<Arc<dyn LogicService>, Fault> {
        match self {
            LogicRef::Peers(p) => p.logic().await.map_err(|e| {
                tracing::warn!("api: no logic instance: {e}");
                Fault::Unavailable(e.to_string())
            }),
            LogicRef::Direct(l) => Ok(l.clone()),
        }
    }
}

/// Shared by every request.
pub struct State {
    /// `[api]`.
    pub(crate) config: ApiConfig,
    /// Where logic is.
    pub(crate) logic: LogicRef,
    /// `/config.json`, serialised once.
    pub(crate) page_config: Bytes,
    /// Per-address limits (`[limits]`).
    pub(crate) limits: crate::limits::ApiLimits,
}

impl State {
    /// The state of an api layer calling `logic` and serving `page` to browsers.
    pub fn new(config: ApiConfig, logic: LogicRef, page: &crate::PageConfig) -> Self {
        // Serialising a struct of numbers and strings cannot fail.
        let page_config = Bytes::from(serde_json::to_vec(page).unwrap_or_default());
        Self {
            config,
            logic,
            page_config,
            limits: crate::limits::ApiLimits::default(),
        }
    }

    /// The same state with `limits` (`[limits]`) instead of the defaults.
    pub fn with_limits(mut self, limits: &gochat_core::config::LimitsConfig) -> Self {
        self.limits = crate::limits::ApiLimits::new(limits);
        self
    }
}
