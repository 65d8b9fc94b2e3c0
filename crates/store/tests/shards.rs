//! Sharded versions in both stores: a version is ready only once every
//! shard is stored, a shard is stored once (first wins), each shard (its
//! state and its summary) reads back alone, a version's status reads
//! without its summary, and a version stored whole reads as one shard.

use protocol::shard::Shard;
use protocol::{FitSummary, ModelName, SeriesFit};
use std::sync::Arc;
use std::time::Duration;
use store::jobs::KIND_FIT;
use store::postgres::{PgConfig, PgStore};
use store::{ModelStore, SqliteStore, StoreError, VersionStatus};

fn summary(model: &ModelName, version: i64, ids: &[&str]) -> FitSummary {
    FitSummary {
        model: model.clone(),
        version,
        method: engine::Method::Naive,
        series: ids
            .iter()
            .map(|id| SeriesFit {
                id: id.to_string(),
                chosen: "Naive".into(),
                fallback: None,
                n_obs: 3,
                n_missing: 0,
                calendar: None,
            })
            .collect(),
    }
}

fn shard(index: u32, count: u32) -> Shard {
    Shard { index, count }
}

async fn status(store: &dyn ModelStore, m: &ModelName, v: i64) -> VersionStatus {
    store
        .wait_settled(m, v, Duration::ZERO)
        .await
        .map(|i| i.status)
        .unwrap_or(VersionStatus::Pending)
}

