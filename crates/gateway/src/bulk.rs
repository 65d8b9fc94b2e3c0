//! Bulk data in and out: fits with a CSV (`text/csv`) or Apache Parquet
//! (`application/vnd.apache.parquet`) body in the long format
//! (`unique_id,ds,y`), and whole forecasts downloaded as CSV or Parquet
//! (`Accept`), in the columns of the Python client
//! (`unique_id, ds, <method>, <method>-lo-80, ...`).
//!
//! A CSV body is parsed as it arrives (the text is never held whole); a
//! Parquet body is spooled to an unnamed temporary file (its footer comes
//! last) and read from there. Both have their own, large limit
//! ([`crate::GatewayConfig::bulk_body_limit`]), and the body timeout is
//! the longest silence between two chunks, not the whole upload. The rows
//! go to a spool, not into memory (see [`crate::spooled`]): a table of one
//! shard then becomes the same validated fit request as the JSON long form
//! ([`validate::table_fit`]), a larger one is checked the same way shard by
//! shard, and from there the fit takes the one path of every fit
//! ([`handlers::fit_or_job`]). JSON requests go straight on to the JSON
//! handlers.

use crate::admission::Slot;
use crate::body::{JsonBody, KeyedBody, ModelPath};
use crate::dates::{Calendars, Labels};
use crate::handlers::{self, FitInput};
use crate::jsend::ApiError;
use crate::spooled::{self, TableFit};
use crate::streamed::{self, Limits, Pace};
use crate::validate::{
    self, FitRequest, ForecastRequest, TableSeries, TableTime, V1Fit, V1Forecast,
};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use protocol::calendar::IndexAxis;
use protocol::{ForecastJob, JobError, ModelName, SeriesForecast, Version};
use serde_json::Value;
use sha2::Digest;
use std::io::Seek;
use tabular::{
    Columns, CsvForecastWriter, ForecastLayout, ParquetForecastWriter, RowSpool, SpooledRows,
    TableError, Time,
};

/// The media type of CSV bodies and downloads.
pub const CSV: &str = "text/csv";
/// The media type of Parquet bodies and downloads.
pub const PARQUET: &str = "application/vnd.apache.parquet";
/// Rows formatted per chunk of a download.
const CHUNK_ROWS: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Parquet,
}

impl Format {
    fn media_type(self) -> &'static str {
        match self {
            Format::Csv => CSV,
            Format::Parquet => PARQUET,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

fn essence(media: &str) -> String {
    media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A fit also takes tables: a refused content type says so.
fn content_type_with_tables(e: ApiError) -> ApiError {
    match e {
        ApiError::Fail(status, mut fields) if fields.contains_key("content-type") => {
            if let Some(message) = fields.get_mut("content-type") {
                message.push_str(&format!(
                    "; a fit also takes a table as '{CSV}' or '{PARQUET}'"
                ));
            }
            ApiError::Fail(status, fields)
        }
        other => other,
    }
}

/// The table format a media type names, if any.
fn format_of(media: &str) -> Option<Format> {
    match essence(media).as_str() {
        "text/csv" | "application/csv" => Some(Format::Csv),
        "application/vnd.apache.parquet" | "application/x-parquet" | "application/parquet" => {
            Some(Format::Parquet)
        }
        _ => None,
    }
}

/// The table format the client prefers (highest `q`, then first listed),
/// unless JSON (or anything) is preferred to it.
fn accepted(headers: &HeaderMap) -> Option<Format> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    let mut ranges: Vec<(f64, &str)> = accept
        .split(',')
        .map(|media| (quality(media), media))
        .filter(|(q, _)| *q > 0.0)
        .collect();
    // Stable: equal weights keep the client's order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, media) in ranges {
        if let Some(format) = format_of(media) {
            return Some(format);
        }
        let e = essence(media);
        if e == "application/json" || e == "*/*" || e == "application/*" {
            return None;
        }
    }
    None
}

/// The `q` weight of one media range of `Accept` (1 without one; an
/// unreadable one counts as 1, as if absent).
fn quality(media: &str) -> f64 {
    media
        .split(';')
        .skip(1)
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k.trim().eq_ignore_ascii_case("q")).then(|| v.trim().parse::<f64>().ok())?
        })
        .filter(|q| (0.0..=1.0).contains(q))
        .unwrap_or(1.0)
}

