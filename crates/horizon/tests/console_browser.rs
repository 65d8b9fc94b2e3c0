//! The web console end to end: the real `horizon serve` binary serves the
//! embedded page; headless Chromium (the system's, driven by playwright-core
//! from npm, see `console/tests/e2e.mjs`) fits a CSV through the page, waits
//! for the chart and checks it against the API's own forecast, the models and
//! versions lists, the rollback and backtest controls, then saves a
//! screenshot under `target/`. Also checks that the committed bundle in
//! `console/dist` is what `npm run build` makes of `console/src`.

mod common;

use reqwest::StatusCode;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use test_services::tools;

/// `horizon serve` as a child process on a free port, killed on drop.
struct Served {
    child: Child,
    base: String,
}

impl Served {
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
        };
        loop {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains("listening on http://") => {
                    let start = line.find("http://").expect("address in line");
                    served.base = line[start..]
                        .split_whitespace()
                        .next()
                        .expect("address")
                        .to_string();
                    break;
                }
                Ok(_) => {}
                Err(e) => panic!("horizon serve did not say where it listens: {e}"),
            }
        }
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        served
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools::workspace_root().join("target"))
}

#[tokio::test]
async fn the_console_is_served_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = client
        .get(format!("{}/", served.base))
        .send()
        .await
        .unwrap();
    assert!(root.status().is_redirection(), "{}", root.status());
    assert_eq!(root.headers()["location"], "/ui/");
    for (path, kind, needle) in [
        ("/ui/", "text/html", "Horizon console"),
        ("/ui/app.js", "text/javascript", "u-legend"),
        ("/ui/app.css", "text/css", ".uplot"),
    ] {
        let answer = client
            .get(format!("{}{path}", served.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        let headers = answer.headers().clone();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'"));
        let etag = headers["etag"].clone();
        let body = answer.text().await.unwrap();
        assert!(body.contains(needle), "{path} lacks {needle}");
        // A browser revalidating an unchanged asset gets a 304.
        let again = client
            .get(format!("{}{path}", served.base))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    // The API around it is unchanged: unknown paths are still JSend 404s.
    let (status, body) = common::answer(
        client
            .get(format!("{}/ui/nothing-here", served.base))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], "fail");
}

#[test]
fn the_console_works_in_chromium() {
    const TEST: &str = "console_browser::the_console_works_in_chromium";
    let Some(chromium) = tools::chromium(TEST) else {
        return;
    };
    if !tools::npm_install(TEST, "console") {
        return;
    }
    let console = tools::workspace_root().join("console");

    // The committed bundle is what the sources build to.
    let check = Command::new("node")
        .args(["build.mjs", "--check"])
        .current_dir(&console)
        .output();
    let check = match check {
        Ok(out) => out,
        Err(e) => {
            test_services::skip(TEST, &format!("node could not start: {e}"));
            return;
        }
    };
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path());
    let screenshot = target_dir().join("console-screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    let model = format!("console-e2e-{}", std::process::id());
    let out = Command::new("node")
        .arg("tests/e2e.mjs")
        .current_dir(&console)
        .env("HORIZON_URL", &served.base)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT", &screenshot)
        .env("MODEL", &model)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("e2e: passed"), "{stdout}");
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    // Straight to stderr, past the test harness's capture, so a plain
    // `cargo test` shows where the screenshot is.
    let _ = writeln!(
        std::io::stderr(),
        "console screenshot: {}",
        screenshot.display()
    );
}
