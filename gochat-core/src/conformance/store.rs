use crate::Error;
use crate::store::Store;

/// Run every store check against fresh stores from `make`.
pub async fn run_all<S: Store>(make: impl Fn() -> S) {
    create_and_find(make()).await;
    names_are_unique(make()).await;
    password_hash_updates(make()).await;
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
