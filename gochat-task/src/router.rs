//! Which connect servers a batch of deliveries goes to.

use crate::consumer::Routed;
use gochat_core::Sessions;
use gochat_core::hash::FastMap;
use gochat_core::model::{Delivery, Target, UserId};
use gochat_core::queue::Received;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

/// Deliveries grouped by connect server, each group in queue order, each delivery with a
/// tag of the caller's (the index of its queue entry).
pub type Routes<T> = BTreeMap<String, Vec<(Delivery, T)>>;

/// Group a batch by the connect servers holding its recipients. A recipient who is offline
/// has no server: that entry has no part to deliver (and is acknowledged at once).
pub async fn route(sessions: &dyn Sessions, batch: &[Received]) -> gochat_core::Result<Routed> {
    let servers_of = look_up(sessions, batch).await?;
    let mut by_server = Routes::new();
    let mut parts_per_entry = Vec::with_capacity(batch.len());
    for (i, r) in batch.iter().enumerate() {
        let d = &r.delivery;
        let servers = &servers_of[&lookup_key(&d.target)];
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

/// What a target's servers are looked up by: a token's connections are wherever its user's
/// are.
fn lookup_key(target: &Target) -> Target {
    match target {
        Target::Token { user_id, .. } => Target::User(*user_id),
        t => t.clone(),
    }
}

/// The servers of every target in a batch: each room once (a burst repeats one), and every
/// user named — recipients, and senders of private messages — in one batched lookup, so a
/// batch of private messages costs the sessions backend one round trip, not two a message.
async fn look_up(
    sessions: &dyn Sessions,
    batch: &[Received],
) -> gochat_core::Result<FastMap<Target, Vec<String>>> {
    let mut servers_of: FastMap<Target, Vec<String>> = FastMap::default();
    let mut users = BTreeSet::new();
    for r in batch {
        match lookup_key(&r.delivery.target) {
            Target::Room(room) => {
                if let Entry::Vacant(e) = servers_of.entry(Target::Room(room)) {
                    e.insert(sessions.room_servers(room).await?);
                }
            }
            Target::User(user) => {
                users.insert(user);
            }
            Target::Conversation { from, to } => {
                users.extend([from, to]);
            }
            // Never a key (see `lookup_key`).
            Target::Token { .. } => {}
        }
    }
    let users: Vec<UserId> = users.into_iter().collect();
    let found = sessions.users_servers(&users).await?;
    if found.len() != users.len() {
        // A backend's bug must not route a message to the wrong user's servers.
        return Err(gochat_core::Error::Decode(format!(
            "users_servers answered for {} of {} users",
            found.len(),
            users.len()
        )));
    }
    let of_user: FastMap<UserId, Vec<String>> = users.into_iter().zip(found).collect();
    let servers_of_user = |user: &UserId| of_user.get(user).cloned().unwrap_or_default();
    for r in batch {
        // A batch often repeats a conversation (a burst between two users): merge it once.
        let Entry::Vacant(e) = servers_of.entry(lookup_key(&r.delivery.target)) else {
            continue;
        };
        let servers = match e.key() {
            Target::User(user) => servers_of_user(user),
            // The recipient's connections, and the sender's (its other v2 ones).
            Target::Conversation { from, to } => {
                let mut s = servers_of_user(to);
                if from != to {
                    s.extend(servers_of_user(from));
                    s.sort();
                    s.dedup();
                }
                s
            }
            // Rooms were looked up above (and are never vacant here); tokens are never keys.
            Target::Room(_) | Target::Token { .. } => continue,
        };
        e.insert(servers);
    }
    Ok(servers_of)
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
