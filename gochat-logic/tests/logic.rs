//! The logic layer against real backends (a SQLite file, memory sessions and queue).
#![allow(clippy::unwrap_used)]

use gochat_core::config::{LogicConfig, QueueConfig};
use gochat_core::model::{PushKind, Target};
use gochat_core::rpc::{ConnectRequest, Fault, LogicService, PushRequest};
use gochat_core::{MemoryQueue, MemorySessions, Queue, SqliteStore, Store};
use gochat_logic::{BAD_LOGIN, Logic, NAME_TAKEN};
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    logic: Logic,
    store: Arc<SqliteStore>,
    queue: Arc<MemoryQueue>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("gochat.db")).unwrap());
    let queue = Arc::new(MemoryQueue::new(&QueueConfig::default()));
    let config = LogicConfig {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        ..LogicConfig::default()
    };
    let logic = Logic::new(
        config,
        store.clone(),
        Arc::new(MemorySessions::new()),
        queue.clone(),
    )
    .unwrap();
    Fixture {
        logic,
        store,
        queue,
        _dir: dir,
    }
}

#[tokio::test]
async fn legacy_sha1_rows_log_in_once_and_are_rehashed() {
    let f = fixture();
    // sha1("111111") as an imported gochat database stores it.
    let u = f
        .store
        .create_user("old", "3d4f2bf07dc1be38b20cd6e46949a1071f9d0e3d")
        .await
        .unwrap();
    assert_eq!(
        f.logic.login("old".into(), "nope".into()).await,
        Err(Fault::Rejected(BAD_LOGIN.into()))
    );
    f.logic.login("old".into(), "111111".into()).await.unwrap();
    let row = f.store.user_by_name("old").await.unwrap().unwrap();
    assert!(
        row.password_hash.starts_with("$argon2id$"),
        "{}",
        row.password_hash
    );
    assert_eq!(row.id, u.id);
    f.logic.login("old".into(), "111111".into()).await.unwrap();
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_never_plain() {
    let f = fixture();
    f.logic
        .register("alice".into(), "s3cret-pw".into())
        .await
        .unwrap();
    let row = f.store.user_by_name("alice").await.unwrap().unwrap();
    assert!(row.password_hash.starts_with("$argon2id$"));
    assert!(!row.password_hash.contains("s3cret-pw"));
    assert_eq!(
        f.logic.register("alice".into(), "another-pw".into()).await,
        Err(Fault::Rejected(NAME_TAKEN.into()))
    );
}

#[tokio::test]
async fn demo_users_are_created_once() {
    let f = fixture();
    f.logic.ensure_demo_users().await.unwrap();
    f.logic.ensure_demo_users().await.unwrap();
    for (name, id) in [("demo", 1), ("test", 2), ("admin", 3)] {
        assert_eq!(f.store.user_by_name(name).await.unwrap().unwrap().id, id);
    }
    f.logic
        .login("admin".into(), "111111".into())
        .await
        .unwrap();
}

#[tokio::test]
async fn pushes_become_deliveries_with_increasing_ids() {
    let f = fixture();
    let a = f
        .logic
        .register("a".into(), "pw-of-a1".into())
        .await
        .unwrap();
    let b = f
        .logic
        .register("b".into(), "pw-of-b1".into())
        .await
        .unwrap();
    let b_user = f
        .logic
        .connect(ConnectRequest {
            token: b,
            room_id: 1,
            server_id: "c1".into(),
            ..ConnectRequest::default()
        })
        .await
        .unwrap()
        .user;
    for msg in ["one", "two"] {
        f.logic
            .push(PushRequest {
                token: a.clone(),
                to_user_id: b_user.id,
                room_id: 1,
                msg: msg.into(),
                ..PushRequest::default()
            })
            .await
            .unwrap();
    }
    let got: Vec<_> = f
        .queue
        .receive("t", 10, Duration::from_secs(1))
        .await
        .unwrap()
        .into_iter()
        // b's join was announced (op 11) before the messages.
        .filter(|r| r.delivery.kind == PushKind::Message)
        .collect();
    assert_eq!(got.len(), 2);
    assert!(got[0].delivery.id < got[1].delivery.id);
    let a_user = f.logic.check_auth(a.clone()).await.unwrap();
    assert_eq!(
        got[0].delivery.target,
        Target::Conversation {
            from: a_user.id,
            to: b_user.id
        }
    );
    assert!(
        std::str::from_utf8(&got[1].delivery.payload)
            .unwrap()
            .contains(r#""msg":"two""#)
    );
}
