//! Sharded fits across real worker processes (RabbitMQ, PostgreSQL): a fit
//! split into shards survives a worker killed mid-shard (the shard is
//! redelivered and stored once), reports its progress shard by shard, and a
//! forecast sent meanwhile waits for every shard; a shard that keeps killing
//! workers is dead-lettered and fails its whole version, naming the shard;
//! a forecast of some series of a dated sharded model reads the calendars
//! of their shards only, and dates each series' steps.

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

/// The first date of daily series `d{i}`: 2024-01-01 plus `i` days.
fn first_day(i: usize) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(i as u64)
}

/// The sum of a counter's samples in a `/metrics` scrape whose labels
/// include all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            series.split('{').next() == Some(name) && labels.iter().all(|l| series.contains(l))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// Shard summaries the gateway has read from the store, from its `/metrics`.
async fn shard_summaries_read(client: &reqwest::Client, base: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    sample(
        &text,
        "horizon_store_operation_duration_seconds_count",
        &["op=\"shard_summary\""],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecasts_of_a_sharded_dated_model_read_their_shards_and_date_their_steps() {
    if !services_or_skip(
        "forecasts_of_a_sharded_dated_model_read_their_shards_and_date_their_steps",
    ) {
        return;
    }
    let mut cluster = Cluster::launch("sharddates", 1, &[]);
    with_small_shards(&mut cluster).await;
    let client = reqwest::Client::new();
    let n = 200;
    let series: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("d{i}"), "values": vec![i as f64; 6],
                   "start": first_day(i).to_string(), "freq": "D"})
        })
        .collect();
    let fit = send(
        &client,
        reqwest::Method::PUT,
        format!("{}/v1/models/dated", cluster.base),
        Some(json!({"series": series, "method": "naive"})),
    )
    .await
    .expect("fit answered");
    assert_eq!(fit.status, 200, "{:?}", fit.body);
    // A new gateway and a new worker: nothing of the version is cached.
    cluster.kill_worker(0);
    cluster.start_plain_worker();
    cluster.kill_gateway();
    cluster.start_gateway();
    cluster.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(shard_summaries_read(&client, &cluster.base).await, 0.0);

    let asked = ["d199", "d0", "d64", "d13"];
    let shards: HashSet<u32> = asked
        .iter()
        .map(|id| protocol::shard::shard_of(id, 8))
        .collect();
    assert!(shards.len() < 8);
    for round in 0..2 {
        let f = send(
            &client,
            reqwest::Method::POST,
            format!("{}/v1/models/dated/forecast", cluster.base),
            Some(json!({"horizon": 3, "series": asked})),
        )
        .await
        .expect("forecast answered");
        assert_eq!(f.status, 200, "{:?}", f.body);
        let got = f.body["data"]["series"].as_array().expect("series");
        assert_eq!(got.len(), asked.len());
        for (s, id) in got.iter().zip(asked) {
            let i: usize = id[1..].parse().unwrap();
            let days: Vec<String> = (6..9)
                .map(|k| (first_day(i) + chrono::Days::new(k)).to_string())
                .collect();
            assert_eq!(s["id"], id);
            assert_eq!(s["ds"], json!(days), "round {round}: {s}");
            assert_eq!(s["mean"], json!(vec![i as f64; 3]), "{s}");
        }
        // The gateway read the calendars of those shards once, no others.
        assert_eq!(
            shard_summaries_read(&client, &cluster.base).await,
            shards.len() as f64,
            "round {round}"
        );
    }
}

/// A CSV fit in shards through the broker: its rows interleaved across
/// series (every series' first row, then every second, ...), spooled and
/// sent shard by shard from the spool; every series is fitted on its own
/// dates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spooled_csv_fit_in_shards_goes_through_the_broker() {
    if !services_or_skip("a_spooled_csv_fit_in_shards_goes_through_the_broker") {
        return;
    }
    let mut cluster = Cluster::launch("shardcsv", 1, &[]);
    with_small_shards(&mut cluster).await;
    let client = reqwest::Client::new();
    let n = 200;
    let mut body = String::from("unique_id,ds,y\n");
    for k in 0..6 {
        for i in 0..n {
            body.push_str(&format!(
                "d{i},{},{i}\n",
                first_day(i) + chrono::Days::new(k)
            ));
        }
    }
    let response = client
        .put(format!("{}/v1/models/csv?method=naive", cluster.base))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .expect("fit answered");
    let status = response.status();
    let answer: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["series"].as_array().map(Vec::len), Some(n));
    let asked = ["d199", "d0", "d64", "d13"];
    let f = send(
        &client,
        reqwest::Method::POST,
        format!("{}/v1/models/csv/forecast", cluster.base),
        Some(json!({"horizon": 3, "series": asked})),
    )
    .await
    .expect("forecast answered");
    assert_eq!(f.status, 200, "{:?}", f.body);
    let got = f.body["data"]["series"].as_array().expect("series");
    for (s, id) in got.iter().zip(asked) {
        let i: usize = id[1..].parse().unwrap();
        let days: Vec<String> = (6..9)
            .map(|k| (first_day(i) + chrono::Days::new(k)).to_string())
            .collect();
        assert_eq!(s["id"], id);
        assert_eq!(s["ds"], json!(days), "{s}");
        assert_eq!(s["mean"], json!(vec![i as f64; 3]), "{s}");
    }
    // The sharded version back as a new one, its shards copied in the store.
    let rolled = send(
        &client,
        reqwest::Method::POST,
        format!("{}/v1/models/csv/rollback", cluster.base),
        Some(json!({"version": 1})),
    )
    .await
    .expect("rollback answered");
    assert_eq!(rolled.status, 201, "{:?}", rolled.body);
    assert_eq!(rolled.body["data"]["version"], 2);
    let f = send(
        &client,
        reqwest::Method::POST,
        format!("{}/v1/models/csv/forecast", cluster.base),
        Some(json!({"horizon": 1, "series": ["d199"]})),
    )
    .await
    .expect("forecast answered");
    assert_eq!(f.status, 200, "{:?}", f.body);
    assert_eq!(f.body["data"]["version"], 2);
    assert_eq!(f.body["data"]["series"][0]["mean"], json!([199.0]));
}
