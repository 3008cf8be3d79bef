//! The logic layer against real backends (a SQLite file, memory sessions and queue).
#![allow(clippy::unwrap_used)]

use gochat_core::config::{LogicConfig, QueueConfig};
use gochat_core::model::{Delivery, Presence, PushKind, Target};
use gochat_core::queue::{Depth, Receipt, Received};
use gochat_core::rpc::{ConnectRequest, Fault, LogicService, PushRequest};
use gochat_core::{MemoryQueue, MemorySessions, Queue, SqliteStore, Store};
use gochat_logic::{BAD_LOGIN, Logic, NAME_TAKEN};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    Fixture {
        logic: logic_over(store.clone(), queue.clone()),
        store,
        queue,
        _dir: dir,
    }
}

/// A logic layer over `store`, memory sessions and `queue`, hashing passwords cheaply.
fn logic_over(store: Arc<SqliteStore>, queue: Arc<dyn Queue>) -> Logic {
    let config = LogicConfig {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        ..LogicConfig::default()
    };
    Logic::new(config, store, Arc::new(MemorySessions::new()), queue).unwrap()
}

/// Connect `token` (protocol v1) into `room` on server `c1`.
async fn connect_in(logic: &Logic, token: String, room: i64) -> gochat_core::model::User {
    logic
        .connect(ConnectRequest {
            token,
            room_id: room,
            server_id: "c1".into(),
            ..ConnectRequest::default()
        })
        .await
        .unwrap()
        .user
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
    let b_user = connect_in(&f.logic, b, 1).await;
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

/// A memory queue whose first roster takes `stall` to be queued, as on a loaded box.
struct StallFirstRoster {
    inner: MemoryQueue,
    stall: Duration,
    stalled: AtomicBool,
}

#[async_trait::async_trait]
impl Queue for StallFirstRoster {
    async fn publish(&self, delivery: Delivery) -> gochat_core::Result<()> {
        if matches!(delivery.kind, PushKind::Roster { .. })
            && !self.stalled.swap(true, Ordering::SeqCst)
        {
            tokio::time::sleep(self.stall).await;
        }
        self.inner.publish(delivery).await
    }
    async fn receive(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> gochat_core::Result<Vec<Received>> {
        self.inner.receive(consumer, max, wait).await
    }
    async fn ack(&self, receipts: &[Receipt]) -> gochat_core::Result<()> {
        self.inner.ack(receipts).await
    }
    async fn dead_letter(&self, entries: &[(Receipt, String)]) -> gochat_core::Result<()> {
        self.inner.dead_letter(entries).await
    }
    fn dead_lettered(&self) -> u64 {
        self.inner.dead_lettered()
    }
    async fn depth(&self) -> gochat_core::Result<Depth> {
        self.inner.depth().await
    }
}

/// Two leaves handled at once: the first one's roster (still naming the second user) is slow
/// to be queued, the second one's (the empty room) is not. Members keep the last roster they
/// get, so it must be the empty one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rosters_are_queued_in_the_order_they_were_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("gochat.db")).unwrap());
    let queue = Arc::new(StallFirstRoster {
        inner: MemoryQueue::new(&QueueConfig::default()),
        stall: Duration::from_millis(300),
        stalled: AtomicBool::new(false),
    });
    let logic = Arc::new(logic_over(store, queue.clone()));
    let mut presences = Vec::new();
    for name in ["first", "second"] {
        let token = logic
            .register(name.into(), "pw-123456".into())
            .await
            .unwrap();
        let user = connect_in(&logic, token, 1).await;
        presences.push(Presence {
            server_id: "c1".into(),
            user_id: user.id,
            user_name: user.name,
            room_id: 1,
        });
    }
    let second = presences.pop().unwrap();
    let first = presences.pop().unwrap();
    let slow = tokio::spawn({
        let logic = logic.clone();
        async move { logic.disconnect(first).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    logic.disconnect(second).await.unwrap();
    slow.await.unwrap().unwrap();

    let rosters: Vec<Vec<String>> = queue
        .receive("t", 100, Duration::from_secs(1))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r.delivery.kind, PushKind::Roster { .. }))
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.delivery.payload).unwrap();
            let users = v["roomUserInfo"].as_object().unwrap();
            users
                .values()
                .map(|u| u.as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(rosters, [vec!["second".to_owned()], vec![]]);
}