// ---- fits ----

/// `PUT /v1/models/{name}`: a CSV or Parquet body is read here into the
/// validated fit request; JSON goes on to [`handlers::v1_fit`] as it is.
pub async fn v1_fit(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let format = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(format_of);
    let Some(format) = format else {
        let json = crate::body::check_content_type(headers.get(header::CONTENT_TYPE)).is_ok();
        // Another content type is the mistake to name, not the query.
        if json && req.uri().query().is_some_and(|q| !q.is_empty()) {
            // Silently ignored, `?method=naive` would fit `auto`.
            return Err(ApiError::field(
                "query",
                "a JSON fit takes its options in the body; query parameters are for CSV and \
                 Parquet bodies",
            ));
        }
        let body = KeyedBody::<V1Fit>::from_request(req, &state)
            .await
            .map_err(content_type_with_tables)?;
        return handlers::v1_fit(State(state), ModelPath(model), headers, body).await;
    };
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING) {
        let text = encoding.to_str().unwrap_or("?").trim();
        if !text.is_empty() && !text.eq_ignore_ascii_case("identity") {
            return Err(ApiError::fail(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content-encoding",
                format!(
                    "'{text}' is not accepted; send the body uncompressed (no Content-Encoding)"
                ),
            ));
        }
    }
    let query = TableQuery::of(req.uri())?;
    let keyed = headers.contains_key(handlers::IDEMPOTENCY_KEY);
    let key = handlers::idempotency_key(&headers)?;
    let (rows, digest) = read_fit(&state, req, format, &query.columns, keyed).await?;
    let fit = {
        let (state, model) = (state.clone(), model.clone());
        tokio::task::spawn_blocking(move || {
            let check = spooled::Check {
                model: &model,
                sizes: state.config.shard_sizes,
                transport: state.transport.as_ref(),
                fit_timeout: state.config.fit_timeout,
            };
            spooled::table_fit(rows, &query.options, &check)
        })
        .await
        .map_err(|_| crashed())??
    };
    let input = match fit {
        TableFit::Whole(request) => FitInput::Request(request),
        TableFit::Spooled(spooled) => FitInput::Spooled(spooled),
    };
    let key = key.map(|key| handlers::Keyed { key, digest });
    handlers::fit_or_job(&state, model, &headers, input, key).await
}

/// The query string of a table fit: the fit options and the column names.
struct TableQuery {
    /// The fit options as a JSON object, for [`validate::table_fit`].
    options: Vec<u8>,
    columns: Columns,
}

/// Query parameters of a table fit.
const QUERY_KEYS: [&str; 7] = [
    "method",
    "season_length",
    "freq",
    "nonnegative",
    "id_col",
    "time_col",
    "target_col",
];

impl TableQuery {
    fn of(uri: &Uri) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| ApiError::field("query", e.body_text()))?;
        let mut options = serde_json::Map::new();
        let mut columns = Columns::default();
        let mut seen = std::collections::HashSet::new();
        for (key, value) in pairs {
            if !seen.insert(key.clone()) {
                return Err(ApiError::field(
                    &key,
                    "given more than once in the query; give each parameter once",
                ));
            }
            match key.as_str() {
                "id_col" => columns.id = value,
                "time_col" => columns.time = value,
                "target_col" => columns.target = value,
                "method" | "freq" => {
                    options.insert(key, Value::String(value));
                }
                // As JSON would say it; anything else is left a string, which
                // the validation then names.
                "nonnegative" => {
                    let v = match value.as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        _ => Value::String(value),
                    };
                    options.insert(key, v);
                }
                "season_length" => {
                    let number = |t: &str| {
                        t.trim()
                            .parse::<i64>()
                            .map_or_else(|_| Value::String(t.to_string()), Value::from)
                    };
                    let v = if value.contains(',') {
                        Value::Array(value.split(',').map(number).collect())
                    } else {
                        number(&value)
                    };
                    options.insert(key, v);
                }
                _ => {
                    return Err(ApiError::field(
                        &key,
                        format!(
                            "unknown query parameter; expected one of: {}",
                            QUERY_KEYS.join(", ")
                        ),
                    ))
                }
            }
        }
        Ok(Self {
            options: serde_json::to_vec(&Value::Object(options)).unwrap_or_default(),
            columns,
        })
    }
}

