//! Sharded versions in both stores: a version is ready only once every
//! shard is stored, a shard is stored once (first wins), each shard (its
//! state and its summary) reads back alone, a version's status reads
//! without its summary, a version stored whole reads as one shard, and a
//! sharded version's summary is assembled from its shards when read (its
//! own row holds none) with its fallbacks counted from the shards' rows.

use protocol::shard::Shard;
use protocol::{FitSummary, ModelName, SeriesFit};
use std::sync::Arc;
use std::time::Duration;
use store::jobs::KIND_FIT;
use store::postgres::{PgConfig, PgStore};
use store::{ModelStore, Page, SqliteStore, StoreError, VersionStatus};

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
                index: None,
            })
            .collect(),
        base: None,
    }
}

/// A summary of `series`: (id, whether it fell back).
fn summary_with(model: &ModelName, version: i64, series: &[(&str, bool)]) -> FitSummary {
    let mut s = summary(model, version, &[]);
    s.series = series
        .iter()
        .map(|(id, fell)| SeriesFit {
            id: id.to_string(),
            chosen: "Naive".into(),
            fallback: fell.then(|| "ETS failed: too short".to_string()),
            n_obs: 3,
            n_missing: 0,
            calendar: None,
            index: None,
        })
        .collect();
    s
}

/// The ids of a read summary's series, in its order.
fn series_ids(summary: Option<FitSummary>) -> Vec<String> {
    let summary = summary.expect("a ready version's summary");
    summary.series.into_iter().map(|s| s.id).collect()
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
    // A worker on a shard: the job runs before any shard is stored, its
    // count left to the shards.
    assert!(store.report_progress(&m, v, None).await.unwrap());
    let running = store.job(&job.id).await.unwrap().unwrap();
    assert_eq!(
        (running.status, running.done, running.total),
        (store::JobStatus::Running, 0, 5)
    );
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
    let ids = series_ids(info.summary);
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

/// SQL run on a store's own database, behind its back.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool, String),
}

impl Raw {
    /// Runs `sql`, where `{t}` is the schema's prefix of a table name.
    async fn run(&self, sql: &str) {
        match self {
            Raw::Sqlite(pool) => {
                sqlx::query(&sql.replace("{t}", ""))
                    .execute(pool)
                    .await
                    .unwrap();
            }
            Raw::Postgres(pool, schema) => {
                sqlx::query(&sql.replace("{t}", &format!("\"{schema}\".")))
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(&sql.replace("{t}", ""))
                .fetch_one(pool)
                .await
                .unwrap(),
            Raw::Postgres(pool, schema) => {
                sqlx::query_scalar(&sql.replace("{t}", &format!("\"{schema}\".")))
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
        }
    }
}

/// The worker storing a sharded version's last shard does not merge every
/// shard's summary: the version's row holds no summary, a reader gets the
/// shards' summaries in shard order, and the fallback count is the sum of
/// the shards' (a shard stored before they kept a count: from its summary).
async fn a_sharded_summary_is_assembled_when_read(store: Arc<dyn ModelStore>, raw: &Raw) {
    let m = ModelName::parse("assembled").unwrap();
    let v = store.register_pending(&m, 6, None).await.unwrap().version();
    let parts: [&[(&str, bool)]; 3] = [
        &[("a", false), ("b", true)],
        &[("c", false)],
        &[("d", true), ("e", false), ("f", true)],
    ];
    let put = |i: usize| {
        let (store, m) = (store.clone(), m.clone());
        async move {
            store
                .complete_shard(
                    &m,
                    v,
                    shard(i as u32, 3),
                    b"s",
                    &summary_with(&m, v, parts[i]),
                )
                .await
                .unwrap()
        }
    };
    put(2).await;
    put(1).await;
    // Shard 2 as a build before the count was kept stored it.
    raw.run(&format!(
        "UPDATE {{t}}shards SET n_fallbacks = NULL WHERE model = 'assembled' AND version = {v} AND shard = 2"
    ))
    .await;
    put(0).await;
    let info = store.wait_settled(&m, v, Duration::ZERO).await.unwrap();
    assert_eq!(info.status, VersionStatus::Ready);
    assert_eq!(
        (info.method, info.n_fallbacks, info.n_series),
        (Some(engine::Method::Naive), Some(3), 6)
    );
    let whole = parts.concat();
    assert_eq!(
        info.summary,
        Some(summary_with(&m, v, &whole)),
        "every shard's series, in shard order"
    );
    let listed = store.versions(&m, Page::default()).await.unwrap().unwrap();
    assert_eq!(
        (
            listed.versions[0].n_fallbacks,
            listed.versions[0].summary.is_none()
        ),
        (Some(3), true)
    );
    let merged = raw
        .count(&format!(
            "SELECT COUNT(*) FROM {{t}}versions WHERE model = 'assembled' AND version = {v} \
             AND summary IS NOT NULL"
        ))
        .await;
    assert_eq!(merged, 0, "the version's row holds no merged summary");
    // Every shard stored with its count: none fell back.
    let v2 = store.register_pending(&m, 2, None).await.unwrap().version();
    for i in [1, 0] {
        let s = summary_with(&m, v2, &[(["x", "y"][i], false)]);
        store
            .complete_shard(&m, v2, shard(i as u32, 2), b"s", &s)
            .await
            .unwrap();
    }
    let info = store.wait_settled(&m, v2, Duration::ZERO).await.unwrap();
    assert_eq!(info.n_fallbacks, Some(0));
    assert_eq!(
        info.summary,
        Some(summary_with(&m, v2, &[("x", false), ("y", false)]))
    );
}

#[tokio::test]
async fn sqlite_shards() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    shards_settle_the_version_when_all_are_stored(store.clone()).await;
    let raw = Raw::Sqlite(
        sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            dir.path().join(store::sqlite::DB_FILE).display()
        ))
        .await
        .unwrap(),
    );
    a_sharded_summary_is_assembled_when_read(store, &raw).await;
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
    let raw = Raw::Postgres(sqlx::PgPool::connect(url).await.unwrap(), schema.clone());
    a_sharded_summary_is_assembled_when_read(store.clone(), &raw).await;
    // Read by another process, which has not cached it: the same summary.
    let other = PgStore::connect(&PgConfig::new(url, &schema))
        .await
        .unwrap();
    let m = ModelName::parse("assembled").unwrap();
    let info = other.wait_settled(&m, 1, Duration::ZERO).await.unwrap();
    let ids = series_ids(info.summary);
    assert_eq!(ids, ["a", "b", "c", "d", "e", "f"]);
    other.close().await;

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
