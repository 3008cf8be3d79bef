use crate::model::{NO_ROOM, Presence, User};
use crate::sessions::Sessions;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(3600);

fn user(id: i64, name: &str) -> User {
    User {
        id,
        name: name.into(),
    }
}

fn at(server: &str, u: &User, room: i64) -> Presence {
    Presence {
        server_id: server.into(),
        user_id: u.id,
        user_name: u.name.clone(),
        room_id: room,
    }
}

/// Run every sessions check against fresh sessions from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Sessions,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    tokens(make().await).await;
    single_login(make().await).await;
    presence_counts_connections(make().await).await;
    no_room_is_private_only(make().await).await;
    users_servers_in_one_lookup(make().await).await;
    drop_server_forgets_its_presence(make().await).await;
    concurrent_joins_are_atomic(Arc::new(make().await)).await;
    presence_is_a_lease(make().await).await;
    sync_replaces_a_servers_presence(make().await).await;
}

async fn tokens<S: Sessions>(s: S) {
    let a = user(1, "alice");
    assert_eq!(s.login("tok-a", &a, TTL).await.unwrap(), None);
    assert_eq!(s.get("tok-a").await.unwrap(), Some(a.clone()));
    assert_eq!(s.get("nope").await.unwrap(), None);
    assert_eq!(s.logout("tok-a").await.unwrap(), Some(a));
    assert_eq!(s.get("tok-a").await.unwrap(), None);
    assert_eq!(s.logout("tok-a").await.unwrap(), None, "second logout");
    let b = user(2, "b");
    s.login("short", &b, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(s.get("short").await.unwrap(), Some(b));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        s.get("short").await.unwrap(),
        None,
        "token outlived its ttl"
    );
}

async fn single_login<S: Sessions>(s: S) {
    let a = user(1, "alice");
    let b = user(2, "bob");
    s.login("a1", &a, TTL).await.unwrap();
    s.login("b1", &b, TTL).await.unwrap();
    assert_eq!(
        s.login("a2", &a, TTL).await.unwrap(),
        Some("a1".into()),
        "previous token returned"
    );
    assert_eq!(s.get("a1").await.unwrap(), None, "previous login revoked");
    assert_eq!(s.get("a2").await.unwrap(), Some(a));
    assert_eq!(s.get("b1").await.unwrap(), Some(b), "other users untouched");
}

async fn presence_counts_connections<S: Sessions>(s: S) {
    let a = user(10, "alice");
    let d = user(3, "demo");
    assert!(
        s.join(&at("c1", &a, 1)).await.unwrap(),
        "first connection in the room"
    );
    assert!(!s.join(&at("c2", &a, 1)).await.unwrap(), "not the first");
    assert!(!s.join(&at("c2", &a, 1)).await.unwrap());
    assert!(s.join(&at("c1", &d, 1)).await.unwrap());
    assert!(s.join(&at("c3", &d, 2)).await.unwrap(), "first in room 2");
    assert_eq!(s.roster(1).await.unwrap(), [d.clone(), a.clone()], "by id");
    assert_eq!(
        s.room_size(1).await.unwrap(),
        2,
        "distinct users, as the roster"
    );
    assert_eq!(s.room_servers(1).await.unwrap(), ["c1", "c2"]);
    assert_eq!(s.room_servers(2).await.unwrap(), ["c3"]);
    assert_eq!(s.user_servers(10).await.unwrap(), ["c1", "c2"]);
    assert_eq!(s.user_servers(3).await.unwrap(), ["c1", "c3"]);
    assert!(!s.leave(&at("c2", &a, 1)).await.unwrap(), "others remain");
    assert_eq!(
        s.user_servers(10).await.unwrap(),
        ["c1", "c2"],
        "one c2 conn left"
    );
    assert!(!s.leave(&at("c2", &a, 1)).await.unwrap());
    assert!(
        !s.leave(&at("c2", &a, 1)).await.unwrap(),
        "repeated leave: no-op"
    );
    assert_eq!(s.user_servers(10).await.unwrap(), ["c1"]);
    assert!(s.leave(&at("c1", &a, 1)).await.unwrap(), "the last one");
    assert_eq!(s.roster(1).await.unwrap().len(), 1);
    assert_eq!(s.user_servers(10).await.unwrap(), Vec::<String>::new());
    s.leave(&at("c9", &user(77, "x"), 5)).await.unwrap(); // never joined: no-op
    assert!(s.roster(5).await.unwrap().is_empty());
    assert_eq!(s.room_size(5).await.unwrap(), 0);
}

async fn no_room_is_private_only<S: Sessions>(s: S) {
    let a = user(5, "e");
    assert!(
        !s.join(&at("c1", &a, NO_ROOM)).await.unwrap(),
        "no room to announce"
    );
    assert_eq!(s.user_servers(5).await.unwrap(), ["c1"]);
    assert!(s.roster(NO_ROOM).await.unwrap().is_empty());
    s.leave(&at("c1", &a, NO_ROOM)).await.unwrap();
    assert!(s.user_servers(5).await.unwrap().is_empty());
}

async fn users_servers_in_one_lookup<S: Sessions>(s: S) {
    let (a, b) = (user(21, "a"), user(22, "b"));
    s.join(&at("c2", &a, 1)).await.unwrap();
    s.join(&at("c1", &a, NO_ROOM)).await.unwrap();
    s.join(&at("c3", &b, 4)).await.unwrap();
    assert!(s.users_servers(&[]).await.unwrap().is_empty());
    assert_eq!(
        s.users_servers(&[22, 99, 21]).await.unwrap(),
        [vec!["c3"], vec![], vec!["c1", "c2"]],
        "in the order asked, sorted, the offline user's empty"
    );
    for id in [21, 22, 99] {
        assert_eq!(
            s.users_servers(&[id]).await.unwrap(),
            [s.user_servers(id).await.unwrap()]
        );
    }
}