fn crashed() -> ApiError {
    tracing::error!("reading a table body panicked");
    ApiError::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error while reading the request body",
    )
}

/// Reads a table body's rows into a spool, with the digest of the query and
/// the body when `keyed`.
async fn read_fit(
    state: &AppState,
    req: Request,
    format: Format,
    columns: &Columns,
    keyed: bool,
) -> Result<(SpooledRows, Option<String>), ApiError> {
    let limits = Limits {
        bytes: state.config.bulk_body_limit,
        what: "CSV or Parquet body",
        setting: "--max-bulk-body-bytes",
        pace: Pace::Steady(state.config.connections.body_timeout),
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.bytes) {
        return Err(limits.too_large());
    }
    // The upload takes room in the body budget like a JSON body of the same
    // size (capped by the budget) while it is read, as before the rows were
    // spooled: the budget still bounds how many large uploads run at once.
    let room = declared.map_or(state.config.body_limit, |n| {
        usize::try_from(n).unwrap_or(usize::MAX)
    });
    let _room = state.admission.body(room)?;
    let digest = keyed.then(|| {
        let mut d = sha2::Sha256::new();
        d.update(format.media_type().as_bytes());
        d.update(b"\n");
        // The query as sent: the fit options are part of what is keyed.
        d.update(req.uri().query().unwrap_or("").as_bytes());
        d.update(b"\n");
        d
    });
    let columns = columns.clone();
    let body = req.into_body();
    match format {
        Format::Csv => {
            streamed::parse(body, limits, digest, move |reader| {
                let mut spool = row_spool()?;
                let read = tabular::csv_rows(reader, &columns, &mut spool);
                spooled(spool, read)
            })
            .await
        }
        // Its footer comes last: spooled to an unnamed temporary file
        // (removed when closed), then read row group by row group.
        Format::Parquet => {
            streamed::parse(body, limits, digest, move |reader| {
                let spool_error = |e: std::io::Error| spool_error("Parquet file", e);
                let mut file = tempfile::tempfile().map_err(spool_error)?;
                std::io::copy(reader, &mut file).map_err(spool_error)?;
                file.rewind().map_err(spool_error)?;
                let mut spool = row_spool()?;
                let read = tabular::parquet_rows(file, &columns, &mut spool);
                spooled(spool, read)
            })
            .await
        }
    }
}

/// A spool for a table's rows, which holds per series only its id and row
/// count (and refuses more series than a table fit takes).
fn row_spool() -> Result<RowSpool, ApiError> {
    RowSpool::new(validate::MAX_TABLE_SERIES_PER_FIT).map_err(|e| spool_error("rows", e))
}

fn spool_error(what: &str, e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "spooling a table body's {what}");
    ApiError::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the table body's {what} could not be spooled to a temporary file: {e}"),
    )
}

/// The rows read into `spool`, or why not: a failure of the spool itself
/// is the server's, anything else the body's.
fn spooled(mut spool: RowSpool, read: Result<(), TableError>) -> Result<SpooledRows, ApiError> {
    if let Err(e) = read {
        return Err(match spool.io_error() {
            Some(io) => spool_error("rows", io),
            None => ApiError::field("body", e.to_string()),
        });
    }
    spool.finish().map_err(|e| match e {
        TableError::Io(io) => spool_error("rows", io),
        e => ApiError::field("body", e.to_string()),
    })
}

