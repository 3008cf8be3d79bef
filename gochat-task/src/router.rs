//! Which connect servers a batch of deliveries goes to.

use crate::consumer::Routed;
use gochat_core::Sessions;
use gochat_core::model::{Delivery, Target};
use gochat_core::queue::Received;
use std::collections::{BTreeMap, HashMap};

/// Deliveries grouped by connect server, each group in queue order, each delivery with a
/// tag of the caller's (the index of its queue entry).
pub type Routes<T> = BTreeMap<String, Vec<(Delivery, T)>>;

/// Group a batch by the connect servers holding its recipients. A recipient who is offline
/// has no server: that entry has no part to deliver (and is acknowledged at once).
pub async fn route(sessions: &dyn Sessions, batch: &[Received]) -> gochat_core::Result<Routed> {
    // A batch often repeats a room (a burst of messages to it): look each target up once.
    let mut servers_of: HashMap<Target, Vec<String>> = HashMap::new();
    let mut by_server = Routes::new();
    let mut parts_per_entry = Vec::with_capacity(batch.len());
    for (i, r) in batch.iter().enumerate() {
        let d = &r.delivery;
        // A token's connections are wherever its user's are.
        let key = match &d.target {
            Target::Token { user_id, .. } => Target::User(*user_id),
            t => t.clone(),
        };
        if !servers_of.contains_key(&key) {
            let servers = match key {
                Target::Room(room) => sessions.room_servers(room).await?,
                Target::User(user) => sessions.user_servers(user).await?,
                // The recipient's connections, and the sender's (its other v2 ones).
                Target::Conversation { from, to } => {
                    let mut s = sessions.user_servers(to).await?;
                    if from != to {
                        s.extend(sessions.user_servers(from).await?);
                        s.sort();
                        s.dedup();
                    }
                    s
                }
                Target::Token { .. } => Vec::new(),
            };
            servers_of.insert(key.clone(), servers);
        }
        let servers = &servers_of[&key];
        for s in servers {
            by_server.entry(s.clone()).or_default().push((d.clone(), i));
        }
        parts_per_entry.push(servers.len());
    }
    Ok(Routed {
        by_server,
        parts_per_entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gochat_core::MemorySessions;
    use gochat_core::model::{Presence, PushKind, SessionEnd};
    use gochat_core::queue::Receipt;

    fn r(id: i64, target: Target) -> Received {
        Received {
            receipt: Receipt(0, id as u64),
            delivery: Delivery::new(id, target, PushKind::Message, bytes::Bytes::new()),
            deliveries: 1,
        }
    }

    async fn join(s: &MemorySessions, server: &str, user: i64, room: i64) {
        s.join(&Presence {
            server_id: server.into(),
            user_id: user,
            user_name: format!("u{user}"),
            room_id: room,
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn groups_by_server_in_order_and_counts_parts() {
        let s = MemorySessions::new();
        join(&s, "c1", 1, 1).await;
        join(&s, "c2", 2, 1).await;
        join(&s, "c2", 3, 9).await;
        join(&s, "c3", 4, 9).await;
        let mut logout = r(
            5,
            Target::Token {
                user_id: 1,
                token: "t".into(),
            },
        );
        logout.delivery.kind = PushKind::Close(SessionEnd::LoggedOut);
        let routed = route(
            &s,
            &[
                r(1, Target::Room(1)),
                r(2, Target::User(3)),
                r(3, Target::User(42)), // offline: goes nowhere
                r(4, Target::Room(1)),
                logout,
                r(6, Target::Conversation { from: 4, to: 3 }), // c2 (recipient) and c3 (sender)
            ],
        )
        .await
        .unwrap();
        let ids = |s: &str| {
            routed.by_server[s]
                .iter()
                .map(|(d, i)| (d.id, *i))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("c1"), [(1, 0), (4, 3), (5, 4)]);
        assert_eq!(ids("c2"), [(1, 0), (2, 1), (4, 3), (6, 5)]);
        assert_eq!(ids("c3"), [(6, 5)]);
        assert_eq!(routed.by_server.len(), 3);
        assert_eq!(routed.parts_per_entry, [2, 1, 0, 2, 1, 2]);
    }
}
