//! Embedded mode shards a large fit across its worker pool like the
//! distributed mode does: the version is stored in shards, ready once all
//! are stored, and forecasts of some series read only their shards.

mod common;

use common::{Options, TestServer};
use gateway::GatewayConfig;
use protocol::shard::ShardSizes;
use protocol::ModelName;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_fit_is_sharded_across_the_worker_pool() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = Options::default();
    let server = TestServer::start_with(
        dir.path(),
        Options {
            config: GatewayConfig {
                shard_sizes: ShardSizes {
                    series: 25,
                    points: 1_000_000,
                },
                ..defaults.config
            },
            ..defaults
        },
    )
    .await;
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
