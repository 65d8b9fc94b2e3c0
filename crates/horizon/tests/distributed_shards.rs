//! Sharded fits across real worker processes (RabbitMQ, PostgreSQL): a fit
//! split into shards survives a worker killed mid-shard (the shard is
//! redelivered and stored once), reports its progress shard by shard, and a
//! forecast sent meanwhile waits for every shard; a shard that keeps killing
//! workers is dead-lettered and fails its whole version, naming the shard.

mod distributed_support;

use distributed_support::{send, services_or_skip, Cluster};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Shards of 25 series: a fit of 200 series is 8 shards.
const SHARD_SERIES: &str = "25";

/// Restarts the cluster's gateway with small shards.
async fn with_small_shards(cluster: &mut Cluster) {
    cluster.kill_gateway();
    cluster
        .gateway_env
        .push(("HORIZON_SHARD_SERIES".into(), SHARD_SERIES.into()));
    cluster.start_gateway();
    cluster.wait_ready(Duration::from_secs(60)).await;
}

/// `n` series; series `s{i}` is constant `i`, so its naive forecast is `i`.
fn series(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"id": format!("s{i}"), "values": vec![i as f64; 8]}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_fit_survives_a_worker_killed_mid_shard() {
    if !services_or_skip("a_sharded_fit_survives_a_worker_killed_mid_shard") {
        return;
    }
    // Slow workers (400 ms per job), so the killed one surely holds a shard.
    let mut cluster = Cluster::launch("shardkill", 2, &[("HORIZON_FAULT_DELAY_MS", "400")]);
    with_small_shards(&mut cluster).await;
    let client = reqwest::Client::new();
    // Both workers take shards from the start, so the one killed holds one.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = send(
            &client,
            reqwest::Method::GET,
            format!("{}/readyz", cluster.base),
            None,
        )
        .await
        .expect("readyz");
        if ready.body["data"]["consumers"]["fit"].as_u64() >= Some(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both workers never listened: {:?}",
            ready.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = 400;
    let r = client
        .put(format!("{}/v1/models/big", cluster.base))
        .header("Prefer", "respond-async")
        .json(&json!({"series": series(n), "method": "naive"}))
        .send()
        .await
        .expect("fit sent");
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.expect("job");
    let id = job["data"]["id"].as_str().expect("job id").to_string();

    // Sent while the shards are being fitted: it must wait for all of them.
    let forecast = {
        let (client, base) = (client.clone(), cluster.base.clone());
        tokio::spawn(async move {
            send(
                &client,
                reqwest::Method::POST,
                format!("{base}/v1/models/big/forecast"),
                Some(json!({"horizon": 2, "series": ["s3", "s150", "s77"]})),
            )
            .await
        })
    };

    let started = Instant::now();
    let mut killed = false;
    let mut partial = Vec::new();
    let finished = loop {
        let a = send(
            &client,
            reqwest::Method::GET,
            format!("{}/v1/jobs/{id}", cluster.base),
            None,
        )
        .await
        .expect("job status");
        let data = &a.body["data"];
        let (done, total) = (
            data["progress"]["done"].as_u64().unwrap_or(0),
            data["progress"]["total"].as_u64().unwrap_or(0),
        );
        assert_eq!(total, n as u64, "{data}");
        if done > 0 && done < total {
            partial.push(done);
            // Mid-fit: shards are still queued, so both workers hold one.
            if !killed {
                cluster.kill_worker(0);
                cluster.start_plain_worker();
                killed = true;
            }
        }
        match data["status"].as_str() {
            Some("succeeded") => break data.clone(),
            Some("failed") | Some("cancelled") => panic!("the fit failed: {data}"),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the fit did not finish; gateway log: {}",
            cluster.log_tail("gateway.log")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(killed, "the fit ended before a worker was killed");
    assert!(
        !partial.is_empty(),
        "no progress was seen between none and all shards"
    );
    // Every series exactly once: no shard lost, none stored twice.
    let fitted = finished["result"]["series"].as_array().expect("series");
    let ids: HashSet<&str> = fitted.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!((fitted.len(), ids.len()), (n, n));
    assert_eq!(
        cluster.versions(&client, "big").await,
        vec![(1, "ready".to_string())]
    );

    let f = forecast.await.expect("task").expect("forecast answered");
    assert_eq!(f.status, 200, "{:?}", f.body);
    assert_eq!(f.body["data"]["version"], 1);
    for (s, expected) in f.body["data"]["series"]
        .as_array()
        .expect("series")
        .iter()
        .zip([3.0, 150.0, 77.0])
    {
        assert_eq!(s["mean"], json!([expected, expected]), "{s}");
    }
    let redelivered = cluster.count_in_worker_logs("redelivered");
    assert!(
        redelivered > 0,
        "no shard was redelivered: the kill hit an idle worker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_shard_fails_its_version() {
    if !services_or_skip("a_dead_lettered_shard_fails_its_version") {
        return;
    }
    // Shard 1 (the second) of model "poison" kills every worker that takes it.
    let mut cluster = Cluster::launch(
        "shardpoison",
        3,
        &[("HORIZON_FAULT_ABORT_ON_MODEL", "poison#1")],
    );
    with_small_shards(&mut cluster).await;
    let client = reqwest::Client::new();
    let answer = tokio::time::timeout(
        Duration::from_secs(90),
        send(
            &client,
            reqwest::Method::PUT,
            format!("{}/v1/models/poison", cluster.base),
            Some(json!({"series": series(100), "method": "naive"})),
        ),
    )
    .await
    .expect("the client is answered, not left hanging")
    .expect("an answer");
    assert_eq!(answer.status, 500, "{:?}", answer.body);
    let message = answer.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("dead-lettered"), "{message}");
    assert!(
        (1..=4).any(|i| message.contains(&format!("shard {i} of 4"))),
        "the failure does not name its shard: {message}"
    );

    cluster.start_plain_worker();
    cluster.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(
        cluster.versions(&client, "poison").await,
        vec![(1, "failed".to_string())]
    );
    // The consistency rule: no forecast from a version missing a shard.
    let f = cluster.forecast(&client, "poison").await.expect("answer");
    assert_eq!(f.status, 500, "{:?}", f.body);
    assert!(
        f.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("shard"),
        "{:?}",
        f.body
    );
}
