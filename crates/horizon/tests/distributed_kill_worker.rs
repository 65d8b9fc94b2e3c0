//! Fault test: `kill -9` a worker process during a burst of 1,000 mixed fits
//! and forecasts. Every request must be answered with success (the jobs the
//! dead worker held are redelivered to the others), no fit is lost or
//! duplicated (the versions in the store are exactly the fits answered), and
//! every forecast is computed from the version it names.

mod distributed_support;

use distributed_support::{services_or_skip, tagged, Cluster};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

const MODELS: usize = 4;
const REQUESTS: usize = 1000;
const CONCURRENCY: usize = 32;

#[derive(Debug)]
enum Outcome {
    Fit {
        model: usize,
        version: i64,
    },
    Forecast {
        model: usize,
        before: i64,
        version: i64,
        mean: f64,
    },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_a_worker_during_a_burst_of_1000_requests() {
    if !services_or_skip("kill_9_a_worker_during_a_burst_of_1000_requests") {
        return;
    }
    // Slow workers (50 ms per job) so the killed one surely holds jobs.
    let mut cluster = Cluster::start("kill", 3, &[("HORIZON_FAULT_DELAY_MS", "50")]).await;
    let client = reqwest::Client::new();
    // Fit k of model m has all values equal to its tag, so its naive
    // forecast names the fit it came from.
    let tags: Arc<Mutex<HashMap<(usize, i64), f64>>> = Arc::default();
    // The newest version each model had answered before a request was sent.
    let answered: Arc<Mutex<Vec<i64>>> = Arc::new(Mutex::new(vec![0; MODELS]));
    for m in 0..MODELS {
        let tag = (m * 10_000) as f64;
        let a = cluster
            .fit(&client, &format!("k{m}"), &tagged(tag))
            .await
            .expect("fit");
        assert_eq!(a.status, 200, "{:?}", a.body);
        tags.lock().unwrap().insert((m, 1), tag);
        answered.lock().unwrap()[m] = 1;
    }

    let cluster_base = Arc::new(cluster.base.clone());
    let done = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = Vec::new();
    let mut killed = false;
    for i in 0..REQUESTS {
        // Kill a worker once the burst is well under way.
        if !killed && done.load(Ordering::SeqCst) >= REQUESTS / 5 {
            cluster.kill_worker(0);
            killed = true;
        }
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let (client, base, tags, answered, done) = (
            client.clone(),
            cluster_base.clone(),
            tags.clone(),
            answered.clone(),
            done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let m = i % MODELS;
            let model = format!("k{m}");
            let out = if i.is_multiple_of(5) {
                let tag = (m * 10_000 + i + 1) as f64;
                let r = client
                    .put(format!("{base}/v1/models/{model}"))
                    .json(&serde_json::json!({"series": [{"id": "a", "values": tagged(tag)}], "method": "naive"}))
                    .send()
                    .await
                    .map_err(|e| format!("fit {i}: {e}"))?;
                let status = r.status();
                let body: serde_json::Value = r.json().await.map_err(|e| format!("fit {i}: {e}"))?;
                if status != 200 {
                    return Err(format!("fit {i}: {status} {body}"));
                }
                let version = body["data"]["version"].as_i64().ok_or("no version")?;
                tags.lock().unwrap().insert((m, version), tag);
                let mut a = answered.lock().unwrap();
                a[m] = a[m].max(version);
                Outcome::Fit { model: m, version }
            } else {
                let before = answered.lock().unwrap()[m];
                let r = client
                    .post(format!("{base}/v1/models/{model}/forecast"))
                    .json(&serde_json::json!({"horizon": 2}))
                    .send()
                    .await
                    .map_err(|e| format!("forecast {i}: {e}"))?;
                let status = r.status();
                let body: serde_json::Value =
                    r.json().await.map_err(|e| format!("forecast {i}: {e}"))?;
                if status != 200 {
                    return Err(format!("forecast {i}: {status} {body}"));
                }
                Outcome::Forecast {
                    model: m,
                    before,
                    version: body["data"]["version"].as_i64().ok_or("no version")?,
                    mean: body["data"]["series"][0]["mean"][0].as_f64().ok_or("no mean")?,
                }
            };
            done.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(out)
        }));
    }
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(o) => outcomes.push(o),
            Err(e) => failures.push(e),
        }
    }
    assert!(killed, "the burst ended before a worker was killed");
    assert!(
        failures.is_empty(),
        "{} of {REQUESTS} requests failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(outcomes.len(), REQUESTS);

    let tags = tags.lock().unwrap().clone();
    let mut fit_versions: Vec<BTreeSet<i64>> = vec![BTreeSet::from([1]); MODELS];
    for o in &outcomes {
        match o {
            Outcome::Fit { model, version, .. } => {
                assert!(
                    fit_versions[*model].insert(*version),
                    "two fits answered with version {version} of k{model}"
                );
            }
            Outcome::Forecast {
                model,
                before,
                version,
                mean,
            } => {
                assert!(
                    version >= before,
                    "k{model}: forecast used {version} after {before} was answered"
                );
                assert_eq!(
                    tags.get(&(*model, *version)),
                    Some(mean),
                    "k{model}: the forecast of version {version} does not come from its data"
                );
            }
        }
    }
    for (m, answered_versions) in fit_versions.iter().enumerate() {
        // No fit lost or duplicated: the store holds exactly the answered
        // versions, 1..=n, all ready.
        let stored = cluster.versions(&client, &format!("k{m}")).await;
        let n = answered_versions.len() as i64;
        assert_eq!(
            stored,
            (1..=n)
                .map(|v| (v, "ready".to_string()))
                .collect::<Vec<_>>(),
            "model k{m}"
        );
        assert_eq!(
            answered_versions.iter().copied().collect::<Vec<_>>(),
            (1..=n).collect::<Vec<_>>()
        );
    }
    assert_eq!(cluster.live_workers(), 2);
    // The test did exercise redelivery: jobs the killed worker held went to
    // the others (the workers log each redelivered job).
    let redelivered = cluster.count_in_worker_logs("redelivered");
    assert!(
        redelivered > 0,
        "no job was redelivered: the kill hit an idle worker"
    );
    eprintln!("{redelivered} jobs were redelivered after the kill");
}
