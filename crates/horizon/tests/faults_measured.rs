//! The distributed fault runs of `horizon loadtest faults`, asserted for
//! what they guarantee, never for timing (the figures are in RELIABILITY.md):
//! a PostgreSQL restart during a burst of fits and forecasts, and the
//! gateway killed (SIGKILL) during fits then started again, lose no request,
//! make exactly one version per fit (clients retry with the same
//! `Idempotency-Key`) and leave none pending or failed.
//!
//! The same kill of an embedded server (workers in its process) fails the
//! fits it held ("interrupted by a restart"); each retry then gets one
//! ready version.
//!
//! Not disruptive: the PostgreSQL restarted is a private one the run starts
//! (`test_services::postgres`), and the shared RabbitMQ is used in a
//! namespace of the run's own.

use loadtest::faults::{FaultReport, Plan};
use std::time::Duration;

fn plan() -> Plan {
    Plan {
        exe: env!("CARGO_BIN_EXE_horizon").into(),
        broker: test_services::BROKER_URL.to_string(),
        fit_clients: 4,
        forecast_clients: 2,
        settle: Duration::from_secs(4),
        down: Duration::from_secs(2),
        workers: 2,
        idempotency_keys: true,
    }
}

/// RabbitMQ answers and PostgreSQL's programs are installed; else a loud
/// skip (a failure in CI).
fn can_run(test: &str) -> bool {
    if !test_services::available_or_skip(test, &[test_services::RABBITMQ]) {
        return false;
    }
    test_services::postgres::bin_dir().is_some()
        || test_services::skip(
            test,
            "PostgreSQL's programs (initdb, pg_ctl) are not installed",
        )
}

/// What every kind of run guarantees.
fn assert_one_ready_version_per_fit(r: &FaultReport) {
    assert!(r.fits > 0, "no fit was made: {r:?}");
    assert_eq!(r.fits_lost, 0, "fits never answered: {r:?}");
    assert!(
        r.refused.is_empty(),
        "answers that may not be retried: {r:?}"
    );
    assert_eq!(r.duplicates, 0, "fits with two ready versions: {r:?}");
    assert_eq!(r.fits_without_ready, 0, "fits with no ready version: {r:?}");
    assert_eq!(r.pending, 0, "versions left pending: {r:?}");
    assert_eq!(
        r.version_mismatches, 0,
        "a 200 named a version the store does not hold ready: {r:?}"
    );
    assert!(r.correct());
}

/// Distributed runs: besides, not a single extra version (the fits in
/// flight survive their gateway).
fn assert_correct(r: &FaultReport) {
    assert_one_ready_version_per_fit(r);
    assert!(r.fits > 0, "no fit was made: {r:?}");
    assert_eq!(r.fits_lost, 0, "fits never answered: {r:?}");
    assert_eq!(r.forecasts_lost, 0, "forecasts never answered: {r:?}");
    assert!(
        r.refused.is_empty(),
        "answers that may not be retried: {r:?}"
    );
    assert_eq!(r.duplicates, 0, "fits with more than one version: {r:?}");
    assert_eq!(r.versions, r.fits, "one version per fit: {r:?}");
    assert_eq!(r.pending, 0, "versions left pending: {r:?}");
    assert_eq!(r.failed_versions, 0, "versions failed: {r:?}");
    assert_eq!(
        r.version_mismatches, 0,
        "a 200 named a version the store does not hold: {r:?}"
    );
    assert!(r.correct());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_during_a_burst_loses_and_duplicates_nothing() {
    let test = "a_postgres_restart_during_a_burst_loses_and_duplicates_nothing";
    if !can_run(test) {
        return;
    }
    let report = loadtest::faults::store_restart(&plan())
        .await
        .expect("the fault run");
    eprintln!("{test}: {report:?}");
    assert!(report.forecasts > 0, "no forecast was made: {report:?}");
    assert_correct(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_during_fits_leaves_one_version_per_retried_fit() {
    let test = "a_gateway_killed_during_fits_leaves_one_version_per_retried_fit";
    if !can_run(test) {
        return;
    }
    let report = loadtest::faults::gateway_kill(&plan())
        .await
        .expect("the fault run");
    eprintln!("{test}: {report:?}");
    // The gateway was really gone for a while: clients had to retry.
    assert!(report.retried_attempts > 0, "no attempt failed: {report:?}");
    assert_correct(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_server_killed_during_fits_leaves_one_ready_version_per_retried_fit() {
    let report = loadtest::faults::embedded_kill(&plan())
        .await
        .expect("the fault run");
    eprintln!("embedded kill: {report:?}");
    assert!(report.retried_attempts > 0, "no attempt failed: {report:?}");
    assert_one_ready_version_per_fit(&report);
    // What the kill interrupted is failed, never left pending.
    assert_eq!(
        report.versions,
        report.fits + report.failed_versions,
        "{report:?}"
    );
}
