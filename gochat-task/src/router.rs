//! Which connect servers a batch of deliveries goes to.

use gochat_core::Sessions;
use gochat_core::model::{Delivery, Target};
use std::collections::{BTreeMap, HashMap};

/// Deliveries grouped by connect server, each group in queue order.
pub type Routes = BTreeMap<String, Vec<Delivery>>;

/// Group `deliveries` by the connect servers holding their recipients. A recipient who is
/// offline has no server, and its delivery simply goes nowhere (it is still acknowledged).
pub async fn route(
    sessions: &dyn Sessions,
    deliveries: Vec<Delivery>,
) -> gochat_core::Result<Routes> {
    // A batch often repeats a room (a burst of messages to it): look each target up once.
    let mut servers_of: HashMap<Target, Vec<String>> = HashMap::new();
    let mut routes = Routes::new();
    for d in deliveries {
        let key = match &d.target {
            Target::Logout { user_id, .. } => Target::User(*user_id),
            t => t.clone(),
        };
        if !servers_of.contains_key(&key) {
            let servers = match key {
                Target::Room(room) => sessions.room_servers(room).await?,
                Target::User(user) => sessions.user_servers(user).await?,
                Target::Logout { .. } => Vec::new(),
            };
            servers_of.insert(key.clone(), servers);
        }
        let servers = &servers_of[&key];
        if let Some((last, rest)) = servers.split_last() {
            for s in rest {
                routes.entry(s.clone()).or_default().push(d.clone());
            }
            routes.entry(last.clone()).or_default().push(d);
        }
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gochat_core::MemorySessions;
    use gochat_core::model::Presence;

    fn d(id: i64, target: Target) -> Delivery {
        Delivery {
            id,
            target,
            payload: bytes::Bytes::new(),
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
    async fn groups_by_server_in_order_and_drops_offline() {
        let s = MemorySessions::new();
        join(&s, "c1", 1, 1).await;
        join(&s, "c2", 2, 1).await;
        join(&s, "c2", 3, 9).await;
        let routes = route(
            &s,
            vec![
                d(1, Target::Room(1)),
                d(2, Target::User(3)),
                d(3, Target::User(42)), // offline: goes nowhere
                d(4, Target::Room(1)),
                d(
                    5,
                    Target::Logout {
                        user_id: 1,
                        token: "t".into(),
                    },
                ),
            ],
        )
        .await
        .unwrap();
        let ids = |s: &str| routes[s].iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(ids("c1"), [1, 4, 5]);
        assert_eq!(ids("c2"), [1, 2, 4]);
        assert_eq!(routes.len(), 2);
    }
}
