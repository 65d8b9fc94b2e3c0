//! What a fit guarantees in the distributed mode, with the real binary
//! against RabbitMQ and PostgreSQL: a registration orphaned by a gateway
//! crash does not block its key (the retry, which carries the fit, sends it
//! again), and one fit too large for the broker harms no other client.
//!
//! The figure recorded in RELIABILITY.md:
//! `cargo test -p horizon --test distributed_fit_guarantees -- --nocapture`

mod distributed_support;

use distributed_support::{services_or_skip, Answer, Cluster};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_sends_again_the_fit_of_a_registration_orphaned_by_a_gateway_crash() {
    if !services_or_skip(
        "a_retry_sends_again_the_fit_of_a_registration_orphaned_by_a_gateway_crash",
    ) {
        return;
    }
    let mut cluster = Cluster::start("orphan", 1, &[]).await;
    let client = reqwest::Client::new();
    // A gateway that dies (abort, like kill -9) after registering a fit of
    // "orphan" and before sending it.
    cluster.kill_gateway();
    cluster.gateway_env = vec![(
        "HORIZON_FAULT_ABORT_BEFORE_DISPATCH".to_string(),
        "orphan".to_string(),
    )];
    cluster.start_gateway();
    cluster.wait_ready(Duration::from_secs(60)).await;
    let url = format!("{}/v1/models/orphan", cluster.base);
    let fit = || {
        client
            .put(&url)
            .header("idempotency-key", "orphan-key")
            .json(&serde_json::json!({
                "series": [{"id": "a", "values": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}],
                "method": "naive",
            }))
            .send()
    };
    assert!(
        fit().await.is_err(),
        "the gateway answered instead of dying"
    );
    assert!(
        cluster.gateway_exited(Duration::from_secs(10)).await,
        "the fault hook did not stop the gateway"
    );

    cluster.gateway_env.clear();
    cluster.start_gateway();
    cluster.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(
        cluster.versions(&client, "orphan").await,
        vec![(1, "pending".to_string())],
        "the crash left the registration pending, its fit unsent"
    );
    // The retry carries the fit: it is sent again and answered at once.
    let retry = fit().await.expect("answered");
    let replayed = retry.headers().get("idempotent-replayed").cloned();
    let status = retry.status();
    let body: serde_json::Value = retry.json().await.expect("JSON");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], 1, "{body}");
    assert_eq!(replayed.as_ref().map(|v| v.as_bytes()), Some(&b"true"[..]));
    assert_eq!(
        cluster.versions(&client, "orphan").await,
        vec![(1, "ready".to_string())]
    );
    // And forecasts of the model work.
    let f = cluster.forecast(&client, "orphan").await.expect("forecast");
    assert_eq!(f.status, 200, "{:?}", f.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fit_too_large_for_the_broker_fails_no_other_request() {
    if !services_or_skip("one_fit_too_large_for_the_broker_fails_no_other_request") {
        return;
    }
    let mut cluster = Cluster::start("oversized", 1, &[]).await;
    // Shards would cut this fit into messages the broker takes: one shard.
    cluster.kill_gateway();
    cluster.gateway_env = vec![
        ("HORIZON_SHARD_POINTS".into(), "1000000000".into()),
        ("HORIZON_SHARD_SERIES".into(), "1000000".into()),
    ];
    cluster.start_gateway();
    cluster.wait_ready(Duration::from_secs(60)).await;
    let cluster = Arc::new(cluster);
    let client = reqwest::Client::new();
    let seeded = cluster
        .fit(&client, "m", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .await
        .expect("fit");
    assert_eq!(seeded.status, 200, "{:?}", seeded.body);

    // 8 other clients forecast all along.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (cluster, stop, sent, failed) =
                (cluster.clone(), stop.clone(), sent.clone(), failed.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::SeqCst) {
                    let ok =
                        matches!(cluster.forecast(&client, "m").await, Ok(a) if a.status == 200);
                    sent.fetch_add(1, Ordering::SeqCst);
                    if !ok {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A valid fit whose job is about 137 MB (each 1e15 travels as
    // `1000000000000000.0`), over RabbitMQ's default 128 MiB.
    let series = 72;
    let points = 100_000;
    let mut body = String::with_capacity(series * points * 5 + 1024);
    body.push_str(r#"{"method": "naive", "sizes": ["#);
    body.push_str(&vec![points.to_string(); series].join(","));
    body.push_str(r#"], "y": ["#);
    body.push_str(&vec!["1e15"; series * points].join(","));
    body.push_str("]}");
    // Sent as written: re-encoded, the body itself would pass 64 MiB.
    let response = client
        .put(format!("{}/v1/models/big", cluster.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answered");
    let big = Answer {
        status: response.status().as_u16(),
        body: response.json().await.expect("JSON"),
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client");
    }
    let (sent, failed) = (sent.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    println!(
        "requests of other clients failed by one oversized fit: {failed} (of {sent}); \
         the oversized fit: {} {}",
        big.status,
        big.jsend()
    );
    assert!(
        big.status == 413 || big.status == 200,
        "the oversized fit: {:?}",
        big.body
    );
    if big.status == 413 {
        assert_eq!(big.jsend(), "fail");
        let why = big.body["data"]["body"].as_str().unwrap_or("");
        assert!(why.contains("134217728"), "the limit is named: {why}");
        assert!(
            cluster.versions(&client, "big").await.is_empty(),
            "a refused fit registers no version"
        );
    }
    assert!(sent > 0);
    assert_eq!(failed, 0, "requests of other clients failed");
}
