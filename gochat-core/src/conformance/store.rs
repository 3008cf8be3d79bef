use crate::Error;
use crate::model::{Log, NewMessage, Range, User};
use crate::store::{Retention, Store};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Run every store check, each against a fresh (empty) store from `make`.
pub async fn run_all<S: Store, F: Future<Output = S>>(make: impl Fn() -> F) {
    create_and_find(make().await).await;
    names_are_unique(make().await).await;
    password_hash_updates(make().await).await;
    imported_users_keep_their_ids(make().await).await;
    seqs_are_dense_per_log(make().await).await;
    private_messages_go_to_both_inboxes(make().await).await;
    paging(make().await).await;
    client_ids_make_posts_idempotent(make().await).await;
    concurrent_writers_get_unique_dense_seqs(Arc::new(make().await)).await;
    retention(make().await).await;
}

async fn create_and_find<S: Store>(s: S) {
    let a = s.create_user("alice", "hash-a").await.unwrap();
    let b = s.create_user("bö b 🙂", "hash-b").await.unwrap();
    assert!(a.id > 0 && b.id > 0 && a.id != b.id);
    assert_eq!(a.name, "alice");
    let rec = s.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!((rec.id, rec.password_hash.as_str()), (a.id, "hash-a"));
    assert_eq!(s.user_by_id(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(s.user_by_name("bö b 🙂").await.unwrap().unwrap().id, b.id);
    assert_eq!(s.user_by_name("Alice").await.unwrap(), None, "case matters");
    assert_eq!(s.user_by_id(b.id + 1000).await.unwrap(), None);
}

async fn names_are_unique<S: Store>(s: S) {
    let a = s.create_user("dup", "1").await.unwrap();
    assert!(matches!(
        s.create_user("dup", "2").await,
        Err(Error::NameTaken)
    ));
    assert_eq!(
        s.user_by_name("dup").await.unwrap().unwrap().password_hash,
        "1",
        "a failed create changed the row"
    );
    let c = s.create_user("after", "3").await.unwrap();
    assert!(c.id > a.id, "ids increase");
}

async fn password_hash_updates<S: Store>(s: S) {
    let a = s.create_user("p", "old").await.unwrap();
    assert!(s.set_password_hash(a.id, "new").await.unwrap());
    assert_eq!(
        s.user_by_name("p").await.unwrap().unwrap().password_hash,
        "new"
    );
    assert!(!s.set_password_hash(a.id + 999, "x").await.unwrap());
}

async fn imported_users_keep_their_ids<S: Store>(s: S) {
    s.import_user(41, "old-one", "sha1-hex").await.unwrap();
    s.import_user(7, "old-two", "h").await.unwrap();
    let rec = s.user_by_name("old-one").await.unwrap().unwrap();
    assert_eq!((rec.id, rec.password_hash.as_str()), (41, "sha1-hex"));
    assert!(matches!(
        s.import_user(41, "other", "h").await,
        Err(Error::NameTaken)
    ));
    assert!(matches!(
        s.import_user(50, "old-two", "h").await,
        Err(Error::NameTaken)
    ));
    let new = s.create_user("registered-later", "h").await.unwrap();
    assert!(
        new.id > 41,
        "a new id {} collides with imported ones",
        new.id
    );
}

/// Message ids unique across every call of every suite.
fn next_id() -> i64 {
    static N: AtomicI64 = AtomicI64::new(1 << 40);
    N.fetch_add(1, Ordering::Relaxed)
}

fn user(id: i64) -> User {
    User {
        id,
        name: format!("user{id}"),
    }
}

const WINDOW: Duration = Duration::from_secs(600);

pub fn room_message(room: i64, from: i64, msg: &str, created_ms: i64) -> NewMessage {
    NewMessage {
        id: next_id(),
        room_id: room,
        from: user(from),
        to: None,
        msg: msg.into(),
        created_ms,
        client_id: None,
    }
}

fn private(from: i64, to: i64, msg: &str) -> NewMessage {
    NewMessage {
        to: Some(user(to)),
        ..room_message(1, from, msg, 1_000)
    }
}

fn seqs(page: &crate::model::Page) -> Vec<u64> {
    page.messages.iter().map(|m| m.seq).collect()
}

async fn seqs_are_dense_per_log<S: Store>(s: S) {
    assert_eq!(s.last_seq(Log::Room(7)).await.unwrap(), 0, "an empty log");
    for i in 1..=5u64 {
        let st = s
            .append(
                room_message(7, 1, &format!("m{i}"), 1_000 + i as i64),
                WINDOW,
            )
            .await
            .unwrap();
        assert_eq!((st.seq, st.peer_seq, st.duplicate), (i, 0, false));
    }
    let other = s.append(room_message(8, 1, "x", 1), WINDOW).await.unwrap();
    assert_eq!(other.seq, 1, "each room counts on its own");
    assert_eq!(s.last_seq(Log::Room(7)).await.unwrap(), 5);
    let page = s.read(Log::Room(7), Range::Since(0), 100).await.unwrap();
    assert_eq!(seqs(&page), [1, 2, 3, 4, 5]);
    assert!(!page.more);
    let third = &page.messages[2];
    assert_eq!((third.msg.as_str(), third.room_id), ("m3", 7));
    assert_eq!((third.from.clone(), third.to.clone()), (user(1), None));
    assert_eq!(third.created_ms, 1_003, "the time it was posted, kept");
}

async fn private_messages_go_to_both_inboxes<S: Store>(s: S) {
    let a = s.append(private(1, 2, "hi"), WINDOW).await.unwrap();
    let b = s.append(private(2, 1, "hello"), WINDOW).await.unwrap();
    let c = s.append(private(1, 3, "other"), WINDOW).await.unwrap();
    assert_eq!((a.seq, a.peer_seq), (1, 1));
    assert_eq!((b.seq, b.peer_seq), (2, 2), "both inboxes moved on");
    assert_eq!((c.seq, c.peer_seq), (3, 1));
    let inbox1 = s.read(Log::Inbox(1), Range::Latest, 10).await.unwrap();
    let texts: Vec<&str> = inbox1.messages.iter().map(|m| m.msg.as_str()).collect();
    assert_eq!(texts, ["hi", "hello", "other"], "both directions, in order");
    assert_eq!(inbox1.messages[1].to, Some(user(1)));
    assert_eq!(inbox1.messages[1].msg_id, b.msg_id);
    let inbox3 = s.read(Log::Inbox(3), Range::Latest, 10).await.unwrap();
    assert_eq!(seqs(&inbox3), [1]);
    let to_self = s.append(private(4, 4, "note"), WINDOW).await.unwrap();
    assert_eq!((to_self.seq, to_self.peer_seq), (1, 1));
    let inbox4 = s.read(Log::Inbox(4), Range::Latest, 10).await.unwrap();
    assert_eq!(
        inbox4.messages.len(),
        1,
        "a message to oneself is stored once"
    );
    assert_eq!(
        s.last_seq(Log::Room(1)).await.unwrap(),
        0,
        "not in the room"
    );
}

async fn paging<S: Store>(s: S) {
    for i in 1..=10 {
        s.append(room_message(3, 1, &format!("p{i}"), i), WINDOW)
            .await
            .unwrap();
    }
    let log = Log::Room(3);
    let p = s.read(log, Range::Since(2), 3).await.unwrap();
    assert_eq!((seqs(&p), p.more), (vec![3, 4, 5], true));
    let p = s.read(log, Range::Since(7), 3).await.unwrap();
    assert_eq!((seqs(&p), p.more), (vec![8, 9, 10], false));
    let p = s.read(log, Range::Since(10), 3).await.unwrap();
    assert_eq!((seqs(&p), p.more), (vec![], false));
    let p = s.read(log, Range::Before(6), 3).await.unwrap();
    assert_eq!((seqs(&p), p.more), (vec![3, 4, 5], true), "ascending");
    let p = s.read(log, Range::Before(3), 3).await.unwrap();
    assert_eq!((seqs(&p), p.more), (vec![1, 2], false));
    let p = s.read(log, Range::Latest, 4).await.unwrap();
    assert_eq!((seqs(&p), p.more), (vec![7, 8, 9, 10], true));
    let p = s.read(log, Range::Latest, 50).await.unwrap();
    assert_eq!((p.messages.len(), p.more), (10, false));
    let p = s.read(Log::Room(99), Range::Latest, 5).await.unwrap();
    assert_eq!(
        (p.messages.len(), p.more),
        (0, false),
        "an unknown room is empty"
    );
}

async fn client_ids_make_posts_idempotent<S: Store>(s: S) {
    let with_id = |room, from, id: &str, at| NewMessage {
        client_id: Some(id.into()),
        ..room_message(room, from, "again?", at)
    };
    let first = s
        .append(with_id(5, 1, "c-1", 10_000), WINDOW)
        .await
        .unwrap();
    let again = s
        .append(with_id(5, 1, "c-1", 11_000), WINDOW)
        .await
        .unwrap();
    assert!(again.duplicate && !first.duplicate);
    assert_eq!(
        (again.msg_id, again.seq, again.created_ms),
        (first.msg_id, first.seq, first.created_ms),
        "the first post's answer"
    );
    assert_eq!(s.last_seq(Log::Room(5)).await.unwrap(), 1, "stored once");
    let other_user = s
        .append(with_id(5, 2, "c-1", 11_000), WINDOW)
        .await
        .unwrap();
    assert!(!other_user.duplicate, "ids are per sender");
    let later = 10_000 + WINDOW.as_millis() as i64 + 1;
    let expired = s.append(with_id(5, 1, "c-1", later), WINDOW).await.unwrap();
    assert!(!expired.duplicate, "outside the window it is a new post");
    assert_eq!(s.last_seq(Log::Room(5)).await.unwrap(), 3);
    let dm = NewMessage {
        client_id: Some("d-1".into()),
        ..private(1, 2, "once")
    };
    let d1 = s.append(dm.clone(), WINDOW).await.unwrap();
    let d2 = s
        .append(
            NewMessage {
                id: next_id(),
                ..dm
            },
            WINDOW,
        )
        .await
        .unwrap();
    assert_eq!(
        (d2.seq, d2.peer_seq, d2.duplicate),
        (d1.seq, d1.peer_seq, true)
    );
}

async fn concurrent_writers_get_unique_dense_seqs<S: Store>(s: Arc<S>) {
    const WRITERS: usize = 16;
    const EACH: usize = 50;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for k in 0..EACH {
                    let m = room_message(42, w as i64, &format!("{w}-{k}"), 1);
                    got.push(s.append(m, WINDOW).await.unwrap().seq);
                }
                got
            })
        })
        .collect();
    let mut all = HashSet::new();
    for t in tasks {
        let got = t.await.unwrap();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "one writer's seqs grow"
        );
        for seq in got {
            assert!(all.insert(seq), "seq {seq} given twice");
        }
    }
    let n = (WRITERS * EACH) as u64;
    assert_eq!(all, (1..=n).collect::<HashSet<_>>(), "dense: 1..={n}");
    let page = s
        .read(Log::Room(42), Range::Since(0), n as usize)
        .await
        .unwrap();
    assert_eq!(seqs(&page), (1..=n).collect::<Vec<_>>());
}

