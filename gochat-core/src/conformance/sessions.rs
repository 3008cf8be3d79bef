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
    drop_server_forgets_its_presence(make().await).await;
    concurrent_joins_are_atomic(Arc::new(make().await)).await;
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
    s.join(&at("c1", &a, 1)).await.unwrap();
    s.join(&at("c2", &a, 1)).await.unwrap();
    s.join(&at("c2", &a, 1)).await.unwrap();
    s.join(&at("c1", &d, 1)).await.unwrap();
    s.join(&at("c3", &d, 2)).await.unwrap();
    let roster = s.roster(1).await.unwrap();
    assert_eq!(
        roster.into_iter().collect::<Vec<_>>(),
        [("10".into(), "alice".into()), ("3".into(), "demo".into())]
    );
    assert_eq!(s.room_servers(1).await.unwrap(), ["c1", "c2"]);
    assert_eq!(s.room_servers(2).await.unwrap(), ["c3"]);
    assert_eq!(s.user_servers(10).await.unwrap(), ["c1", "c2"]);
    assert_eq!(s.user_servers(3).await.unwrap(), ["c1", "c3"]);
    s.leave(&at("c2", &a, 1)).await.unwrap();
    assert_eq!(
        s.user_servers(10).await.unwrap(),
        ["c1", "c2"],
        "one c2 conn left"
    );
    s.leave(&at("c2", &a, 1)).await.unwrap();
    s.leave(&at("c2", &a, 1)).await.unwrap(); // repeated leave: no-op
    assert_eq!(s.user_servers(10).await.unwrap(), ["c1"]);
    s.leave(&at("c1", &a, 1)).await.unwrap();
    assert_eq!(s.roster(1).await.unwrap().len(), 1);
    assert_eq!(s.user_servers(10).await.unwrap(), Vec::<String>::new());
    s.leave(&at("c9", &user(77, "x"), 5)).await.unwrap(); // never joined: no-op
    assert!(s.roster(5).await.unwrap().is_empty());
}

async fn no_room_is_private_only<S: Sessions>(s: S) {
    let a = user(5, "e");
    s.join(&at("c1", &a, NO_ROOM)).await.unwrap();
    assert_eq!(s.user_servers(5).await.unwrap(), ["c1"]);
    assert!(s.roster(NO_ROOM).await.unwrap().is_empty());
    s.leave(&at("c1", &a, NO_ROOM)).await.unwrap();
    assert!(s.user_servers(5).await.unwrap().is_empty());
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
