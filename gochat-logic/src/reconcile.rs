//! Presence clean-up for connect servers that die: a dead server cannot send the leaves of
//! its connections, and stops renewing its presence lease; every few seconds each logic
//! instance forgets the presence of servers whose lease lapsed (idempotent, so any number of
//! instances may sweep). A server that was only away for a moment re-asserts its presence at
//! its next renewal, so nothing here depends on the registry.

use gochat_core::Sessions;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Sweep lapsed presence every `every` until `shutdown`.
pub async fn reconcile_presence(
    sessions: Arc<dyn Sessions>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
        match sessions.expire_servers().await {
            Ok(gone) => {
                for s in gone {
                    tracing::info!(
                        "logic: connect server {s} stopped renewing; its presence is cleared"
                    );
                }
            }
            Err(e) => tracing::warn!("logic: sweeping lapsed presence failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gochat_core::MemorySessions;
    use gochat_core::model::Presence;

    fn at(server: &str, user: i64) -> Presence {
        Presence {
            server_id: server.into(),
            user_id: user,
            user_name: format!("u{user}"),
            room_id: 1,
        }
    }

    #[tokio::test]
    async fn a_server_that_stops_renewing_loses_its_presence() {
        let sessions = Arc::new(MemorySessions::new());
        let short = Duration::from_millis(200);
        sessions
            .sync_server("c1", &[at("c1", 1)], short)
            .await
            .unwrap();
        sessions
            .sync_server("c2", &[at("c2", 2)], Duration::from_secs(60))
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(reconcile_presence(
            sessions.clone(),
            Duration::from_millis(50),
            stop.clone(),
        ));
        for _ in 0..100 {
            if sessions.room_servers(1).await.unwrap() == ["c2"] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(sessions.room_servers(1).await.unwrap(), ["c2"]);
        assert_eq!(sessions.roster(1).await.unwrap().len(), 1);
        stop.cancel();
        task.await.unwrap();
    }
}
