//! API keys, tenants and quotas through the real binary: `horizon keys`
//! makes keys in the store `horizon serve` uses; a tenant never sees
//! another's models (404); quotas answer 429 with Retry-After; a server
//! without keys refuses a non-loopback address unless told it is insecure.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const ADMIN_KEY: &str = "admin-0123456789abcdef0123456789abcdef";

/// `horizon serve` as a child process; killed when dropped.
struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_cmd(data_dir: &Path, envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_horizon"));
    cmd.arg("serve")
        .env("HORIZON_LISTEN", "127.0.0.1:0")
        .env("HORIZON_DATA_DIR", data_dir)
        .env("RUST_LOG", "info")
        .env_remove("HORIZON_ADMIN_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

impl Served {
    fn start(data_dir: &Path, envs: &[(&str, &str)]) -> Self {
        let mut child = serve_cmd(data_dir, envs).spawn().expect("horizon starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after start: a closed pipe would break the server's logging.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        loop {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains("listening on http://") => {
                    let start = line.find("http://").unwrap();
                    let base = line[start..].split_whitespace().next().unwrap().to_string();
                    return Self { child, base };
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = child.kill();
                    panic!("horizon serve did not start: {e}");
                }
            }
        }
    }
}

/// Runs `horizon keys ...` on `data_dir` and returns its stdout.
fn keys(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_horizon"))
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("horizon keys runs");
    assert!(
        out.status.success(),
        "horizon keys {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The key `horizon keys create` printed on its last line.
fn create_key(data_dir: &Path, tenant: &str) -> String {
    let out = keys(data_dir, &["create", "--tenant", tenant]);
    out.lines().last().expect("a last line").trim().to_string()
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    fn new(served: &Served, key: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: served.base.clone(),
            key: key.map(str::to_string),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json::<Value>().await.expect("JSON answer");
        (status, body, headers)
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, b, _) = self.send(reqwest::Method::PUT, path, Some(body)).await;
        (s, b)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, b, _) = self.send(reqwest::Method::POST, path, Some(body)).await;
        (s, b)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, b, _) = self.send(reqwest::Method::GET, path, None).await;
        (s, b)
    }
}

