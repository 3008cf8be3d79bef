//! Against a real PostgreSQL: `GOCHAT_TEST_POSTGRES` (default the `test` database on
//! 127.0.0.1:5432; scripts/test.sh starts one when none answers). Every store gets a schema
//! of its own, dropped when the test ends.

use super::*;
use crate::conformance::store::room_message;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

fn url() -> String {
    std::env::var("GOCHAT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Fresh schemas, dropped when this goes.
struct Schemas(Mutex<Vec<String>>);

impl Schemas {
    fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    fn fresh(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "gochat_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.0.lock().unwrap().push(name.clone());
        name
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::open(&url(), &self.fresh(), 8, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", url()))
    }

    async fn drop_all(&self) {
        let (client, conn) = tokio_postgres::connect(&url(), NoTls).await.unwrap();
        tokio::spawn(conn);
        let names = std::mem::take(&mut *self.0.lock().unwrap());
        for name in names {
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let schemas = Schemas::new();
    crate::conformance::store::run_all(|| schemas.store()).await;
    schemas.drop_all().await;
}

/// Two stores with pools of their own on one schema: two logic instances of a cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_writing_one_room_get_unique_dense_seqs() {
    let schemas = Schemas::new();
    let schema = schemas.fresh();
    let url = url();
    let open = || PostgresStore::open(&url, &schema, 8, Duration::from_secs(5));
    let (a, b) = (open().await.unwrap(), open().await.unwrap());
    let mut tasks = Vec::new();
    for (i, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..150 {
                let m = room_message(9, i as i64 + 1, &format!("{i}-{n}"), 1_000 + n);
                seqs.push(store.append(m, Duration::from_secs(60)).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = t.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one writer's seqs go up"
        );
        all.extend(seqs);
    }
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), 600, "two messages shared a seq");
    assert_eq!(unique, (1..=600).collect(), "seqs are not 1..=600");
    assert_eq!(b.last_seq(Log::Room(9)).await.unwrap(), 600);
    let page = a.read(Log::Room(9), Range::Since(0), 1000).await.unwrap();
    assert_eq!(page.messages.len(), 600);
    schemas.drop_all().await;
}

#[tokio::test]
async fn a_schema_from_a_newer_build_is_refused_and_reopening_is_a_no_op() {
    let schemas = Schemas::new();
    let schema = schemas.fresh();
    let s = PostgresStore::open(&url(), &schema, 2, Duration::from_secs(5))
        .await
        .unwrap();
    s.create_user("kept", "h").await.unwrap();
    drop(s);
    let again = PostgresStore::open(&url(), &schema, 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(again.user_by_name("kept").await.unwrap().is_some());
    let (client, conn) = tokio_postgres::connect(&url(), NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("UPDATE {schema}.schema_version SET version = 99"))
        .await
        .unwrap();
    let err = PostgresStore::open(&url(), &schema, 2, Duration::from_secs(5))
        .await
        .err()
        .expect("a newer schema opened");
    assert!(err.to_string().contains("version 99"), "{err}");
    schemas.drop_all().await;
}

#[tokio::test]
async fn an_unreachable_server_fails_in_time_naming_its_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed again: nothing listens there
    let url = format!("postgres://postgres@127.0.0.1:{port}/nowhere");
    let started = std::time::Instant::now();
    let err = PostgresStore::open(&url, "gochat", 2, Duration::from_secs(2))
        .await
        .err()
        .expect("opened a store with no server");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}/nowhere")),
        "{text}"
    );
}

#[tokio::test]
async fn bad_settings_are_clear_errors() {
    for (url, schema, want) in [
        ("not a url at all ::", "gochat", "does not parse"),
        (
            "postgres://postgres@127.0.0.1/test",
            "Bad-Name; DROP",
            "lowercase identifier",
        ),
    ] {
        let err = PostgresStore::open(url, schema, 2, Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains(want), "{err}");
    }
}

/// Private messages in both directions lock two inboxes each, in any order across batches:
/// whatever deadlocks PostgreSQL finds are retried, and every inbox stays dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_private_messages_from_two_instances_keep_every_inbox_dense() {
    use crate::model::NewMessage;
    let schemas = Schemas::new();
    let schema = schemas.fresh();
    let url = url();
    let open = || PostgresStore::open(&url, &schema, 8, Duration::from_secs(10));
    let (a, b) = (open().await.unwrap(), open().await.unwrap());
    let user = |id: i64| User {
        id,
        name: format!("u{id}"),
    };
    let mut tasks = Vec::new();
    for t in 0..8i64 {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for i in 0..60i64 {
                let (from, to) = (1 + (t + i) % 4, 1 + (t * 3 + i * 7 + 1) % 4);
                let m = NewMessage {
                    id: (t << 20) | i | (1 << 50),
                    room_id: 1,
                    from: user(from),
                    to: Some(user(to)),
                    msg: format!("{t}/{i}"),
                    created_ms: 1,
                    client_id: Some(format!("c{t}-{i}")),
                };
                let s = store.append(m, Duration::from_secs(60)).await.unwrap();
                assert!(!s.duplicate && s.seq > 0 && s.peer_seq > 0);
                n += if from == to { 1 } else { 2 };
            }
            n
        }));
    }
    let mut entries = 0;
    for t in tasks {
        entries += t.await.unwrap();
    }
    let mut total = 0;
    for u in 1..=4 {
        let page = a
            .read(Log::Inbox(u), Range::Since(0), 10_000)
            .await
            .unwrap();
        let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "inbox {u}"
        );
        assert_eq!(a.last_seq(Log::Inbox(u)).await.unwrap(), seqs.len() as u64);
        total += seqs.len();
    }
    assert_eq!(total, entries, "inbox entries lost or doubled");
    schemas.drop_all().await;
}