async fn drop_server_forgets_its_presence<S: Sessions>(s: S) {
    let a = user(1, "a");
    let b = user(2, "b");
    s.join(&at("dead", &a, 1)).await.unwrap();
    s.join(&at("live", &a, 1)).await.unwrap();
    s.join(&at("dead", &b, 1)).await.unwrap();
    s.drop_server("dead").await.unwrap();
    assert_eq!(s.room_servers(1).await.unwrap(), ["live"]);
    assert_eq!(s.roster(1).await.unwrap().len(), 1);
    assert!(s.user_servers(2).await.unwrap().is_empty());
    assert_eq!(s.user_servers(1).await.unwrap(), ["live"]);
}

async fn concurrent_joins_are_atomic<S: Sessions>(s: Arc<S>) {
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let u = user(1000 + i % 10, &format!("u{}", i % 10));
                s.join(&at("c1", &u, 7)).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.roster(7).await.unwrap().len(), 10);
    for i in 0..50 {
        let u = user(1000 + i % 10, &format!("u{}", i % 10));
        s.leave(&at("c1", &u, 7)).await.unwrap();
    }
    assert!(
        s.roster(7).await.unwrap().is_empty(),
        "every join paired with its leave"
    );
    assert!(s.room_servers(7).await.unwrap().is_empty());
}

async fn presence_is_a_lease<S: Sessions>(s: S) {
    let (a, b) = (user(1, "a"), user(2, "b"));
    let short = Duration::from_millis(400);
    assert!(!s.renew_server("c1", short).await.unwrap(), "no lease yet");
    assert!(!s.server_alive("c1").await.unwrap());
    s.sync_server("c1", &[at("c1", &a, 1)], short)
        .await
        .unwrap();
    s.sync_server("c2", &[at("c2", &b, 1)], TTL).await.unwrap();
    assert!(s.server_alive("c1").await.unwrap());
    assert!(
        s.renew_server("c1", short).await.unwrap(),
        "a live lease renews"
    );
    assert!(
        s.expire_servers().await.unwrap().is_empty(),
        "nobody lapsed"
    );
    assert_eq!(s.room_servers(1).await.unwrap(), ["c1", "c2"]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!s.server_alive("c1").await.unwrap(), "lapsed");
    assert_eq!(s.expire_servers().await.unwrap(), ["c1"]);
    assert_eq!(
        s.room_servers(1).await.unwrap(),
        ["c2"],
        "only c1 forgotten"
    );
    assert_eq!(s.roster(1).await.unwrap(), std::slice::from_ref(&b));
    assert!(s.user_servers(1).await.unwrap().is_empty());
    assert!(
        !s.renew_server("c1", short).await.unwrap(),
        "a lapsed lease does not renew: the server must sync"
    );
    // Presence joined by a server that never took a lease is expired too.
    s.join(&at("ghost", &a, 3)).await.unwrap();
    assert_eq!(s.expire_servers().await.unwrap(), ["ghost"]);
    assert!(s.roster(3).await.unwrap().is_empty());
    // drop_server takes the lease with it.
    s.drop_server("c2").await.unwrap();
    assert!(!s.server_alive("c2").await.unwrap());
    assert!(s.roster(1).await.unwrap().is_empty());
}

async fn sync_replaces_a_servers_presence<S: Sessions>(s: S) {
    let (a, b, c) = (user(1, "a"), user(2, "b"), user(3, "c"));
    s.join(&at("c1", &a, 1)).await.unwrap();
    s.join(&at("c1", &a, 1)).await.unwrap();
    s.join(&at("c1", &b, 2)).await.unwrap();
    s.join(&at("c2", &c, 1)).await.unwrap();
    // c1's live connections now: b in rooms 1 and 2 (two connections), and c privately.
    s.sync_server(
        "c1",
        &[
            at("c1", &b, 1),
            at("c1", &b, 2),
            at("c1", &b, 2),
            at("c1", &c, NO_ROOM),
        ],
        TTL,
    )
    .await
    .unwrap();
    assert_eq!(s.roster(1).await.unwrap(), [b.clone(), c.clone()]);
    assert_eq!(s.roster(2).await.unwrap(), std::slice::from_ref(&b));
    assert!(
        s.user_servers(1).await.unwrap().is_empty(),
        "a's ghosts gone"
    );
    assert_eq!(s.user_servers(3).await.unwrap(), ["c1", "c2"]);
    // The counts were rebuilt too: one leave of b in room 2 keeps b there.
    s.leave(&at("c1", &b, 2)).await.unwrap();
    assert_eq!(s.roster(2).await.unwrap(), std::slice::from_ref(&b));
    s.leave(&at("c1", &b, 2)).await.unwrap();
    assert!(s.roster(2).await.unwrap().is_empty());
    // Entries naming another server are not c1's to assert.
    s.sync_server("c1", &[at("c2", &a, 5)], TTL).await.unwrap();
    assert!(s.roster(5).await.unwrap().is_empty());
    assert_eq!(s.room_size(5).await.unwrap(), 0);
    assert_eq!(s.room_servers(1).await.unwrap(), ["c2"]);
}
