//! Nixtla's unmodified `nixtla` client, installed from PyPI into a venv
//! under target/test-tools/, forecasts and cross-validates against the real
//! binary (clients/nixtla-compat: its conftest starts `horizon serve` from
//! `HORIZON_BIN`). Without Python or PyPI the test skips loudly, and fails
//! when `CI` is set.
//!
//! In distributed mode the same client runs against a gateway and a worker
//! process: the fits behind its forecasts show in the worker's log, since the
//! TimeGPT endpoints translate to the normal path and compute nothing on the
//! gateway.

mod distributed_support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use test_services::tools::{python_env, workspace_root};

/// Runs the drop-in suite (`-k` selects tests) with `env`; panics with its
/// output if it fails.
fn pytest(python: &Path, select: Option<&str>, env: &[(&str, &str)]) {
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]);
    if let Some(select) = select {
        cmd.args(["-k", select]);
    }
    let out = cmd
        .arg("clients/nixtla-compat")
        .current_dir(workspace_root())
        .env("HORIZON_BIN", env!("CARGO_BIN_EXE_horizon"))
        .envs(env.iter().copied())
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Straight to stderr, which the test harness does not capture.
    let _ = writeln!(std::io::stderr(), "{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "pytest failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

#[test]
fn nixtla_client_forecasts_and_cross_validates_against_horizon() {
    let test = "nixtla_client_forecasts_and_cross_validates_against_horizon";
    let Some(python) = python_env(test, "nixtla", &["nixtla", "pytest", "httpx"]) else {
        return;
    };
    pytest(&python, None, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn nixtla_client_runs_on_the_workers_in_distributed_mode() {
    let test = "nixtla_client_runs_on_the_workers_in_distributed_mode";
    if !distributed_support::services_or_skip(test) {
        return;
    }
    let Some(python) = python_env(test, "nixtla", &["nixtla", "pytest", "httpx"]) else {
        return;
    };
    // The worker crate's own log lines ("fit done", with the model) too.
    let log = ("RUST_LOG", "warn,horizon=info,transport=debug,worker=info");
    let cluster = distributed_support::Cluster::start("nixtla", 1, &[log]).await;
    let before = cluster.count_in_worker_logs("model=nixtla");
    let select = "usual_frame or forecast_job or cross_validation_job or partitioned";
    let base = cluster.base.clone();
    tokio::task::spawn_blocking(move || {
        pytest(&python, Some(select), &[("HORIZON_TEST_URL", &base)])
    })
    .await
    .expect("pytest ran");
    // Each TimeGPT forecast is a fit of the tenant's model `nixtla`, done
    // (and logged) by the worker process.
    let fits = cluster.count_in_worker_logs("model=nixtla") - before;
    assert!(
        fits >= 4,
        "the worker logged {fits} lines about model nixtla:\n{}",
        cluster.log_tail("worker0.log")
    );
}