/// The table's series as the validated fit request: dates go to their
/// calendars as JSON `ds` do; an integer axis is placed on its step.
pub(crate) fn to_fit(
    read: Result<Vec<tabular::Series>, TableError>,
    options: &[u8],
) -> Result<FitRequest, ApiError> {
    let series = read.map_err(|e| ApiError::field("body", e.to_string()))?;
    let mut table = Vec::with_capacity(series.len());
    // Series by series, each moved on: a run's values are not copied.
    for s in series {
        match s.into_index_grid(engine::MAX_SERIES_LEN) {
            Ok(grid) => {
                let (id, grid) = grid.map_err(|e| ApiError::field("ds", e.to_string()))?;
                let axis = IndexAxis::from_first(grid.first, grid.step, grid.values.len());
                table.push(TableSeries {
                    id,
                    values: grid.values,
                    time: TableTime::Index(axis),
                });
            }
            Err(s) => {
                if let Time::Dates(ds) = s.time {
                    table.push(TableSeries {
                        id: s.id,
                        values: s.values,
                        time: TableTime::Dates(ds),
                    });
                }
            }
        }
    }
    validate::table_fit(options, table)
}

// ---- forecasts ----

/// `POST /v1/models/{name}/forecast` with `Accept: text/csv` or Parquet:
/// the forecast as a table, streamed; other requests go on to
/// [`handlers::v1_forecast`]. A forecast of every series goes shard by
/// shard ([`whole`]); one of some series takes the path of every forecast.
pub async fn v1_forecast(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
    req: Request,
) -> Result<Response, ApiError> {
    let format = accepted(req.headers());
    let body = JsonBody::<V1Forecast>::from_request(req, &state).await?;
    let Some(format) = format else {
        return handlers::v1_forecast(State(state), ModelPath(model), body).await;
    };
    let JsonBody(V1Forecast(request)) = body;
    let horizon = request.horizon.get();
    let levels: Vec<f64> = request.levels.iter().map(|l| l.percent()).collect();
    let (version, first, calendars, rest, slot) = if request.series_ids.is_none() {
        let w = whole(&state, &model, request).await?;
        (w.version, w.first, w.calendars, Some(w.rest), Some(w.slot))
    } else {
        let (result, calendars) =
            handlers::forecast(&state, &model, request, || unknown_model(&model)).await?;
        (result.version, result.series, calendars, None, None)
    };
    metrics::histogram!(crate::metrics::FORECAST_BATCH).record(first.len() as f64);
    let alias = calendars
        .method()
        .map_or_else(|| "forecast".to_string(), |m| m.name().to_string());
    let layout = ForecastLayout::new("unique_id", "ds", &alias, &levels);
    let internal =
        |e: TableError| ApiError::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let sink: Box<dyn Sink> = match format {
        Format::Csv => Box::new(CsvForecastWriter::new(Vec::new(), layout).map_err(internal)?),
        Format::Parquet => {
            Box::new(ParquetForecastWriter::new(Vec::new(), layout).map_err(internal)?)
        }
    };
    let filename = format!(
        "attachment; filename=\"{}-v{}.{}\"",
        model.name(),
        version,
        format.extension()
    );
    let rows = Rows {
        sink,
        series: first.into_iter(),
        rest,
        calendars,
        horizon,
        _slot: slot,
    };
    let mut response = Body::from_stream(rows.stream()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

fn unknown_model(model: &ModelName) -> ApiError {
    ApiError::field(
        "model",
        format!("model '{model}' does not exist; fit it first with PUT /v1/models/{model}"),
    )
}

/// The forecasts of the shards after the first, in shard order.
type Parts = futures_util::stream::BoxStream<'static, Result<Vec<SeriesForecast>, ApiError>>;

/// A forecast of every series, under way shard by shard.
struct Whole {
    version: Version,
    /// The first shard's forecasts (asked before answering, so that the
    /// usual errors are answered as such, not as a cut-off download).
    first: Vec<SeriesForecast>,
    calendars: Calendars,
    rest: Parts,
    /// The forecast's admission slot, held until the download ends.
    slot: Slot,
}

/// Shards forecast at once ahead of the one being written: the download
/// holds at most this many shards' forecasts (plus the one being written),
/// whatever the version's size.
const SHARDS_AHEAD: usize = 2;

/// Every series of the newest (or the pinned) version, one forecast job per
/// shard (a version stored whole is one shard), so that no answer holds
/// every series: neither a worker's reply nor the gateway's memory grows
/// with the version, and the broker's message limit bounds a shard, not the
/// model. The version is settled as for every forecast (the consistency
/// rule of [`handlers`]); each shard's answer is held to the size limit
/// (`--max-forecast-values`), not the whole download.
async fn whole(
    state: &AppState,
    model: &ModelName,
    request: ForecastRequest,
) -> Result<Whole, ApiError> {
    let slot = state.admission.forecast()?;
    state
        .transport
        .ready()
        .await
        .map_err(|e| handlers::transport_error(e, "forecast"))?;
    let info =
        handlers::settled_version(state, model, request.version, || unknown_model(model)).await?;
    let version = info.version;
    let n_series = info.n_series;
    let calendars = state
        .calendars
        .calendars(state.store.as_ref(), model, &info, None)
        .await
        .map_err(handlers::store_error)?;
    let count = state
        .store
        .shard_count(model, version)
        .await
        .map_err(handlers::store_error)?;
    // Shards are even to a few percent (FNV of the ids); a tenth more is
    // allowed for the largest.
    let per_shard = n_series.div_ceil(count as usize);
    let per_shard = (per_shard + per_shard / 10).min(n_series);
    state
        .admission
        .forecast_size(request.horizon.get(), per_shard, request.levels.len())?;
    handlers::workers_listening(state, |c| c.forecast, "forecast").await?;
    let ask = {
        let (state, model) = (state.clone(), model.clone());
        move |shard: u32| {
            let job = ForecastJob {
                model: model.clone(),
                version,
                horizon: request.horizon,
                levels: request.levels.clone(),
                series_ids: None,
                shard: Some(shard),
            };
            let state = state.clone();
            async move { shard_answer(&state, job).await }
        }
    };
    let first = ask(0).await?;
    let rest = futures_util::stream::iter(1..count)
        .map(ask)
        .buffered(SHARDS_AHEAD)
        .boxed();
    Ok(Whole {
        version,
        first,
        calendars,
        rest,
        slot,
    })
}

/// One shard's forecasts, or the error its forecast answers.
async fn shard_answer(state: &AppState, job: ForecastJob) -> Result<Vec<SeriesForecast>, ApiError> {
    let (model, version) = (job.model.clone(), job.version);
    let timeout = state.config.forecast_timeout;
    let failed = |status: StatusCode, what: &str, reason: String| {
        ApiError::error(
            status,
            format!("forecasting version {version} of model '{model}' {what}: {reason}"),
        )
        .with_data(serde_json::json!({"model": model.name(), "version": version, "reason": reason}))
    };
    match tokio::time::timeout(timeout, state.transport.forecast(job)).await {
        Ok(Ok(Ok(result))) => Ok(result.series),
        Ok(Ok(Err(JobError::Invalid(message)))) => Err(ApiError::field("series", message)),
        Ok(Ok(Err(JobError::Unavailable(reason)))) => Err(failed(
            StatusCode::SERVICE_UNAVAILABLE,
            "is not possible now",
            format!("{reason}; retry later"),
        )),
        Ok(Ok(Err(JobError::Failed(reason)))) => {
            let failed = failed(StatusCode::INTERNAL_SERVER_ERROR, "failed", reason);
            Err(handlers::unless_deleted(state, &model, version, failed).await)
        }
        Ok(Err(e)) => Err(handlers::transport_error(e, "forecast")),
        Err(_) => Err(ApiError::error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "no forecast of a shard of version {version} of model '{model}' within {}",
                humantime::format_duration(timeout)
            ),
        )),
    }
}

