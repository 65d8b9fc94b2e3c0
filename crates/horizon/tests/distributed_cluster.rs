//! The distributed mode for real: one gateway and three worker processes of
//! the `horizon` binary against RabbitMQ and PostgreSQL on loopback. Fit and
//! forecast, the consistency rule under interleaved concurrent fits and
//! forecasts, idempotency keys, and a job that crashes every worker it meets.

mod distributed_support;

use distributed_support::{send, services_or_skip, tagged, Cluster};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fit_and_forecast_through_three_workers() {
    if !services_or_skip("fit_and_forecast_through_three_workers") {
        return;
    }
    let cluster = Cluster::start("basic", 3, &[]).await;
    let client = reqwest::Client::new();

    // Seed endpoints.
    let fit = send(
        &client,
        reqwest::Method::POST,
        format!("{}/fit_model", cluster.base),
        Some(serde_json::json!({"data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})),
    )
    .await
    .expect("fit");
    assert_eq!(fit.status, 200, "{:?}", fit.body);
    assert_eq!(fit.version(), Some(1));
    let fc = send(
        &client,
        reqwest::Method::POST,
        format!("{}/forecast", cluster.base),
        Some(serde_json::json!({"num_steps": 4})),
    )
    .await
    .expect("forecast");
    assert_eq!(fc.status, 200, "{:?}", fc.body);
    assert_eq!(
        fc.body["data"]["forecast"].as_array().map(Vec::len),
        Some(4)
    );

    // Named models: every forecast is computed from the latest fit.
    for (i, tag) in [3.0, 7.0, 11.0].into_iter().enumerate() {
        let a = cluster.fit(&client, "m", &tagged(tag)).await.expect("fit");
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(a.version(), Some(i as i64 + 1));
        for _ in 0..5 {
            let f = cluster.forecast(&client, "m").await.expect("forecast");
            assert_eq!(f.status, 200, "{:?}", f.body);
            assert_eq!(f.version(), Some(i as i64 + 1));
            assert_eq!(
                f.body["data"]["series"][0]["mean"],
                serde_json::json!([tag, tag, tag])
            );
        }
    }
    let versions = cluster.versions(&client, "m").await;
    assert_eq!(
        versions,
        vec![
            (1, "ready".into()),
            (2, "ready".into()),
            (3, "ready".into())
        ]
    );

    // A forecast of a model never fitted is the client's mistake.
    let unknown = cluster.forecast(&client, "nobody").await.expect("answer");
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.jsend(), "fail");

    // The same Idempotency-Key twice answers with the first version.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = client
            .put(format!("{}/v1/models/idem", cluster.base))
            .header("Idempotency-Key", "key-1")
            .json(&serde_json::json!({"series": [{"id": "a", "values": tagged(5.0)}], "method": "naive"}))
            .send()
            .await
            .expect("fit");
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.expect("json");
        answers.push(body["data"]["version"].as_i64());
    }
    assert_eq!(answers, vec![Some(1), Some(1)]);
    assert_eq!(cluster.versions(&client, "idem").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_rule_under_interleaved_fits_and_forecasts() {
    if !services_or_skip("consistency_rule_under_interleaved_fits_and_forecasts") {
        return;
    }
    let cluster = Arc::new(Cluster::start("consistency", 3, &[]).await);
    let client = reqwest::Client::new();
    let model = "c";
    // Fit k has all its values equal to k, so its naive forecast is k.
    let first = cluster
        .fit(&client, model, &tagged(1000.0))
        .await
        .expect("fit");
    assert_eq!(first.status, 200, "{:?}", first.body);
    let tag_of: Arc<Mutex<HashMap<i64, f64>>> = Arc::new(Mutex::new(HashMap::from([(1, 1000.0)])));

    let mut tasks = Vec::new();
    for f in 0..4 {
        let (cluster, client, tag_of) = (cluster.clone(), client.clone(), tag_of.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..12 {
                let tag = (f * 100 + i) as f64;
                let a = cluster
                    .fit(&client, model, &tagged(tag))
                    .await
                    .expect("fit");
                assert_eq!(a.status, 200, "{:?}", a.body);
                let v = a.version().expect("version");
                tag_of.lock().unwrap().insert(v, tag);
            }
            Vec::new()
        }));
    }
    for _ in 0..8 {
        let (cluster, client) = (cluster.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..20 {
                // Everything registered before the forecast is sent.
                let before = cluster
                    .versions(&client, model)
                    .await
                    .last()
                    .map(|(v, _)| *v)
                    .expect("a version");
                let f = cluster.forecast(&client, model).await.expect("forecast");
                assert_eq!(f.status, 200, "{:?}", f.body);
                let v = f.version().expect("version");
                assert!(
                    v >= before,
                    "forecast used version {v}, but {before} was registered before it was sent"
                );
                let mean = f.body["data"]["series"][0]["mean"][0]
                    .as_f64()
                    .expect("mean");
                seen.push((v, mean));
            }
            seen
        }));
    }
    let mut forecasts = Vec::new();
    for t in tasks {
        forecasts.extend(t.await.expect("task"));
    }
    let tag_of = tag_of.lock().unwrap().clone();
    for (v, mean) in &forecasts {
        assert_eq!(
            tag_of.get(v),
            Some(mean),
            "the forecast of version {v} was not computed from version {v}'s data"
        );
    }
    let versions = cluster.versions(&client, model).await;
    assert_eq!(versions.len(), 49, "1 + 4 x 12 fits, each one version");
    assert!(versions.iter().all(|(_, s)| s == "ready"), "{versions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fit_that_crashes_every_worker_is_dead_lettered_and_answered() {
    if !services_or_skip("a_fit_that_crashes_every_worker_is_dead_lettered_and_answered") {
        return;
    }
    let mut cluster =
        Cluster::start("poison", 3, &[("HORIZON_FAULT_ABORT_ON_MODEL", "poison")]).await;
    let client = reqwest::Client::new();
    // The workers are up and answer.
    let ok = cluster
        .fit(&client, "fine", &tagged(1.0))
        .await
        .expect("fit");
    assert_eq!(ok.status, 200, "{:?}", ok.body);

    let poison = tokio::time::timeout(
        Duration::from_secs(90),
        cluster.fit(&client, "poison", &tagged(2.0)),
    )
    .await
    .expect("the client is answered, not left hanging")
    .expect("an answer");
    assert_eq!(poison.status, 500, "{:?}", poison.body);
    assert_eq!(poison.jsend(), "error");
    let message = poison.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("dead-lettered"), "{message}");
    // It was delivered three times: each delivery killed a worker.
    assert_eq!(cluster.live_workers(), 0);

    cluster.start_plain_worker();
    // Ready again only once the new worker listens (fits fail fast before).
    cluster.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(
        cluster.versions(&client, "poison").await,
        vec![(1, "failed".to_string())]
    );
    let f = cluster.forecast(&client, "poison").await.expect("answer");
    assert_eq!(f.status, 500, "{:?}", f.body);
    assert!(
        f.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("version 1"),
        "{:?}",
        f.body
    );
    // The service goes on with the new worker.
    let again = cluster
        .fit(&client, "fine", &tagged(4.0))
        .await
        .expect("fit");
    assert_eq!(again.status, 200, "{:?}", again.body);
    let f = cluster.forecast(&client, "fine").await.expect("forecast");
    assert_eq!(f.body["data"]["series"][0]["mean"][0].as_f64(), Some(4.0));
}
