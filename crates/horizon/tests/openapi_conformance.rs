//! The served OpenAPI document against the real binary: every answer of a
//! tour of the API (successes, `fail`s, the documented examples sent as they
//! are) is validated with `jsonschema` against the schema the document gives
//! for its path, method and status; then schemathesis (from PyPI, in a venv
//! under target/test-tools/) generates requests from the document and checks
//! that no answer is a 5xx or breaks the document.

mod served;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use served::Served;
use std::process::Command;

/// The document's JSON schema for an answer, with `components` beside it so
/// that `#/components/...` references resolve.
fn answer_schema(doc: &Value, path: &str, method: &str, status: StatusCode) -> Option<Value> {
    let responses = &doc["paths"][path][method]["responses"];
    let exact = status.as_str().to_string();
    let range = format!("{}XX", status.as_u16() / 100);
    let response = responses
        .get(&exact)
        .or_else(|| responses.get(&range))
        .or_else(|| responses.get("default"))?;
    let mut schema = response["content"]["application/json"]["schema"].clone();
    if schema.is_null() {
        return None;
    }
    schema["components"] = doc["components"].clone();
    Some(schema)
}

fn check(doc: &Value, path: &str, method: &str, status: StatusCode, body: &Value) {
    let schema = answer_schema(doc, path, method, status).unwrap_or_else(|| {
        panic!(
            "the document has no JSON answer {status} for {method} {path}; the answer was {body}"
        )
    });
    let validator = jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("schema of {method} {path} {status} does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with {body}, which breaks the document: {errors:?}"
    );
}

/// An example from the document, `#/components/schemas/{name}/example`.
fn example(doc: &Value, name: &str) -> Value {
    let example = doc["components"]["schemas"][name]["example"].clone();
    assert!(!example.is_null(), "schema {name} has no example");
    example
}

struct Tour {
    served: Served,
    client: reqwest::Client,
    doc: Value,
    seen: Vec<(String, String)>,
}

impl Tour {
    /// Sends a request, checks its answer against the document, returns it.
    async fn call(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let (status, value, _) = self.call_async(method, template, path, body, false).await;
        (status, value)
    }

    /// [`Self::call`], with `Prefer: respond-async` when `prefer`; also
    /// answers the `Location` header, which a `202` must have.
    async fn call_async(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        body: Option<&Value>,
        prefer: bool,
    ) -> (StatusCode, Value, Option<String>) {
        let mut request = self.client.request(method.clone(), self.served.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if prefer {
            request = request.header("prefer", "respond-async");
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if status == StatusCode::ACCEPTED {
            assert!(
                location.is_some(),
                "{method} {path}: a 202 without Location"
            );
        }
        let text = response.text().await.expect("answer read");
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        let m = method.as_str().to_ascii_lowercase();
        check(&self.doc, template, &m, status, &value);
        self.seen.push((m, template.to_string()));
        (status, value, location)
    }

    /// Polls a job (each answer checked) until it is finished.
    async fn finished(&mut self, location: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (s, v) = self
                .call(Method::GET, "/v1/jobs/{id}", location, None)
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            if !matches!(v["data"]["status"].as_str(), Some("queued" | "running")) {
                return v["data"].clone();
            }
            assert!(std::time::Instant::now() < deadline, "{v}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn real_answers_follow_the_served_document() {
    let served = Served::start(&[]).await;
    let client = reqwest::Client::new();
    let doc: Value = client
        .get(served.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    // API keys are described, and optional (a server without keys is open),
    // so that the docs page can send one.
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"], json!([{}, {"api_key": []}]));
    // The document is valid JSON Schema wherever it holds schemas.
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        let mut schema = schema.clone();
        let example = schema.get("example").cloned();
        schema["components"] = doc["components"].clone();
        let validator = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"));
        // Every example is an instance of its own schema.
        if let Some(example) = example {
            let errors: Vec<String> = validator
                .iter_errors(&example)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "the example of {name} breaks it: {errors:?}"
            );
        }
    }
    let mut tour = Tour {
        served,
        client,
        doc,
        seen: Vec::new(),
    };

    // Operations.
    let (s, v) = tour.call(Method::GET, "/healthz", "/healthz", None).await;
    assert_eq!((s, &v["data"]["alive"]), (StatusCode::OK, &json!(true)));
    let (s, _) = tour.call(Method::GET, "/readyz", "/readyz", None).await;
    assert_eq!(s, StatusCode::OK);

    // The original endpoints, with the document's own examples.
    let (s, v) = tour
        .call(
            Method::POST,
            "/forecast",
            "/forecast",
            Some(&json!({"num_steps": 3})),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::BAD_REQUEST, Some("fail"))
    );
    let fit = example(&tour.doc, "SeedFitBody");
    let (s, v) = tour
        .call(Method::POST, "/fit_model", "/fit_model", Some(&fit))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let forecast = example(&tour.doc, "SeedForecastBody");
    let (s, v) = tour
        .call(Method::POST, "/forecast", "/forecast", Some(&forecast))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["forecast"].as_array().map(Vec::len), Some(6));
    let dated =
        json!({"data": [5, 7, null, 6], "start": "2024-01-01", "freq": "D", "method": "naive"});
    let (s, v) = tour
        .call(Method::POST, "/fit_model", "/fit_model", Some(&dated))
        .await;
    assert_eq!(
        (s, &v["data"]["freq"]),
        (StatusCode::OK, &json!("D")),
        "{v}"
    );
    let (s, v) = tour
        .call(
            Method::POST,
            "/forecast",
            "/forecast",
            Some(&json!({"num_steps": 2})),
        )
        .await;
    assert_eq!(
        (s, &v["data"]["ds"]),
        (StatusCode::OK, &json!(["2024-01-05", "2024-01-06"]))
    );
    let bad = json!({"data": [1, "NaN", 3], "method": "magic"});
    let (s, v) = tour
        .call(Method::POST, "/fit_model", "/fit_model", Some(&bad))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["data"]["method"].is_string() && v["data"]["data"].is_string(),
        "{v}"
    );

