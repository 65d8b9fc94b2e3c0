//! Async fit jobs and the life of a model, through the real `horizon serve`
//! binary (embedded mode): `Prefer: respond-async` and the size threshold,
//! job progress and result, cancel, a restart while a job runs, rollback
//! after the interrupted refit, version pinning, deletes and retention.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `horizon serve` as a child process on a random port.
struct Served {
    child: Child,
    base: String,
    http: Client,
}

impl Served {
    fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_horizon"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--async-points", "10"])
            .args(["--keep-versions", "3", "--prune-grace", "0s"])
            .env("HORIZON_DATA_DIR", dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("horizon starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("horizon says where it listens");
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        Self {
            child,
            base,
            http: Client::new(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        prefer_async: bool,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if prefer_async {
            request = request.header("Prefer", "respond-async");
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json::<Value>().await.expect("JSON answer");
        (status, headers, body)
    }

    async fn put(
        &self,
        path: &str,
        body: Value,
        prefer_async: bool,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::PUT, path, Some(body), prefer_async)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(reqwest::Method::POST, path, Some(body), false)
            .await;
        (s, b)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.send(reqwest::Method::GET, path, None, false).await;
        (s, b)
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.send(reqwest::Method::DELETE, path, None, false).await;
        (s, b)
    }

    /// Polls a job until it is finished.
    async fn finished_job(&self, location: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get(location).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let state = body["data"]["status"].as_str().unwrap().to_string();
            if !matches!(state.as_str(), "queued" | "running") {
                return body["data"].clone();
            }
            assert!(Instant::now() < deadline, "job never finished: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops with SIGTERM (graceful) or SIGKILL (a crash).
    fn stop(mut self, crash: bool) {
        let signal = if crash { "-KILL" } else { "-TERM" };
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        self.child.wait().expect("horizon exits");
    }
}

fn series(a: &[f64], b: &[f64]) -> Value {
    json!({"series": [{"id": "a", "values": a}, {"id": "b", "values": b}], "method": "ses"})
}

fn location(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn jobs_cancel_restart_rollback_pinning_deletes_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let app = Served::start(dir.path(), &[]);

    // Asked for: 202, Location, Preference-Applied, the version registered.
    let (status, headers, body) = app
        .put("/v1/models/m", series(&[1., 2., 3.], &[5., 5., 6.]), true)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(headers["preference-applied"], "respond-async");
    assert_eq!(body["data"]["version"], 1);
    let job1 = location(&headers);
    assert!(job1.starts_with("/v1/jobs/"), "{job1}");
    let done = app.finished_job(&job1).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["kind"], "fit");
    assert_eq!(done["progress"], json!({"done": 2, "total": 2}));
    assert_eq!(done["result"]["version"], 1);
    assert_eq!(done["result"]["series"].as_array().unwrap().len(), 2);
    assert!(done["finished_at"].is_string() && done["created_at"].is_string());
    let (_, f1) = app
        .post("/v1/models/m/forecast", json!({"horizon": 2}))
        .await;
    assert_eq!(f1["data"]["version"], 1);

    // Small fits stay synchronous; over the threshold (10 values) they run
    // as jobs without being asked.
    let (status, _, body) = app
        .put("/v1/models/m", series(&[9., 8., 9.], &[1., 1., 2.]), false)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], 2);
    let big: Vec<f64> = (0..8).map(f64::from).collect();
    let (status, headers, body) = app.put("/v1/models/m", series(&big, &big), false).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(headers.get("preference-applied").is_none());
    let done = app.finished_job(&location(&headers)).await;
    assert_eq!(
        (done["status"].clone(), done["version"].clone()),
        (json!("succeeded"), json!(3))
    );

    // Pinning: exactly version 1, while version 3 is the newest.
    let (status, pinned) = app
        .post("/v1/models/m/forecast", json!({"horizon": 2, "version": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{pinned}");
    assert_eq!(pinned, f1);
    let (status, body) = app
        .post(
            "/v1/models/m/forecast",
            json!({"horizon": 2, "version": 99}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Deletes: never the newest; an older one, then it cannot be pinned.
    let (status, body) = app.delete("/v1/models/m/versions/3").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app.delete("/v1/models/m/versions/2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .post("/v1/models/m/forecast", json!({"horizon": 2, "version": 2}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete("/v1/models/m/versions/2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Retention (--keep-versions 3): after versions 4 and 5, version 1 goes.
    for v in [4, 5] {
        let (status, _, body) = app
            .put("/v1/models/m", series(&[1., 2., 4.], &[3., 3., 3.]), false)
            .await;
        assert_eq!(
            (status, body["data"]["version"].clone()),
            (StatusCode::OK, json!(v))
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = app.get("/v1/models/m").await;
        let versions: Vec<i64> = body["data"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        if versions == [3, 4, 5] {
            break;
        }
        assert!(Instant::now() < deadline, "not pruned: {versions:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, f5) = app
        .post("/v1/models/m/forecast", json!({"horizon": 2, "version": 5}))
        .await;
    app.stop(false);

    // A slow worker: jobs stay unfinished long enough to cancel one and to
    // crash the service under the other.
    let app = Served::start(dir.path(), &[("HORIZON_FAULT_DELAY_MS", "30000")]);
    let (status, headers, body) = app
        .put("/v1/models/m", series(&[7., 7., 7.], &[7., 7., 7.]), true)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["data"]["version"], 6);
    let interrupted = location(&headers);
    let (status, headers, _) = app
        .put(
            "/v1/models/other",
            series(&[1., 2., 3.], &[1., 2., 3.]),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let cancelled = location(&headers);
    let (status, body) = app.delete(&cancelled).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "cancelled", "{body}");
    let (status, body) = app.delete(&cancelled).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, body) = app.get("/v1/models/other").await;
    assert_eq!(body["data"]["versions"][0]["status"], "failed");
    assert_eq!(body["data"]["versions"][0]["reason"], "cancelled");
    let (status, body) = app.get("/v1/jobs/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.stop(true);

    // After the crash: the running job failed with a clear error, the model
    // answers its failed newest version, and a rollback brings it back.
    let app = Served::start(dir.path(), &[]);
    let job = app.finished_job(&interrupted).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("interrupted by a restart"),
        "{job}"
    );
    let (status, _) = app
        .post("/v1/models/m/forecast", json!({"horizon": 2}))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, body) = app
        .post("/v1/models/m/forecast", json!({"horizon": 2, "version": 6}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app
        .post("/v1/models/m/rollback", json!({"version": 6}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app
        .post("/v1/models/m/rollback", json!({"version": 99}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .post("/v1/models/m/rollback", json!({"version": 5}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (
            body["data"]["version"].clone(),
            body["data"]["rollback_of"].clone()
        ),
        (json!(7), json!(5))
    );
    let (status, now) = app
        .post("/v1/models/m/forecast", json!({"horizon": 2}))
        .await;
    assert_eq!(status, StatusCode::OK, "{now}");
    assert_eq!(now["data"]["version"], 7);
    assert_eq!(now["data"]["series"], f5["data"]["series"]);

    // Delete the model: gone, and fitted again it continues its numbers.
    let (status, body) = app.delete("/v1/models/m").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.get("/v1/models/m").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&interrupted).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete("/v1/models/m").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = app
        .put("/v1/models/m", series(&[1., 2., 3.], &[1., 2., 3.]), false)
        .await;
    assert_eq!(
        (status, body["data"]["version"].clone()),
        (StatusCode::OK, json!(8))
    );
    app.stop(false);
}
