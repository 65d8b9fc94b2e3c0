//! Bulk data through the real HTTP API (embedded mode): fits with CSV and
//! Parquet bodies, forecasts downloaded as CSV and Parquet, each checked
//! against the JSON path on the same data; malformed rows, the bulk body
//! limit and idempotency keys on table bodies.

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use common::{Options, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

const CSV: &str = "text/csv";
const PARQUET: &str = "application/vnd.apache.parquet";

/// Two monthly series, in time order (as the JSON long form needs them);
/// "south" misses 2024-03 and has an empty value.
fn rows() -> Vec<(&'static str, String, Option<f64>)> {
    let mut rows = Vec::new();
    for m in 1..=12u32 {
        let y = 20.0 + f64::from(m % 4) * 5.0 + f64::from(m);
        rows.push(("north", format!("2024-{m:02}-01"), Some(y)));
    }
    for m in (1..=12u32).filter(|m| *m != 3) {
        let v = (m != 7).then_some(5.0 + f64::from(m));
        rows.push(("south", format!("2024-{m:02}-01"), v));
    }
    rows
}

/// The rows of the table bodies: each series backwards (the table readers
/// sort each series by time), "north" still first.
fn table_rows() -> Vec<(&'static str, String, Option<f64>)> {
    let mut rows = rows();
    rows[..12].reverse();
    rows[12..].reverse();
    rows
}

fn csv_body() -> String {
    let mut text = String::from("unique_id,ds,y\n");
    for (id, ds, y) in table_rows() {
        let y = y.map(|v| v.to_string()).unwrap_or_default();
        text.push_str(&format!("{id},{ds},{y}\n"));
    }
    text
}

/// The same rows as pandas writes them to Parquet (naive ns timestamps).
fn parquet_body() -> Vec<u8> {
    parquet_of(&table_rows())
}

/// Rows `(id, date, y)` as pandas writes them to Parquet.
fn parquet_of<S: AsRef<str>>(rows: &[(S, String, Option<f64>)]) -> Vec<u8> {
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_ref()).collect();
    let ds: Vec<i64> = rows
        .iter()
        .map(|r| {
            let date = chrono::NaiveDate::parse_from_str(&r.1, "%Y-%m-%d").expect("date");
            date.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp_nanos_opt()
                .expect("in range")
        })
        .collect();
    let y: Vec<Option<f64>> = rows.iter().map(|r| r.2).collect();
    let batch = RecordBatch::try_from_iter([
        ("unique_id", Arc::new(StringArray::from(ids)) as ArrayRef),
        (
            "ds",
            Arc::new(TimestampNanosecondArray::from(ds)) as ArrayRef,
        ),
        ("y", Arc::new(Float64Array::from(y)) as ArrayRef),
    ])
    .expect("batch");
    let mut out = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    out
}

/// The JSON long form of the same rows.
fn json_body() -> Value {
    let rows = rows();
    json!({
        "unique_id": rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "ds": rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        "y": rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        "method": "ets",
        "season_length": 4,
    })
}

async fn put_table(
    app: &TestServer,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    app.raw(reqwest::Method::PUT, path, Some(content_type), body)
        .await
}

/// A download: the status, content type and bytes.
async fn download(app: &TestServer, model: &str, accept: &str) -> (StatusCode, String, Vec<u8>) {
    let response = app
        .client
        .post(app.url(&format!("/v1/models/{model}/forecast")))
        .header("accept", accept)
        .json(&json!({"horizon": 3, "level": [95, 80]}))
        .send()
        .await
        .expect("sent");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = response.bytes().await.expect("body").to_vec();
    (status, content_type, bytes)
}