    // Named models: the three forms of a fit, from the document's examples.
    let t = "/v1/models/{name}";
    let series = example(&tour.doc, "V1FitBody");
    let (s, v) = tour
        .call(Method::PUT, t, "/v1/models/shop", Some(&series))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let compact = example(&tour.doc, "CompactForm");
    let (s, v) = tour
        .call(Method::PUT, t, "/v1/models/compact", Some(&compact))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let long = example(&tour.doc, "LongForm");
    let (s, v) = tour
        .call(Method::PUT, t, "/v1/models/stores", Some(&long))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["data"]["series"][0]["calendar"]["freq"].is_string(),
        "{v}"
    );
    let (s, v) = tour
        .call(
            Method::PUT,
            t,
            "/v1/models/shop",
            Some(&json!({"series": []})),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::BAD_REQUEST, Some("fail"))
    );

    let tf = "/v1/models/{name}/forecast";
    let ask = example(&tour.doc, "V1ForecastBody");
    let (s, v) = tour
        .call(Method::POST, tf, "/v1/models/shop/forecast", Some(&ask))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"]["series"][0]["intervals"].as_array().map(Vec::len),
        Some(2)
    );
    let (s, v) = tour
        .call(
            Method::POST,
            tf,
            "/v1/models/stores/forecast",
            Some(&json!({"horizon": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["data"]["series"][0]["ds"].is_array(), "{v}");
    let (s, _) = tour
        .call(
            Method::POST,
            tf,
            "/v1/models/nobody/forecast",
            Some(&json!({"horizon": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Listings, pages and unknown models.
    let (s, v) = tour
        .call(Method::GET, "/v1/models", "/v1/models", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["models"].as_array().map(Vec::len), Some(4), "{v}");
    let (s, v) = tour
        .call(Method::GET, "/v1/models", "/v1/models?limit=1", None)
        .await;
    assert_eq!(
        (s, &v["data"]["next_after"]),
        (StatusCode::OK, &json!("compact"))
    );
    let (s, v) = tour.call(Method::GET, t, "/v1/models/shop", None).await;
    assert_eq!(
        (s, &v["data"]["latest_version"]),
        (StatusCode::OK, &json!(1))
    );
    let (s, v) = tour
        .call(Method::GET, t, "/v1/models/shop?limit=1", None)
        .await;
    // Its only version: no page follows.
    assert_eq!(
        (s, &v["data"]["next_after"]),
        (StatusCode::OK, &Value::Null)
    );
    let (s, _) = tour.call(Method::GET, t, "/v1/models/nobody", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = tour
        .call(Method::GET, "/v1/models", "/v1/models?limit=0", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = tour
        .call(Method::GET, t, "/v1/models/shop?limit=1&after=0", None)
        .await;
    assert_eq!(
        (s, &v["data"]["versions"][0]["version"]),
        (StatusCode::OK, &json!(1))
    );

    // Async fits: 202, Location, the job until it succeeds.
    let (s, v, location) = tour
        .call_async(Method::PUT, t, "/v1/models/later", Some(&series), true)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let location = location.expect("Location");
    assert_eq!(
        location,
        format!("/v1/jobs/{}", v["data"]["id"].as_str().unwrap())
    );
    let job = tour.finished(&location).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["version"], 1, "{job}");
    // A finished job cannot be cancelled (409); an unknown one is a 404.
    let (s, _) = tour
        .call(Method::DELETE, "/v1/jobs/{id}", &location, None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = tour
        .call(Method::GET, "/v1/jobs/{id}", "/v1/jobs/nothing", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v, location) = tour
        .call_async(Method::POST, "/fit_model", "/fit_model", Some(&fit), true)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let job = tour.finished(&location.expect("Location")).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    // The life of a model, with the document's examples: new observations,
    // rollback, backtests, deletes.
    let observed = example(&tour.doc, "ObservationsBody");
    let (s, v) = tour
        .call(
            Method::POST,
            "/v1/models/{name}/observations",
            "/v1/models/shop/observations",
            Some(&observed),
        )
        .await;
    assert_eq!(
        (s, &v["data"]["version"]),
        (StatusCode::OK, &json!(2)),
        "{v}"
    );
    let back = example(&tour.doc, "RollbackBody");
    let (s, v) = tour
        .call(
            Method::POST,
            "/v1/models/{name}/rollback",
            "/v1/models/shop/rollback",
            Some(&back),
        )
        .await;
    assert_eq!(
        (s, &v["data"]["version"], &v["data"]["rollback_of"]),
        (StatusCode::CREATED, &json!(3), &json!(1)),
        "{v}"
    );
    let (s, v) = tour
        .call(Method::GET, t, "/v1/models/shop?limit=1", None)
        .await;
    assert_eq!((s, &v["data"]["next_after"]), (StatusCode::OK, &json!(1)));
    let (s, _) = tour
        .call(
            Method::POST,
            "/v1/models/{name}/rollback",
            "/v1/models/shop/rollback",
            Some(&json!({"version": 99})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let tb = "/v1/backtest";
    let data = example(&tour.doc, "BacktestDataBody");
    let (s, v) = tour.call(Method::POST, tb, tb, Some(&data)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["data"]["metrics"]["mae"].is_number(), "{v}");
    let (s, _, location) = tour
        .call_async(Method::POST, tb, tb, Some(&data), true)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let job = tour.finished(&location.expect("Location")).await;
    assert_eq!(job["result"], v["data"], "{job}");
    let tm = "/v1/models/{name}/backtest";
    let ask = example(&tour.doc, "ModelBacktestBody");
    let (s, v) = tour
        .call(Method::POST, tm, "/v1/models/shop/backtest", Some(&ask))
        .await;
    assert_eq!(
        (s, &v["data"]["version"]),
        (StatusCode::OK, &json!(3)),
        "{v}"
    );
    let (s, _, location) = tour
        .call_async(
            Method::POST,
            tm,
            "/v1/models/shop/backtest",
            Some(&ask),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let job = tour.finished(&location.expect("Location")).await;
    assert_eq!(job["result"], v["data"], "{job}");
    // Cancel a backtest job at once.
    let many: Vec<Value> = (0..20)
        .map(|i| json!({"id": format!("m{i}"), "values": (0..120).map(|t| ((t * (i + 3)) % 17) as f64).collect::<Vec<_>>()}))
        .collect();
    let long = json!({"series": many, "season_length": 4, "horizon": 4, "n_windows": 10});
    let (s, _, location) = tour
        .call_async(Method::POST, tb, tb, Some(&long), true)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, v) = tour
        .call(
            Method::DELETE,
            "/v1/jobs/{id}",
            &location.expect("Location"),
            None,
        )
        .await;
    assert_eq!(
        (s, &v["data"]["status"]),
        (StatusCode::OK, &json!("cancelled")),
        "{v}"
    );
    let tv = "/v1/models/{name}/versions/{version}";
    let (s, v) = tour
        .call(Method::DELETE, tv, "/v1/models/shop/versions/1", None)
        .await;
    assert_eq!(
        (s, &v["data"]["deleted"]),
        (StatusCode::OK, &json!(true)),
        "{v}"
    );
    let (s, _) = tour
        .call(Method::DELETE, tv, "/v1/models/shop/versions/3", None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = tour
        .call(Method::DELETE, t, "/v1/models/compact", None)
        .await;
    assert_eq!(
        (s, &v["data"]["deleted"]),
        (StatusCode::OK, &json!(true)),
        "{v}"
    );
    let (s, _) = tour
        .call(Method::DELETE, t, "/v1/models/compact", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Undocumented methods and routes answer the document's `Fail`.
    for (method, path, status) in [
        (Method::DELETE, "/healthz", StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/no/such/route", StatusCode::NOT_FOUND),
    ] {
        let r = tour
            .client
            .request(method, tour.served.url(path))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), status, "{path}");
        let body: Value = r.json().await.expect("JSON");
        let mut schema = json!({"$ref": "#/components/schemas/Fail"});
        schema["components"] = tour.doc["components"].clone();
        let validator = jsonschema::draft202012::new(&schema).expect("Fail compiles");
        assert!(validator.is_valid(&body), "{path}: {body}");
    }

    // The document itself, the docs page and its script, the metrics.
    let (s, _) = tour
        .call(Method::GET, "/openapi.json", "/openapi.json", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    for (path, kind) in [
        ("/docs", "text/html"),
        (gateway::openapi::RAPIDOC_PATH, "text/javascript"),
        ("/metrics", "text/plain"),
    ] {
        let r = tour
            .client
            .get(tour.served.url(path))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let ct = r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        let text = r.text().await.expect("body");
        if path == "/docs" {
            // The page loads only what this server serves.
            assert!(text.contains(gateway::openapi::RAPIDOC_PATH), "{text}");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{text}"
            );
            // RapiDoc fetches its fonts from Google unless told not to.
            assert!(text.contains(r#"load-fonts="false""#), "{text}");
        }
    }

    // Every documented JSON operation was visited, so a new endpoint fails
    // this test until the tour covers it.
    let mut missing = Vec::new();
    for (path, item) in tour.doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            let json_answer = [StatusCode::OK, StatusCode::CREATED]
                .into_iter()
                .any(|s| answer_schema(&tour.doc, path, method, s).is_some());
            let visited = tour.seen.iter().any(|(m, p)| m == method && p == path);
            if json_answer && !visited && path != "/openapi.json" {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations not visited by this tour (add them): {missing:?}"
    );
    assert!(tour.served.alive());
}

/// Schemathesis against the embedded service, a bounded number of examples
/// per operation: no 5xx, no answer that breaks the document.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_5xx_and_no_spec_violation() {
    const TEST: &str = "schemathesis_finds_no_5xx_and_no_spec_violation";
    let Some(python) =
        test_services::tools::python_env(TEST, "schemathesis", &["schemathesis==4.32.5"])
    else {
        return;
    };
    let served = Served::start(&["--fit-timeout", "20s", "--wait-timeout", "20s"]).await;
    let examples = std::env::var("HORIZON_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "10".into());
    let report = tempfile::tempdir().expect("temp dir");
    let base = served.base.clone();
    let python2 = python.clone();
    let report_dir = report.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python2)
            .args(["-m", "schemathesis.cli", "run"])
            .arg(format!("{base}/openapi.json"))
            .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"])
            .args(["--max-examples", &examples])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--seed", "1"])
            .args(["--workers", "2"])
            .args(["--request-timeout", "30"])
            .args(["--generation-database", "none", "--no-color"])
            .args(["--report", "junit", "--report-dir"])
            .arg(&report_dir)
            .output()
    })
    .await
    .expect("join")
    .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    let mut served = served;
    assert!(served.alive(), "the service died: {}", served.log_tail());
    assert!(
        output.status.success(),
        "schemathesis found failures (exit {:?}); see the output above",
        output.status.code()
    );
    let _ = python;
}
