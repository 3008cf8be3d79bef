//! Presence clean-up for connect servers that die: a dead server cannot send the leaves of
//! its connections, so when it drops out of the registry (its lease lapsed) its presence is
//! forgotten in one step. Every logic instance may run this; the clean-up is idempotent.

use gochat_core::Sessions;
use gochat_core::registry::{Kind, Registry};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Watch the connect servers in `registry` until `shutdown`; forget the presence of each
/// one that leaves.
pub async fn reconcile_presence(
    registry: Arc<dyn Registry>,
    sessions: Arc<dyn Sessions>,
    shutdown: CancellationToken,
) {
    let mut servers = match registry.watch(Kind::Connect).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(
                "logic: cannot watch connect servers; dead servers' presence will linger: {e}"
            );
            return;
        }
    };
    let ids = |list: &[gochat_core::registry::Instance]| -> BTreeSet<String> {
        list.iter().map(|i| i.id.clone()).collect()
    };
    let mut known = ids(&servers.borrow_and_update());
    loop {
        tokio::select! {
            changed = servers.changed() => if changed.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
        let now = ids(&servers.borrow_and_update());
        for gone in known.difference(&now) {
            match sessions.drop_server(gone).await {
                Ok(()) => {
                    tracing::info!("logic: connect server {gone} left; its presence is cleared")
                }
                Err(e) => tracing::warn!("logic: clearing presence of {gone} failed: {e}"),
            }
        }
        known = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gochat_core::model::Presence;
    use gochat_core::registry::Instance;
    use gochat_core::{MemoryRegistry, MemorySessions};
    use std::time::Duration;

    #[tokio::test]
    async fn a_server_leaving_the_registry_loses_its_presence() {
        let registry = Arc::new(MemoryRegistry::new());
        let sessions = Arc::new(MemorySessions::new());
        for id in ["c1", "c2"] {
            registry
                .register(Instance {
                    kind: Kind::Connect,
                    id: id.into(),
                    addr: id.into(),
                })
                .await
                .unwrap();
        }
        for (server, user) in [("c1", 1), ("c2", 2)] {
            sessions
                .join(&Presence {
                    server_id: server.into(),
                    user_id: user,
                    user_name: format!("u{user}"),
                    room_id: 1,
                })
                .await
                .unwrap();
        }
        let stop = CancellationToken::new();
        let task = tokio::spawn(reconcile_presence(
            registry.clone(),
            sessions.clone(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        registry.deregister(Kind::Connect, "c1").await.unwrap();
        for _ in 0..100 {
            if sessions.room_servers(1).await.unwrap() == ["c2"] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sessions.room_servers(1).await.unwrap(), ["c2"]);
        assert_eq!(sessions.roster(1).await.unwrap().len(), 1);
        stop.cancel();
        task.await.unwrap();
    }
}
