//! Starting the logic layer: the service, its RPC endpoint, its registration, the sweep of
//! lapsed presence.

use super::Registration;
use crate::Error;
use gochat_core::config::Config;
use gochat_core::registry::Kind;
use gochat_core::{Registry, Sessions, Store, Transport};
use gochat_logic::Logic;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A running logic layer.
pub(crate) struct LogicHandle {
    pub(crate) logic: Arc<Logic>,
    /// Where its RPC service listens (in a cluster; `None` in process).
    pub(crate) rpc_addr: Option<String>,
    pub(crate) registration: Registration,
    /// Stops the RPC endpoint and the presence sweep.
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// What the logic layer runs on.
pub(crate) struct LogicBackends {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sessions: Arc<dyn Sessions>,
    pub(crate) queue: Arc<dyn gochat_core::Queue>,
    pub(crate) registry: Arc<dyn Registry>,
    pub(crate) transport: Arc<dyn Transport>,
}

pub(crate) async fn start(
    cfg: &Config,
    b: LogicBackends,
    in_process: bool,
) -> Result<LogicHandle, Error> {
    let logic = Arc::new(
        Logic::new(
            cfg.logic.clone(),
            b.store.clone(),
            b.sessions.clone(),
            b.queue,
        )?
        .with_history(cfg.history.clone())
        .with_limits(&cfg.limits),
    );
    if cfg.logic.demo_users {
        logic.ensure_demo_users().await?;
    }
    let shutdown = CancellationToken::new();
    let bind = if in_process {
        cfg.logic.instance_id.clone()
    } else {
        cfg.logic.rpc_addr.to_string()
    };
    let addr = b
        .transport
        .serve_logic(&bind, logic.clone(), shutdown.clone())
        .await?;
    let rpc_addr = (!in_process).then(|| addr.clone());
    let registration =
        Registration::new(b.registry, Kind::Logic, cfg.logic.instance_id.clone(), addr).await?;
    let tasks = TaskTracker::new();
    tasks.spawn(gochat_logic::reconcile_presence(
        b.sessions,
        cfg.logic.presence_sweep(),
        shutdown.clone(),
    ));
    tasks.spawn(gochat_logic::run_retention(
        b.store,
        cfg.history.clone(),
        shutdown.clone(),
    ));
    Ok(LogicHandle {
        logic,
        rpc_addr,
        registration,
        shutdown,
        tasks,
    })
}

impl LogicHandle {
    /// Leave the registry, stop serving, wait for the background work.
    pub(crate) async fn stop(self) {
        self.registration.leave().await;
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
