//! Embedded mode shards a large fit across its worker pool like the
//! distributed mode does: the version is stored in shards, ready once all
//! are stored, and forecasts of some series read only their shards (the
//! worker their states, the gateway their calendars; never the whole
//! version) and date their steps from each series' calendar.

mod common;

use common::{Options, TestServer};
use protocol::shard::shard_of;
use protocol::ModelName;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use store::testing::Recording;
use store::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_fit_is_sharded_across_the_worker_pool() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), Options::sharded(25)).await;
    let n = 120;
    let series: Vec<_> = (0..n)
        .map(|i| json!({"id": format!("s{i}"), "values": vec![i as f64; 6]}))
        .collect();
    let (status, body) = server
        .put(
            "/v1/models/emb",
            json!({"series": series, "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fitted = body["data"]["series"].as_array().unwrap();
    let ids: HashSet<&str> = fitted.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!((fitted.len(), ids.len()), (n, n));
    let model = ModelName::parse("emb").unwrap();
    assert_eq!(server.store.shard_count(&model, 1).await.unwrap(), 5);

    let (status, body) = server
        .post(
            "/v1/models/emb/forecast",
            json!({"horizon": 2, "series": ["s119", "s0", "s64"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got: Vec<(String, f64)> = body["data"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["mean"][1].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("s119".into(), 119.0),
            ("s0".into(), 0.0),
            ("s64".into(), 64.0)
        ]
    );
    let (status, body) = server
        .post("/v1/models/emb/forecast", json!({"horizon": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["series"].as_array().unwrap().len(), n);

    // New observations on two series: the new version holds all of them.
    let (status, body) = server
        .post(
            "/v1/models/emb/observations",
            json!({"series": [{"id": "s3", "values": [3.0]}, {"id": "s7", "values": [7.0]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], 2);
    // A refit, then the sharded version 1 back, shard by shard.
    let (status, body) = server
        .put(
            "/v1/models/emb",
            json!({"series": [{"id": "s0", "values": [5.0, 5.0, 5.0]}], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .post("/v1/models/emb/rollback", json!({"version": 1}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["version"], 4);
    assert_eq!(server.store.shard_count(&model, 4).await.unwrap(), 5);
    let (status, body) = server
        .post("/v1/models/emb/forecast", json!({"horizon": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], 4);
    let series = body["data"]["series"].as_array().unwrap();
    assert_eq!(series.len(), n);
    assert!(series.iter().all(|s| {
        let i: f64 = s["id"].as_str().unwrap()[1..].parse().unwrap();
        s["mean"][0].as_f64() == Some(i)
    }));
    let (status, body) = server.get("/v1/models/emb").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let n_series: Vec<u64> = body["data"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["n_series"].as_u64().unwrap())
        .collect();
    assert_eq!(n_series, [n as u64, n as u64, 1, n as u64]);

    // A small fit stays whole.
    let (status, body) = server
        .put(
            "/v1/models/small",
            json!({"series": [{"id": "a", "values": [1.0, 2.0, 3.0]}], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let small = ModelName::parse("small").unwrap();
    assert_eq!(server.store.shard_count(&small, 1).await.unwrap(), 1);
    server.stop().await;
}

/// The app with shards of 25 series on a recording store in `dir`.
async fn recorded(dir: &std::path::Path) -> (TestServer, Arc<Recording<SqliteStore>>) {
    let store = Arc::new(Recording::new(SqliteStore::open(dir).await.unwrap()));
    let server = TestServer::start_on(store.clone(), Options::sharded(25)).await;
    (server, store)
}

/// The first date of daily series `s{i}`: 2024-01-01 plus `i` days.
fn first_day(i: usize) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(i as u64)
}

/// The dates of the `horizon` steps after daily series `s{i}` of 6 values.
fn next_days(i: usize, horizon: u64) -> Vec<String> {
    (6..6 + horizon)
        .map(|k| (first_day(i) + chrono::Days::new(k)).to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_reads_only_the_shards_of_its_series_and_dates_their_steps() {
    let dir = tempfile::tempdir().unwrap();
    let n = 120;
    {
        let (server, _) = recorded(dir.path()).await;
        // Daily series, each from its own first day; `s7` has no dates.
        let series: Vec<_> = (0..n)
            .map(|i| {
                if i == 7 {
                    json!({"id": "s7", "values": vec![7.0; 6]})
                } else {
                    json!({"id": format!("s{i}"), "values": vec![i as f64; 6],
                           "start": first_day(i).to_string(), "freq": "D"})
                }
            })
            .collect();
        let (status, body) = server
            .put(
                "/v1/models/dated",
                json!({"series": series, "method": "naive"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        server.stop().await;
    }
    // A new process: nothing of the version is cached anywhere.
    let (server, store) = recorded(dir.path()).await;
    let model = ModelName::parse("dated").unwrap();
    let count = server.store.shard_count(&model, 1).await.unwrap();
    assert_eq!(count, 5);
    store.take();

    let asked = ["s119", "s0", "s64", "s7", "s3"];
    let mut shards: Vec<u32> = asked.iter().map(|id| shard_of(id, count)).collect();
    shards.sort_unstable();
    shards.dedup();
    assert!(shards.len() < 5, "the ids were meant to miss a shard");
    let forecast = json!({"horizon": 3, "series": asked});
    let (status, body) = server
        .post("/v1/models/dated/forecast", forecast.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut expected: Vec<String> = shards
        .iter()
        .flat_map(|s| [format!("state {s}"), format!("summary {s}")])
        .collect();
    expected.sort();
    assert_eq!(
        store.take(),
        expected,
        "read other shards, or a whole version"
    );
    let got = body["data"]["series"].as_array().unwrap();
    assert_eq!(got.len(), asked.len());
    for (s, id) in got.iter().zip(asked) {
        assert_eq!(s["id"], id);
        let i: usize = id[1..].parse().unwrap();
        assert_eq!(s["mean"], json!(vec![i as f64; 3]), "{s}");
        if i == 7 {
            assert!(s.get("ds").is_none(), "{s}");
        } else {
            assert_eq!(s["ds"], json!(next_days(i, 3)), "{s}");
        }
    }
    // Asked again: everything is cached.
    let (status, again) = server.post("/v1/models/dated/forecast", forecast).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["data"], body["data"]);
    assert_eq!(store.take(), Vec::<String>::new());

    // Every series: each shard once (those read before stay cached), and
    // each series dated from its own calendar.
    let (status, body) = server
        .post("/v1/models/dated/forecast", json!({"horizon": 2}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rest: Vec<u32> = (0..count).filter(|s| !shards.contains(s)).collect();
    let mut expected: Vec<String> = rest
        .iter()
        .flat_map(|s| [format!("state {s}"), format!("summary {s}")])
        .collect();
    expected.sort();
    assert_eq!(store.take(), expected);
    let all = body["data"]["series"].as_array().unwrap();
    assert_eq!(all.len(), n);
    for s in all {
        let i: usize = s["id"].as_str().unwrap()[1..].parse().unwrap();
        if i == 7 {
            assert!(s.get("ds").is_none(), "{s}");
        } else {
            assert_eq!(s["ds"], json!(next_days(i, 2)), "{s}");
        }
    }
    // The same as a CSV download.
    let csv = server
        .client
        .post(server.url("/v1/models/dated/forecast"))
        .header("accept", "text/csv")
        .json(&json!({"horizon": 1, "series": ["s5", "s7"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap();
    let day = next_days(5, 1).remove(0);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "unique_id,ds,naive",
            &format!("s5,{day},5") as &str,
            "s7,,7"
        ],
    );

    // An unknown id is the client's error, as before.
    let (status, body) = server
        .post(
            "/v1/models/dated/forecast",
            json!({"horizon": 1, "series": ["s1", "nope"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["data"]["series"].as_str().unwrap().contains("nope"),
        "{body}"
    );
    server.stop().await;
}
