//! The consistency rule under real concurrency, in embedded mode: a forecast
//! uses the newest version registered before it arrived (waiting for it),
//! never an older one; a failed version is reported, not skipped; forecasts do
//! not wait for fits registered after them nor queue behind fits; waits time
//! out clearly; shutdown finishes in-flight requests; a version deleted under
//! a request is a 404, not our failure.

mod common;

use common::{Options, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn constant_fit(value: f64) -> serde_json::Value {
    json!({"series": [{"id": "y", "values": vec![value; 6]}], "method": "naive"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forecasts_never_use_a_version_older_than_the_last_registered() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestServer::start(dir.path()).await);
    let (status, body) = app.put("/v1/models/race", constant_fit(0.0)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    const FITTERS: usize = 4;
    const FITS_EACH: usize = 6;
    const FORECASTERS: usize = 6;
    const FORECASTS_EACH: usize = 10;

    // Each fit fits a constant series with its own value, so a forecast's
    // numbers tell which version computed it.
    let mut fitters = Vec::new();
    for f in 0..FITTERS {
        let app = app.clone();
        fitters.push(tokio::spawn(async move {
            let mut fitted = Vec::new();
            for j in 0..FITS_EACH {
                let value = (1 + f * FITS_EACH + j) as f64;
                let (status, body) = app.put("/v1/models/race", constant_fit(value)).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                fitted.push((body["data"]["version"].as_i64().unwrap(), value));
            }
            fitted
        }));
    }
    let mut forecasters = Vec::new();
    for _ in 0..FORECASTERS {
        let app = app.clone();
        forecasters.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..FORECASTS_EACH {
                let before = app.latest_version("race").await.unwrap();
                let (status, body) = app
                    .post("/v1/models/race/forecast", json!({"horizon": 2}))
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let version = body["data"]["version"].as_i64().unwrap();
                let value = body["data"]["series"][0]["mean"][0].as_f64().unwrap();
                seen.push((before, version, value));
            }
            seen
        }));
    }
    let mut value_of: HashMap<i64, f64> = HashMap::from([(1, 0.0)]);
    for fitter in fitters {
        for (version, value) in fitter.await.unwrap() {
            assert!(
                value_of.insert(version, value).is_none(),
                "version {version} given twice"
            );
        }
    }
    let mut checked = 0;
    let mut waited_for_newer = 0;
    for forecaster in forecasters {
        for (before, version, value) in forecaster.await.unwrap() {
            assert!(
                version >= before,
                "a forecast sent when version {before} was registered used version {version}"
            );
            assert_eq!(
                value_of.get(&version),
                Some(&value),
                "version {version} forecast {value}"
            );
            checked += 1;
            waited_for_newer += usize::from(version > before);
        }
    }
    assert_eq!(checked, FORECASTERS * FORECASTS_EACH);
    assert_eq!(
        value_of.len(),
        1 + FITTERS * FITS_EACH,
        "versions are 1..=N without gaps"
    );
    assert!((1..=value_of.len() as i64).all(|v| value_of.contains_key(&v)));
    eprintln!("{checked} forecasts checked, {waited_for_newer} answered by a version newer than the one seen");
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}

