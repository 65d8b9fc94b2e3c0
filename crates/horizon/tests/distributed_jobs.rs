//! Async fit jobs and the life of a model in distributed mode (one gateway,
//! one slow worker, RabbitMQ and PostgreSQL): a job outlives a `kill -9` of
//! its gateway and is finished by the worker, its progress and result are
//! read from the store; cancel; rollback; pinning; deletes.

mod distributed_support;

use distributed_support::{services_or_skip, Cluster};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
    prefer_async: bool,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if prefer_async {
        request = request.header("Prefer", "respond-async");
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.json().await.expect("JSON answer"))
}

fn fit_body(values: &[f64]) -> Value {
    json!({"series": [{"id": "a", "values": values}, {"id": "b", "values": values}], "method": "ses"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_the_gateway_and_models_roll_back_in_distributed_mode() {
    if !services_or_skip("jobs_survive_the_gateway_and_models_roll_back_in_distributed_mode") {
        return;
    }
    let mut cluster = Cluster::start("jobs", 1, &[("HORIZON_FAULT_DELAY_MS", "2000")]).await;
    let client = reqwest::Client::new();
    let base = cluster.base.clone();
    use reqwest::Method as M;

    let (status, headers, body) = call(
        &client,
        M::PUT,
        format!("{base}/v1/models/m"),
        Some(fit_body(&[1., 2., 3., 4.])),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(headers["preference-applied"], "respond-async");
    let job = headers["location"].to_str().unwrap().to_string();
    // The gateway dies while the worker holds the fit; a new one answers
    // for the job from the store.
    cluster.kill_gateway();
    cluster.start_gateway();
    cluster.wait_ready(Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let (status, _, body) = call(&client, M::GET, format!("{base}{job}"), None, false).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if !matches!(body["data"]["status"].as_str(), Some("queued" | "running")) {
            break body["data"].clone();
        }
        assert!(Instant::now() < deadline, "job never finished: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["progress"], json!({"done": 2, "total": 2}));
    assert_eq!(done["result"]["version"], 1);

    // Cancel a job the slow worker has not finished.
    let (status, headers, _) = call(
        &client,
        M::PUT,
        format!("{base}/v1/models/other"),
        Some(fit_body(&[5., 6., 7.])),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let other = headers["location"].to_str().unwrap().to_string();
    let (status, _, body) = call(&client, M::DELETE, format!("{base}{other}"), None, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "cancelled");

    // A second version, then a rollback to the first: a new version 3 that
    // forecasts exactly as version 1.
    let (status, _, body) = call(
        &client,
        M::PUT,
        format!("{base}/v1/models/m"),
        Some(fit_body(&[9., 1., 9.])),
        false,
    )
    .await;
    assert_eq!(
        (status, body["data"]["version"].clone()),
        (StatusCode::OK, json!(2))
    );
    let forecast = |version: Option<i64>| {
        let mut body = json!({"horizon": 2});
        if let Some(v) = version {
            body["version"] = json!(v);
        }
        call(
            &client,
            M::POST,
            format!("{base}/v1/models/m/forecast"),
            Some(body),
            false,
        )
    };
    let (status, _, v1) = forecast(Some(1)).await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    let (status, _, body) = call(
        &client,
        M::POST,
        format!("{base}/v1/models/m/rollback"),
        Some(json!({"version": 1})),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["version"], 3);
    let (status, _, now) = forecast(None).await;
    assert_eq!(status, StatusCode::OK, "{now}");
    assert_eq!(now["data"]["version"], 3);
    assert_eq!(now["data"]["series"], v1["data"]["series"]);
    let (status, _, _) = forecast(Some(99)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Deletes.
    let (status, _, body) = call(
        &client,
        M::DELETE,
        format!("{base}/v1/models/m/versions/3"),
        None,
        false,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _, body) = call(
        &client,
        M::DELETE,
        format!("{base}/v1/models/m/versions/2"),
        None,
        false,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = forecast(Some(2)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = call(
        &client,
        M::DELETE,
        format!("{base}/v1/models/m"),
        None,
        false,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = call(&client, M::GET, format!("{base}/v1/models/m"), None, false).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = call(
        &client,
        M::PUT,
        format!("{base}/v1/models/m"),
        Some(fit_body(&[1., 2., 3.])),
        false,
    )
    .await;
    assert_eq!(
        (status, body["data"]["version"].clone()),
        (StatusCode::OK, json!(4))
    );
}
