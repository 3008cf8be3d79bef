//! Keeping this server's presence alive in the shared Sessions: a lease renewed every
//! `presence_renew_ms`, and the whole list of live connections re-asserted whenever the lease
//! had lapsed (etcd or Redis was away, Redis lost its data, a logic instance dropped it) or a
//! join or leave may not have been recorded. Users therefore never stay cut off by an outage:
//! within one renewal of the backends coming back, every live connection is routable again.

use crate::state::Shared;
use gochat_core::rpc::Fault;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Renew (or re-assert) until shutdown.
pub(crate) async fn keep(shared: Arc<Shared>) {
    let every = shared.config.presence_renew();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shared.shutdown.cancelled() => return,
        }
        let outcome = if shared.presence_dirty.swap(false, Ordering::Relaxed) {
            sync(&shared).await
        } else {
            match renew(&shared).await {
                Ok(true) => Ok(()),
                Ok(false) => {
                    tracing::info!(
                        "connect {}: presence lease had lapsed; re-asserting {} connections",
                        shared.config.server_id,
                        shared.hub.len()
                    );
                    sync(&shared).await
                }
                Err(f) => Err(f),
            }
        };
        if let Err(f) = outcome {
            tracing::warn!(
                "connect {}: presence not renewed, retrying: {f}",
                shared.config.server_id
            );
            shared.presence_dirty.store(true, Ordering::Relaxed);
        }
    }
}

async fn renew(shared: &Shared) -> Result<bool, Fault> {
    let logic = shared
        .peers
        .logic()
        .await
        .map_err(|e| Fault::Unavailable(e.to_string()))?;
    logic
        .renew_presence(
            shared.config.server_id.clone(),
            shared.config.presence_ttl_ms,
        )
        .await
}

/// Assert every live connection of this server as its whole presence, with nothing joining
/// or leaving meanwhile.
pub(crate) async fn sync(shared: &Shared) -> Result<(), Fault> {
    let logic = shared
        .peers
        .logic()
        .await
        .map_err(|e| Fault::Unavailable(e.to_string()))?;
    let _gate = shared.presence_gate.write().await;
    let presences = shared.hub.presences(&shared.config.server_id);
    logic
        .sync_presence(
            shared.config.server_id.clone(),
            presences,
            shared.config.presence_ttl_ms,
        )
        .await
}