#[tokio::test]
async fn a_failed_version_is_reported_to_the_forecast_waiting_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestServer::start(dir.path()).await);
    let (status, _) = app.put("/v1/models/doomed", constant_fit(1.0)).await;
    assert_eq!(status, StatusCode::OK);
    app.control.hold("doomed");
    app.control.doom("doomed");

    let fit = {
        let app = app.clone();
        tokio::spawn(async move { app.put("/v1/models/doomed", constant_fit(2.0)).await })
    };
    app.until_registered("doomed", 2).await;
    let forecast = {
        let app = app.clone();
        tokio::spawn(async move {
            app.post("/v1/models/doomed/forecast", json!({"horizon": 1}))
                .await
        })
    };
    // Version 2 cannot settle while held, so the forecast must still be waiting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !forecast.is_finished(),
        "the forecast did not wait for version 2"
    );
    assert_eq!(
        app.version_status("doomed", 2).await.as_deref(),
        Some("pending")
    );

    app.control.release("doomed", 2);
    let (status, body) = fit.await.unwrap();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("version 2"),
        "{body}"
    );

    let (status, body) = forecast.await.unwrap();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("version 2") && message.contains("injected failure"),
        "{body}"
    );
    assert_eq!(body["data"]["version"], 2);
    assert_eq!(
        app.version_status("doomed", 2).await.as_deref(),
        Some("failed")
    );

    // Later forecasts keep reporting the failure instead of using version 1.
    let (status, body) = app
        .post("/v1/models/doomed/forecast", json!({"horizon": 1}))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["data"]["version"], 2);
    let (_, described) = app.get("/v1/models/doomed").await;
    assert_eq!(
        described["data"]["versions"][1]["reason"],
        "injected failure"
    );
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecasts_wait_only_for_earlier_fits_and_never_queue_behind_fits() {
    let dir = tempfile::tempdir().unwrap();
    // One fit slot, so held fits fill the fit lane and later fits queue.
    let options = Options {
        fit_slots: 1,
        ..Options::default()
    };
    let app = Arc::new(TestServer::start_with(dir.path(), options).await);
    for model in ["stream", "other"] {
        let (status, _) = app
            .put(&format!("/v1/models/{model}"), constant_fit(1.0))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    app.control.hold("stream");
    let fit = |value: f64| {
        let app = app.clone();
        tokio::spawn(async move { app.put("/v1/models/stream", constant_fit(value)).await })
    };

    let fit2 = fit(2.0);
    app.until_registered("stream", 2).await;
    let forecast = {
        let app = app.clone();
        tokio::spawn(async move {
            app.post("/v1/models/stream/forecast", json!({"horizon": 1}))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !forecast.is_finished(),
        "the forecast did not wait for version 2"
    );

    // Fits registered after the forecast arrived.
    let fit3 = fit(3.0);
    app.until_registered("stream", 3).await;
    let fit4 = fit(4.0);
    app.until_registered("stream", 4).await;

    // Forecasts of another model go through while fits hold and queue.
    for _ in 0..5 {
        let (status, body) = app
            .post("/v1/models/other/forecast", json!({"horizon": 3}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Version 2 settles: the waiting forecast answers with it, although 3 and
    // 4 are still pending.
    app.control.release("stream", 2);
    let (status, body) = forecast.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], 2);
    assert_eq!(body["data"]["series"][0]["mean"][0], 2.0);
    assert_eq!(fit2.await.unwrap().0, StatusCode::OK);
    assert_eq!(
        app.version_status("stream", 3).await.as_deref(),
        Some("pending")
    );
    assert_eq!(
        app.version_status("stream", 4).await.as_deref(),
        Some("pending")
    );

    app.control.release("stream", 3);
    app.control.release("stream", 4);
    assert_eq!(fit3.await.unwrap().0, StatusCode::OK);
    assert_eq!(fit4.await.unwrap().0, StatusCode::OK);
    let (_, body) = app
        .post("/v1/models/stream/forecast", json!({"horizon": 1}))
        .await;
    assert_eq!(body["data"]["version"], 4);
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}

#[tokio::test]
async fn waits_and_fits_time_out_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::default();
    options.config.wait_timeout = Duration::from_millis(200);
    options.config.fit_timeout = Duration::from_millis(200);
    let app = TestServer::start_with(dir.path(), options).await;
    app.control.hold("slow");

    // The fit answers 504 but goes on in the background.
    let (status, body) = app.put("/v1/models/slow", constant_fit(5.0)).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("version 1"),
        "{body}"
    );

    let (status, body) = app
        .post("/v1/models/slow/forecast", json!({"horizon": 1}))
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("version 1") && message.contains("pending"),
        "{body}"
    );

    app.control.release("slow", 1);
    for _ in 0..500 {
        if app.version_status("slow", 1).await.as_deref() == Some("ready") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, body) = app
        .post("/v1/models/slow/forecast", json!({"horizon": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["series"][0]["mean"][0], 5.0);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestServer::start(dir.path()).await;
    app.control.hold("late");
    let request = app
        .client
        .put(app.url("/v1/models/late"))
        .json(&constant_fit(3.0))
        .send();
    let in_flight = tokio::spawn(async move { common::answer(request.await).await });
    app.until_registered("late", 1).await;
    let control = app.control.clone();
    let (server, store) = app.begin_stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !server.is_finished(),
        "the server stopped with a request in flight"
    );
    control.release("late", 1);
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    server.await.unwrap().unwrap();
    store.close().await;
}

/// A forecast whose version a DELETE removed while the worker was on its way
/// to it is told the version is gone (404), not that we failed (500);
/// schemathesis found the 500 with two concurrent workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_deleted_under_a_forecast_is_a_404() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestServer::start(dir.path()).await);
    let (status, body) = app.put("/v1/models/gone", constant_fit(3.0)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    app.control.hold_forecasts("gone");
    let forecast = {
        let app = app.clone();
        tokio::spawn(async move {
            app.post("/v1/models/gone/forecast", json!({"horizon": 2}))
                .await
        })
    };
    // The forecast has found version 1 ready and is at the worker, held.
    app.control.until_forecast_held("gone").await;
    delete_model(&app, "gone").await;
    app.control.release_forecast("gone");

    let (status, body) = forecast.await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["status"], "fail", "{body}");
    assert_deleted_under_it(&body);
}

async fn delete_model(app: &TestServer, name: &str) {
    let deleted = app
        .client
        .delete(app.url(&format!("/v1/models/{name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
}

/// The 404 of a request whose version a DELETE removed under it.
fn assert_deleted_under_it(body: &serde_json::Value) {
    assert!(
        body["data"]["version"]
            .as_str()
            .is_some_and(|m| m.contains("was deleted while this request used it")),
        "{body}"
    );
}

/// A fit whose model a DELETE removed while it ran: the client raced
/// itself (404), not our failure (500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fit_whose_model_is_deleted_while_it_runs_is_a_404() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestServer::start(dir.path()).await);
    app.control.hold("racing");
    let fit = {
        let app = app.clone();
        tokio::spawn(async move { app.put("/v1/models/racing", constant_fit(3.0)).await })
    };
    app.until_registered("racing", 1).await;
    delete_model(&app, "racing").await;
    app.control.release("racing", 1);
    let (status, body) = fit.await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_deleted_under_it(&body);
}

/// New observations whose base version a DELETE removed before the worker
/// read it: the base is gone (404), not our failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_on_a_version_deleted_under_them_are_a_404() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestServer::start(dir.path()).await);
    let (status, body) = app.put("/v1/models/obs", constant_fit(3.0)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    app.control.hold("obs");
    let observed = {
        let app = app.clone();
        tokio::spawn(async move {
            app.post(
                "/v1/models/obs/observations",
                json!({"series": [{"id": "y", "values": [4.0]}]}),
            )
            .await
        })
    };
    app.until_registered("obs", 2).await;
    let deleted = app
        .client
        .delete(app.url("/v1/models/obs/versions/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    app.control.release("obs", 2);

    let (status, body) = observed.await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["status"], "fail", "{body}");
}