/// The JSON forecast as table rows: id, ds, mean, lo-80, hi-80, lo-95, hi-95.
async fn json_rows(app: &TestServer, model: &str) -> Vec<(String, String, Vec<f64>)> {
    let (status, body) = app
        .post(
            &format!("/v1/models/{model}/forecast"),
            json!({"horizon": 3, "level": [95, 80]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut out = Vec::new();
    for s in body["data"]["series"].as_array().expect("series") {
        let band = |level: f64, side: &str, k: usize| {
            s["intervals"]
                .as_array()
                .expect("intervals")
                .iter()
                .find(|i| i["level"].as_f64() == Some(level))
                .expect("level")[side][k]
                .as_f64()
                .expect("number")
        };
        for k in 0..3 {
            out.push((
                s["id"].as_str().expect("id").to_string(),
                s["ds"][k].as_str().expect("ds").to_string(),
                vec![
                    s["mean"][k].as_f64().expect("mean"),
                    band(80.0, "lower", k),
                    band(80.0, "upper", k),
                    band(95.0, "lower", k),
                    band(95.0, "upper", k),
                ],
            ));
        }
    }
    out
}

/// What a fit answer says of its series, to compare fits of one data set.
fn fitted(body: &Value) -> Value {
    let data = &body["data"];
    json!({"method": data["method"], "series": data["series"]})
}

#[tokio::test]
async fn csv_and_parquet_fits_equal_the_json_fit_and_download_as_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestServer::start(dir.path()).await;

    let (status, by_json) = app.put("/v1/models/bulk-json", json_body()).await;
    assert_eq!(status, StatusCode::OK, "{by_json}");
    let (status, by_csv) = put_table(
        &app,
        "/v1/models/bulk-csv?method=ets&season_length=4",
        "text/csv; charset=utf-8",
        csv_body(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{by_csv}");
    let (status, by_parquet) = put_table(
        &app,
        "/v1/models/bulk-parquet?method=ets&season_length=4",
        PARQUET,
        parquet_body(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{by_parquet}");
    // One path after parsing: the same series, calendars and gaps.
    assert_eq!(fitted(&by_csv), fitted(&by_json));
    assert_eq!(fitted(&by_parquet), fitted(&by_json));
    let south = by_csv["data"]["series"]
        .as_array()
        .expect("series")
        .iter()
        .find(|s| s["id"] == "south")
        .expect("south fitted")
        .clone();
    assert_eq!(south["n_missing"], 2, "{south}");
    assert_eq!(south["calendar"]["freq"], "MS", "{south}");

    let expected = json_rows(&app, "bulk-json").await;
    assert_eq!(expected.len(), 6);

    // CSV download: the Python client's columns, the JSON path's numbers.
    let (status, content_type, bytes) = download(&app, "bulk-csv", CSV).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, CSV);
    let text = String::from_utf8(bytes).expect("utf-8");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("unique_id,ds,ets,ets-lo-80,ets-hi-80,ets-lo-95,ets-hi-95")
    );
    let got: Vec<(String, String, Vec<f64>)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let v = f[2..].iter().map(|x| x.parse().expect("number")).collect();
            (f[0].to_string(), f[1].to_string(), v)
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got[0].1, "2025-01-01", "monthly dates continue");

    // Parquet download of the Parquet-fitted model.
    let (status, content_type, bytes) = download(&app, "bulk-parquet", PARQUET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, PARQUET);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .expect("a Parquet file")
    .build()
    .expect("reader");
    let mut got = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let names: Vec<String> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "unique_id",
                "ds",
                "ets",
                "ets-lo-80",
                "ets-hi-80",
                "ets-lo-95",
                "ets-hi-95"
            ]
        );
        for r in 0..batch.num_rows() {
            let v = (2..7)
                .map(|c| batch.column(c).as_primitive::<Float64Type>().value(r))
                .collect();
            got.push((
                batch.column(0).as_string::<i32>().value(r).to_string(),
                batch.column(1).as_string::<i32>().value(r).to_string(),
                v,
            ));
        }
    }
    assert_eq!(got, expected);

    // JSON stays the answer without a table in Accept.
    let (status, _, bytes) = download(&app, "bulk-csv", "application/json").await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(body["status"], "success");
    app.stop().await;
}