fn names(list: &Value) -> Vec<String> {
    list["data"]["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

fn fit_body(n_series: usize) -> Value {
    let series: Vec<Value> = (0..n_series)
        .map(|i| json!({"id": format!("s{i}"), "values": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}))
        .collect();
    json!({"method": "naive", "series": series})
}

#[tokio::test]
async fn tenants_see_only_their_own_models_and_keys_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    // No key yet: the two-command start works without one.
    {
        let served = Served::start(dir.path(), &[]);
        let open = Client::new(&served, None);
        let (status, body) = open
            .post("/fit_model", json!({"data": [1, 2, 3, 4, 5, 6]}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = open.put("/v1/models/sales", fit_body(1)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let acme_key = create_key(dir.path(), "acme");
    let beta_key = create_key(dir.path(), "beta");
    assert!(acme_key.starts_with("hzn_") && acme_key != beta_key);
    let listing = keys(dir.path(), &["list"]);
    assert!(
        listing.contains("acme") && listing.contains("beta"),
        "{listing}"
    );
    assert!(
        !listing.contains(&acme_key[21..]),
        "list never shows a secret"
    );
    // A mistyped directory is no store, not an empty one.
    let typo = dir.path().join("typo");
    let out = Command::new(env!("CARGO_BIN_EXE_horizon"))
        .args(["keys", "list", "--data-dir"])
        .arg(&typo)
        .output()
        .expect("horizon keys runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no store in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!typo.exists());

    let served = Served::start(
        dir.path(),
        &[
            ("HORIZON_ADMIN_KEY", ADMIN_KEY),
            ("HORIZON_TENANT_MAX_SERIES", "3"),
        ],
    );
    let anonymous = Client::new(&served, None);
    let acme = Client::new(&served, Some(&acme_key));
    let beta = Client::new(&served, Some(&beta_key));
    let admin = Client::new(&served, Some(ADMIN_KEY));
    let forged = Client::new(
        &served,
        Some(&format!("{}0", &acme_key[..acme_key.len() - 1])),
    );

    // Keys are now required; probes stay open.
    let (status, body, headers) = anonymous
        .send(reqwest::Method::GET, "/v1/models", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["status"], "fail");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, body) = forged.get("/v1/models").await;
    let forged_differs = !acme_key.ends_with('0');
    if forged_differs {
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, _) = anonymous.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);

    // Same name, two tenants: two models.
    let (status, body) = acme.put("/v1/models/sales", fit_body(2)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["model"], "sales", "clients see the name only");
    assert_eq!(
        body["data"]["version"], 1,
        "acme's first version, not the open model's 2nd"
    );
    let (status, body) = acme.put("/v1/models/only-acme", fit_body(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Another tenant's model is not found: 404, not 403.
    let (status, body) = beta.get("/v1/models/only-acme").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A forecast of it answers exactly as for a model never made.
    let (status, body) = beta
        .post("/v1/models/only-acme/forecast", json!({"horizon": 2}))
        .await;
    let (never_status, never) = beta
        .post("/v1/models/never-made/forecast", json!({"horizon": 2}))
        .await;
    assert_eq!(status, never_status, "{body}");
    assert_eq!(
        body.to_string().replace("only-acme", "X"),
        never.to_string().replace("never-made", "X")
    );
    let (status, body) = beta.get("/v1/models/sales").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = beta.post("/forecast", json!({"num_steps": 2})).await;
    assert_ne!(status, StatusCode::OK, "beta has no default model: {body}");

    // Listings are per tenant; the admin key is the default tenant.
    let (_, list) = acme.get("/v1/models").await;
    assert_eq!(names(&list), ["only-acme", "sales"]);
    let (_, list) = beta.get("/v1/models").await;
    assert_eq!(names(&list), Vec::<String>::new());
    let (_, list) = admin.get("/v1/models").await;
    assert_eq!(names(&list), ["default", "sales"]);
    let (status, body) = admin.get("/v1/models/sales").await;
    assert_eq!(
        (status, body["data"]["latest_version"].as_i64()),
        (StatusCode::OK, Some(1))
    );
    let (status, body) = acme
        .post("/v1/models/sales/forecast", json!({"horizon": 2}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["series"].as_array().unwrap().len(), 2);

    // Stored series quota (3): acme stores 3, so its next fit is refused.
    let (status, body, headers) = acme
        .send(reqwest::Method::PUT, "/v1/models/more", Some(fit_body(1)))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["status"], "fail");
    assert!(headers.contains_key("retry-after"));
    // So is whatever else would store a new version of its series.
    for (path, body) in [
        (
            "/v1/models/sales/observations",
            json!({"series": [{"id": "s0", "values": [7.0]}]}),
        ),
        ("/v1/models/sales/rollback", json!({"version": 1})),
        (
            "/v2/forecast",
            json!({"series": {"sizes": [6], "y": [1, 2, 3, 4, 5, 6]}, "h": 2, "freq": "D"}),
        ),
    ] {
        let (status, body) = acme.post(path, body).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{path}: {body}");
    }
    // Beta's quota is its own.
    let (status, body) = beta.put("/v1/models/sales", fit_body(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Deletes stay inside the tenant too, and answer with the name only:
    // beta's version 1 of "sales" goes, the open model's version 1 stays.
    let (status, body) = beta.put("/v1/models/sales", fit_body(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, _) = beta
        .send(reqwest::Method::DELETE, "/v1/models/sales/versions/1", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "sales", "{body}");
    let (_, body) = admin.get("/v1/models/sales").await;
    assert_eq!(body["data"]["versions"][0]["version"], 1, "{body}");
    let (status, body, _) = beta
        .send(
            reqwest::Method::DELETE,
            "/v1/models/only-acme/versions/1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body, _) = acme
        .send(reqwest::Method::DELETE, "/v1/models/only-acme", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "only-acme", "{body}");

    // A revoked key is refused at once.
    let acme_id = &acme_key[4..20];
    let out = keys(dir.path(), &["revoke", "--tenant", "acme", acme_id]);
    assert!(out.contains("revoked"), "{out}");
    let (status, body) = acme.get("/v1/models").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn revoking_the_last_key_does_not_open_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "solo");
    let served = Served::start(dir.path(), &[]);
    let solo = Client::new(&served, Some(&key));
    let anonymous = Client::new(&served, None);
    let (status, body) = solo.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let out = keys(dir.path(), &["revoke", "--tenant", "solo", &key[4..20]]);
    assert!(out.contains("revoked"), "{out}");
    // Past the second for which "is any key live?" is trusted.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = anonymous.get("/v1/models").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = anonymous.put("/v1/models/anon", fit_body(1)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = solo.get("/v1/models").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Nixtla's client reads `detail` of this answer, 401 included.
    let (status, body) = solo.get("/validate_api_key").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["detail"], "unknown or revoked API key", "{body}");
}

#[tokio::test]
async fn a_tenant_over_its_request_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme");
    // 0.01 requests/s: a burst of one, then the next token in 100 s.
    let served = Served::start(dir.path(), &[("HORIZON_TENANT_RPS", "0.01")]);
    let acme = Client::new(&served, Some(&key));
    let (status, body) = acme.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, headers) = acme.send(reqwest::Method::GET, "/v1/models", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=100).contains(&wait), "Retry-After {wait}");
}

#[test]
fn a_public_address_without_keys_is_refused_unless_insecure_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_cmd(dir.path(), &[("HORIZON_LISTEN", "0.0.0.0:0")])
        .output()
        .expect("horizon runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without API keys"), "{stderr}");
    // Told so, it serves (and a key also lifts the refusal).
    drop(Served::start(
        dir.path(),
        &[
            ("HORIZON_LISTEN", "0.0.0.0:0"),
            ("HORIZON_INSECURE_NO_AUTH", "true"),
        ],
    ));
    create_key(dir.path(), "acme");
    drop(Served::start(
        dir.path(),
        &[("HORIZON_LISTEN", "0.0.0.0:0")],
    ));
}

#[tokio::test]
async fn concurrent_fits_cannot_all_slip_under_the_series_quota() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme");
    let served = Served::start(dir.path(), &[("HORIZON_TENANT_MAX_SERIES", "10")]);
    let acme = std::sync::Arc::new(Client::new(&served, Some(&key)));
    // Twelve fits of 4 series at once, half of them as jobs: a fit is taken
    // while the tenant stores fewer than 10 series, so 0, 4 and 8 pass and
    // the others are refused, whatever order they come in.
    let fits = (0..12).map(|i| {
        let acme = acme.clone();
        tokio::spawn(async move {
            let mut req = acme
                .http
                .put(format!("{}/v1/models/m{i}", acme.base))
                .bearer_auth(acme.key.as_deref().unwrap_or_default())
                .json(&fit_body(4));
            if i % 2 == 1 {
                req = req.header("Prefer", "respond-async");
            }
            let answer = req.send().await.expect("fit sent");
            let wait = answer
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (answer.status(), wait)
        })
    });
    let mut taken = 0;
    for fit in fits {
        let (status, wait) = fit.await.expect("fit task");
        match status {
            StatusCode::OK | StatusCode::ACCEPTED => taken += 1,
            // Refused at the door or in its turn: the quota's own wait.
            StatusCode::TOO_MANY_REQUESTS => assert_eq!(wait.as_deref(), Some("60")),
            other => panic!("unexpected answer {other}"),
        }
    }
    assert_eq!(taken, 3, "fits past the quota of 10 series at 4 each");
}

#[tokio::test]
async fn an_admin_key_with_a_trailing_newline_still_lets_its_holder_in() {
    let dir = tempfile::tempdir().unwrap();
    let key = "an-admin-key-of-more-than-32-characters";
    let served = Served::start(dir.path(), &[("HORIZON_ADMIN_KEY", &format!("{key}\n"))]);
    let (status, body) = Client::new(&served, Some(key)).get("/v1/models").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = Client::new(&served, None).get("/v1/models").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
