//! Starting the task layer: one queue consumer.

use gochat_core::config::Config;
use gochat_core::{Peers, Queue, Sessions};
use gochat_task::Task;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running queue consumer.
pub(crate) struct TaskHandle {
    shutdown: CancellationToken,
    worker: JoinHandle<()>,
}

pub(crate) fn start(
    cfg: &Config,
    queue: Arc<dyn Queue>,
    sessions: Arc<dyn Sessions>,
    peers: Arc<Peers>,
) -> TaskHandle {
    let shutdown = CancellationToken::new();
    let task = Task::new(cfg.task.clone(), queue, sessions, peers);
    TaskHandle {
        worker: tokio::spawn(task.run(shutdown.clone())),
        shutdown,
    }
}

impl TaskHandle {
    /// Stop taking entries; what is in hand is finished (within the worker's grace).
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        if let Err(e) = self.worker.await {
            tracing::error!("task worker ended abnormally: {e}");
        }
    }
}