async fn shards_settle_the_version_when_all_are_stored(store: Arc<dyn ModelStore>) {
    let m = ModelName::parse("sharded").unwrap();
    let v = store.register_pending(&m, 5, None).await.unwrap().version();
    let job = store.create_job(KIND_FIT, &m, v, 5).await.unwrap();
    let put = |i: u32, state: &'static [u8], ids: &'static [&'static str]| {
        let (store, m) = (store.clone(), m.clone());
        async move {
            store
                .complete_shard(&m, v, shard(i, 3), state, &summary(&m, v, ids))
                .await
                .unwrap()
        }
    };
    put(2, b"two", &["e"]).await;
    assert_eq!(status(store.as_ref(), &m, v).await, VersionStatus::Pending);
    // A redelivered shard with another result: the first one stays.
    put(2, b"other", &["x"]).await;
    put(0, b"zero", &["a", "b"]).await;
    assert_eq!(status(store.as_ref(), &m, v).await, VersionStatus::Pending);
    let progress = store.job(&job.id).await.unwrap().unwrap();
    assert_eq!((progress.done, progress.total), (3, 5));
    put(1, b"one", &["c", "d"]).await;
    let info = store.wait_settled(&m, v, Duration::ZERO).await.unwrap();
    assert_eq!(info.status, VersionStatus::Ready);
    let ids: Vec<String> = info
        .summary
        .unwrap()
        .series
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        ids,
        ["a", "b", "c", "d", "e"],
        "the shards' summaries in shard order"
    );
    assert_eq!(store.shard_count(&m, v).await.unwrap(), 3);
    // The status alone, without the summary; each shard's summary alone.
    let light = store.wait_status(&m, v, Duration::ZERO).await.unwrap();
    assert_eq!(
        (light.status, light.summary, light.n_series),
        (VersionStatus::Ready, None, 5)
    );
    for (i, ids) in [&["a", "b"][..], &["c", "d"], &["e"]]
        .into_iter()
        .enumerate()
    {
        let part = store.shard_summary(&m, v, i as u32).await.unwrap();
        let got: Vec<&str> = part.series.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(got, ids, "shard {i}");
    }
    assert!(store.shard_summary(&m, v, 3).await.is_err());
    for (i, bytes) in [&b"zero"[..], b"one", b"two"].into_iter().enumerate() {
        assert_eq!(store.load_shard(&m, v, i as u32).await.unwrap(), bytes);
    }
    assert!(store.load_shard(&m, v, 3).await.is_err());

    // A shard of a version failed meanwhile is not stored, and changes nothing.
    let v2 = store.register_pending(&m, 2, None).await.unwrap().version();
    let s = summary(&m, v2, &["a"]);
    store
        .complete_shard(&m, v2, shard(0, 2), b"s", &s)
        .await
        .unwrap();
    store.fail(&m, v2, "shard 2 of 2: boom").await.unwrap();
    store
        .complete_shard(&m, v2, shard(1, 2), b"s", &s)
        .await
        .unwrap();
    assert!(matches!(
        status(store.as_ref(), &m, v2).await,
        VersionStatus::Failed { reason } if reason == "shard 2 of 2: boom"
    ));
    assert!(matches!(
        store.wait_status(&m, v2, Duration::ZERO).await.unwrap().status,
        VersionStatus::Failed { reason } if reason == "shard 2 of 2: boom"
    ));
    assert!(
        store.shard_summary(&m, v2, 0).await.is_err(),
        "failed: no shard"
    );

    // A version stored whole is one shard.
    let v3 = store.register_pending(&m, 1, None).await.unwrap().version();
    store
        .complete(&m, v3, b"whole", &summary(&m, v3, &["a"]))
        .await
        .unwrap();
    assert_eq!(store.shard_count(&m, v3).await.unwrap(), 1);
    assert_eq!(store.load_shard(&m, v3, 0).await.unwrap(), b"whole");
    // Read without its summary first: a later full read still has it.
    let light = store.wait_status(&m, v3, Duration::ZERO).await.unwrap();
    assert_eq!((light.status, light.summary), (VersionStatus::Ready, None));
    let full = store.wait_settled(&m, v3, Duration::ZERO).await.unwrap();
    assert_eq!(full.summary, Some(summary(&m, v3, &["a"])));
    assert_eq!(
        store.shard_summary(&m, v3, 0).await.unwrap(),
        summary(&m, v3, &["a"])
    );
    assert!(store.shard_summary(&m, v3, 1).await.is_err());
    assert!(matches!(
        store.shard_summary(&m, 99, 0).await,
        Err(StoreError::UnknownVersion { .. })
    ));
    // Pending: no status yet, and no shard to read.
    let v4 = store.register_pending(&m, 1, None).await.unwrap().version();
    assert!(matches!(
        store.wait_status(&m, v4, Duration::from_millis(20)).await,
        Err(StoreError::WaitTimeout(_))
    ));
    assert!(store.shard_summary(&m, v4, 0).await.is_err());
    store.fail(&m, v4, "not needed").await.unwrap();
    assert!(matches!(
        store.shard_count(&m, 99).await,
        Err(StoreError::UnknownVersion { .. })
    ));

    // Deleting the model deletes its shards.
    assert!(store.delete_model(&m).await.unwrap());
    assert!(store.load_shard(&m, v, 1).await.is_err());
}

#[tokio::test]
async fn sqlite_shards() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    shards_settle_the_version_when_all_are_stored(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shards() {
    if !test_services::available_or_skip("postgres_shards", &[test_services::POSTGRES]) {
        return;
    }
    let schema = format!("t_shards_{}", std::process::id());
    let url = test_services::STORE_URL;
    let store = Arc::new(
        PgStore::connect(&PgConfig::new(url, &schema))
            .await
            .unwrap(),
    );
    shards_settle_the_version_when_all_are_stored(store.clone()).await;

    // The last two shards stored at once: the version still becomes ready.
    let m = ModelName::parse("race").unwrap();
    for _ in 0..5 {
        let v = store.register_pending(&m, 2, None).await.unwrap().version();
        let (sa, sb) = (summary(&m, v, &["a"]), summary(&m, v, &["b"]));
        let (a, b) = tokio::join!(
            store.complete_shard(&m, v, shard(0, 2), b"a", &sa),
            store.complete_shard(&m, v, shard(1, 2), b"b", &sb),
        );
        a.unwrap();
        b.unwrap();
        assert_eq!(status(store.as_ref(), &m, v).await, VersionStatus::Ready);
    }
    store.close().await;
    PgStore::drop_schema(url, &schema).await.unwrap();
}
