//! `horizon forecast FILE --url URL`: the file command against a running
//! server instead of this process's engine. The file's series are fitted as a
//! new version of a model (`PUT /v1/models/{model}`, sent as a job with
//! `Prefer: respond-async` and followed on `/v1/jobs/{id}`, so a large file
//! neither times out nor hides its progress), then forecast
//! (`POST /v1/models/{model}/forecast`) and written exactly like the local
//! command's output. The model stays on the server.

use crate::forecast_cmd::{progress_bar, ForecastArgs, Output};
use anyhow::{bail, Context};
use engine::{Horizon, Level};
use serde_json::{json, Value};
use std::time::Duration;
use tabular::{Series, Time};

/// How often the fit job is asked for its progress.
const POLL: Duration = Duration::from_millis(250);
/// Series per forecast request: 1,000 series × 12 steps × 2 levels is
/// 60,000 values, far under the server's default answer limit.
const SERIES_PER_FORECAST: usize = 1000;
/// Where Debian and most Linux systems keep the CA bundle for HTTPS.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Fits and forecasts `inputs` on the server at `url`.
pub fn forecast(
    args: &ForecastArgs,
    url: &str,
    inputs: &[Series],
    horizon: Horizon,
    levels: &[Level],
) -> anyhow::Result<Vec<Output>> {
    let model = match &args.model {
        // Checked here: an HTTP client would resolve '..' in the URL and
        // ask another endpoint.
        Some(m) => protocol::ModelName::parse(m)
            .map_err(|e| anyhow::anyhow!("--model: {e}"))?
            .name()
            .to_string(),
        None => model_from_file(args)?,
    };
    // `localhost:8080` parses as a URL of scheme "localhost".
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string());
    if let Err(why) = parsed.and_then(|u| match u.scheme() {
        "http" | "https" => Ok(()),
        other => Err(format!("'{other}' is no scheme of HTTP")),
    }) {
        bail!("--url {url}: {why}; give the whole address, e.g. http://127.0.0.1:8080");
    }
    let h = horizon.get();
    let mut series = Vec::with_capacity(inputs.len());
    for input in inputs {
        // Missing values (NaN) go as JSON nulls.
        series.push(match &input.time {
            Time::Dates(stamps) => {
                let ds: Vec<String> = stamps.iter().map(ToString::to_string).collect();
                json!({"id": input.id, "values": input.values, "ds": ds})
            }
            // Placed here as the server places them (the smallest gap
            // between neighbours is the step), so that an axis it would
            // refuse is named by its series id; the server keeps the
            // positions and continues them in the forecasts.
            Time::Index(_) | Time::Steps { .. } => {
                let grid = input
                    .index_grid(engine::MAX_SERIES_LEN)
                    .context("an integer axis")?
                    .with_context(|| format!("series '{}'", input.id))?;
                let ds: Vec<i64> = (0..grid.values.len())
                    .map(|k| grid.first + k as i64 * grid.step)
                    .collect();
                json!({"id": input.id, "values": grid.values, "ds": ds})
            }
        });
    }
    let mut fit = json!({"series": series, "method": args.method});
    if !args.season_length.is_empty() {
        fit["season_length"] = json!(args.season_length);
    }
    if let Some(freq) = &args.freq {
        fit["freq"] = json!(freq);
    }
    if let Some(nonnegative) = args.nonnegative {
        fit["nonnegative"] = json!(nonnegative);
    }
    let levels: Vec<f64> = levels.iter().map(|l| l.percent()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the HTTP client")?;
    let answered = runtime.block_on(async {
        let api = Api::new(url, args.api_key.as_deref())?;
        api.fit(&model, &fit, inputs.len() as u64).await?;
        // In batches of series, under the server's limit on one answer.
        let mut answered = Vec::with_capacity(inputs.len());
        for batch in inputs.chunks(SERIES_PER_FORECAST) {
            let ids: Vec<&str> = batch.iter().map(|i| i.id.as_str()).collect();
            let answer = api
                .post(
                    &format!("/v1/models/{model}/forecast"),
                    &json!({"horizon": h, "level": levels, "series": ids}),
                )
                .await?;
            answered.extend(answer["series"].as_array().cloned().unwrap_or_default());
        }
        anyhow::Ok(answered)
    })?;
    if answered.len() != inputs.len() {
        bail!(
            "the server forecast {} series, the file has {}",
            answered.len(),
            inputs.len()
        );
    }
    answered
        .into_iter()
        .map(|s| {
            let id = s["id"].as_str().unwrap_or_default().to_string();
            // Dates as strings, integer positions as numbers.
            let label = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
            let ds = s["ds"]
                .as_array()
                .map(|ds| ds.iter().map(label).collect())
                .unwrap_or_default();
            Ok(Output {
                id,
                ds,
                mean: serde_json::from_value(s["mean"].clone()).context("a forecast's mean")?,
                intervals: serde_json::from_value(s["intervals"].clone())
                    .context("a forecast's intervals")?,
            })
        })
        .collect()
}

