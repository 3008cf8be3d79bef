//! Retention: every `history.prune_interval_secs` the Store forgets messages past
//! `history.max_per_room` per log and older than `history.max_age_days`, in small steps
//! that never hold up writes. Idempotent, so every logic instance may run it.

use gochat_core::Store;
use gochat_core::config::HistoryConfig;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Pause between two steps of one pass, so posts get the writer in between.
const STEP_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Prune until `shutdown`.
pub async fn run_retention(
    store: Arc<dyn Store>,
    history: HistoryConfig,
    shutdown: CancellationToken,
) {
    if !history.enabled {
        return;
    }
    let retention = history.retention();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(history.prune_interval()) => {}
            _ = shutdown.cancelled() => return,
        }
        let mut removed = 0;
        loop {
            match store.prune(retention).await {
                Ok(0) => break,
                Ok(n) => removed += n,
                Err(e) => {
                    tracing::warn!("logic: retention step failed, trying next pass: {e}");
                    break;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(STEP_PAUSE) => {}
                _ = shutdown.cancelled() => return,
            }
        }
        if removed > 0 {
            tracing::info!("logic: retention removed {removed} rows");
        }
    }
}
