//! Models survive a restart: in-process (stop the app, start it again on the
//! same data directory) and through the real `horizon serve` binary stopped
//! with SIGTERM and configured through its environment variables. A version
//! left pending by a process that died is reported failed after the restart.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use store::{ModelStore, SqliteStore};

#[tokio::test]
async fn fitted_models_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    let (status, _) = app
        .post(
            "/fit_model",
            json!({"data": [3, 1, 4, 1, 5, 9, 2, 6], "method": "ses"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .put(
            "/v1/models/kept",
            json!({"series": [{"id": "a", "values": [1, 2, 3, 4, 5, 6]}, {"id": "b", "values": [9, 8, 9, 8, 9, 8]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, seed_before) = app.post("/forecast", json!({"num_steps": 4})).await;
    let (_, named_before) = app
        .post(
            "/v1/models/kept/forecast",
            json!({"horizon": 3, "level": [90]}),
        )
        .await;
    app.stop().await;

    let app = TestServer::start(dir.path()).await;
    let (status, seed_after) = app.post("/forecast", json!({"num_steps": 4})).await;
    assert_eq!(status, StatusCode::OK, "{seed_after}");
    assert_eq!(seed_before, seed_after);
    let (_, named_after) = app
        .post(
            "/v1/models/kept/forecast",
            json!({"horizon": 3, "level": [90]}),
        )
        .await;
    assert_eq!(named_before, named_after);
    // Versions go on counting from where they were.
    let (_, body) = app
        .put(
            "/v1/models/kept",
            json!({"series": [{"id": "a", "values": [1, 1, 1]}]}),
        )
        .await;
    assert_eq!(body["data"]["version"], 2);
    app.stop().await;
}

#[tokio::test]
async fn a_version_interrupted_by_a_crash_is_failed_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        // What a process that died mid-fit leaves behind: a pending version.
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let model = protocol::ModelName::parse("crashed").unwrap();
        store.register_pending(&model, 1, None).await.unwrap();
        store.close().await;
    }
    let app = TestServer::start(dir.path()).await;
    let (status, body) = app
        .post("/v1/models/crashed/forecast", json!({"horizon": 1}))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("version 1") && message.contains("interrupted by a restart"),
        "{body}"
    );
    // A new fit recovers the model.
    let (status, body) = app
        .put(
            "/v1/models/crashed",
            json!({"series": [{"id": "a", "values": [2, 2, 2]}], "method": "naive"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post("/v1/models/crashed/forecast", json!({"horizon": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], 2);
    app.stop().await;
}

/// `horizon serve` as a child process, with its log lines on a channel.
struct Served {
    child: Child,
    base: String,
    lines: mpsc::Receiver<String>,
}

impl Served {
    /// Starts the binary configured through environment variables only.
    fn start(data_dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_horizon"))
            .arg("serve")
            .env("HORIZON_LISTEN", "127.0.0.1:0")
            .env("HORIZON_DATA_DIR", data_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("horizon starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Self {
            child,
            base: String::new(),
            lines,
        };
        let line = served.wait_for_line("listening on http://");
        let start = line.find("http://").expect("address in line");
        served.base = line[start..].split_whitespace().next().unwrap().to_string();
        served
    }

    fn wait_for_line(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("no log line with '{needle}' from horizon serve: {e}");
                }
            }
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.wait_for_line("SIGTERM received");
        let exit = self.child.wait().expect("horizon exits");
        assert!(exit.success(), "horizon serve exited with {exit}");
    }
}

#[tokio::test]
async fn the_binary_keeps_models_across_sigterm_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let served = Served::start(dir.path());
    let (status, body) = common::answer(
        client
            .post(format!("{}/fit_model", served.base))
            .json(&json!({"data": [5, 6, 5, 6, 5, 6, 5, 6], "season_length": 2}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let forecast = |base: String| {
        let client = client.clone();
        async move {
            common::answer(
                client
                    .post(format!("{base}/forecast"))
                    .json(&json!({"num_steps": 4}))
                    .send()
                    .await,
            )
            .await
        }
    };
    let before = forecast(served.base.clone()).await;
    assert_eq!(before.0, StatusCode::OK, "{}", before.1);
    served.terminate();

    let served = Served::start(dir.path());
    let after = forecast(served.base.clone()).await;
    assert_eq!(before, after);
    served.terminate();
}
