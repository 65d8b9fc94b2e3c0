//! Fault test: restart RabbitMQ (`rabbitmqctl stop_app`, then `start_app`)
//! while clients keep sending fits and forecasts. While the broker is down
//! requests fail fast with a JSend `error` (503) and `/readyz` says the
//! transport is down; once it is back the gateway and workers reconnect by
//! themselves within seconds; no fit answered as a success is lost and no
//! version stays pending.
//!
//! This stops the machine's broker for a few seconds, so it lives in its own
//! test binary (cargo runs test binaries one after another).

mod distributed_support;

use distributed_support::{services_or_skip, tagged, Cluster};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn rabbitmqctl(args: &[&str]) -> Result<(), String> {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run rabbitmqctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "rabbitmqctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Starts the broker's application again whatever happens to the test.
struct BrokerGuard;

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        let _ = rabbitmqctl(&["start_app"]);
    }
}

#[derive(Debug, Clone)]
struct Reply {
    fit: bool,
    status: u16,
    jsend: String,
    version: Option<i64>,
    message: String,
    took: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_recovers_by_itself_after_a_broker_restart() {
    if !test_services::disruptive_allowed("the_service_recovers_by_itself_after_a_broker_restart") {
        return;
    }
    if !services_or_skip("the_service_recovers_by_itself_after_a_broker_restart") {
        return;
    }
    if let Err(e) = rabbitmqctl(&["status"]) {
        test_services::skip(
            "the_service_recovers_by_itself_after_a_broker_restart",
            &format!("the broker cannot be controlled: {e}"),
        );
        return;
    }
    let cluster = Cluster::start("restart", 2, &[]).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let first = cluster.fit(&client, "r", &tagged(1.0)).await.expect("fit");
    assert_eq!(first.status, 200, "{:?}", first.body);
    // A model nobody refits: probes during the outage use it.
    let probe = cluster.fit(&client, "p", &tagged(9.0)).await.expect("fit");
    assert_eq!(probe.status, 200, "{:?}", probe.body);

    let stop = Arc::new(AtomicBool::new(false));
    let replies: Arc<Mutex<Vec<Reply>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..6 {
        let (cluster_base, client, stop, replies) = (
            cluster.base.clone(),
            client.clone(),
            stop.clone(),
            replies.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let fit = (i + c).is_multiple_of(4);
                let started = Instant::now();
                let sent = if fit {
                    client
                        .put(format!("{cluster_base}/v1/models/r"))
                        .json(&serde_json::json!({"series": [{"id": "a", "values": tagged(i as f64)}], "method": "naive"}))
                        .send()
                        .await
                } else {
                    client
                        .post(format!("{cluster_base}/v1/models/r/forecast"))
                        .json(&serde_json::json!({"horizon": 2}))
                        .send()
                        .await
                };
                let r = sent.map_err(|e| format!("no answer: {e}"))?;
                let status = r.status().as_u16();
                let body: serde_json::Value =
                    r.json().await.map_err(|e| format!("not JSON: {e}"))?;
                replies.lock().unwrap().push(Reply {
                    fit,
                    status,
                    jsend: body["status"].as_str().unwrap_or("").to_string(),
                    version: body["data"]["version"].as_i64(),
                    message: body["message"].as_str().unwrap_or("").to_string(),
                    took: started.elapsed(),
                });
                if status != 200 {
                    // Do not spin while the broker is down.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Ok::<_, String>(())
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let guard = BrokerGuard;
    rabbitmqctl(&["stop_app"]).expect("stop the broker");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // While it is down, readiness says what is down.
    let ready = client
        .get(format!("{}/readyz", cluster.base))
        .send()
        .await
        .expect("readyz answers");
    assert_eq!(ready.status(), 503);
    let ready: serde_json::Value = ready.json().await.expect("json");
    assert_ne!(ready["data"]["transport"], "ok", "{ready}");
    assert_eq!(ready["data"]["store"], "ok", "{ready}");
    // New requests fail fast with a JSend error 503, not hang.
    for fit in [false, true] {
        let started = Instant::now();
        let a = if fit {
            cluster.fit(&client, "p", &tagged(10.0)).await
        } else {
            cluster.forecast(&client, "p").await
        }
        .expect("an answer");
        assert_eq!(a.status, 503, "{:?}", a.body);
        assert_eq!(a.jsend(), "error");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rabbitmqctl(&["start_app"]).expect("start the broker");
    drop(guard);
    let back_at = Instant::now();
    let restarted_at = replies.lock().unwrap().len();

    // Recovery: fits and forecasts succeed again, by themselves.
    let recovered = loop {
        let fits_ok = replies.lock().unwrap()[restarted_at..]
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.fit)
            .collect::<Vec<_>>();
        if fits_ok.contains(&true) && fits_ok.contains(&false) {
            break back_at.elapsed();
        }
        assert!(
            back_at.elapsed() < Duration::from_secs(30),
            "no successful fit and forecast within 30s of the broker's return; gateway log: {}",
            cluster.log_tail("gateway.log")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("recovered {recovered:?} after the broker came back");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await
            .expect("client task")
            .expect("every request is answered");
    }

    let replies = replies.lock().unwrap().clone();
    for r in &replies {
        // A fit that could not be sent fails its version; forecasts after it
        // then name that failed version (the consistency rule), until the
        // next fit succeeds.
        let names_failed_version =
            !r.fit && r.status == 500 && r.version.is_some() && r.message.contains("failed");
        assert!(
            r.status == 200
                || (r.jsend == "error" && (r.status == 503 || r.status == 504))
                || (r.jsend == "error" && names_failed_version),
            "unexpected answer {r:?}"
        );
    }
    // Failing fast: no failed request hung on the missing broker. (Requests
    // that were waiting for a fit when the broker went away are answered
    // with success once it is back.)
    let slowest_failure = replies
        .iter()
        .filter(|r| r.status != 200)
        .map(|r| r.took)
        .max()
        .unwrap_or_default();
    assert!(
        slowest_failure < Duration::from_secs(10),
        "a failed request took {slowest_failure:?}"
    );

    // Nothing lost: every fit answered as a success is ready, and nothing
    // stays pending.
    let deadline = Instant::now() + Duration::from_secs(30);
    let versions = loop {
        let v = cluster.versions(&client, "r").await;
        if v.iter().all(|(_, s)| s != "pending") || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        versions.iter().all(|(_, s)| s != "pending"),
        "versions left pending: {versions:?}"
    );
    for r in replies.iter().filter(|r| !r.fit && r.status == 500) {
        let v = r.version.expect("version");
        assert!(
            versions.contains(&(v, "failed".to_string())),
            "a forecast named version {v} as failed: {versions:?}"
        );
    }
    for r in replies.iter().filter(|r| r.fit && r.status == 200) {
        let v = r.version.expect("version");
        assert!(
            versions.contains(&(v, "ready".to_string())),
            "fit answered with version {v} is not ready: {versions:?}"
        );
    }
    let ok = replies.iter().filter(|r| r.status == 200).count();
    eprintln!(
        "{} requests: {ok} succeeded, {} failed fast while the broker was away",
        replies.len(),
        replies.len() - ok
    );
}
