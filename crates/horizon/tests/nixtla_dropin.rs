//! Nixtla's unmodified `nixtla` client, installed from PyPI into a venv
//! under target/test-tools/, forecasts and cross-validates against the real
//! binary (clients/nixtla-compat: its conftest starts `horizon serve` from
//! `HORIZON_BIN`). Without Python or PyPI the test skips loudly, and fails
//! when `CI` is set.

use std::io::Write;
use std::process::Command;
use test_services::tools::{python_env, workspace_root};

#[test]
fn nixtla_client_forecasts_and_cross_validates_against_horizon() {
    let test = "nixtla_client_forecasts_and_cross_validates_against_horizon";
    let Some(python) = python_env(test, "nixtla", &["nixtla", "pytest", "httpx"]) else {
        return;
    };
    let out = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "clients/nixtla-compat",
        ])
        .current_dir(workspace_root())
        .env("HORIZON_BIN", env!("CARGO_BIN_EXE_horizon"))
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
