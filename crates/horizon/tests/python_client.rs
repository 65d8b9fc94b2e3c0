//! Runs the Python client's pytest suite (clients/python/tests) against the
//! real binary: the suite's conftest starts `horizon serve` from
//! `HORIZON_BIN` on a free port with a temporary data directory. The venv
//! (the client with its `plot` extra, and pytest) is made under
//! target/test-tools/ on first use; without Python the test skips loudly,
//! and fails when `CI` is set.

use std::io::Write;
use std::process::Command;
use test_services::tools::{python_env, workspace_root};

#[test]
fn python_client_suite_passes_against_the_real_server() {
    let test = "python_client_suite_passes_against_the_real_server";
    let Some(python) = python_env(test, "client", &["./clients/python[plot]", "pytest"]) else {
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
            "clients/python/tests",
        ])
        .current_dir(workspace_root())
        .env("HORIZON_BIN", env!("CARGO_BIN_EXE_horizon"))
        .env("MPLBACKEND", "Agg")
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Straight to stderr, which the test harness does not capture: pytest's
    // summary (with any loud skip) shows in the output of `cargo test`.
    let _ = writeln!(std::io::stderr(), "{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "pytest failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
