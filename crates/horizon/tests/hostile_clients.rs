//! Hostile and careless clients against the real `horizon serve` binary:
//! slow connections, oversized answers, early rejections with a body, fits
//! beyond the admission limit, and the small holes (names `.`/`..`, hidden
//! characters in ids, a reused idempotency key, gzip bodies, repeated keys).
//! Every answer must be a JSend 4xx/503 while the server keeps serving.
//! No assertion depends on how fast anything is (bounded waits only).

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `horizon serve` on a random port with its own data directory.
struct Served {
    child: Child,
    base: String,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_horizon"));
        cmd.arg("serve")
            .env("HORIZON_LISTEN", "127.0.0.1:0")
            .env("HORIZON_DATA_DIR", dir.path())
            .env("RUST_LOG", "info")
            .env_remove("HORIZON_BROKER")
            .env_remove("HORIZON_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("horizon starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = loop {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains("listening on http://") => break line,
                Ok(_) => {}
                Err(e) => {
                    let _ = child.kill();
                    panic!("horizon serve did not start: {e}");
                }
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        let start = line.find("http://").expect("address");
        let base = line[start..]
            .split_whitespace()
            .next()
            .expect("url")
            .to_string();
        let addr = base.trim_start_matches("http://").to_string();
        Self {
            child,
            base,
            addr,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn healthz(&self) -> StatusCode {
        reqwest::Client::new()
            .get(self.url("/healthz"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map(|r| r.status())
            .unwrap_or(StatusCode::REQUEST_TIMEOUT)
    }

    /// Sends raw bytes on a new connection and reads what comes back until
    /// the server closes it (at most `limit`).
    async fn raw(&self, request: &[u8], limit: Duration) -> String {
        let mut stream = TcpStream::connect(&self.addr).await.expect("connect");
        // The server may answer and close before reading it all.
        let _ = stream.write_all(request).await;
        read_until_closed(&mut stream, limit).await
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The JSON body of a raw HTTP answer.
fn raw_body(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = request.send().await.expect("an answer");
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, headers, body)
}

fn fit_body(ids: &[&str]) -> Value {
    let series: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "values": [1, 2, 3, 4, 5, 6, 7, 8]}))
        .collect();
    json!({"series": series, "method": "naive"})
}

#[tokio::test]
async fn an_oversized_forecast_is_refused_before_any_work() {
    let served = Served::start(&[("HORIZON_MAX_FORECAST_VALUES", "10000")]);
    let client = reqwest::Client::new();
    let (status, _, _) = send(
        client
            .put(served.url("/v1/models/wide"))
            .json(&fit_body(&["a", "b", "c", "d"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // 4 series × 10,000 steps × (1 + 2 × 2) = 200,000 numbers > 10,000.
    let (status, _, body) = send(
        client
            .post(served.url("/v1/models/wide/forecast"))
            .json(&json!({"horizon": 10000, "level": [80, 95]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["status"], "fail");
    let message = body["data"]["horizon"].as_str().unwrap_or_default();
    assert!(message.contains("200000 numbers"), "{message}");
    assert!(message.contains("at most 500"), "{message}");
    // Within the cap it is answered, and one series at a time goes further.
    let (status, _, body) = send(
        client
            .post(served.url("/v1/models/wide/forecast"))
            .json(&json!({"horizon": 500, "level": [80, 95]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = send(
        client
            .post(served.url("/v1/models/wide/forecast"))
            .json(&json!({"horizon": 2000, "level": [80, 95], "series": ["a"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(served.healthz().await, StatusCode::OK);
}

/// Backtest forecasts and Nixtla's answers have the same cap, checked before
/// anything is fitted or stored.
#[tokio::test]
async fn oversized_backtests_and_nixtla_answers_are_refused_before_any_work() {
    let served = Served::start(&[("HORIZON_MAX_FORECAST_VALUES", "1000")]);
    let client = reqwest::Client::new();
    let values: Vec<f64> = (0..200).map(|i| f64::from(i % 7)).collect();
    let series = json!([{"id": "a", "values": values}, {"id": "b", "values": values}]);
    // 10 steps × 5 windows × 2 series × (2 + 2 × 2) = 600: answered; 10
    // windows are 1200: refused, and without forecasts they are answered.
    let backtest = |n_windows: u32, include: bool| {
        send(client.post(served.url("/v1/backtest")).json(&json!({
            "series": series, "method": "naive", "horizon": 10, "n_windows": n_windows,
            "level": [80, 95], "include_forecasts": include
        })))
    };
    let (status, _, body) = backtest(5, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = backtest(10, true).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["data"]["include_forecasts"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("1200 numbers"), "{body}");
    let (status, _, body) = backtest(10, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A model's backtest: the same.
    let (status, _, _) = send(
        client
            .put(served.url("/v1/models/bt"))
            .json(&json!({"series": series, "method": "naive"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(client.post(served.url("/v1/models/bt/backtest")).json(
        &json!({"horizon": 10, "n_windows": 10, "level": [80, 95], "include_forecasts": true}),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Nixtla's forecast: 2 series × 300 steps × (1 + 2 × 1) = 1800, refused
    // before its fit stores a version of the model `nixtla`.
    let y: Vec<f64> = values.iter().chain(&values).copied().collect();
    let v2 = json!({"series": {"sizes": [200, 200], "y": y}, "h": 300, "freq": "D",
                    "level": [80], "model": "naive"});
    let (status, _, body) = send(client.post(served.url("/v2/forecast")).json(&v2)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["data"]["h"].as_str().is_some(), "{body}");
    let (status, _, body) = send(client.get(served.url("/v1/models/nixtla"))).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a version was stored: {body}"
    );
    let cv = json!({"series": {"sizes": [200, 200], "y": y}, "h": 10, "n_windows": 10,
                    "freq": "D", "level": [80, 95], "model": "naive"});
    let (status, _, body) = send(client.post(served.url("/v2/cross_validation")).json(&cv)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["data"]["n_windows"].as_str().is_some(), "{body}");
    assert_eq!(served.healthz().await, StatusCode::OK);
}

/// `POST /forecast` names its own field (`num_steps`) when refused.
#[tokio::test]
async fn an_oversized_original_forecast_names_num_steps() {
    let served = Served::start(&[("HORIZON_MAX_FORECAST_VALUES", "100")]);
    let client = reqwest::Client::new();
    let (status, _, _) = send(
        client
            .post(served.url("/fit_model"))
            .json(&json!({"data": [1, 2, 3, 4], "method": "naive"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(
        client
            .post(served.url("/forecast"))
            .json(&json!({"num_steps": 101})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["data"]["num_steps"].as_str().unwrap_or_default();
    assert!(message.contains("at most 100"), "{body}");
    let (status, _, _) = send(
        client
            .post(served.url("/forecast"))
            .json(&json!({"num_steps": 100})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn slow_connections_are_closed_and_healthz_keeps_answering() {
    let served = Served::start(&[("HORIZON_HEADER_TIMEOUT", "1s")]);
    // 300 connections that send half a header and then nothing.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(&served.addr).await.expect("connect");
        s.write_all(b"POST /v1/models/x HTTP/1.1\r\nHost: a\r\n")
            .await
            .expect("write");
        slow.push(s);
    }
    assert_eq!(served.healthz().await, StatusCode::OK);
    // The server closes every one of them (read returns 0 or an error).
    for s in &mut slow {
        let mut buf = [0u8; 1024];
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(_)) => continue, // a 408 answer before the close
                Err(_) => break false,
            }
        };
        assert!(closed, "a slow connection stayed open");
    }
    // An idle keep-alive connection is closed too.
    let mut idle = TcpStream::connect(&served.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(30), idle.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle keep-alive connection stayed open");
    assert_eq!(served.healthz().await, StatusCode::OK);
}

#[tokio::test]
async fn connections_over_the_cap_get_a_jsend_503_and_the_cap_frees_up() {
    let served = Served::start(&[
        ("HORIZON_HEADER_TIMEOUT", "2s"),
        ("HORIZON_MAX_CONNECTIONS", "20"),
    ]);
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(&served.addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("write");
        slow.push(s);
    }
    // Give the server a moment to accept them all (bounded, not asserted).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = served
        .raw(
            b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
            Duration::from_secs(10),
        )
        .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("retry-after:"), "{answer}");
    assert!(lower.contains("connection: close"), "{answer}");
    assert_eq!(raw_body(&answer)["status"], "error");
    // Once the slow ones time out, the server answers again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while served.healthz().await != StatusCode::OK {
        assert!(Instant::now() < deadline, "healthz never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(slow);
}

#[tokio::test]
async fn early_rejections_with_a_body_close_the_connection_and_say_so() {
    let served = Served::start(&[]);
    let big = vec![b'1'; 1 << 20];
    for head in [
        // 405: the method is wrong, the body is never read.
        "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n",
        // 400: the content type is wrong, the body is never read.
        "PUT /v1/models/m HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n",
        // 415: an encoded body is refused, not parsed.
        "PUT /v1/models/m HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n",
    ] {
        let mut request = format!("{head}Content-Length: {}\r\n\r\n", big.len()).into_bytes();
        request.extend_from_slice(&big);
        let answer = served.raw(&request, Duration::from_secs(20)).await;
        let status_line = answer.lines().next().unwrap_or_default().to_string();
        assert!(
            ["405", "400", "415"].iter().any(|s| status_line.contains(s)),
            "{status_line}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert_eq!(raw_body(&answer)["status"], "fail", "{answer}");
    }
    // A normal request on a new connection is fine.
    assert_eq!(served.healthz().await, StatusCode::OK);
}

#[tokio::test]
async fn what_the_http_layer_refuses_is_answered_in_jsend_where_it_can_be() {
    let served = Served::start(&[]);
    let refused = |answer: &str, status: &str, field: &str| {
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        let body = raw_body(answer);
        assert_eq!(body["status"], "fail", "{answer}");
        assert!(body["data"][field].is_string(), "{answer}");
    };
    // Headers over our limits (below hyper's own): a JSend 431.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let answer = served.raw(big.as_bytes(), Duration::from_secs(20)).await;
    refused(&answer, "431", "headers");
    let many: String = (0..150).map(|i| format!("X-{i}: a\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    let answer = served.raw(many.as_bytes(), Duration::from_secs(20)).await;
    refused(&answer, "431", "headers");
    // Content-Length repeated with the same value (hyper takes it once), or
    // beside Transfer-Encoding (the chunked body wins): answered in JSend,
    // and the connection closed after the error.
    for request in [
        &b"PUT /v1/models/m HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
           Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"[..],
        &b"PUT /v1/models/m HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
           Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"[..],
    ] {
        let answer = served.raw(request, Duration::from_secs(20)).await;
        refused(&answer, "400", "series");
    }
    // Two different Content-Lengths: hyper refuses the head itself, before any
    // handler runs, with an empty 400 (see RELIABILITY.md); it still closes
    // and says so.
    let answer = served
        .raw(
            b"PUT /v1/models/m HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
              Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            Duration::from_secs(20),
        )
        .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    // A success whose request body was never read: the connection is closed
    // after it, and the answer says so.
    let mut request = format!(
        "GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        1 << 20
    )
    .into_bytes();
    request.extend_from_slice(&vec![b'1'; 1 << 20]);
    let answer = served.raw(&request, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    // A request whose body was read keeps its connection.
    let client = reqwest::Client::new();
    let (status, headers, _) = send(
        client
            .put(served.url("/v1/models/kept"))
            .json(&fit_body(&["a"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("connection"), "{headers:?}");
    assert_eq!(served.healthz().await, StatusCode::OK);
}

#[tokio::test]
async fn column_bodies_over_the_limits_are_refused_before_their_values_are_read() {
    let served = Served::start(&[]);
    let client = reqwest::Client::new();
    // 30 million points announced for one series: refused from 'sizes'.
    let y = vec![1u8; 1000];
    let (status, _, body) = send(
        client
            .put(served.url("/v1/models/huge"))
            .json(&json!({"sizes": [30_000_000], "y": y})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["data"]["sizes[0]"].is_string(), "{body}");
    // One series of the long form longer than the limit: refused from 'unique_id'.
    let ids = vec!["a"; engine::MAX_SERIES_LEN + 1];
    let (status, _, body) = send(
        client
            .put(served.url("/v1/models/huge"))
            .json(&json!({"unique_id": ids, "y": [1, 2, 3]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["data"]["y"].as_str().unwrap_or_default();
    assert!(message.contains("series 'a': has more than"), "{body}");
    assert_eq!(served.healthz().await, StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408() {
    let served = Served::start(&[("HORIZON_BODY_TIMEOUT", "1s")]);
    let answer = served
        .raw(
            b"PUT /v1/models/m HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"series\": [",
            Duration::from_secs(30),
        )
        .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(raw_body(&answer)["status"], "fail");
}

#[tokio::test]
async fn fits_beyond_the_admission_limit_get_503_and_abandoned_fits_can_be_found() {
    let served = Served::start(&[
        ("HORIZON_MAX_FITS", "1"),
        ("HORIZON_FAULT_DELAY_MS", "3000"),
    ]);
    let client = reqwest::Client::new();
    // A fit whose client gives up at once: it goes on and holds the slot.
    let abandoned = client
        .put(served.url("/v1/models/gone"))
        .json(&fit_body(&["a"]))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(abandoned.is_err(), "the 3 s fit answered within 0.5 s");
    let (status, headers, body) = send(
        client
            .put(served.url("/v1/models/other"))
            .json(&fit_body(&["a"])),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "error");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    // The abandoned fit is kept: its version settles and can be found.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = send(client.get(served.url("/v1/models/gone"))).await;
        if status == StatusCode::OK && body["data"]["versions"][0]["status"] == "ready" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the abandoned fit never settled: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Its slot is free again.
    let (status, _, body) = send(
        client
            .put(served.url("/v1/models/other"))
            .json(&fit_body(&["a"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_small_holes_are_closed() {
    let served = Served::start(&[]);
    let client = reqwest::Client::new();
    // Names '.' and '..', sent raw: HTTP clients resolve them away.
    let fit = fit_body(&["a"]).to_string();
    for name in [".", "..", "%2E%2E"] {
        let request = format!(
            "PUT /v1/models/{name} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{fit}",
            fit.len()
        );
        let answer = served
            .raw(request.as_bytes(), Duration::from_secs(20))
            .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{name}: {answer}");
        assert!(raw_body(&answer)["data"]["name"].is_string(), "{answer}");
    }
    // Control and bidirectional characters in series ids.
    for id in ["a\u{0}b", "evil\u{202E}txt", "x\u{2066}y", "tab\there"] {
        let (status, _, body) = send(
            client
                .put(served.url("/v1/models/ids"))
                .json(&fit_body(&[id])),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id:?}: {body}");
        let message = body["data"]["series[0].id"].as_str().unwrap_or_default();
        assert!(message.contains("control or bidirectional"), "{body}");
    }
    let (status, _, body) = send(
        client
            .put(served.url("/v1/models/ids"))
            .json(&json!({"sizes": [3], "y": [1, 2, 3], "ids": ["ok\u{200F}"]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Repeated keys.
    let (status, _, body) = send(
        client
            .put(served.url("/v1/models/dup"))
            .header("content-type", "application/json")
            .body(r#"{"series": [{"id": "a", "values": [1, 2, 3]}], "method": "naive", "method": "ses"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["data"]["method"]
            .as_str()
            .unwrap_or_default()
            .contains("more than once"),
        "{body}"
    );
    // gzip: 415, not "malformed JSON".
    let (status, _, body) = send(
        client
            .put(served.url("/v1/models/gz"))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0]),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(body["data"]["content-encoding"].is_string(), "{body}");
    // An idempotency key reused: same body → same version; another → 422.
    let keyed = |body: Value| {
        client
            .put(served.url("/v1/models/keyed"))
            .header("idempotency-key", "key-1")
            .json(&body)
    };
    let (status, _, first) = send(keyed(fit_body(&["a"]))).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, headers, again) = send(keyed(fit_body(&["a"]))).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["data"]["version"], first["data"]["version"]);
    assert_eq!(headers["idempotent-replayed"], "true");
    let (status, _, other) = send(keyed(fit_body(&["b"]))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
    assert!(other["data"]["Idempotency-Key"].is_string(), "{other}");
    let (_, _, model) = send(client.get(served.url("/v1/models/keyed"))).await;
    assert_eq!(model["data"]["latest_version"], 1, "{model}");
    // A series longer than the limit is refused (before it is all decoded).
    let long = vec![1u8; engine::MAX_SERIES_LEN + 1];
    let (status, _, body) = send(
        client
            .put(served.url("/v1/models/long"))
            .json(&json!({"series": [{"id": "a", "values": long}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["data"]["series[0].values"]
            .as_str()
            .unwrap_or_default()
            .contains("at most"),
        "{body}"
    );
    assert_eq!(served.healthz().await, StatusCode::OK);
}
