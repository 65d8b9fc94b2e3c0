//! A PostgreSQL restart during a load of fits ends none of them failed: a
//! store that is unavailable is a retry, not a verdict (issue 13, defect 11).
//!
//! The test starts a PostgreSQL server of its own (never the shared one) and
//! restarts it under the load. Run it alone with its figures:
//! `cargo test -p worker --test store_outage -- --nocapture`.

mod support;

use engine::{Method, ModelSpec, SeriesData};
use protocol::{FitJob, ModelName, NamedSeries, Version};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::postgres::{PgConfig, PgStore};
use store::{ModelStore, VersionStatus};
use transport::JobHandler;
use worker::Worker;

const CLIENTS: usize = 8;
const RESTARTS: usize = 3;

fn job(model: &ModelName, version: Version, seed: usize) -> FitJob {
    let values: Vec<f64> = (0..96)
        .map(|t| 100.0 + ((t % 12) as f64) * 3.0 + ((t * 7 + seed) % 5) as f64)
        .collect();
    FitJob {
        shard: None,
        base: None,
        model: model.clone(),
        version,
        spec: ModelSpec::new(Method::Auto, Some(12)),
        series: vec![NamedSeries {
            id: "a".into(),
            values: SeriesData::parse(values).expect("series"),
            calendar: None,
            index: None,
        }],
    }
}

/// One fit as a client saw it.
struct Outcome {
    model: ModelName,
    version: Version,
    started: Instant,
    ended: Instant,
    error: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarts_during_fits_fail_none() {
    let Some(pg) = support::PrivatePostgres::start("postgres_restarts_during_fits_fail_none")
    else {
        return;
    };
    let pg = Arc::new(pg);
    let store = Arc::new(
        PgStore::connect(&PgConfig::new(pg.url(), "horizon"))
            .await
            .expect("store"),
    );
    let store: Arc<dyn ModelStore> = store;
    let worker = Arc::new(Worker::new(store.clone()));
    let stop = Arc::new(AtomicBool::new(false));

    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (store, worker, stop) = (store.clone(), worker.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let model = ModelName::parse(&format!("m{c}")).expect("name");
            let mut outcomes = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                // The gateway's part: while the database is down registration
                // answers 503 and the client retries with the same key.
                let key = format!("fit-{i}");
                let version = loop {
                    match store.register_pending(&model, 1, Some(&key)).await {
                        Ok(r) => break r.version(),
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                };
                let started = Instant::now();
                let reply = worker.fit(job(&model, version, i)).await;
                outcomes.push(Outcome {
                    model: model.clone(),
                    version,
                    started,
                    ended: Instant::now(),
                    error: reply.err().map(|e| format!("{e:?}")),
                });
                i += 1;
            }
            outcomes
        }));
    }

    let mut outages = Vec::new();
    for _ in 0..RESTARTS {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Down once the stop has returned: a fit that started before (its
        // registration reached the server) and ends after the start lived
        // through the outage; one registered while the stop was under way
        // is not counted.
        let stopping = pg.clone();
        tokio::task::spawn_blocking(move || stopping.stop_server())
            .await
            .expect("stop");
        let down = Instant::now();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let starting = pg.clone();
        tokio::task::spawn_blocking(move || starting.start_server())
            .await
            .expect("start");
        outages.push((down, Instant::now()));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);

    let mut outcomes = Vec::new();
    for c in clients {
        outcomes.extend(c.await.expect("client"));
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.error
                .as_ref()
                .map(|e| format!("{} v{}: {e}", o.model, o.version))
        })
        .collect();
    // Fits that were running when the database went down and ended after it
    // came back: the ones the restarts put to the test.
    let spanning = outcomes
        .iter()
        .filter(|o| {
            outages
                .iter()
                .any(|(down, up)| o.started < *down && o.ended > *up)
        })
        .count();
    let mut not_ready = Vec::new();
    for c in 0..CLIENTS {
        let model = ModelName::parse(&format!("m{c}")).expect("name");
        let info = store
            .versions(&model, store::Page::default())
            .await
            .expect("versions");
        for v in info.map(|m| m.versions).unwrap_or_default() {
            if v.status != VersionStatus::Ready {
                not_ready.push(format!("{model} v{}: {:?}", v.version, v.status));
            }
        }
    }
    let mean_fit = outcomes
        .iter()
        .map(|o| o.ended - o.started)
        .sum::<Duration>()
        / outcomes.len().max(1) as u32;
    let longest = outcomes
        .iter()
        .map(|o| o.ended - o.started)
        .max()
        .unwrap_or_default();
    eprintln!(
        "outages: {:?}",
        outages.iter().map(|(d, u)| *u - *d).collect::<Vec<_>>()
    );
    eprintln!(
        "fits: {} (mean {mean_fit:?}, longest {longest:?}), spanning a restart: {spanning}, failed: {}, versions not ready: {}, restarts: {RESTARTS}",
        outcomes.len(),
        failed.len(),
        not_ready.len()
    );
    assert!(spanning > 0, "no fit was in flight during a restart");
    assert!(failed.is_empty(), "fits failed: {failed:?}");
    assert!(not_ready.is_empty(), "versions not ready: {not_ready:?}");
    store.close().await;
}
