//! `gochat::client` against a real server, over both transports.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gochat::client::{Client, ClientError, Connection, Event};

/// The next event that is not a count or roster update.
async fn next_message(c: &mut Connection) -> Event {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), c.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            Event::Count(_) | Event::Roster { .. } => {}
            e => return e,
        }
    }
}

#[tokio::test]
async fn the_client_speaks_both_transports() {
    let s = start().await;
    let mut alice = Client::new(s.api());
    let a = alice.register("alice", "alice-password").await.unwrap();
    let mut bob = Client::new(s.api());
    let b = bob.login("demo", "111111").await.unwrap();
    assert_eq!((b.id, b.name.as_str()), (1, "demo"));
    assert_eq!(alice.user(), Some(&a));

    let mut on_ws = alice.connect_ws(s.ws(), 1).await.unwrap();
    let mut on_tcp = bob.connect_tcp(s.tcp(), 1).await.unwrap();
    // Both admitted once each has seen a count of 2.
    loop {
        alice.request_count(1).await.unwrap();
        if let Ok(Ok(Event::Count(2))) =
            tokio::time::timeout(std::time::Duration::from_millis(300), on_ws.next_event()).await
        {
            break;
        }
    }
    loop {
        if let Event::Count(2) = on_tcp.next_event().await.unwrap() {
            break;
        }
    }

    alice.send_room(1, "hi from ws").await.unwrap();
    let (x, y) = (
        next_message(&mut on_ws).await,
        next_message(&mut on_tcp).await,
    );
    assert_eq!(x, y);
    let Event::Room(m) = x else { panic!("{x:?}") };
    assert_eq!(
        (m.msg.as_str(), m.from_user_id, m.room_id),
        ("hi from ws", a.id, 1)
    );

    on_tcp.post("hi from tcp").await.unwrap();
    let Event::Room(m) = next_message(&mut on_ws).await else {
        panic!()
    };
    assert_eq!(
        (m.msg.as_str(), m.from_user_name.as_str()),
        ("hi from tcp", "demo")
    );
    assert!(matches!(
        on_ws.post("x").await,
        Err(ClientError::Unsupported(_))
    ));

    bob.send_private(a.id, 1, "just you").await.unwrap();
    let e = next_message(&mut on_ws).await;
    let Event::Private(m) = e else {
        panic!("{e:?}")
    };
    assert_eq!(
        (m.msg.as_str(), m.to_user_id, m.to_user_name.as_str()),
        ("just you", a.id, "alice")
    );

    alice.request_roster(1).await.unwrap();
    loop {
        if let Event::Roster { room_id, users } = on_tcp.next_event().await.unwrap() {
            assert_eq!(room_id, 1);
            assert_eq!(
                users.values().cloned().collect::<Vec<_>>(),
                ["demo", "alice"]
            );
            break;
        }
    }

    // Closes are reported with their reason.
    alice.logout().await.unwrap();
    loop {
        if let Event::Closed { code, reason } = on_ws.next_event().await.unwrap() {
            assert_eq!((code, reason.as_str()), (Some(1008), "logged out"));
            break;
        }
    }
    assert!(matches!(
        alice.send_room(1, "x").await,
        Err(ClientError::NotLoggedIn)
    ));
    on_tcp.close().await.unwrap();
    s.server.shutdown().await;
}

#[tokio::test]
async fn refusals_carry_the_servers_code_and_message() {
    let s = start().await;
    let mut c = Client::new(s.api());
    match c.login("demo", "wrong").await {
        Err(ClientError::Refused { code, message }) => {
            assert_eq!(
                (code, message.as_str()),
                (1, "no this user or password error!")
            );
        }
        other => panic!("{other:?}"),
    }
    c.login("demo", "111111").await.unwrap();
    let mut other = c.clone();
    c.login("demo", "111111").await.unwrap(); // revokes the clone's token
    match other.check_auth().await {
        Err(ClientError::Refused {
            code: 40000,
            message,
        }) => assert_eq!(message, "Session error"),
        x => panic!("{x:?}"),
    }
    assert!(other.logout().await.is_err());
    s.server.shutdown().await;
}

/// A live connection in no room may post to one (PROTOCOL.md §6.4: any room): it gets the
/// answer and nothing else — not its own post as a message, nor the room's other messages,
/// which it used to page in to fill the gap between its seqs.
#[tokio::test]
async fn a_live_client_posting_to_a_room_it_is_not_in_gets_only_the_answers() {
    use gochat::client::live::{Endpoint, LiveConfig, LiveEvent, Transport};
    let s = start().await;
    let mut alice = Client::new(s.api());
    alice.register("alice", "alice-password").await.unwrap();
    alice.login("alice", "alice-password").await.unwrap();
    let mut bob = Client::new(s.api());
    bob.login("demo", "111111").await.unwrap();
    let endpoint = Endpoint {
        addr: s.ws(),
        transport: Transport::WebSocket,
    };
    let mut config = LiveConfig::new(endpoint, 1);
    config.rooms.clear();
    let mut live = alice.live(config).await.unwrap();

    let first = live.post(1, "alice one").await.unwrap();
    bob.send_room(1, "bob in between").await.unwrap();
    let second = live.post(1, "alice two").await.unwrap();
    assert_eq!(
        (first.seq, second.seq),
        (Some(1), Some(3)),
        "a gap between her posts"
    );
    let quiet = tokio::time::Instant::now() + std::time::Duration::from_millis(700);
    while let Ok(event) = tokio::time::timeout_at(quiet, live.next_event()).await {
        match event {
            Some(LiveEvent::Message(m)) => panic!("handed over a message of room 1: {m:?}"),
            Some(LiveEvent::Closed { reason, .. }) => panic!("closed: {reason}"),
            Some(_) => {}
            None => break,
        }
    }
}

/// A copy on a connection of its own is the same session: same user, its token accepted.
#[tokio::test]
async fn a_client_on_its_own_connection_is_the_same_session() {
    let s = start().await;
    let mut alice = Client::new(s.api());
    let a = alice.register("alice", "alice-password").await.unwrap();
    let mut on_ws = alice.connect_ws(s.ws(), 1).await.unwrap();
    let copy = alice.on_own_connection();
    assert_eq!((copy.user(), copy.token()), (Some(&a), alice.token()));
    assert_eq!(copy.check_auth().await.unwrap(), a);
    copy.send_room(1, "from the copy").await.unwrap();
    let Event::Room(m) = next_message(&mut on_ws).await else {
        panic!("not a room message")
    };
    assert_eq!((m.msg.as_str(), m.from_user_id), ("from the copy", a.id));
}
