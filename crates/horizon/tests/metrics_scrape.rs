//! `GET /metrics` of the real binary, in both modes: the metric names are
//! there, the numbers move with fits and forecasts, and every metric the
//! Grafana dashboard in deploy/ queries exists in a real scrape.

mod distributed_support;
mod served;

use serde_json::{json, Value};
use served::Served;
use std::collections::BTreeSet;
use std::time::Duration;

/// The value of the sample `name{labels}` whose labels contain every one of
/// `labels` (e.g. `route="/v1/models/{name}"`), summed over the matches.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let metric = series.split('{').next().unwrap_or("");
        if metric != name || !labels.iter().all(|l| series.contains(l)) {
            continue;
        }
        if let Ok(v) = value.parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// Every metric name in a scrape.
fn names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Every `horizon_*` name the dashboard's queries use.
fn dashboard_names() -> BTreeSet<String> {
    let path = test_services::tools::workspace_root().join("deploy/grafana/horizon-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard JSON");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "few queries in the dashboard: {exprs:?}");
    let mut found = BTreeSet::new();
    for expr in exprs {
        let bytes = expr.as_bytes();
        let mut i = 0;
        while let Some(at) = expr[i..].find("horizon_") {
            let start = i + at;
            let mut end = start;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            found.insert(expr[start..end].to_string());
            i = end;
        }
    }
    found
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

async fn scrape(client: &reqwest::Client, url: &str) -> String {
    let r = client.get(url).send().await.expect("GET /metrics");
    assert_eq!(r.status(), 200, "{url}");
    let ct = r.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("text/plain"), "{ct}");
    r.text().await.expect("metrics text")
}

