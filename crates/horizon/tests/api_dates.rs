//! The API's input side for real data, over real HTTP: timestamps (`ds`,
//! `start` + `freq`, the long format), inferred frequencies, forecasts that
//! carry future timestamps, gaps (`null` and missing timestamps), several
//! season lengths, `nonnegative`, and a clear 400 for each way timestamps can
//! be wrong.

mod common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn hours(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("2024-03-{:02}T{:02}:00:00Z", 1 + i / 24, i % 24))
        .collect()
}

fn days(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("2024-01-{:02}", 1 + i)).collect()
}

fn message<'a>(body: &'a Value, field: &str) -> &'a str {
    body["data"][field].as_str().unwrap_or("")
}

#[tokio::test]
async fn timestamps_give_future_timestamps_to_forecasts() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;

    // `ds` with the frequency inferred (hourly), `start` + `freq` (monthly).
    let (status, body) = app
        .put(
            "/v1/models/dated",
            json!({
                "series": [
                    {"id": "hourly", "values": [5, 6, 7, 8, 9, 10], "ds": hours(6)},
                    {"id": "monthly", "values": [1, 2, 3, 4], "start": "2023-10-31", "freq": "M"}
                ],
                "method": "naive",
                "season_length": 1
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let series = &body["data"]["series"];
    assert_eq!(series[0]["calendar"]["freq"], "h", "{body}");
    assert_eq!(series[0]["calendar"]["last"], "2024-03-01T05:00:00Z");
    assert_eq!(series[1]["calendar"]["freq"], "ME");
    assert_eq!(series[1]["calendar"]["last"], "2024-01-31");
    assert_eq!(series[0]["n_missing"], 0);

    let (status, body) = app
        .post("/v1/models/dated/forecast", json!({"horizon": 3}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let series = &body["data"]["series"];
    assert_eq!(
        series[0]["ds"],
        json!([
            "2024-03-01T06:00:00Z",
            "2024-03-01T07:00:00Z",
            "2024-03-01T08:00:00Z"
        ])
    );
    assert_eq!(series[0]["mean"], json!([10.0, 10.0, 10.0]));
    assert_eq!(
        series[1]["ds"],
        json!(["2024-02-29", "2024-03-31", "2024-04-30"])
    );

    // A model fitted without timestamps has none in its forecasts.
    let (status, _) = app
        .put(
            "/v1/models/plain",
            json!({"series": [{"id": "a", "values": [1, 2, 3]}], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = app
        .post("/v1/models/plain/forecast", json!({"horizon": 2}))
        .await;
    assert!(body["data"]["series"][0].get("ds").is_none(), "{body}");

    // The original endpoints take `ds` too.
    let (status, body) = app
        .post(
            "/fit_model",
            json!({"data": [3, 4, 5, 6], "ds": ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["freq"], "W-MON");
    let (_, body) = app.post("/forecast", json!({"num_steps": 2})).await;
    assert_eq!(body["data"]["ds"], json!(["2024-01-29", "2024-02-05"]));
    assert_eq!(body["data"]["forecast"], json!([6.0, 6.0]));
    app.stop().await;
}

#[tokio::test]
async fn long_format_fits_one_series_per_unique_id() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    let ds = [days(5), days(5)].concat();
    let (status, body) = app
        .put(
            "/v1/models/long",
            json!({
                "unique_id": ["a", "a", "a", "a", "a", "b", "b", "b", "b", "b"],
                "ds": ds,
                "y": [1, 2, 3, 4, 5, 50, 40, 30, 20, 10],
                "method": "naive"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["series"][1]["id"], "b");
    assert_eq!(body["data"]["series"][1]["calendar"]["freq"], "D");
    // Without season_length, the daily frequency proposes a week and a year.
    let spec = app.control.last_spec("long").unwrap();
    assert!(spec.seasons.is_empty());
    assert_eq!(spec.season_candidates, vec![7, 365]);

    let (_, body) = app
        .post(
            "/v1/models/long/forecast",
            json!({"horizon": 2, "series": ["b"]}),
        )
        .await;
    assert_eq!(body["data"]["series"][0]["mean"], json!([10.0, 10.0]));
    assert_eq!(
        body["data"]["series"][0]["ds"],
        json!(["2024-01-06", "2024-01-07"])
    );
    app.stop().await;
}

/// statsforecast users often number their steps: an integer `ds` in the
/// long format is placed on its step (gaps are missing values) and the
/// forecast continues it.
#[tokio::test]
async fn an_integer_ds_in_the_long_format_is_continued() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    let (status, body) = app
        .put(
            "/v1/models/numbered",
            json!({
                "unique_id": ["a", "a", "a", "a", "a"],
                "ds": [3, 6, 12, 15, 18],
                "y": [1, 2, 4, 5, 6],
                "method": "naive"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let a = &body["data"]["series"][0];
    assert_eq!(a["n_missing"], 1, "{body}");
    assert_eq!(a["index"], json!({"last": 18, "step": 3}), "{body}");
    let (_, body) = app
        .post("/v1/models/numbered/forecast", json!({"horizon": 2}))
        .await;
    assert_eq!(body["data"]["series"][0]["mean"], json!([6.0, 6.0]));
    assert_eq!(body["data"]["series"][0]["ds"], json!([21, 24]));
    // The original endpoint shows the axis too, and continues it.
    let (status, body) = app
        .post(
            "/fit_model",
            json!({"data": [1, 2, 3, 4], "ds": [3, 6, 12, 15], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["index"],
        json!({"last": 15, "step": 3}),
        "{body}"
    );
    let (_, body) = app.post("/forecast", json!({"num_steps": 2})).await;
    assert_eq!(body["data"]["ds"], json!([18, 21]), "{body}");

    let (status, body) = app
        .put(
            "/v1/models/numbered",
            json!({"series": [{"id": "a", "values": [1, 2, 3], "ds": [3, 2, 1]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        message(&body, "series[0].ds").contains("must be sorted and distinct"),
        "{body}"
    );
    // Positions whose forecasts would pass the largest integer.
    let top = i64::MAX - 1;
    let (status, body) = app
        .put(
            "/v1/models/numbered",
            json!({"series": [{"id": "a", "values": [1, 2, 3], "ds": [top - 2, top - 1, top]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        message(&body, "series[0].ds").contains("is too large"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn gaps_are_counted_and_filled() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;

    // `null` values.
    let (status, body) = app
        .post(
            "/fit_model",
            json!({"data": [1, null, 3, 4, null, 6], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["n_missing"], 2);
    assert_eq!(body["data"]["n_obs"], 6);

    // Timestamps missing from the grid are gaps too; a trailing null is
    // filled from the last value.
    let mut ds = hours(8);
    ds.remove(3);
    ds.remove(4);
    let (status, body) = app
        .put(
            "/v1/models/gappy",
            json!({
                "series": [{"id": "a", "values": [1, 2, 3, 5, 7, null], "ds": ds}],
                "method": "naive"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fit = &body["data"]["series"][0];
    assert_eq!(fit["n_missing"], 3, "{body}");
    assert_eq!(fit["n_obs"], 8);
    assert_eq!(fit["calendar"]["last"], "2024-03-01T07:00:00Z");
    let (_, body) = app
        .post("/v1/models/gappy/forecast", json!({"horizon": 1}))
        .await;
    assert_eq!(body["data"]["series"][0]["mean"], json!([7.0]));
    assert_eq!(
        body["data"]["series"][0]["ds"],
        json!(["2024-03-01T08:00:00Z"])
    );

    // Compact form with nulls in `y`.
    let (status, body) = app
        .put(
            "/v1/models/compact",
            json!({"sizes": [3, 4], "y": [1, null, 3, 4, 5, null, 7], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["series"][0]["n_missing"], 1);
    assert_eq!(body["data"]["series"][1]["n_missing"], 1);
    app.stop().await;
}

#[tokio::test]
async fn fit_options_reach_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    let values: Vec<f64> = (0..48).map(|i| (i % 4) as f64 + (i % 12) as f64).collect();

    // Several seasons, sorted; nonnegative both ways; absent is the engine's call.
    let cases = [
        (json!({"season_length": [12, 4]}), vec![4, 12], None),
        (
            json!({"season_length": 4, "nonnegative": true}),
            vec![4],
            Some(true),
        ),
        (json!({"nonnegative": false}), vec![], Some(false)),
    ];
    for (options, seasons, nonnegative) in cases {
        let mut body = json!({"series": [{"id": "a", "values": values}]});
        for (k, v) in options.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = app.put("/v1/models/opts", body).await;
        assert_eq!(status, StatusCode::OK, "{options}: {answer}");
        let spec = app.control.last_spec("opts").unwrap();
        assert_eq!(spec.seasons, seasons, "{options}");
        assert_eq!(spec.nonnegative, nonnegative, "{options}");
        assert!(spec.season_candidates.is_empty(), "{options}");
    }

    // A frequency alone proposes its season lengths; explicit ones win.
    let (status, _) = app
        .post("/fit_model", json!({"data": values, "freq": "30min"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let spec = app.control.last_spec("default").unwrap();
    assert!(spec.seasons.is_empty());
    assert_eq!(spec.season_candidates, vec![48, 336]);
    let (status, _) = app
        .post(
            "/fit_model",
            json!({"data": values, "freq": "30min", "season_length": [48]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let spec = app.control.last_spec("default").unwrap();
    assert_eq!(spec.seasons, vec![48]);
    app.stop().await;
}

#[tokio::test]
async fn bad_timestamps_and_options_get_a_clear_fail() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    let series = |values: Value, extra: Value| {
        let mut item = json!({"id": "a", "values": values});
        for (k, v) in extra.as_object().unwrap() {
            item[k] = v.clone();
        }
        json!({"series": [item]})
    };
    let off_grid = vec![
        "2024-03-01T00:00:00Z",
        "2024-03-01T01:00:00Z",
        "2024-03-01T02:00:00Z",
        "2024-03-01T02:30:00Z",
    ];
    let cases: Vec<(Value, &str, Vec<&str>)> = vec![
        (
            series(json!([1, 2, 3, 4]), json!({"ds": off_grid})),
            "series[0].ds",
            vec!["timestamp 3", "02:30", "regular grid", "step is h"],
        ),
        (
            series(
                json!([1, 2, 3]),
                json!({"ds": ["2024-01-01", "2024-01-02", "2024-01-02"]}),
            ),
            "series[0].ds",
            vec!["timestamp 2", "repeats"],
        ),
        (
            series(
                json!([1, 2, 3]),
                json!({"ds": ["2024-01-01", "2024-02-01", "2024-03-01"], "freq": "ME"}),
            ),
            "series[0].ds",
            vec!["timestamp 0 (2024-01-01) is not on the calendar of freq ME"],
        ),
        (
            series(
                json!([1, 2, 3, 4]),
                json!({"ds": ["2024-01-15", "2024-02-15", "2024-03-15", "2024-04-15"]}),
            ),
            "series[0].ds",
            vec!["month starts (freq MS) or month ends (ME)"],
        ),
        (
            series(
                json!([1, 2, 3]),
                json!({"ds": ["2024-01-01", "2024-01-03", "2024-01-02"]}),
            ),
            "series[0].ds",
            vec!["timestamp 2", "sorted"],
        ),
        (
            series(
                json!([1, 2, 3]),
                json!({"ds": ["2024-01-01T00:00:00+01:00", "2024-01-01T01:00:00+01:00", "2024-01-01T02:00:00+02:00"]}),
            ),
            "series[0].ds",
            vec!["time zones", "timestamp 2", "+02:00"],
        ),
        (
            series(
                json!([1, 2, 3]),
                json!({"ds": ["2024-01-01T00:00:00", "2024-01-01T00:00:10", "2024-01-01T00:00:20"]}),
            ),
            "series[0].ds",
            vec!["cannot infer", "freq"],
        ),
        (
            series(
                json!([1, 2, 3]),
                json!({"ds": ["2024-01-01", "2024-02-01"]}),
            ),
            "series[0].ds",
            vec!["2 timestamps", "3 values"],
        ),
        (
            series(
                json!([1, 2, 3]),
                json!({"ds": ["2024-01-01", "yesterday", "2024-01-03"]}),
            ),
            "series[0].ds",
            vec!["element 1", "ISO 8601"],
        ),
        (
            series(
                json!([1, 2, 3]),
                json!({"ds": ["2024-01-01", "2024-01-02", "2024-01-03"], "freq": "MS"}),
            ),
            "series[0].ds",
            vec!["timestamp 1", "given freq"],
        ),
        (
            series(json!([1, 2, 3]), json!({"start": "2024-01-01"})),
            "series[0].freq",
            vec!["required with 'start'"],
        ),
        (
            series(
                json!([1, 2, 3]),
                json!({"start": "2024-01-15", "freq": "MS"}),
            ),
            "series[0].start",
            vec!["2024-01-15", "MS"],
        ),
        (
            series(json!([1, 2, 3]), json!({"freq": "fortnightly"})),
            "series[0].freq",
            vec!["unknown frequency", "30min"],
        ),
        (
            series(
                json!([1, 2, 3]),
                json!({"ds": days(3), "start": "2024-01-01"}),
            ),
            "series[0].start",
            vec!["not both"],
        ),
        (
            // 2 of 4 grid points missing plus one null: mostly missing.
            series(
                json!([1, null, 3]),
                json!({"ds": ["2024-01-01", "2024-01-02", "2024-01-05"]}),
            ),
            "series[0].values",
            vec!["missing", "at most half"],
        ),
        (
            series(json!([null, null, 3]), json!({})),
            "series[0].values",
            vec!["2 of 3 values are missing"],
        ),
        (
            json!({"unique_id": ["a", "a", "a"], "ds": ["2024-01-01", "2024-01-02", "2024-01-04T00:30:00"], "y": [1, 2, 3]}),
            "ds",
            vec!["series 'a'", "ds[2]"],
        ),
        (
            json!({"unique_id": ["a", "a"], "y": [1, 2, 3]}),
            "y",
            vec!["2 rows"],
        ),
        (
            json!({"series": [{"id": "a", "values": [1, 2, 3]}], "nonnegative": "yes"}),
            "nonnegative",
            vec!["true or false"],
        ),
        (
            json!({"series": [{"id": "a", "values": [1, 2, 3]}], "season_length": [24, 0]}),
            "season_length[1]",
            vec!["between 1 and"],
        ),
        (
            json!({"series": [{"id": "a", "values": [1, 2, 3]}], "season_length": [1, 7]}),
            "season_length",
            vec!["no seasonality"],
        ),
        (
            json!({"series": [
                {"id": "a", "values": [1, 2, 3], "freq": "h"},
                {"id": "b", "values": [1, 2, 3], "freq": "D"}
            ]}),
            "freq",
            vec!["different seasons", "season_length"],
        ),
    ];
    let mut failures = Vec::new();
    for (body, field, says) in &cases {
        let (status, answer) = app.put("/v1/models/bad", body.clone()).await;
        let got = message(&answer, field);
        if status != StatusCode::BAD_REQUEST || !says.iter().all(|s| got.contains(s)) {
            failures.push(format!(
                "{body}: got {status} {answer}; wanted {field} with {says:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Repeated keys are refused, at any depth.
    let (status, body) = app
        .raw(
            Method::PUT,
            "/v1/models/bad",
            Some("application/json"),
            r#"{"series": [{"id": "a", "values": [1, 2, 3], "values": [4, 5, 6]}]}"#.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message(&body, "series[0].values").contains("more than once"),
        "{body}"
    );
    assert_eq!(app.latest_version("bad").await, None);
    app.stop().await;
}

#[tokio::test]
async fn large_bodies_are_judged_like_small_ones() {
    // Bodies above the inline size are parsed on the blocking pool: the same
    // answers, good and bad.
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    let mut values: Vec<Value> = (0..20_000).map(|i| json!(100 + i % 7)).collect();
    let (status, body) = app
        .post(
            "/fit_model",
            json!({"data": values, "method": "naive", "extra": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body, "extra").contains("unknown field"), "{body}");
    values[17_000] = json!("NaN");
    let (status, body) = app
        .post("/fit_model", json!({"data": values, "method": "naive"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body, "data").contains("element 17000"), "{body}");
    values[17_000] = json!(5);
    let (status, body) = app
        .post("/fit_model", json!({"data": values, "method": "naive"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["n_obs"], 20_000);
    app.stop().await;
}

#[tokio::test]
async fn seasons_are_found_without_season_length() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    let pattern = [
        5.0, 7.0, 9.0, 12.0, 15.0, 14.0, 11.0, 8.0, 6.0, 4.0, 3.0, 4.0,
    ];
    let data: Vec<f64> = (0..60).map(|i| 50.0 + pattern[i % 12]).collect();
    let (status, body) = app.post("/fit_model", json!({"data": data})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let chosen = body["data"]["chosen"].as_str().unwrap();
    assert!(
        chosen.contains("12"),
        "chosen should show season 12: {chosen}"
    );
    let (_, body) = app.post("/forecast", json!({"num_steps": 12})).await;
    let forecast: Vec<f64> = body["data"]["forecast"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (h, f) in forecast.iter().enumerate() {
        let want = 50.0 + pattern[(60 + h) % 12];
        assert!((f - want).abs() < 1.5, "step {h}: {f} vs {want}");
    }
    app.stop().await;
}
