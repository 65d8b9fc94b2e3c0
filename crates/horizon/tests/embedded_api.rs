//! The HTTP API in embedded mode: the original endpoints, the named-model
//! endpoints, idempotent fits, and every kind of bad input getting a JSend
//! `fail` with a useful message.

mod common;

use common::{Options, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn seasonal(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 10.0 + i as f64 * 0.5 + [3.0, -1.0, 2.0, -4.0][i % 4])
        .collect()
}

#[tokio::test]
async fn seed_endpoints_fit_then_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;

    let (status, body) = app.post("/forecast", json!({"num_steps": 3})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["data"]["model"]
            .as_str()
            .unwrap()
            .contains("no model has been fitted yet"),
        "{body}"
    );

    let (status, body) = app
        .post(
            "/fit_model",
            json!({"data": seasonal(24), "season_length": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["model"], "default");
    assert_eq!(body["data"]["version"], 1);
    assert_eq!(body["data"]["method"], "auto");
    assert_eq!(body["data"]["n_obs"], 24);
    assert!(body["data"]["chosen"].is_string());

    let (status, body) = app.post("/forecast", json!({"num_steps": 5})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], 1);
    let forecast = body["data"]["forecast"].as_array().unwrap();
    assert_eq!(forecast.len(), 5);
    assert!(forecast
        .iter()
        .all(|v| v.as_f64().is_some_and(f64::is_finite)));

    // A second fit makes version 2, and forecasts follow it.
    let (status, body) = app
        .post(
            "/fit_model",
            json!({"data": [7, 7, 7, 7], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], 2);
    assert_eq!(body["data"]["method"], "naive");
    let (_, body) = app.post("/forecast", json!({"num_steps": 2})).await;
    assert_eq!(body["data"]["version"], 2);
    assert_eq!(body["data"]["forecast"], json!([7.0, 7.0]));

    // `default` fitted with two series: /forecast cannot show both.
    let (status, body) = app
        .put(
            "/v1/models/default",
            json!({"series": [{"id": "a", "values": [1, 2, 3]}, {"id": "b", "values": [4, 5, 6]}], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post("/forecast", json!({"num_steps": 2})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let says = body["data"]["model"].as_str().unwrap();
    assert!(
        says.contains("has 2 series") && says.contains("/v1/models/default/forecast"),
        "{says}"
    );
    app.stop().await;
}

#[tokio::test]
async fn named_models_fit_describe_and_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;

    let (status, body) = app
        .put(
            "/v1/models/sales",
            json!({
                "series": [
                    {"id": "north", "values": seasonal(20)},
                    {"id": "south", "values": [4, 4, 4, 4, 4]}
                ],
                "season_length": 4,
                "method": "naive"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["model"], "sales");
    assert_eq!(data["version"], 1);
    assert_eq!(data["status"], "ready");
    let series = data["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["id"], "north");
    assert!(series[0]["chosen"].is_string());
    assert!(series[0].get("fallback").is_some());
    assert_eq!(series[1]["n_obs"], 5);

    // Compact form: sizes + y, ids optional.
    let (status, body) = app
        .put(
            "/v1/models/compact",
            json!({"sizes": [3, 4], "y": [1, 2, 3, 10, 10, 10, 10], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["series"][0]["id"], "0");
    assert_eq!(body["data"]["series"][1]["id"], "1");
    let (_, body) = app
        .post(
            "/v1/models/compact/forecast",
            json!({"horizon": 2, "series": ["1"]}),
        )
        .await;
    assert_eq!(body["data"]["series"][0]["mean"], json!([10.0, 10.0]));

    // Forecast all series with intervals.
    let (status, body) = app
        .post(
            "/v1/models/sales/forecast",
            json!({"horizon": 6, "level": [80, 95]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["version"], 1);
    assert_eq!(data["horizon"], 6);
    let series = data["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    for s in series {
        let mean = s["mean"].as_array().unwrap();
        assert_eq!(mean.len(), 6);
        let intervals = s["intervals"].as_array().unwrap();
        assert_eq!(intervals.len(), 2);
        assert_eq!(intervals[0]["level"], 80.0);
        for (i, m) in mean.iter().enumerate() {
            let m = m.as_f64().unwrap();
            let lo95 = intervals[1]["lower"][i].as_f64().unwrap();
            let lo80 = intervals[0]["lower"][i].as_f64().unwrap();
            let hi80 = intervals[0]["upper"][i].as_f64().unwrap();
            let hi95 = intervals[1]["upper"][i].as_f64().unwrap();
            assert!(
                lo95 <= lo80 && lo80 <= m && m <= hi80 && hi80 <= hi95,
                "{s}"
            );
        }
    }
    assert_eq!(series[1]["mean"], json!(vec![4.0; 6]));

    // A subset, in the order asked.
    let (_, body) = app
        .post(
            "/v1/models/sales/forecast",
            json!({"horizon": 1, "series": ["south", "north"]}),
        )
        .await;
    let ids: Vec<&str> = body["data"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["south", "north"]);

    // Describe and list.
    let (status, body) = app.get("/v1/models/sales").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "sales");
    let v1 = &body["data"]["versions"][0];
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["status"], "ready");
    assert_eq!(v1["n_series"], 2);
    assert_eq!(v1["method"], "naive");
    assert!(v1["created_at"].as_str().unwrap().ends_with('Z'), "{v1}");

    let (status, body) = app.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["data"]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["compact", "sales"]);

    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["store"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn idempotency_key_replays_the_same_version() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    let body = json!({"series": [{"id": "a", "values": [1, 2, 3, 4]}], "method": "naive"});
    let send = |key: Option<&'static str>| {
        let mut request = app.client.put(app.url("/v1/models/idem")).json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send()
    };
    let first = common::answer(send(Some("order-17")).await).await;
    let again = send(Some("order-17")).await.unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let again = common::answer(Ok(again)).await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(first, again);
    assert_eq!(first.1["data"]["version"], 1);
    let other = common::answer(send(Some("order-18")).await).await;
    assert_eq!(other.1["data"]["version"], 2);
    let plain = common::answer(send(None).await).await;
    assert_eq!(plain.1["data"]["version"], 3);

    let (status, body) = common::answer(
        app.client
            .put(app.url("/v1/models/idem"))
            .header("Idempotency-Key", "x".repeat(500))
            .json(&body)
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["data"]["Idempotency-Key"].is_string(), "{body}");
    let (status, body) = common::answer(
        app.client
            .put(app.url("/v1/models/idem"))
            .header("Idempotency-Key", "order-17")
            .header("Idempotency-Key", "order-19")
            .json(&json!({"series": [{"id": "a", "values": [1, 2, 3, 4]}], "method": "naive"}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["data"]["Idempotency-Key"]
            .as_str()
            .is_some_and(|m| m.contains("more than once")),
        "{body}"
    );
    assert_eq!(app.latest_version("idem").await, Some(3));
    app.stop().await;
}

/// One bad request: where to send it and what the `fail` must say.
struct Bad {
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: String,
    status: StatusCode,
    field: &'static str,
    says: &'static str,
}

fn bad(path: &'static str, body: Value, field: &'static str, says: &'static str) -> Bad {
    let method = if path.starts_with("/v1/models/") && !path.ends_with("/forecast") {
        Method::PUT
    } else {
        Method::POST
    };
    Bad {
        method,
        path,
        content_type: Some("application/json"),
        body: body.to_string(),
        status: StatusCode::BAD_REQUEST,
        field,
        says,
    }
}

fn raw(
    path: &'static str,
    content_type: Option<&'static str>,
    body: &str,
    field: &'static str,
    says: &'static str,
) -> Bad {
    Bad {
        method: Method::POST,
        path,
        content_type,
        body: body.to_string(),
        status: StatusCode::BAD_REQUEST,
        field,
        says,
    }
}

#[tokio::test]
async fn every_bad_input_gets_a_jsend_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::default();
    options.config.body_limit = 16 * 1024;
    let app = TestServer::start_with(dir.path(), options).await;
    // Something to forecast, so forecast inputs are judged on their own.
    let (status, _) = app.post("/fit_model", json!({"data": [1, 2, 3, 4]})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .put(
            "/v1/models/m",
            json!({"series": [{"id": "a", "values": [1, 2, 3]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let max_h = engine::MAX_HORIZON;

    let cases = vec![
        // /fit_model
        bad(
            "/fit_model",
            json!({"data": []}),
            "data",
            "must not be empty",
        ),
        bad("/fit_model", json!({"data": [1, "NaN", 3]}), "data", "NaN"),
        bad(
            "/fit_model",
            json!({"data": [1, 2, "Infinity"]}),
            "data",
            "infinite",
        ),
        bad(
            "/fit_model",
            json!({"data": [1, 2, "-inf"]}),
            "data",
            "infinite",
        ),
        bad(
            "/fit_model",
            json!({"data": [1, "abc", 3]}),
            "data",
            "not a number",
        ),
        bad(
            "/fit_model",
            json!({"data": [1, true, 3]}),
            "data",
            "not a number",
        ),
        // `null` is a missing value; more than half missing is refused.
        bad(
            "/fit_model",
            json!({"data": [null, null, 3]}),
            "data",
            "at most half",
        ),
        bad(
            "/fit_model",
            json!({"data": [1, [2], 3]}),
            "data",
            "not a number",
        ),
        bad("/fit_model", json!({"data": [1, 2]}), "data", "at least 3"),
        bad("/fit_model", json!({}), "data", "required"),
        bad(
            "/fit_model",
            json!({"data": "1,2,3"}),
            "data",
            "array of numbers",
        ),
        bad(
            "/fit_model",
            json!({"data": [1, 2, 3], "season_length": 0}),
            "season_length",
            "between 1 and",
        ),
        bad(
            "/fit_model",
            json!({"data": [1, 2, 3], "season_length": "12"}),
            "season_length",
            "integer",
        ),
        bad(
            "/fit_model",
            json!({"data": [1, 2, 3], "method": "magic"}),
            "method",
            "unknown method",
        ),
        bad(
            "/fit_model",
            json!({"data": [1, 2, 3], "method": 3}),
            "method",
            "string",
        ),
        bad(
            "/fit_model",
            json!({"data": [1, 2, 3], "dta": 1}),
            "dta",
            "unknown field",
        ),
        bad("/fit_model", json!([1, 2, 3]), "body", "JSON object"),
        raw(
            "/fit_model",
            Some("application/json"),
            r#"{"data": [1, 2, 1e999]}"#,
            "body",
            "out of range",
        ),
        raw(
            "/fit_model",
            Some("application/json"),
            r#"{"data": [1, 2, NaN]}"#,
            "body",
            "malformed JSON",
        ),
        raw(
            "/fit_model",
            Some("application/json"),
            r#"{"data": [1, 2, 3"#,
            "body",
            "malformed JSON",
        ),
        raw("/fit_model", Some("application/json"), "", "body", "empty"),
        raw(
            "/fit_model",
            Some("text/plain"),
            r#"{"data": [1, 2, 3]}"#,
            "content-type",
            "application/json",
        ),
        raw(
            "/fit_model",
            Some("application/x-www-form-urlencoded"),
            "data=1",
            "content-type",
            "application/json",
        ),
        raw(
            "/fit_model",
            None,
            r#"{"data": [1, 2, 3]}"#,
            "content-type",
            "missing",
        ),
        // A PUT fit also takes tables, and says so.
        Bad {
            method: Method::PUT,
            ..raw(
                "/v1/models/m",
                Some("text/plain"),
                "a,b",
                "content-type",
                "'text/csv'",
            )
        },
        // /forecast
        bad(
            "/forecast",
            json!({"num_steps": 0}),
            "num_steps",
            "between 1 and",
        ),
        bad(
            "/forecast",
            json!({"num_steps": -3}),
            "num_steps",
            "between 1 and",
        ),
        bad(
            "/forecast",
            json!({"num_steps": max_h + 1}),
            "num_steps",
            "between 1 and",
        ),
        bad(
            "/forecast",
            json!({"num_steps": 1e300}),
            "num_steps",
            "integer",
        ),
        bad(
            "/forecast",
            json!({"num_steps": 2.5}),
            "num_steps",
            "integer",
        ),
        bad(
            "/forecast",
            json!({"num_steps": "12"}),
            "num_steps",
            "integer",
        ),
        bad("/forecast", json!({}), "num_steps", "required"),
        raw(
            "/forecast",
            Some("application/json"),
            "{num_steps: 3}",
            "body",
            "malformed JSON",
        ),
        // PUT /v1/models/{name}
        bad("/v1/models/m", json!({}), "series", "required"),
        bad(
            "/v1/models/m",
            json!({"series": []}),
            "series",
            "must not be empty",
        ),
        bad(
            "/v1/models/m",
            json!({"series": [{"id": "a", "values": []}]}),
            "series[0].values",
            "must not be empty",
        ),
        bad(
            "/v1/models/m",
            json!({"series": [{"id": "a", "values": [1, "NaN", 2]}]}),
            "series[0].values",
            "NaN",
        ),
        bad(
            "/v1/models/m",
            json!({"series": [{"values": [1, 2, 3]}]}),
            "series[0].id",
            "required",
        ),
        bad(
            "/v1/models/m",
            json!({"series": [{"id": "a", "values": [1, 2, 3]}, {"id": "a", "values": [1, 2, 3]}]}),
            "series[1].id",
            "duplicate",
        ),
        bad(
            "/v1/models/m",
            json!({"series": [{"id": "a", "values": [1, 2, 3]}], "sizes": [3], "y": [1, 2, 3]}),
            "series",
            "not both",
        ),
        bad(
            "/v1/models/m",
            json!({"sizes": [3, 5], "y": [1, 2, 3]}),
            "y",
            "add up to 8",
        ),
        bad(
            "/v1/models/m",
            json!({"sizes": [0], "y": []}),
            "sizes[0]",
            "between 1 and",
        ),
        bad(
            "/v1/models/m",
            json!({"sizes": [2], "y": [1, 2]}),
            "sizes[0]",
            "at least 3",
        ),
        bad(
            "/v1/models/m",
            json!({"sizes": [3], "y": [1, 2, 3], "ids": ["a", "b"]}),
            "ids",
            "2 ids",
        ),
        bad(
            "/v1/models/m",
            json!({"sizes": [3], "y": [1, "x", 3]}),
            "y",
            "not a number",
        ),
        bad(
            "/v1/models/bad%20name",
            json!({"series": [{"id": "a", "values": [1, 2, 3]}]}),
            "name",
            "model name",
        ),
        bad(
            "/v1/models/%FF/forecast",
            json!({"horizon": 1}),
            "name",
            "model name",
        ),
        // POST /v1/models/{name}/forecast
        bad(
            "/v1/models/m/forecast",
            json!({"horizon": 0}),
            "horizon",
            "between 1 and",
        ),
        bad(
            "/v1/models/m/forecast",
            json!({"horizon": max_h + 1}),
            "horizon",
            "between 1 and",
        ),
        bad(
            "/v1/models/m/forecast",
            json!({"level": [80]}),
            "horizon",
            "required",
        ),
        bad(
            "/v1/models/m/forecast",
            json!({"horizon": 2, "level": [100]}),
            "level[0]",
            "between 0 and 100",
        ),
        bad(
            "/v1/models/m/forecast",
            json!({"horizon": 2, "level": [0]}),
            "level[0]",
            "between 0 and 100",
        ),
        bad(
            "/v1/models/m/forecast",
            json!({"horizon": 2, "level": ["high"]}),
            "level[0]",
            "number",
        ),
        bad(
            "/v1/models/m/forecast",
            json!({"horizon": 2, "level": 95}),
            "level",
            "array",
        ),
        bad(
            "/v1/models/m/forecast",
            json!({"horizon": 2, "series": []}),
            "series",
            "must not be empty",
        ),
        bad(
            "/v1/models/m/forecast",
            json!({"horizon": 2, "series": ["a", "zz"]}),
            "series",
            "unknown series id 'zz'",
        ),
        bad(
            "/v1/models/nobody/forecast",
            json!({"horizon": 2}),
            "model",
            "does not exist",
        ),
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let (status, body) = app
            .raw(
                case.method.clone(),
                case.path,
                case.content_type,
                case.body.clone(),
            )
            .await;
        let message = body["data"][case.field].as_str().unwrap_or("");
        if status != case.status || !message.contains(case.says) {
            failures.push(format!(
                "{} {} {}: got {status} {body}, wanted {} with {}: ...{}...",
                case.method, case.path, case.body, case.status, case.field, case.says
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

    // Several problems at once are reported together.
    let (status, body) = app
        .post(
            "/fit_model",
            json!({"data": [], "method": "magic", "season_length": -1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields = body["data"].as_object().unwrap();
    assert!(
        fields.contains_key("data")
            && fields.contains_key("method")
            && fields.contains_key("season_length"),
        "{body}"
    );

    // Body over the limit: 413 with JSend.
    let big = json!({"data": vec![1.5; 10_000]}).to_string();
    let (status, body) = app
        .raw(Method::POST, "/fit_model", Some("application/json"), big)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["data"]["body"]
            .as_str()
            .unwrap()
            .contains("16384 bytes"),
        "{body}"
    );

    // Unknown routes and wrong methods: JSend too.
    let (status, body) = app.get("/no/such/thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["data"]["path"]
        .as_str()
        .unwrap()
        .contains("/no/such/thing"));
    let (status, body) = app.get("/fit_model").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["data"]["method"].as_str().unwrap().contains("GET"));
    let (status, _) = app.raw(Method::PATCH, "/v1/models/m", None, "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, body) = app.get("/v1/models/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["data"]["name"]
        .as_str()
        .unwrap()
        .contains("does not exist"));

    // None of the bad fits registered a version.
    assert_eq!(app.latest_version("default").await, Some(1));
    assert_eq!(app.latest_version("m").await, Some(1));
    app.stop().await;
}

#[tokio::test]
async fn listings_come_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    for name in ["a", "b", "c"] {
        let (status, _) = app
            .put(
                &format!("/v1/models/{name}"),
                json!({"series": [{"id": "x", "values": [1, 2, 3]}], "method": "naive"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    for _ in 0..2 {
        app.put(
            "/v1/models/a",
            json!({"series": [{"id": "x", "values": [1, 2, 3]}], "method": "naive"}),
        )
        .await;
    }
    let (status, body) = app.get("/v1/models?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["data"]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(body["data"]["models"][0]["n_versions"], 3);
    assert_eq!(body["data"]["models"][0]["latest_version"], 3);
    assert_eq!(body["data"]["next_after"], "b");
    let (_, body) = app.get("/v1/models?limit=2&after=b").await;
    assert_eq!(body["data"]["models"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"]["models"][0]["name"], "c");
    assert!(body["data"].get("next_after").is_none());

    let (status, body) = app.get("/v1/models/a?limit=1&after=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["latest_version"], 3);
    assert_eq!(body["data"]["versions"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"]["versions"][0]["version"], 2);
    assert_eq!(body["data"]["versions"][0]["n_fallbacks"], 0);
    assert_eq!(body["data"]["versions"][0]["method"], "naive");
    assert_eq!(body["data"]["next_after"], 2);

    // A last page that is exactly full does not send the caller to an empty one.
    let (_, body) = app.get("/v1/models?limit=3").await;
    assert_eq!(body["data"]["models"].as_array().unwrap().len(), 3);
    assert!(body["data"].get("next_after").is_none(), "{body}");
    let (_, body) = app.get("/v1/models/a?limit=1&after=2").await;
    assert_eq!(body["data"]["versions"][0]["version"], 3);
    assert!(body["data"].get("next_after").is_none(), "{body}");

    for bad in [
        "/v1/models?limit=0",
        "/v1/models?limit=x",
        "/v1/models?after=%20",
    ] {
        let (status, body) = app.get(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["status"], "fail", "{bad}: {body}");
    }
    let (status, _) = app.get("/v1/models/a?after=-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}