async fn fit_and_forecast(client: &reqwest::Client, base: &str, model: &str) {
    let fit = json!({"series": [{"id": "a", "values": [20, 31, 25, 40, 22, 33, 27, 43, 24, 35, 29, 45]}, {"id": "b", "values": [5, 5, 6, 6, 7, 7, 8, 8]}], "season_length": 4, "method": "ets"});
    let r = client
        .put(format!("{base}/v1/models/{model}"))
        .json(&fit)
        .send()
        .await
        .expect("fit");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    for _ in 0..3 {
        let r = client
            .post(format!("{base}/v1/models/{model}/forecast"))
            .json(&json!({"horizon": 3, "level": [80]}))
            .send()
            .await
            .expect("forecast");
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
}

/// `POST /forecast` answers one series: on a `default` fitted with two it is
/// refused before any worker loads or forecasts the model.
#[tokio::test]
async fn the_original_forecast_refuses_several_series_before_any_work() {
    let served = Served::start(&[]).await;
    let client = reqwest::Client::new();
    let fit = json!({"series": [{"id": "a", "values": [1, 2, 3]}, {"id": "b", "values": [4, 5, 6]}], "method": "naive"});
    let r = client
        .put(served.url("/v1/models/default"))
        .json(&fit)
        .send()
        .await
        .expect("fit");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let loads = |text: &str| {
        ["horizon_cache_hits_total", "horizon_cache_misses_total"]
            .iter()
            .map(|name| sample(text, name, &[]).unwrap_or(0.0))
            .sum::<f64>()
    };
    let url = served.url("/metrics");
    let before = loads(&scrape(&client, &url).await);
    let r = client
        .post(served.url("/forecast"))
        .json(&json!({"num_steps": 2}))
        .send()
        .await
        .expect("forecast");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("JSend");
    assert!(
        body["data"]["model"]
            .as_str()
            .is_some_and(|m| m.contains("has 2 series")),
        "{body}"
    );
    assert_eq!(
        loads(&scrape(&client, &url).await),
        before,
        "a worker used the model"
    );
}

#[tokio::test]
async fn embedded_metrics_name_and_count_what_happens() {
    let served = Served::start(&[]).await;
    let client = reqwest::Client::new();
    let url = served.url("/metrics");
    let before = scrape(&client, &url).await;
    fit_and_forecast(&client, &served.base, "metered").await;
    let r = client
        .get(served.url("/no/such/route"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    let after = scrape(&client, &url).await;

    let fit_route = [
        "route=\"/v1/models/{name}\"",
        "method=\"PUT\"",
        "status=\"200\"",
    ];
    let forecast_route = ["route=\"/v1/models/{name}/forecast\"", "status=\"200\""];
    let count = |text: &str, labels: &[&str]| {
        sample(text, "horizon_http_requests_total", labels).unwrap_or(0.0)
    };
    assert_eq!(
        count(&after, &fit_route) - count(&before, &fit_route),
        1.0,
        "{after}"
    );
    assert_eq!(
        count(&after, &forecast_route) - count(&before, &forecast_route),
        3.0
    );
    assert!(count(&after, &["route=\"unmatched\"", "status=\"404\""]) >= 1.0);
    let moved = |name: &str, labels: &[&str]| {
        let b = sample(&before, name, labels).unwrap_or(0.0);
        let a = sample(&after, name, labels).unwrap_or_else(|| panic!("{name} missing:\n{after}"));
        assert!(a > b, "{name}{labels:?} did not move: {b} -> {a}");
    };
    moved(
        "horizon_http_request_duration_seconds_count",
        &["route=\"/v1/models/{name}/forecast\""],
    );
    moved("horizon_fit_duration_seconds_count", &[]);
    moved("horizon_fit_series_sum", &[]);
    moved("horizon_forecast_batch_series_sum", &[]);
    moved("horizon_cache_hits_total", &[]);
    moved(
        "horizon_store_operation_duration_seconds_count",
        &["backend=\"sqlite\"", "op=\"register_pending\""],
    );
    // Nothing is in flight once every answer is in.
    for gauge in ["horizon_fits_in_flight", "horizon_forecasts_in_flight"] {
        assert_eq!(sample(&after, gauge, &[]), Some(0.0), "{gauge}");
    }
    assert_eq!(
        sample(&after, "horizon_fit_series_sum", &[]).unwrap_or(0.0),
        2.0
    );

    // Versions pending, read from the store at each scrape: none now; one
    // while an async fit waits (cancelled at once, so it settles).
    assert_eq!(sample(&after, "horizon_versions_pending", &[]), Some(0.0));
    let many: Vec<Value> = (0..300)
        .map(|i| json!({"id": format!("s{i}"), "values": (0..96).map(|t| ((t * 7 + i) % 23) as f64).collect::<Vec<_>>()}))
        .collect();
    let r = client
        .put(served.url("/v1/models/pending-metered"))
        .header("Prefer", "respond-async")
        .json(&json!({"series": many, "method": "auto"}))
        .send()
        .await
        .expect("async fit");
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.expect("job");
    let job_id = job["data"]["id"].as_str().expect("job id").to_string();
    let during = scrape(&client, &url).await;
    let r = client
        .delete(served.url(&format!("/v1/jobs/{job_id}")))
        .send()
        .await
        .expect("cancel");
    let cancelled = r.status();
    let settled = scrape(&client, &url).await;
    // A 409 means the fit finished first: then it was not pending at the scrape either.
    if cancelled == 200 {
        assert_eq!(
            sample(&during, "horizon_versions_pending", &[]),
            Some(1.0),
            "{during}"
        );
    } else {
        eprintln!("the async fit finished before its cancel ({cancelled}); pending not seen");
    }
    assert_eq!(sample(&settled, "horizon_versions_pending", &[]), Some(0.0));

    // The dashboard's names, but those only a distributed deployment has.
    let have = names(&after);
    let missing: Vec<String> = dashboard_names()
        .into_iter()
        .filter(|n| !n.starts_with("horizon_queue_") && !n.starts_with("horizon_broker_"))
        .filter(|n| !have.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries names no scrape has: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn distributed_metrics_gateway_and_worker() {
    const TEST: &str = "distributed_metrics_gateway_and_worker";
    if !distributed_support::services_or_skip(TEST) {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let cluster = distributed_support::Cluster::start(
        "metrics",
        1,
        &[("HORIZON_METRICS_LISTEN", listen.as_str())],
    )
    .await;
    let client = reqwest::Client::new();
    let gateway_url = format!("{}/metrics", cluster.base);
    let worker_url = format!("http://{listen}/metrics");
    // The worker's listener comes up with it.
    let mut worker_before = None;
    for _ in 0..100 {
        if let Ok(r) = client.get(&worker_url).send().await {
            worker_before = Some(r.text().await.unwrap_or_default());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let worker_before = worker_before.expect("the worker serves /metrics");
    fit_and_forecast(&client, &cluster.base, "metered").await;
    // Queue gauges are refreshed every few seconds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let gateway = scrape(&client, &gateway_url).await;
    let worker = scrape(&client, &worker_url).await;

    assert!(
        sample(
            &gateway,
            "horizon_http_requests_total",
            &["route=\"/v1/models/{name}/forecast\""]
        )
        .unwrap_or(0.0)
            >= 3.0
    );
    assert!(
        sample(
            &gateway,
            "horizon_broker_request_duration_seconds_count",
            &["kind=\"fit\""]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{gateway}"
    );
    assert!(
        sample(
            &gateway,
            "horizon_broker_request_duration_seconds_count",
            &["kind=\"forecast\""]
        )
        .unwrap_or(0.0)
            >= 3.0
    );
    assert_eq!(
        sample(&gateway, "horizon_queue_consumers", &["queue=\"fit\""]),
        Some(1.0),
        "{gateway}"
    );
    assert!(sample(&gateway, "horizon_queue_messages", &["queue=\"forecast\""]).is_some());
    let worker_fits = |t: &str| sample(t, "horizon_fit_duration_seconds_count", &[]).unwrap_or(0.0);
    assert_eq!(
        worker_fits(&worker) - worker_fits(&worker_before),
        1.0,
        "{worker}"
    );
    assert!(
        sample(
            &worker,
            "horizon_store_operation_duration_seconds_count",
            &["backend=\"postgres\""]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        sample(&worker, "horizon_cache_hits_total", &[]).unwrap_or(0.0) >= 1.0,
        "{worker}"
    );

    assert_eq!(
        sample(&gateway, "horizon_versions_pending", &[]),
        Some(0.0),
        "{gateway}"
    );
    // Each process lists its own gauges and counters, not the other's at 0.
    for name in ["horizon_worker_fits_running", "horizon_cache_hits_total"] {
        assert_eq!(sample(&gateway, name, &[]), None, "{gateway}");
    }
    for name in ["horizon_fits_in_flight", "horizon_http_requests_in_flight"] {
        assert_eq!(sample(&worker, name, &[]), None, "{worker}");
    }
    let mut have = names(&gateway);
    have.extend(names(&worker));
    let missing: Vec<String> = dashboard_names()
        .into_iter()
        .filter(|n| !have.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries names no scrape has: {missing:?}"
    );
}