async fn retention<S: Store>(s: S) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let day = 86_400_000;
    for i in 1..=20 {
        s.append(
            room_message(9, 1, &format!("r{i}"), now - 40 * day + i),
            WINDOW,
        )
        .await
        .unwrap();
    }
    for i in 1..=30 {
        s.append(room_message(10, 1, &format!("n{i}"), now - i), WINDOW)
            .await
            .unwrap();
    }
    s.append(private(1, 2, "old dm"), WINDOW).await.unwrap(); // created at 1 000 ms: ancient
    let keep = Retention {
        max_per_log: 25,
        max_age: Some(Duration::from_secs(30 * 86_400)),
        dedup_window: WINDOW,
        batch: 7,
    };
    let mut removed = 0;
    loop {
        let n = s.prune(keep).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 7 + 7, "bounded steps");
        removed += n;
    }
    assert!(removed >= 20 + 5 + 2);
    let old = s.read(Log::Room(9), Range::Latest, 100).await.unwrap();
    assert!(old.messages.is_empty(), "older than 30 days: gone");
    let recent = s.read(Log::Room(10), Range::Since(0), 100).await.unwrap();
    assert_eq!(
        seqs(&recent),
        (6..=30).collect::<Vec<_>>(),
        "the newest 25 stay"
    );
    assert!(
        s.read(Log::Inbox(2), Range::Latest, 10)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(
        s.last_seq(Log::Room(10)).await.unwrap(),
        30,
        "seqs are never reused"
    );
    assert_eq!(
        s.last_seq(Log::Room(9)).await.unwrap(),
        20,
        "a log whose every row went keeps its head"
    );
    let next = s
        .append(room_message(10, 1, "after", now), WINDOW)
        .await
        .unwrap();
    assert_eq!(next.seq, 31);
}