/// The model name a file stands for: its name without the extension, kept
/// to the characters a model name may have.
fn model_from_file(args: &ForecastArgs) -> anyhow::Result<String> {
    let stem = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() || name == "." || name == ".." {
        bail!(
            "cannot name a model after {}; give --model",
            args.file.display()
        );
    }
    Ok(name)
}

/// The server's API over HTTP, its JSend answers unwrapped.
struct Api {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Api {
    fn new(url: &str, key: Option<&str>) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
        // HTTPS trusts SSL_CERT_FILE, else the system bundle.
        let roots = std::env::var("SSL_CERT_FILE").unwrap_or_else(|_| SYSTEM_ROOTS.into());
        if let Ok(pem) = std::fs::read(&roots) {
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("reading the CA certificates in {roots}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Self {
            http: builder.build().context("building the HTTP client")?,
            base: url.trim_end_matches('/').to_string(),
            key: key.map(str::to_string),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self.request(reqwest::Method::POST, path).json(body).send();
        data(response.await, path).await.map(|(_, data)| data)
    }

    /// Sends the fit as a job and follows it to its end, with a progress bar
    /// of the series fitted on a terminal.
    async fn fit(&self, model: &str, body: &Value, n_series: u64) -> anyhow::Result<()> {
        let path = format!("/v1/models/{model}");
        let response = self
            .request(reqwest::Method::PUT, &path)
            .header("Prefer", "respond-async")
            .json(body)
            .send();
        let (status, job) = data(response.await, &path).await?;
        if status != reqwest::StatusCode::ACCEPTED {
            return Ok(()); // answered at once: fitted
        }
        let id = job["id"].as_str().context("the fit job's id")?.to_string();
        let progress = progress_bar(n_series);
        let path = format!("/v1/jobs/{id}");
        loop {
            let (_, job) = data(
                self.request(reqwest::Method::GET, &path).send().await,
                &path,
            )
            .await
            .inspect_err(|_| progress.abandon())?;
            progress.set_position(job["progress"]["done"].as_u64().unwrap_or(0));
            match job["status"].as_str().unwrap_or("") {
                "succeeded" => {
                    progress.finish_and_clear();
                    return Ok(());
                }
                "failed" | "cancelled" => {
                    progress.abandon();
                    bail!(
                        "the fit of model '{model}' {}: {}",
                        job["status"].as_str().unwrap_or(""),
                        job["error"].as_str().unwrap_or("no reason given")
                    );
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}

/// The `data` of a JSend `success`, or an error that says what the server
/// said (each field's message for a `fail`).
async fn data(
    response: reqwest::Result<reqwest::Response>,
    path: &str,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let response = response.with_context(|| format!("sending {path}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{path} answered {status} without JSON"))?;
    match body["status"].as_str() {
        Some("success") => Ok((status, body["data"].clone())),
        Some("fail") => {
            let fields = body["data"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or(&v.to_string())))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            bail!("{path} refused ({status}): {fields}")
        }
        _ => bail!(
            "{path} failed ({status}): {}",
            body["message"].as_str().unwrap_or(&body.to_string())
        ),
    }
}
