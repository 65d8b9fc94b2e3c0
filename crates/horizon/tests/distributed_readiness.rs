//! Readiness that tells the truth, with the real binary against RabbitMQ and
//! PostgreSQL: with no worker listening, `/readyz` is 503 and says so, and
//! fits and forecasts fail at once with a 503 instead of waiting for their
//! timeouts; once a worker listens, all is well again.

mod distributed_support;

use distributed_support::{services_or_skip, Cluster};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_workers_readyz_is_503_and_jobs_fail_fast() {
    if !services_or_skip("without_workers_readyz_is_503_and_jobs_fail_fast") {
        return;
    }
    let mut cluster = Cluster::launch("ready", 0, &[]);
    let client = reqwest::Client::new();
    // Wait until the gateway answers and is connected to the broker: then
    // the only thing missing is a worker.
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        if let Ok(r) = client.get(format!("{}/readyz", cluster.base)).send().await {
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            if body["data"]["consumers"].is_object() {
                assert_eq!(status, 503, "{body}");
                break body;
            }
        }
        assert!(Instant::now() < deadline, "readyz never counted consumers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["status"], "error");
    assert_eq!(body["data"]["consumers"]["fit"], 0, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no worker"),
        "{body}"
    );
    // The gateway's fit timeout is 120 s: an answer within 30 s is fail-fast.
    let fit = tokio::time::timeout(
        Duration::from_secs(30),
        cluster.fit(&client, "m", &[1.0, 2.0, 3.0]),
    )
    .await
    .expect("answered at once, not after the fit timeout")
    .expect("an answer");
    assert_eq!(fit.status, 503, "{:?}", fit.body);
    assert!(
        fit.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no worker"),
        "{:?}",
        fit.body
    );
    // Nothing was registered for the refused fit.
    let r = client
        .get(format!("{}/v1/models/m", cluster.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 404);

    cluster.start_worker();
    cluster.wait_ready(Duration::from_secs(60)).await;
    let fit = cluster
        .fit(&client, "m", &[1.0, 2.0, 3.0])
        .await
        .expect("fit");
    assert_eq!(fit.status, 200, "{:?}", fit.body);
    let body: serde_json::Value = client
        .get(format!("{}/readyz", cluster.base))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert!(
        body["data"]["consumers"]["fit"].as_u64() >= Some(1),
        "{body}"
    );
    assert!(
        body["data"]["consumers"]["forecast"].as_u64() >= Some(1),
        "{body}"
    );
}
