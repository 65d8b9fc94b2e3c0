//! `horizon forecast FILE`: forecasts every series of a long-format CSV or
//! Parquet file (`unique_id,ds,y`, read by the `tabular` crate) with the
//! engine in this process, on all cores, and writes the columns of the
//! Python client and statsforecast as CSV or Parquet (by `--out`'s extension):
//! `unique_id,ds,<method>,<method>-lo-80,<method>-hi-80,...`.
//!
//! Dates go through `protocol::calendar` (the same grids, frequencies and
//! future timestamps as the API); a `ds` of integers is an index continued
//! by its own step.
//!
//! With `--url` the work is done by a running server instead
//! (`forecast_remote.rs`): same input, same output.

use anyhow::Context;
use clap::Args;
use engine::{Horizon, Level, Method, ModelSpec, SeriesData};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use protocol::calendar::{Freq, Grid};
use rayon::prelude::*;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use tabular::{Columns, CsvForecastWriter, ForecastLayout, ParquetForecastWriter, Series, Time};

#[derive(Args, Debug)]
pub struct ForecastArgs {
    /// Long-format CSV with a header, or Parquet (`.parquet`, `.pq`): one row per observation (id, time, value).
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
    #[arg(long, value_delimiter = ',', value_parser = parse_season)]
    pub season_length: Vec<usize>,
    /// Method: auto, ets, arima, theta, naive, ... (as the API's `method`).
    #[arg(long, default_value = "auto")]
    pub method: String,
    /// Clip forecasts at zero (`true`/`false`); absent, the engine decides from the data.
    #[arg(long)]
    pub nonnegative: Option<bool>,
    /// Output file: Parquet when it ends in `.parquet` or `.pq`, else CSV; CSV on standard output when absent.
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

/// The rows of one forecast series.
pub(crate) struct Output {
    pub(crate) id: String,
    pub(crate) ds: Vec<String>,
    pub(crate) mean: Vec<f64>,
    pub(crate) intervals: Vec<engine::Interval>,
}

/// One `--season-length`: as the API takes it, 1 to its longest season.
fn parse_season(text: &str) -> Result<usize, String> {
    let max = gateway::validate::MAX_SEASON_LENGTH;
    match text.trim().parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n as usize),
        _ => Err(format!("must be an integer from 1 to {max}, got '{text}'")),
    }
}

pub fn run(args: ForecastArgs) -> anyhow::Result<()> {
    let horizon = Horizon::parse(args.horizon).map_err(|e| anyhow::anyhow!("--horizon: {e}"))?;
    // The API's rules for a list of seasons, so that a file forecasts the
    // same here and with --url.
    let seasons = &args.season_length;
    if seasons.len() > gateway::validate::MAX_SEASONS {
        anyhow::bail!(
            "--season-length: at most {} seasons are accepted",
            gateway::validate::MAX_SEASONS
        );
    }
    if seasons.len() > 1 && seasons.contains(&1) {
        anyhow::bail!(
            "--season-length: 1 means no seasonality and cannot be combined with other season lengths"
        );
    }
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
    let inputs = read_table(&args)?;
    if let Some(url) = &args.url {
        let outputs = crate::forecast_remote::forecast(&args, url, &inputs, horizon, &levels)?;
        return write_table(&args, method, &levels, &outputs);
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
    write_table(&args, method, &levels, &outputs)
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

/// A table value as the engine takes it: NaN is a missing one.
fn known(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

fn forecast_one(
    input: &Series,
    args: &ForecastArgs,
    method: Method,
    freq: Option<Freq>,
    horizon: Horizon,
    levels: &[Level],
) -> anyhow::Result<Output> {
    let h = horizon.get();
    let (values, ds, series_freq) = match &input.time {
        Time::Dates(stamps) => {
            let grid = Grid::of(stamps, freq).map_err(|e| anyhow::anyhow!("ds: {e}"))?;
            // Gaps in the grid are missing values.
            let len = grid.positions.last().map_or(0, |p| p + 1);
            let mut values = vec![None; len];
            for (&pos, &v) in grid.positions.iter().zip(&input.values) {
                values[pos] = known(v);
            }
            let ds = grid
                .calendar
                .future(h)
                .iter()
                .map(ToString::to_string)
                .collect();
            (values, ds, Some(grid.calendar.freq))
        }
        Time::Index(_) | Time::Steps { .. } => {
            let grid = input
                .index_grid(engine::MAX_SERIES_LEN)
                .context("an integer axis")??;
            let ds = grid.future(h).iter().map(ToString::to_string).collect();
            (grid.values.into_iter().map(known).collect(), ds, freq)
        }
    };
    // The server's rule, so that a file forecasts the same here and with --url.
    if values.len() < engine::MIN_TRAIN_LEN {
        anyhow::bail!(
            "y: has {} points; at least {} are needed",
            values.len(),
            engine::MIN_TRAIN_LEN
        );
    }
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

/// Whether a path names a Parquet file (by its extension).
fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"))
}

fn read_table(args: &ForecastArgs) -> anyhow::Result<Vec<Series>> {
    let columns = Columns {
        id: args.id_col.clone(),
        time: args.time_col.clone(),
        target: args.target_col.clone(),
    };
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let read = if is_parquet(&args.file) {
        tabular::read_parquet(file, &columns)
    } else {
        tabular::read_csv(std::io::BufReader::new(file), &columns)
    };
    read.map_err(|e| match e {
        tabular::TableError::MissingColumn { .. } => anyhow::anyhow!(
            "{}: {e}; see --id-col, --time-col, --target-col",
            args.file.display()
        ),
        e => anyhow::anyhow!("{}: {e}", args.file.display()),
    })
}

fn write_table(
    args: &ForecastArgs,
    method: Method,
    levels: &[Level],
    outputs: &[Output],
) -> anyhow::Result<()> {
    let percents: Vec<f64> = levels.iter().map(|l| l.percent()).collect();
    let layout = ForecastLayout::new(&args.id_col, &args.time_col, method.name(), &percents);
    let sink: Box<dyn Write + Send> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let sink = std::io::BufWriter::new(sink);
    if args.out.as_deref().is_some_and(is_parquet) {
        let mut writer = ParquetForecastWriter::new(sink, layout)?;
        for out in outputs {
            writer.write_series(&out.id, Some(&out.ds), &out.mean, &out.intervals)?;
        }
        writer.finish()?.flush()?;
    } else {
        let mut writer = CsvForecastWriter::new(sink, layout)?;
        for out in outputs {
            writer.write_series(&out.id, Some(&out.ds), &out.mean, &out.intervals)?;
        }
        writer.finish()?.flush()?;
    }
    Ok(())
}
