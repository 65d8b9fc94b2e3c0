//! Clients that hang up during registration: 1,000 fits whose TCP
//! connections are reset (SO_LINGER 0, then close) 0 to 4 ms after the
//! request is sent, against the real HTTP server. Whatever moment the reset
//! hits, a registered version must still be fitted: afterwards no version is
//! left pending, and a retry with the same `Idempotency-Key` succeeds.
//!
//! Also: a replayed failure carries `Idempotent-Replayed: true`.
//!
//! Prints the figure recorded in RELIABILITY.md:
//! `cargo test -p horizon --test embedded_reset_fits -- --nocapture`

mod common;

use common::TestServer;
use protocol::ModelName;
use std::time::{Duration, Instant};
use store::{ModelStore, Page, VersionInfo, VersionStatus, MAX_PAGE};
use tokio::io::AsyncWriteExt;

const FITS: usize = 1000;
const MODELS: usize = 20;
const AT_ONCE: usize = 32;

fn body(i: usize) -> String {
    let values: Vec<String> = (0..24)
        .map(|t| ((t * 7 + i) % 13 + 1).to_string())
        .collect();
    format!(
        r#"{{"series": [{{"id": "a", "values": [{}]}}], "method": "naive"}}"#,
        values.join(",")
    )
}

fn path(i: usize) -> String {
    format!("/v1/models/reset{}", i % MODELS)
}

fn key(i: usize) -> String {
    format!("reset-key-{i}")
}

/// Sends fit `i` and resets the connection `delay` after the last byte.
/// Every version of the test's models, page by page.
async fn all_versions(store: &dyn ModelStore) -> Vec<VersionInfo> {
    let mut all = Vec::new();
    for m in 0..MODELS {
        let name = ModelName::parse(&format!("reset{m}")).expect("a valid name");
        let mut after = None;
        while let Some(info) = store
            .versions(&name, Page::new(MAX_PAGE, after))
            .await
            .expect("versions")
        {
            let last = info.versions.last().map(|v| v.version);
            all.extend(info.versions);
            match last {
                Some(v) => after = Some(v),
                None => break,
            }
        }
    }
    all
}

async fn fit_and_reset(addr: &str, i: usize, delay: Duration) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let body = body(i);
    let request = format!(
        "PUT {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Idempotency-Key: {}\r\nContent-Length: {}\r\n\r\n{body}",
        path(i),
        key(i),
        body.len()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    tokio::time::sleep(delay).await;
    // An abortive close: the server sees a reset, not an orderly FIN.
    let _ = stream.set_zero_linger();
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fits_reset_mid_registration_leave_nothing_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let addr = server.base.trim_start_matches("http://").to_string();

    // Resets 0 to 4 ms after sending, spread pseudo-randomly (no seed to
    // manage, the same spread every run).
    let mut lcg: u64 = 0x2545_f491_4f6c_dd1d;
    let delays: Vec<Duration> = (0..FITS)
        .map(|_| {
            lcg = lcg
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            Duration::from_micros((lcg >> 33) % 4_001)
        })
        .collect();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    let mut tasks = Vec::with_capacity(FITS);
    for (i, delay) in delays.into_iter().enumerate() {
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            fit_and_reset(&addr, i, delay).await;
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }

    // Bounded settle time: every registered fit is dispatched at once, and
    // each takes milliseconds.
    let settle = Duration::from_secs(60);
    let started = Instant::now();
    let (registered, pending) = loop {
        let versions = all_versions(server.store.as_ref()).await;
        let pending = versions
            .iter()
            .filter(|v| v.status == VersionStatus::Pending)
            .count();
        if pending == 0 || started.elapsed() > settle {
            break (versions.len(), pending);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "versions left pending after {FITS} reset fits: {pending} \
         ({registered} registered, settle limit {settle:?})"
    );
    assert_eq!(pending, 0, "versions left pending by clients that hung up");
    let failed: Vec<_> = all_versions(server.store.as_ref())
        .await
        .into_iter()
        .filter(|v| matches!(v.status, VersionStatus::Failed { .. }))
        .collect();
    assert!(failed.is_empty(), "fits failed: {failed:?}");

    // Every retry with the same key succeeds, with the version its key
    // registered when there was one.
    let mut replayed = 0;
    for i in 0..FITS {
        let response = server
            .client
            .put(server.url(&path(i)))
            .header("idempotency-key", key(i))
            .header("content-type", "application/json")
            .body(body(i))
            .send()
            .await
            .expect("retry sent");
        let was_replayed = response.headers().get("idempotent-replayed").is_some();
        let (status, answer) = common::answer(Ok(response)).await;
        assert_eq!(status, 200, "retry of fit {i}: {answer}");
        assert_eq!(answer["data"]["status"], "ready", "{answer}");
        replayed += usize::from(was_replayed);
    }
    assert_eq!(
        replayed, registered,
        "each registered key answers its own version"
    );
    println!("retries: {FITS} succeeded, {replayed} of them replays");
    server.stop().await;
}

#[tokio::test]
async fn a_replayed_failure_says_it_is_a_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    server.control.doom("doomed");
    let fit = || async {
        let response = server
            .client
            .put(server.url("/v1/models/doomed"))
            .header("idempotency-key", "doomed-key")
            .header("content-type", "application/json")
            .body(body(0))
            .send()
            .await
            .expect("sent");
        let replayed = response.headers().get("idempotent-replayed").cloned();
        let (status, answer) = common::answer(Ok(response)).await;
        (status, answer, replayed)
    };
    let (status, answer, replayed) = fit().await;
    assert_eq!(status, 500, "{answer}");
    assert_eq!(replayed, None, "the first answer is no replay");
    let (status, answer, replayed) = fit().await;
    assert_eq!(status, 500, "{answer}");
    assert_eq!(answer["data"]["version"], 1, "{answer}");
    assert_eq!(
        replayed.as_ref().map(|v| v.as_bytes()),
        Some(&b"true"[..]),
        "a replayed failure carries Idempotent-Replayed"
    );
    server.stop().await;
}
