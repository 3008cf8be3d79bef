use crate::registry::{Instance, Kind, Registry};
use std::future::Future;
use std::time::Duration;

fn inst(kind: Kind, id: &str, addr: &str) -> Instance {
    Instance {
        kind,
        id: id.into(),
        addr: addr.into(),
    }
}

/// Run every registry check against fresh registries from `make`.
pub async fn run_all<R, F, Fut>(make: F)
where
    R: Registry,
    F: Fn() -> Fut,
    Fut: Future<Output = R>,
{
    register_list_deregister(make().await).await;
    watch_sees_changes(make().await).await;
}

async fn register_list_deregister<R: Registry>(r: R) {
    assert!(r.list(Kind::Connect).await.unwrap().is_empty());
    r.register(inst(Kind::Connect, "c2", "127.0.0.1:2"))
        .await
        .unwrap();
    r.register(inst(Kind::Connect, "c1", "127.0.0.1:1"))
        .await
        .unwrap();
    r.register(inst(Kind::Logic, "l1", "127.0.0.1:9"))
        .await
        .unwrap();
    assert_eq!(
        r.list(Kind::Connect).await.unwrap(),
        [
            inst(Kind::Connect, "c1", "127.0.0.1:1"),
            inst(Kind::Connect, "c2", "127.0.0.1:2")
        ],
        "sorted by id, kinds kept apart"
    );
    r.register(inst(Kind::Connect, "c1", "127.0.0.1:11"))
        .await
        .unwrap();
    assert_eq!(r.list(Kind::Connect).await.unwrap()[0].addr, "127.0.0.1:11");
    assert_eq!(r.list(Kind::Connect).await.unwrap().len(), 2);
    r.deregister(Kind::Connect, "c1").await.unwrap();
    r.deregister(Kind::Connect, "never").await.unwrap();
    assert_eq!(
        r.list(Kind::Connect).await.unwrap(),
        [inst(Kind::Connect, "c2", "127.0.0.1:2")]
    );
    assert_eq!(r.list(Kind::Logic).await.unwrap().len(), 1);
}

async fn watch_sees_changes<R: Registry>(r: R) {
    let mut w = r.watch(Kind::Connect).await.unwrap();
    assert!(w.borrow_and_update().is_empty());
    r.register(inst(Kind::Connect, "a", "127.0.0.1:1"))
        .await
        .unwrap();
    wait_for(&mut w, |l| l.len() == 1).await;
    r.deregister(Kind::Connect, "a").await.unwrap();
    wait_for(&mut w, |l| l.is_empty()).await;
}

async fn wait_for(
    w: &mut tokio::sync::watch::Receiver<Vec<Instance>>,
    ok: impl Fn(&[Instance]) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(10), w.wait_for(|l| ok(l)))
        .await
        .expect("watch did not see the change in time")
        .expect("watch closed");
}