/// A forecast table being written into memory, taken out chunk by chunk.
trait Sink: Send {
    fn series(
        &mut self,
        id: &str,
        ds: Option<&[String]>,
        mean: &[f64],
        intervals: &[engine::Interval],
    ) -> Result<(), TableError>;
    /// The bytes written so far.
    fn take(&mut self) -> Vec<u8>;
    /// The rest, after the last series.
    fn finish(self: Box<Self>) -> Result<Vec<u8>, TableError>;
}

macro_rules! sink {
    ($writer:ident) => {
        impl Sink for $writer<Vec<u8>> {
            fn series(
                &mut self,
                id: &str,
                ds: Option<&[String]>,
                mean: &[f64],
                intervals: &[engine::Interval],
            ) -> Result<(), TableError> {
                self.write_series(id, ds, mean, intervals)
            }
            fn take(&mut self) -> Vec<u8> {
                std::mem::take(self.get_mut())
            }
            fn finish(self: Box<Self>) -> Result<Vec<u8>, TableError> {
                (*self).finish()
            }
        }
    };
}
sink!(CsvForecastWriter);
sink!(ParquetForecastWriter);

/// What is left to write of a download.
struct Rows {
    sink: Box<dyn Sink>,
    series: std::vec::IntoIter<SeriesForecast>,
    /// The shards still to come, when the download goes by shard.
    rest: Option<Parts>,
    calendars: Calendars,
    horizon: usize,
    _slot: Option<Slot>,
}

