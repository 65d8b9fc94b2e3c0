//! Backtests and new observations through the real HTTP API, embedded
//! (in-process worker) and distributed (real binary, RabbitMQ, PostgreSQL):
//! observations then forecast equals the forecast of the fitted model
//! filtered over the longer series (computed here with the engine); a
//! backtest of naive on a line matches a hand computation; a model's
//! backtest runs on its stored training data; backtests sent with `Prefer:
//! respond-async` run as jobs whose answer equals the synchronous one, and
//! a running backtest job can be cancelled; timestamps and integer `ds`
//! positions label backtest windows and must continue the series in
//! observations.

mod common;
mod distributed_support;
mod served;

use common::TestServer;
use distributed_support::{send, services_or_skip, Cluster};
use engine::{Horizon, Method, ModelSpec, SeriesData};
use serde_json::{json, Value};

fn seasonal(n: usize, phase: usize) -> Vec<f64> {
    (0..n)
        .map(|t| {
            30.0 + 0.5 * t as f64
                + [4.0, -2.0, 3.0, -5.0][(t + phase) % 4]
                + ((t * 7 + phase) % 5) as f64 * 0.4
        })
        .collect()
}

async fn call(base: &str, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let a = send(
        &reqwest::Client::new(),
        method,
        format!("{base}{path}"),
        Some(body),
    )
    .await
    .expect("request");
    (a.status, a.body)
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    call(base, reqwest::Method::POST, path, body).await
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-9 * y.abs().max(1.0))
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// The whole scenario against one running service.
async fn scenario(base: &str, model: &str) {
    // Fit two series with ETS, season 4.
    let (a, b) = (seasonal(60, 0), seasonal(60, 1));
    let (status, body) = call(
        base,
        reqwest::Method::PUT,
        &format!("/v1/models/{model}"),
        json!({"series": [{"id": "a", "values": &a[..48]}, {"id": "b", "values": &b[..48]}],
               "method": "ets", "season_length": 4}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], 1);

    // New observations for "a" only: a new version, ready, same parameters.
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/observations"),
        json!({"series": [{"id": "a", "values": &a[48..]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], 2, "{body}");
    assert_eq!(body["data"]["base_version"], 1);
    assert_eq!(body["data"]["status"], "ready");
    let (status, forecast) = post(
        base,
        &format!("/v1/models/{model}/forecast"),
        json!({"horizon": 6}),
    )
    .await;
    assert_eq!(status, 200, "{forecast}");
    assert_eq!(forecast["data"]["version"], 2);
    // The same fit here, filtered over the longer series.
    let spec = ModelSpec::new(Method::Ets, Some(4));
    let h = Horizon::parse(6).unwrap();
    let fitted = spec
        .fit(&SeriesData::parse(a[..48].to_vec()).unwrap())
        .unwrap();
    let filtered = fitted
        .filter(&SeriesData::parse(a.clone()).unwrap())
        .unwrap()
        .forecast(h, &[])
        .mean;
    let served = numbers(&forecast["data"]["series"][0]["mean"]);
    assert_eq!(forecast["data"]["series"][0]["id"], "a");
    assert!(close(&served, &filtered), "{served:?} vs {filtered:?}");
    // "b" kept its state.
    let untouched = spec
        .fit(&SeriesData::parse(b[..48].to_vec()).unwrap())
        .unwrap()
        .forecast(h, &[])
        .mean;
    assert!(close(
        &numbers(&forecast["data"]["series"][1]["mean"]),
        &untouched
    ));

    // Unknown ids are the client's fault, and register nothing.
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/observations"),
        json!({"series": [{"id": "zzz", "values": [1.0]}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["status"], "fail");

    // The model's backtest runs on version 2's training data (60 and 48
    // values), filtered forward.
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/backtest"),
        json!({"horizon": 4, "n_windows": 3, "refit": false, "level": [80, 95],
               "include_forecasts": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["version"], 2);
    assert_eq!(data["method"], "ets");
    assert_eq!(data["refit"], false);
    let windows = data["series"][0]["windows"].as_array().unwrap();
    assert_eq!(
        windows
            .iter()
            .map(|w| w["cutoff"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [47, 51, 55]
    );
    assert_eq!(data["series"][1]["windows"][2]["cutoff"], 43);
    let mae = data["metrics"]["mae"].as_f64().unwrap();
    assert!(mae.is_finite() && mae < 3.0, "{data}");
    assert!(
        data["metrics"]["coverage"]["95"].as_f64().is_some(),
        "{data}"
    );
    // Version 1 on request: "a" has 48 values there.
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/backtest"),
        json!({"horizon": 4, "version": 1, "include_forecasts": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["series"][0]["windows"][0]["cutoff"], 43);

    // Naive on a line, by hand: y = 2t, 20 values, horizon 3, 2 windows
    // every 2 steps: errors 2, 4, 6 in each window: MAE 4, RMSE
    // sqrt(56/3), MASE 2 (the naive scale of a line of slope 2 is 2).
    let line: Vec<f64> = (0..20).map(|t| 2.0 * t as f64).collect();
    let (status, body) = post(
        base,
        "/v1/backtest",
        json!({"series": [{"id": "line", "values": line}], "method": "naive",
               "horizon": 3, "n_windows": 2, "step_size": 2, "include_forecasts": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let m = &body["data"]["metrics"];
    assert!((m["mae"].as_f64().unwrap() - 4.0).abs() < 1e-9, "{m}");
    assert!((m["rmse"].as_f64().unwrap() - (56.0f64 / 3.0).sqrt()).abs() < 1e-9);
    assert!((m["mase"].as_f64().unwrap() - 2.0).abs() < 1e-9);
    let w = &body["data"]["series"][0]["windows"];
    assert_eq!(w[0]["cutoff"], 14);
    assert_eq!(numbers(&w[1]["actual"]), [34.0, 36.0, 38.0]);
    assert_eq!(numbers(&w[1]["mean"]), [32.0, 32.0, 32.0]);
    // Too short a series for the windows: a fail.
    let (status, body) = post(
        base,
        "/v1/backtest",
        json!({"series": [{"id": "s", "values": [1, 2, 3, 4, 5]}], "horizon": 3, "n_windows": 2}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        base,
        "/v1/backtest",
        json!({"series": [{"id": "s", "values": [1, 2, 3, 4, 5]}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["data"]["horizon"].is_string(), "{body}");

    // A retry with the same Idempotency-Key answers as the first request.
    let retry = |key: &'static str| {
        let url = format!("{base}/v1/models/{model}/observations");
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("Idempotency-Key", key)
                .json(&json!({"series": [{"id": "b", "values": [null]}]}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = retry("one-missing-value").await;
    // One missing value alone is a gap in a series that is mostly there.
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"]["base_version"], 2, "{first}");
    assert_eq!(first["data"]["version"], 3, "{first}");
    assert_eq!(first["data"]["series"][1]["n_missing"], 1, "{first}");
    let (status, again) = retry("one-missing-value").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["data"], first["data"]);
    // A batch that leaves the series mostly missing is refused.
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/observations"),
        json!({"series": [{"id": "b", "values": vec![Value::Null; 60]}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("at most half"), "{body}");
    // A bad element is named as in a fit.
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/observations"),
        json!({"series": [{"id": "b", "values": [1, "x"]}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["data"]["series[0].values"]
            .as_str()
            .is_some_and(|m| m.contains("element 1")),
        "{body}"
    );
}

/// Sends `body` with `Prefer: respond-async`: 202, the job, its Location.
async fn post_async(base: &str, path: &str, body: &Value) -> (Value, String) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("prefer", "respond-async")
        .json(body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 202, "{path}");
    assert_eq!(r.headers()["preference-applied"], "respond-async");
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let job: Value = r.json().await.expect("JSON");
    assert!(
        location.ends_with(job["data"]["id"].as_str().unwrap()),
        "{job}"
    );
    assert_eq!(job["data"]["kind"], "backtest");
    (job, location)
}

/// Polls a job until it is finished.
async fn finished(base: &str, location: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (status, body) = call(base, reqwest::Method::GET, location, Value::Null).await;
        assert_eq!(status, 200, "{body}");
        let s = body["data"]["status"].as_str().unwrap().to_string();
        if s != "queued" && s != "running" {
            return body["data"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never finished: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Backtests as jobs: the same answer as synchronously; cancel.
async fn async_backtests(base: &str, model: &str) {
    let series: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("s{i}"), "values": seasonal(40, i)}))
        .collect();
    let (status, body) = call(
        base,
        reqwest::Method::PUT,
        &format!("/v1/models/{model}"),
        json!({"series": series, "method": "ets", "season_length": 4}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // On data in the body.
    let ask = json!({"series": series, "method": "theta", "horizon": 3, "n_windows": 2,
                     "level": [80], "include_forecasts": true});
    let (_, sync) = post(base, "/v1/backtest", ask.clone()).await;
    assert_eq!(sync["status"], "success", "{sync}");
    let (job, location) = post_async(base, "/v1/backtest", &ask).await;
    assert_eq!(job["data"]["progress"]["total"], 3);
    assert!(job["data"].get("model").is_none(), "{job}");
    let done = finished(base, &location).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["progress"]["done"], 3);
    assert!(done["finished_at"].is_string());
    assert_eq!(done["result"], sync["data"]);
    // On a model's version.
    let ask = json!({"horizon": 2, "n_windows": 3, "refit": false});
    let path = format!("/v1/models/{model}/backtest");
    let (_, sync) = post(base, &path, ask.clone()).await;
    assert_eq!(sync["data"]["version"], 1, "{sync}");
    let (job, location) = post_async(base, &path, &ask).await;
    assert_eq!(
        (&job["data"]["model"], &job["data"]["version"]),
        (&json!(model), &json!(1))
    );
    let done = finished(base, &location).await;
    assert_eq!(done["result"], sync["data"], "{done}");
    // A failing backtest is a failed job with the reason (a model's stored
    // series too short for the windows; one sent in the body is a 400).
    let (status, body) = call(
        base,
        reqwest::Method::PUT,
        &format!("/v1/models/{model}-short"),
        json!({"series": [{"id": "s", "values": [1, 2, 3, 4, 5]}], "method": "naive"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let short = json!({"horizon": 3, "n_windows": 2});
    let (_, location) =
        post_async(base, &format!("/v1/models/{model}-short/backtest"), &short).await;
    let done = finished(base, &location).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{done}"
    );
    // Asked for synchronously: a 400 about the model's data (the body has
    // no series to name).
    let (status, body) = call(
        base,
        reqwest::Method::POST,
        &format!("/v1/models/{model}-short/backtest"),
        short,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let says = body["data"]["model"].as_str().unwrap_or_default();
    assert!(
        says.contains("version 1 of model") && says.contains("too short"),
        "{body}"
    );
    // Cancel a long one at once: it ends cancelled and stays so.
    let many: Vec<Value> = (0..20)
        .map(|i| json!({"id": format!("m{i}"), "values": seasonal(120, i)}))
        .collect();
    let long = json!({"series": many, "season_length": 4, "horizon": 4, "n_windows": 10});
    let (_, location) = post_async(base, "/v1/backtest", &long).await;
    let (status, body) = call(base, reqwest::Method::DELETE, &location, Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "cancelled", "{body}");
    let (status, body) = call(base, reqwest::Method::DELETE, &location, Value::Null).await;
    assert_eq!(status, 409, "{body}");
    let (_, body) = call(base, reqwest::Method::GET, &location, Value::Null).await;
    assert_eq!(body["data"]["status"], "cancelled", "{body}");
    assert!(body["data"].get("result").is_none(), "{body}");
    // Unknown and malformed ids.
    let (status, _) = call(
        base,
        reqwest::Method::GET,
        "/v1/jobs/0123456789abcdef0123456789abcdef",
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);
}

/// Timestamps: observations must continue the series' calendar.
async fn dated(base: &str, model: &str) {
    let values = seasonal(30, 0);
    let (status, body) = call(
        base,
        reqwest::Method::PUT,
        &format!("/v1/models/{model}"),
        json!({"series": [{"id": "d", "values": values, "start": "2024-01-01", "freq": "D"}],
               "method": "ses"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/observations"),
        json!({"series": [{"id": "d", "values": [40.0], "ds": ["2024-02-05"]}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["data"]["series[0].ds[0]"]
        .as_str()
        .unwrap()
        .contains("2024-01-31"));
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/observations"),
        json!({"series": [{"id": "d", "values": [40.0, 41.0], "ds": ["2024-01-31", "2024-02-01"]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/forecast"),
        json!({"horizon": 2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["series"][0]["ds"][0], "2024-02-02", "{body}");
    // Without timestamps the calendar moves on too.
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/observations"),
        json!({"series": [{"id": "d", "values": [42.0]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = post(
        base,
        &format!("/v1/models/{model}/forecast"),
        json!({"horizon": 1}),
    )
    .await;
    assert_eq!(body["data"]["series"][0]["ds"][0], "2024-02-03", "{body}");
    // The model's backtest windows carry their dates: 33 values now (to
    // 2024-02-02), 2 windows of 3 steps, the last cut at index 29.
    let last = last_window(base, model).await;
    assert_eq!(last["cutoff"], 29, "{last}");
    assert_eq!(last["cutoff_ds"], "2024-01-30", "{last}");
    assert_eq!(
        last["ds"],
        json!(["2024-01-31", "2024-02-01", "2024-02-02"]),
        "{last}"
    );
}

/// Integer positions (`ds` of whole numbers, 10 apart): observations must
/// continue them, and backtest windows are labelled with them.
async fn numbered(base: &str, model: &str) {
    let values = seasonal(30, 1);
    let ds: Vec<i64> = (0..30).map(|t| 100 + 10 * t).collect();
    let (status, body) = call(
        base,
        reqwest::Method::PUT,
        &format!("/v1/models/{model}"),
        json!({"series": [{"id": "n", "values": values, "ds": ds}], "method": "ses"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["series"][0]["index"],
        json!({"last": 390, "step": 10})
    );
    let path = format!("/v1/models/{model}/observations");
    let observe = |ds: Value| {
        post(
            base,
            &path,
            json!({"series": [{"id": "n", "values": [40.0, 41.0], "ds": ds}]}),
        )
    };
    // Each refusal names the element (or the list) and says why.
    for (ds, field, why) in [
        (
            json!([400, 405]),
            "series[0].ds[1]",
            "expected 410 (the series' step 2 after its last position 390), got 405",
        ),
        (
            json!(["2024-01-01", "2024-01-02"]),
            "series[0].ds[0]",
            "expected 400 (the series' step 1 after its last position 390), got 2024-01-01",
        ),
        (
            json!([400, 4.5]),
            "series[0].ds",
            "4.5 is not an integer position (nor an ISO 8601 date string)",
        ),
    ] {
        let (status, body) = observe(ds).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["data"][field], why, "{body}");
    }
    let (status, body) = observe(json!([400, 410])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["series"][0]["index"],
        json!({"last": 410, "step": 10})
    );
    let (_, body) = post(
        base,
        &format!("/v1/models/{model}/forecast"),
        json!({"horizon": 2}),
    )
    .await;
    assert_eq!(body["data"]["series"][0]["ds"], json!([420, 430]), "{body}");
    // 32 values (100 to 410): the last of 2 windows of 3 steps is cut at
    // index 28, position 380.
    let last = last_window(base, model).await;
    assert_eq!(last["cutoff"], 28, "{last}");
    assert_eq!(last["cutoff_ds"], 380, "{last}");
    assert_eq!(last["ds"], json!([390, 400, 410]), "{last}");
}

/// Requests that must be refused whole (and register no version), and
/// backtests whose series cannot all be scored.
async fn refusals(base: &str, model: &str) {
    // A series too short for the windows: a 400 naming it, also when a job
    // was asked for (no job is made of a request that cannot run).
    let short = json!({"series": [{"id": "ok", "values": seasonal(40, 0)},
                                  {"id": "tiny", "values": seasonal(20, 0)}],
                       "method": "naive", "horizon": 10, "n_windows": 3});
    for prefer in ["", "respond-async"] {
        let r = reqwest::Client::new()
            .post(format!("{base}/v1/backtest"))
            .header("prefer", prefer)
            .json(&short)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 400, "Prefer: {prefer}");
        let body: Value = r.json().await.expect("JSON");
        let message = body["data"]["series[1]"].as_str().unwrap_or_default();
        assert!(
            message.contains("'tiny'") && message.contains("at least 33 values"),
            "{body}"
        );
    }
    let ds: Vec<String> = (0..24)
        .map(|h| format!("2024-01-01T{h:02}:00:00Z"))
        .collect();
    let path = format!("/v1/models/{model}");
    let (status, body) = call(
        base,
        reqwest::Method::PUT,
        &path,
        json!({"series": [{"id": "a", "values": seasonal(24, 2), "ds": ds}], "method": "naive"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let observations = format!("{path}/observations");
    let observe = |series: Value| post(base, &observations, json!({ "series": series }));
    // The next hour in another offset is another instant: refused.
    let (status, body) =
        observe(json!([{"id": "a", "values": [1.0], "ds": ["2024-01-02T00:00:00+01:00"]}])).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["data"]["series[0].ds[0]"]
            .as_str()
            .unwrap()
            .contains("2024-01-02T00:00:00Z"),
        "{body}"
    );
    let (status, body) =
        observe(json!([{"id": "a", "values": [1.0]}, {"id": "a", "values": [2.0]}])).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["data"]["series[1].id"]
            .as_str()
            .unwrap()
            .contains("more than once"),
        "{body}"
    );
    // Neither refusal registered a version.
    let (_, body) = call(base, reqwest::Method::GET, &path, Value::Null).await;
    assert_eq!(body["data"]["latest_version"], 1, "{body}");
    let (status, body) =
        observe(json!([{"id": "a", "values": [1.0], "ds": ["2024-01-02T00:00:00Z"]}])).await;
    assert_eq!(status, 200, "{body}");

    // Positions must leave room for the longest forecast after the new values.
    let top = i64::MAX - engine::MAX_HORIZON as i64 - 3;
    let (status, body) = call(
        base,
        reqwest::Method::PUT,
        &format!("{path}-far"),
        json!({"series": [{"id": "a", "values": [1.0, 2.0, 3.0], "ds": [top - 2, top - 1, top]}], "method": "naive"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        base,
        &format!("{path}-far/observations"),
        json!({"series": [{"id": "a", "values": [4.0, 5.0, 6.0, 7.0]}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["data"]["series[0].values"]
            .as_str()
            .unwrap()
            .contains("largest integer position"),
        "{body}"
    );

    // A version asked for by number that does not exist: 404.
    let (status, body) = post(
        base,
        &format!("{path}/backtest"),
        json!({"horizon": 2, "version": 99}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // Repeated keys and levels are refused, not resolved silently.
    let line = json!([{"id": "l", "values": [0, 2, 4, 6, 8, 10, 12, 14]}]);
    let text = format!(r#"{{"series": {line}, "method": "naive", "horizon": 2, "horizon": 3}}"#);
    let answer = reqwest::Client::new()
        .post(format!("{base}/v1/backtest"))
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.expect("JSON");
    assert!(
        body["data"]["horizon"]
            .as_str()
            .unwrap()
            .contains("more than once"),
        "{body}"
    );
    let (status, body) = post(
        base,
        "/v1/backtest",
        json!({"series": line, "method": "naive", "horizon": 2, "level": [80, 80]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["data"]["level[1]"].is_string(), "{body}");
    let (status, body) = post(
        base,
        "/v1/backtest",
        json!({"series": line, "horizon": 2, "windows": 3}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["data"]["windows"]
            .as_str()
            .unwrap()
            .contains("n_windows"),
        "{body}"
    );
    // A series with nothing to score has no metrics, and does not count in
    // the overall ones.
    let (status, body) = post(
        base,
        "/v1/backtest",
        json!({"series": [{"id": "gone", "values": [5, 6, 5, 7, 5, 6, null, null]},
                          {"id": "b", "values": [1, 2, 3, 4, 5, 6, 7, 8]}],
               "method": "naive", "horizon": 2, "level": [80]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let gone = &body["data"]["series"][0]["metrics"];
    assert!(gone["mae"].is_null() && gone["rmse"].is_null(), "{body}");
    let b = &body["data"]["series"][1]["metrics"];
    assert_eq!(body["data"]["metrics"]["mae"], b["mae"], "{body}");
    assert_eq!(body["data"]["metrics"]["coverage"], b["coverage"], "{body}");
}

/// The last window of the model's backtest over 2 windows of 3 steps (its
/// first series).
async fn last_window(base: &str, model: &str) -> Value {
    let (status, body) = post(
        base,
        &format!("/v1/models/{model}/backtest"),
        json!({"horizon": 3, "n_windows": 2, "include_forecasts": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["series"][0]["windows"][1].clone()
}

/// Observations sent at the same time each extend the version the one
/// before made: none is lost (three rounds of six at once).
async fn concurrent_appends(base: &str, model: &str) {
    let (status, body) = call(
        base,
        reqwest::Method::PUT,
        &format!("/v1/models/{model}"),
        json!({"method": "naive", "series": [
            {"id": "a", "values": [1, 2, 3, 4, 5, 6, 7, 8]},
            {"id": "b", "values": [1, 2, 3, 4, 5, 6, 7, 8]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut made = Vec::new();
    for round in 0..3 {
        let appends: Vec<_> = (0..6)
            .map(|i| {
                let (base, model) = (base.to_string(), model.to_string());
                let id = if i % 2 == 0 { "a" } else { "b" };
                tokio::spawn(async move {
                    post(
                        &base,
                        &format!("/v1/models/{model}/observations"),
                        json!({"series": [{"id": id, "values": [100 * round + i]}]}),
                    )
                    .await
                })
            })
            .collect();
        for append in appends {
            let (status, body) = append.await.expect("append task");
            assert_eq!(status, 200, "{body}");
            let version = body["data"]["version"].as_i64().expect("version");
            assert_eq!(
                body["data"]["base_version"].as_i64(),
                Some(version - 1),
                "an append did not extend the version before it (its values are lost): {body}"
            );
            made.push(version);
        }
    }
    made.sort_unstable();
    assert_eq!(made, (2..=19).collect::<Vec<i64>>());
}

/// The race needs the real server's timing; the in-process one below
/// answers too evenly to show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_observations_are_not_lost() {
    let served = served::Served::start(&[]).await;
    concurrent_appends(&served.base, "appends").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_backtest_and_observations() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    scenario(&app.base, "obs").await;
    dated(&app.base, "dated").await;
    numbered(&app.base, "numbered").await;
    refusals(&app.base, "refused").await;
    async_backtests(&app.base, "asyncbt").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_backtest_and_observations() {
    if !services_or_skip("distributed_backtest_and_observations") {
        return;
    }
    let cluster = Cluster::start("obsbt", 2, &[]).await;
    scenario(&cluster.base, "obs").await;
    dated(&cluster.base, "dated").await;
    numbered(&cluster.base, "numbered").await;
    async_backtests(&cluster.base, "asyncbt").await;
    concurrent_appends(&cluster.base, "appends").await;
}

/// A backtest job runs until it ends, like a fit job: the fit timeout bounds
/// how long a request waits, not how long a job may take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_job_may_run_longer_than_the_fit_timeout() {
    let served = served::Served::start(&["--fit-timeout", "1s"]).await;
    let series: Vec<Value> = (0..150)
        .map(|i| json!({"id": format!("s{i}"), "values": seasonal(120, i)}))
        .collect();
    let body = json!({"series": series, "method": "auto", "season_length": 4,
                      "horizon": 4, "n_windows": 8, "refit": true});
    let started = std::time::Instant::now();
    let (_, location) = post_async(&served.base, "/v1/backtest", &body).await;
    let job = finished(&served.base, &location).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        started.elapsed() > std::time::Duration::from_secs(1),
        "the backtest was too quick to show anything: make it larger"
    );
}