#[tokio::test]
async fn bad_tables_are_refused_with_the_line_or_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = Options::default();
    options.config.bulk_body_limit = 4096;
    let app = TestServer::start_with(dir.path(), options).await;

    let body = "unique_id,ds,y\na,2024-01-01,1\na,2024-01-02,2\na,2024-01-03,two\n";
    let (status, answer) = put_table(&app, "/v1/models/bad-csv", CSV, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["status"], "fail");
    assert_eq!(
        answer["data"]["body"], "line 4: y 'two' is not a number",
        "{answer}"
    );
    let body = "unique_id,ds,y\na,2024-01-01,1\na,2024-01-01,2\na,2024-01-03,3\n";
    let (status, answer) = put_table(&app, "/v1/models/bad-csv", CSV, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["data"]["ds"]
            .as_str()
            .is_some_and(|m| m.contains("series 'a': timestamp 2024-01-01 is on more than one row")),
        "{answer}"
    );
    let (status, answer) = put_table(&app, "/v1/models/bad-csv", CSV, "id,ds,y\na,1,1\n").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["data"]["body"]
            .as_str()
            .is_some_and(|m| m.contains("no column 'unique_id'")),
        "{answer}"
    );
    let (status, answer) = put_table(&app, "/v1/models/bad-csv?horizon=3", CSV, csv_body()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["data"]["horizon"].is_string(), "{answer}");
    let (status, answer) = put_table(
        &app,
        "/v1/models/bad-csv?method=naive&method=ets",
        CSV,
        csv_body(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["data"]["method"].is_string(), "{answer}");
    // A JSON fit's options are in its body: a query would be ignored.
    let (status, answer) = put_table(
        &app,
        "/v1/models/bad-csv?method=naive",
        "application/json",
        json_body().to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["data"]["query"].is_string(), "{answer}");
    // Neither JSON nor a table: the content type is the mistake.
    let (status, answer) = put_table(
        &app,
        "/v1/models/bad-csv?method=naive",
        "text/plain",
        csv_body(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["data"]["content-type"].is_string(), "{answer}");
    assert!(answer["data"].get("query").is_none(), "{answer}");
    let (status, answer) = put_table(&app, "/v1/models/bad-pq", PARQUET, "not parquet").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["data"]["body"]
            .as_str()
            .is_some_and(|m| m.starts_with("bad Parquet file")),
        "{answer}"
    );

    // Over the bulk limit, declared or streamed without a length.
    let big = "unique_id,ds,y\n".to_string() + &"a,2024-01-01,1\n".repeat(400);
    let (status, answer) = put_table(&app, "/v1/models/big", CSV, big.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(1000)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let (status, answer) = put_table(&app, "/v1/models/big", CSV, stream).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    // Nothing was registered by the refused bodies.
    for model in ["bad-csv", "bad-pq", "big"] {
        assert_eq!(app.latest_version(model).await, None, "{model}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_covers_the_table_and_its_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestServer::start(dir.path()).await;
    let send = |path: &'static str, body: String| {
        app.client
            .put(app.url(path))
            .header("content-type", CSV)
            .header("idempotency-key", "bulk-key-1")
            .body(body)
            .send()
    };
    let first = send("/v1/models/keyed?method=naive", csv_body())
        .await
        .expect("sent");
    assert_eq!(first.status(), StatusCode::OK);
    let again = send("/v1/models/keyed?method=naive", csv_body())
        .await
        .expect("sent");
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    // The same table with other options is another request.
    let other = send("/v1/models/keyed?method=ets", csv_body())
        .await
        .expect("sent");
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

/// A fit in shards from a CSV whose rows of each series are spread across
/// the whole body (time-major: every series' first row, then every
/// series' second, ...), downloaded whole shard by shard: every series
/// once, each its own forecast, and the download is held to the answer
/// limit per shard, not for the whole model (the same forecast as one
/// JSON answer is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_csv_fit_downloads_whole_shard_by_shard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = Options::sharded(25);
    // 120 series × 2 steps = 240 values: more than one answer may hold,
    // more than a shard (about 30 series, 60 values) needs.
    options.config.admission.max_forecast_values = 200;
    let app = TestServer::start_with(dir.path(), options).await;
    let n = 120usize;
    let mut body = String::from("unique_id,ds,y\n");
    for t in 1..=6 {
        for i in 0..n {
            // Series i ends on 1000 + i: naive forecasts that value.
            let y = if t == 6 { 1000 + i } else { t * 7 + i % 5 };
            body.push_str(&format!("s{i},{t},{y}\n"));
        }
    }
    let (status, answer) = put_table(&app, "/v1/models/spread?method=naive", CSV, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["series"].as_array().map(Vec::len), Some(n));
    let model = protocol::ModelName::parse("spread").expect("name");
    assert_eq!(app.store.shard_count(&model, 1).await.expect("count"), 5);

    let (status, whole) = app
        .post("/v1/models/spread/forecast", json!({"horizon": 2}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{whole}");

    let response = app
        .client
        .post(app.url("/v1/models/spread/forecast"))
        .header("accept", CSV)
        .json(&json!({"horizon": 2}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("body");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("unique_id,ds,naive"));
    let mut seen = std::collections::HashMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 3, "{line}");
        let i: usize = fields[0]
            .strip_prefix('s')
            .and_then(|k| k.parse().ok())
            .expect("an id s<k>");
        let mean: f64 = fields[2].parse().expect("a number");
        assert_eq!(mean, (1000 + i) as f64, "{line}");
        // The integer `ds` (1 to 6) goes on.
        seen.entry(i)
            .or_insert_with(Vec::new)
            .push(fields[1].to_string());
    }
    assert_eq!(seen.len(), n, "every series");
    assert!(seen.values().all(|ds| ds == &["7", "8"]), "{seen:?}");

    // Some series still take the one answer of every forecast.
    let response = app
        .client
        .post(app.url("/v1/models/spread/forecast"))
        .header("accept", CSV)
        .json(&json!({"horizon": 2, "series": ["s7", "s100"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("body");
    let ids: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| &l[..l.find(',').unwrap_or(0)])
        .collect();
    assert_eq!(ids, ["s7", "s7", "s100", "s100"]);
    app.stop().await;
}

/// A table whose `ds` is integers (statsforecast allows them): forecasts
/// continue the positions on their step, in JSON (numbers) and in table
/// downloads, and new observations move them on.
#[tokio::test]
async fn an_integer_ds_is_continued_in_forecasts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestServer::start(dir.path()).await;
    // Positions 100, 102, ..., 118, with 106 missing (a gap on the step).
    let mut body = String::from("unique_id,ds,y\n");
    for t in (100..=118).step_by(2).filter(|t| *t != 106) {
        body.push_str(&format!("a,{t},{}\n", t % 7));
    }
    let (status, answer) = put_table(&app, "/v1/models/ints?method=naive", CSV, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let series = &answer["data"]["series"][0];
    assert_eq!(series["n_missing"], 1, "{answer}");
    assert_eq!(series["index"], json!({"last": 118, "step": 2}), "{answer}");

    let forecast = |horizon: usize| {
        let app = &app;
        async move {
            let (status, body) = app
                .post("/v1/models/ints/forecast", json!({"horizon": horizon}))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["data"]["series"][0]["ds"].clone()
        }
    };
    assert_eq!(forecast(3).await, json!([120, 122, 124]));
    let (status, _, bytes) = download(&app, "ints", CSV).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(bytes).expect("utf-8");
    let ds: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).expect("ds"))
        .collect();
    assert_eq!(ds, ["120", "122", "124"], "{text}");

    let (status, body) = app
        .post(
            "/v1/models/ints/observations",
            json!({"series": [{"id": "a", "values": [3, 4]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(forecast(2).await, json!([124, 126]));
    app.stop().await;
}

/// Rows of `n` monthly series of 14 months from 2023-01 (series `i` misses
/// one month when `i % 5 == 0`, and has an empty value when `i % 7 == 0`):
/// grouped by series, or interleaved (every series' first row, then every
/// series' second, ...), each series' rows backwards.
fn monthly_csv(n: usize, interleaved: bool) -> String {
    let mut rows = Vec::new();
    for i in 0..n {
        for t in 0..14usize {
            if i % 5 == 0 && t == 6 {
                continue;
            }
            let ds = format!("{}-{:02}-01", 2023 + t / 12, t % 12 + 1);
            let y = if i % 7 == 0 && t == 3 {
                String::new()
            } else {
                let season = [0.0, 3.0, 5.0, 2.0][t % 4];
                format!("{:.2}", 50.0 + i as f64 + season + 0.3 * t as f64)
            };
            rows.push((t, i, format!("s{i},{ds},{y}\n")));
        }
    }
    if interleaved {
        rows.sort_by_key(|r| (r.0, r.1));
    }
    rows.reverse();
    std::iter::once("unique_id,ds,y\n".to_string())
        .chain(rows.into_iter().map(|r| r.2))
        .collect()
}

/// The JSON forecast of every series of `model`, by id.
async fn forecasts_by_id(app: &TestServer, model: &str) -> Vec<Value> {
    let (status, body) = app
        .post(
            &format!("/v1/models/{model}/forecast"),
            json!({"horizon": 3, "level": [80]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut series = body["data"]["series"].as_array().expect("series").clone();
    series.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    series
}

/// A table fit in shards is checked shard by shard from a spool, not held
/// whole: a CSV whose rows are interleaved across series gives the same
/// series, spec, dated forecasts and shards as the same rows grouped by
/// series, and as one fit in memory (one shard); as a job too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_table_fit_is_the_same_whatever_the_order_of_its_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options::sharded(16);
    let app = TestServer::start_with(dir.path(), options).await;
    let n = 60;
    let grouped = monthly_csv(n, false);
    let interleaved = monthly_csv(n, true);
    assert_ne!(grouped, interleaved);
    // No season length: the candidates come from the frequency every
    // shard's series were found to have.
    for (model, body) in [("grouped", &grouped), ("interleaved", &interleaved)] {
        let path = format!("/v1/models/{model}?method=ets");
        let (status, answer) = put_table(&app, &path, CSV, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{model}: {answer}");
        assert_eq!(answer["data"]["series"].as_array().map(Vec::len), Some(n));
        let name = protocol::ModelName::parse(model).expect("name");
        assert_eq!(app.store.shard_count(&name, 1).await.expect("count"), 4);
    }
    let spec = app.control.last_spec("grouped").expect("a spec");
    assert!(!spec.season_candidates.is_empty(), "{spec:?}");
    assert_eq!(app.control.last_spec("interleaved"), Some(spec.clone()));
    let a = forecasts_by_id(&app, "grouped").await;
    let b = forecasts_by_id(&app, "interleaved").await;
    assert_eq!(a.len(), n);
    assert_eq!(a, b);
    assert!(a.iter().all(|s| s["ds"][0].is_string()), "dated forecasts");

    // The interleaved rows as Parquet: spooled alike, the same forecasts.
    let rows: Vec<(String, String, Option<f64>)> = interleaved
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (f[0].to_string(), f[1].to_string(), f[2].parse().ok())
        })
        .collect();
    let (status, answer) =
        put_table(&app, "/v1/models/pq?method=ets", PARQUET, parquet_of(&rows)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let name = protocol::ModelName::parse("pq").expect("name");
    assert_eq!(app.store.shard_count(&name, 1).await.expect("count"), 4);
    assert_eq!(forecasts_by_id(&app, "pq").await, a);

    // The same rows as one fit in memory: one shard, the same forecasts.
    let mut one = Options::default();
    one.config.shard_sizes.series = 1_000;
    let whole_dir = tempfile::tempdir().expect("tempdir");
    let whole = TestServer::start_with(whole_dir.path(), one).await;
    let (status, answer) = put_table(&whole, "/v1/models/grouped?method=ets", CSV, grouped).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(whole.control.last_spec("grouped"), Some(spec));
    assert_eq!(forecasts_by_id(&whole, "grouped").await, a);
    whole.stop().await;

    // As a job (`Prefer: respond-async`): the same forecasts once it ends.
    let response = app
        .client
        .put(app.url("/v1/models/job?method=ets"))
        .header("content-type", CSV)
        .header("prefer", "respond-async")
        .body(interleaved)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: Value = response.json().await.expect("json");
    let id = job["data"]["id"].as_str().expect("job id").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, body) = app.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        match body["data"]["status"].as_str() {
            Some("succeeded") => break,
            Some("queued" | "running") => {}
            other => panic!("job ended {other:?}: {body}"),
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(forecasts_by_id(&app, "job").await, a);
    app.stop().await;
}

/// A bad series found only once its shard is read back (a repeated date,
/// in the last shard checked) is answered 400 before any version is
/// registered, as are bad counts found while the rows are spooled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_series_in_the_last_shard_registers_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options::sharded(16);
    let app = TestServer::start_with(dir.path(), options).await;
    let n = 60;
    let count = 4;
    let last = (0..n)
        .map(|i| format!("s{i}"))
        .rfind(|id| protocol::shard::shard_of(id, count) == count - 1)
        .expect("a series of the last shard");
    let good = monthly_csv(n, true);
    let repeated = format!("{good}{last},2023-05-01,1\n");
    let (status, answer) = put_table(&app, "/v1/models/bad?method=naive", CSV, repeated).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["data"]["ds"]
            .as_str()
            .is_some_and(|m| m.contains(&format!(
                "series '{last}': timestamp 2023-05-01 is on more than one row"
            ))),
        "{answer}"
    );
    // Too short a series: found from the counts, before any shard is read.
    let short = format!("{good}tiny,2023-01-01,1\ntiny,2023-02-01,2\n");
    let (status, answer) = put_table(&app, "/v1/models/bad?method=naive", CSV, short).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["data"]["y"]
            .as_str()
            .is_some_and(|m| m.starts_with("series 'tiny': has 2 points")),
        "{answer}"
    );
    assert_eq!(app.latest_version("bad").await, None);
    let (status, answer) = put_table(&app, "/v1/models/bad?method=naive", CSV, good).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(app.latest_version("bad").await, Some(1));
    app.stop().await;
}
