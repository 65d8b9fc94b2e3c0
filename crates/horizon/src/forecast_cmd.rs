//! `horizon forecast FILE`: forecasts every series of a long-format CSV
//! (`unique_id,ds,y`) with the engine in this process, on all cores, and
//! writes the columns of the Python client and statsforecast:
//! `unique_id,ds,<method>,<method>-lo-80,<method>-hi-80,...`.
//!
//! Dates go through `protocol::calendar` (the same grids, frequencies and
//! future timestamps as the API); a `ds` of integers is an index continued
//! by its own step.
//!
//! With `--url` the work is done by a running server instead
//! (`forecast_remote.rs`): same input, same output.

use anyhow::{bail, Context};
use clap::Args;
use engine::{Horizon, Level, Method, ModelSpec, SeriesData};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use protocol::calendar::{Freq, Grid, Timestamp};
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ForecastArgs {
    /// Long-format CSV with a header: one row per observation (id, time, value).
    pub file: PathBuf,
    /// Steps to forecast.
    #[arg(long, short = 'H')]
    pub horizon: i64,
    /// Prediction interval levels in percent, e.g. `80,95`.
    #[arg(long, value_delimiter = ',')]
    pub level: Vec<f64>,
    /// Pandas frequency alias of the timestamps (`D`, `h`, `MS`, ...); inferred when absent.
    #[arg(long)]
    pub freq: Option<String>,
    /// Season length(s), e.g. `12` or `24,168`; `1` for none. Absent: the engine looks.
    #[arg(long, value_delimiter = ',')]
    pub season_length: Vec<usize>,
    /// Method: auto, ets, arima, theta, naive, ... (as the API's `method`).
    #[arg(long, default_value = "auto")]
    pub method: String,
    /// Clip forecasts at zero (`true`/`false`); absent, the engine decides from the data.
    #[arg(long)]
    pub nonnegative: Option<bool>,
    /// Output CSV; standard output when absent.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Name of the id column.
    #[arg(long, default_value = "unique_id")]
    pub id_col: String,
    /// Name of the time column.
    #[arg(long, default_value = "ds")]
    pub time_col: String,
    /// Name of the target column.
    #[arg(long, default_value = "y")]
    pub target_col: String,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Forecast on the Horizon server at this URL (e.g. `http://127.0.0.1:8080`)
    /// instead of in this process: the file is fitted there as `--model`.
    #[arg(long)]
    pub url: Option<String>,
    /// With `--url`: the model the file is fitted as (a new version of it),
    /// left on the server; default: the file's name, e.g. `sales` for `sales.csv`.
    #[arg(long, requires = "url")]
    pub model: Option<String>,
    /// With `--url`: the server's API key (`Authorization: Bearer`).
    #[arg(long, env = "HORIZON_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// The time axis of one series.
pub(crate) enum Axis {
    /// Timestamps on a calendar grid.
    Dates(Vec<Timestamp>),
    /// Integer positions (`ds` of whole numbers).
    Index(Vec<i64>),
}

/// One series read from the file, in file order of first appearance.
pub(crate) struct Input {
    pub(crate) id: String,
    pub(crate) axis: Axis,
    pub(crate) values: Vec<Option<f64>>,
}

/// A series' (time text, value) rows as read.
type Points = Vec<(String, Option<f64>)>;

/// The rows of one forecast series.
pub(crate) struct Output {
    pub(crate) id: String,
    pub(crate) ds: Vec<String>,
    pub(crate) mean: Vec<f64>,
    pub(crate) intervals: Vec<engine::Interval>,
}

pub fn run(args: ForecastArgs) -> anyhow::Result<()> {
    let horizon = Horizon::parse(args.horizon).map_err(|e| anyhow::anyhow!("--horizon: {e}"))?;
    let levels = args
        .level
        .iter()
        .map(|&l| Level::parse(l).map_err(|e| anyhow::anyhow!("--level {l}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let method: Method = args
        .method
        .parse()
        .map_err(|e| anyhow::anyhow!("--method: {e}"))?;
    let freq = args
        .freq
        .as_deref()
        .map(Freq::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--freq: unknown frequency '{}'", e.0))?;
    let inputs = read_csv(&args)?;
    if let Some(url) = &args.url {
        let outputs = crate::forecast_remote::forecast(&args, url, &inputs, horizon, &levels)?;
        return write_csv(&args, method, &levels, &outputs);
    }
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build_global()
            .context("starting the worker threads")?;
    }

    let progress = progress_bar(inputs.len() as u64);
    let results: Vec<anyhow::Result<Output>> = inputs
        .par_iter()
        .map(|input| {
            let out = forecast_one(input, &args, method, freq, horizon, &levels)
                .with_context(|| format!("series '{}'", input.id));
            progress.inc(1);
            out
        })
        .collect();
    progress.finish_and_clear();
    let outputs = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    write_csv(&args, method, &levels, &outputs)
}

pub(crate) fn progress_bar(len: u64) -> ProgressBar {
    // A bar only for a person watching: none when stderr is piped or a file.
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} series ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

fn forecast_one(
    input: &Input,
    args: &ForecastArgs,
    method: Method,
    freq: Option<Freq>,
    horizon: Horizon,
    levels: &[Level],
) -> anyhow::Result<Output> {
    let h = horizon.get();
    let (values, ds, series_freq) = match &input.axis {
        Axis::Dates(stamps) => {
            let grid = Grid::of(stamps, freq).map_err(|e| anyhow::anyhow!("ds: {e}"))?;
            // Gaps in the grid are missing values.
            let len = grid.positions.last().map_or(0, |p| p + 1);
            let mut values = vec![None; len];
            for (&pos, &v) in grid.positions.iter().zip(&input.values) {
                values[pos] = v;
            }
            let ds = grid
                .calendar
                .future(h)
                .iter()
                .map(ToString::to_string)
                .collect();
            (values, ds, Some(grid.calendar.freq))
        }
        Axis::Index(index) => {
            let (values, ds) = on_index(index, &input.values, h)?;
            (values, ds, freq)
        }
    };
    let series = SeriesData::with_gaps(values).map_err(|e| anyhow::anyhow!("y: {e}"))?;
    let mut spec = ModelSpec::with_seasons(method, args.season_length.clone());
    if args.season_length.is_empty() {
        spec.season_candidates = series_freq
            .map(|f| f.season_candidates())
            .unwrap_or_default();
    }
    spec.nonnegative = args.nonnegative;
    let fitted = spec.fit(&series).map_err(|e| anyhow::anyhow!("fit: {e}"))?;
    let forecast = fitted.forecast(horizon, levels);
    Ok(Output {
        id: input.id.clone(),
        ds,
        mean: forecast.mean,
        intervals: forecast.intervals,
    })
}

/// Values at their positions on an integer index (gaps are `None`), and
/// the `h` indexes that follow, continued by the index's own step.
pub(crate) fn on_index(
    index: &[i64],
    points: &[Option<f64>],
    h: usize,
) -> anyhow::Result<(Vec<Option<f64>>, Vec<String>)> {
    let step = match index {
        [first, .., last] => ((last - first) / (index.len() as i64 - 1)).max(1),
        _ => 1,
    };
    let first = index.first().copied().unwrap_or(0);
    let mut values = Vec::with_capacity(index.len());
    for (&t, &v) in index.iter().zip(points) {
        if (t - first) % step != 0 {
            bail!("ds: {t} is not on the step {step} from {first}");
        }
        let pos = usize::try_from((t - first) / step)?;
        if pos >= values.len() {
            values.resize(pos + 1, None);
        }
        values[pos] = v;
    }
    let last = first + step * (values.len() as i64 - 1);
    let ds = (1..=h as i64)
        .map(|k| (last + step * k).to_string())
        .collect();
    Ok((values, ds))
}

fn read_csv(args: &ForecastArgs) -> anyhow::Result<Vec<Input>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no column '{name}' (columns: {}); see --id-col, --time-col, --target-col",
                args.file.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (id_at, ds_at, y_at) = (
        column(&args.id_col)?,
        column(&args.time_col)?,
        column(&args.target_col)?,
    );
    // Rows per series in order of first appearance.
    let mut order: HashMap<String, usize> = HashMap::new();
    let mut rows: Vec<(String, Points)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.with_context(|| format!("line {line}"))?;
        let field = |at: usize| record.get(at).unwrap_or("");
        let id = field(id_at);
        let y = parse_value(field(y_at))
            .with_context(|| format!("line {line}: {} '{}'", args.target_col, field(y_at)))?;
        let slot = match order.get(id) {
            Some(&slot) => slot,
            None => {
                order.insert(id.to_string(), rows.len());
                rows.push((id.to_string(), Vec::new()));
                rows.len() - 1
            }
        };
        rows[slot].1.push((field(ds_at).to_string(), y));
    }
    if rows.is_empty() {
        bail!("{}: no rows", args.file.display());
    }
    rows.into_iter()
        .map(|(id, points)| to_input(id, points).map_err(|e| anyhow::anyhow!("{e}")))
        .collect()
}

/// A value: a number, or empty / `NaN` / `NA` / `null` for a missing one.
fn parse_value(text: &str) -> anyhow::Result<Option<f64>> {
    if text.is_empty()
        || ["nan", "na", "null", "none"].contains(&text.to_ascii_lowercase().as_str())
    {
        return Ok(None);
    }
    let v: f64 = text.parse().context("not a number")?;
    if !v.is_finite() {
        bail!("not a finite number");
    }
    Ok(Some(v))
}

/// Sorts a series by time and decides whether its `ds` are integers or timestamps.
fn to_input(id: String, points: Points) -> Result<Input, String> {
    if let Ok(mut index) = points
        .iter()
        .map(|(t, v)| t.parse::<i64>().map(|t| (t, *v)))
        .collect::<Result<Vec<_>, _>>()
    {
        index.sort_by_key(|p| p.0);
        let (ds, values) = index.into_iter().unzip();
        return Ok(Input {
            id,
            axis: Axis::Index(ds),
            values,
        });
    }
    let mut stamps = points
        .iter()
        .map(|(t, v)| {
            Timestamp::parse(t).map(|t| (t, *v)).map_err(|e| {
                format!(
                    "series '{id}': ds '{t}' is neither an integer nor a date ({})",
                    e.0
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    stamps.sort_by_key(|p| p.0.local());
    let (ds, values) = stamps.into_iter().unzip();
    Ok(Input {
        id,
        axis: Axis::Dates(ds),
        values,
    })
}

fn level_name(level: f64) -> String {
    if level.fract() == 0.0 {
        format!("{}", level as i64)
    } else {
        format!("{level}")
    }
}

fn write_csv(
    args: &ForecastArgs,
    method: Method,
    levels: &[Level],
    outputs: &[Output],
) -> anyhow::Result<()> {
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(sink));
    let alias = method.name();
    let mut sorted: Vec<f64> = levels.iter().map(|l| l.percent()).collect();
    sorted.sort_by(f64::total_cmp);
    let mut header = vec![
        args.id_col.clone(),
        args.time_col.clone(),
        alias.to_string(),
    ];
    for l in &sorted {
        header.push(format!("{alias}-lo-{}", level_name(*l)));
        header.push(format!("{alias}-hi-{}", level_name(*l)));
    }
    writer.write_record(&header)?;
    for out in outputs {
        let bands: Vec<&engine::Interval> = sorted
            .iter()
            .filter_map(|l| out.intervals.iter().find(|i| i.level == *l))
            .collect();
        for (k, mean) in out.mean.iter().enumerate() {
            let mut row = vec![
                out.id.clone(),
                out.ds.get(k).cloned().unwrap_or_default(),
                mean.to_string(),
            ];
            for band in &bands {
                row.push(band.lower[k].to_string());
                row.push(band.upper[k].to_string());
            }
            writer.write_record(&row)?;
        }
    }
    writer.flush()?;
    Ok(())
}