impl Rows {
    /// Formats about [`CHUNK_ROWS`] rows; `None` with the last bytes.
    fn chunk(&mut self) -> Result<Option<Vec<u8>>, TableError> {
        let mut rows = 0;
        while rows < CHUNK_ROWS {
            let Some(s) = self.series.next() else {
                return Ok(None);
            };
            let ds = self
                .calendars
                .future(&s.id, self.horizon)
                .map(Labels::into_text);
            self.sink.series(
                &s.id,
                ds.as_deref(),
                &s.forecast.mean,
                &s.forecast.intervals,
            )?;
            rows += s.forecast.mean.len().max(1);
        }
        Ok(Some(self.sink.take()))
    }

    /// The download as a stream of chunks: each formatted when the client
    /// is ready for it, so only one chunk (or one Parquet row group) of
    /// text is held at a time, and the next shard is asked for as the one
    /// before is written. An error midway ends the stream, which the
    /// client sees as a cut-off download.
    fn stream(self) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures_util::stream::unfold(Some(self), |rows| async move {
            let mut rows = rows?;
            loop {
                match rows.chunk() {
                    Ok(Some(bytes)) if bytes.is_empty() => continue,
                    Ok(Some(bytes)) => return Some((Ok(Bytes::from(bytes)), Some(rows))),
                    Ok(None) if rows.rest.is_some() => {
                        let next = match rows.rest.as_mut() {
                            Some(rest) => rest.next().await,
                            None => None,
                        };
                        match next {
                            Some(Ok(series)) => rows.series = series.into_iter(),
                            Some(Err(e)) => {
                                tracing::error!(error = ?e, "a shard of a download failed");
                                let e = std::io::Error::other(format!("{e:?}"));
                                return Some((Err(e), None));
                            }
                            None => rows.rest = None,
                        }
                    }
                    Ok(None) => {
                        let last = rows.sink.finish().map(Bytes::from).map_err(|e| {
                            tracing::error!(error = %e, "writing a forecast table");
                            std::io::Error::other(e.to_string())
                        });
                        return Some((last, None));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "writing a forecast table");
                        return Some((Err(std::io::Error::other(e.to_string())), None));
                    }
                }
            }
        })
    }
}

// ---- the OpenAPI document ----

/// Adds the table content types to the fit and forecast operations of the
/// document: the bodies a fit accepts, its query parameters, and the
/// forecast's table answers.
pub(crate) fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{Content, RefOr, Required};
    let text = || ObjectBuilder::new().schema_type(Type::String).build();
    let binary = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .build()
    };
    let csv_in = "CSV in the long format with a header row (`unique_id,ds,y`; other names with \
        `id_col`, `time_col`, `target_col`): one row per observation; `ds` ISO 8601 dates or \
        date-times, or integers; `y` a number, empty / `NaN` / `NA` / `null` when missing. \
        Parsed as it arrives; a bad row is answered 400 naming its line.";
    let parquet_in = "Apache Parquet with the columns `unique_id` (text, integer or \
        dictionary), `ds` (timestamp — naive, UTC or a fixed offset —, date, ISO 8601 text or \
        integer) and `y` (float or integer, null or NaN when missing). Spooled to a temporary \
        file, then read.";
    if let Some(op) = doc
        .paths
        .paths
        .get_mut("/v1/models/{name}")
        .and_then(|item| item.put.as_mut())
    {
        if let Some(RefOr::T(body)) = op.request_body.as_mut() {
            let mut csv = Content::new(Some(text()));
            csv.example = Some(serde_json::json!(
                "unique_id,ds,y\nnorth,2024-01-01,20\nnorth,2024-02-01,31\nnorth,2024-03-01,25\n"
            ));
            body.content.insert(CSV.to_string(), RefOr::T(csv));
            body.content
                .insert(PARQUET.to_string(), RefOr::T(Content::new(Some(binary()))));
            let note = format!(
                "\n\nAlso `{CSV}` — {csv_in} — and `{PARQUET}` — {parquet_in} Table bodies \
                 have their own limit (4 GiB by default, `--max-bulk-body-bytes`), hold up to \
                 {} series, and take the fit options from the query string.",
                validate::MAX_TABLE_SERIES_PER_FIT
            );
            body.description = Some(body.description.take().unwrap_or_default() + &note);
        }
        let params = op.parameters.get_or_insert_with(Vec::new);
        let described = [
            ("method", "With a CSV or Parquet body: the method (as `method` in JSON)."),
            ("season_length", "With a CSV or Parquet body: a season length, or several separated by commas (`24,168`)."),
            ("freq", "With a CSV or Parquet body: the frequency of every series (pandas alias)."),
            ("nonnegative", "With a CSV or Parquet body: `true` or `false`."),
            ("id_col", "With a CSV or Parquet body: the id column (default `unique_id`)."),
            ("time_col", "With a CSV or Parquet body: the time column (default `ds`)."),
            ("target_col", "With a CSV or Parquet body: the value column (default `y`)."),
        ];
        for (name, description) in described {
            params.push(RefOr::T(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(description))
                    .schema(Some(text()))
                    .build(),
            ));
        }
    }
    if let Some(op) = doc
        .paths
        .paths
        .get_mut("/v1/models/{name}/forecast")
        .and_then(|item| item.post.as_mut())
    {
        if let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") {
            ok.content
                .insert(CSV.to_string(), RefOr::T(Content::new(Some(text()))));
            ok.content
                .insert(PARQUET.to_string(), RefOr::T(Content::new(Some(binary()))));
            let note = format!(
                " With `Accept: {CSV}` or `Accept: {PARQUET}`: the forecast as a table, \
                 streamed, in the columns of the Python client — `unique_id, ds, <method>, \
                 <method>-lo-<level>, <method>-hi-<level>, ...` (levels ascending; `ds` empty \
                 for series fitted without timestamps; Parquet stores `ds` as ISO 8601 text)."
            );
            ok.description.push_str(&note);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_and_accept_order() {
        assert_eq!(format_of("text/csv; charset=utf-8"), Some(Format::Csv));
        assert_eq!(
            format_of("application/vnd.apache.parquet"),
            Some(Format::Parquet)
        );
        assert_eq!(format_of("application/json"), None);
        let accept = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            accepted(&h)
        };
        assert_eq!(accept("text/csv"), Some(Format::Csv));
        assert_eq!(accept("application/json, text/csv"), None);
        assert_eq!(
            accept("text/html, application/vnd.apache.parquet"),
            Some(Format::Parquet)
        );
        assert_eq!(accept("*/*"), None);
        // Weights decide before order; a weight of 0 is a refusal.
        assert_eq!(accept("text/csv;q=0.5, application/json;q=0.9"), None);
        assert_eq!(
            accept("application/json;q=0.5, text/csv"),
            Some(Format::Csv)
        );
        assert_eq!(accept("text/csv;q=0, */*"), None);
    }

    #[test]
    fn query_options_read_as_json_would_say_them() {
        let uri: Uri = "/v1/models/m?method=ets&season_length=24,168&nonnegative=true&id_col=store"
            .parse()
            .unwrap();
        let q = TableQuery::of(&uri).unwrap();
        let options: Value = serde_json::from_slice(&q.options).unwrap();
        assert_eq!(
            options,
            serde_json::json!({"method": "ets", "season_length": [24, 168], "nonnegative": true})
        );
        assert_eq!(q.columns.id, "store");
        let uri: Uri = "/v1/models/m?horizon=3".parse().unwrap();
        assert!(TableQuery::of(&uri).is_err());
    }
}
