//! Accuracy and speed benchmark of the engine on long-format competition data
//! (M3, realworld.csv and alike): fit every series on its `train` rows in
//! parallel, forecast its horizon, score against the `test` rows (sMAPE,
//! MASE, OWA against Naive2, 80%/95% interval coverage), and report per group
//! (and, where a group mixes season sets, per `group[seasons]`) and overall
//! with failures, fallbacks, forecasts far outside the data's range, thread
//! CPU time, wall time, throughput and peak memory.
//!
//! sMAPE is averaged over the windows whose train and test values are all
//! > 0 (it means nothing near zero), as `../shared/data/README.md` scores it.
//!
//! The command-line arguments are defined once here ([`Args`]) and used by
//! both `horizon bench` and `cargo run -p bench --example bench`.

pub mod data;
pub mod score;

pub use data::{parse_long_csv, read_long_csv, Series};

use engine::{Forecast, Horizon, Level, Method, ModelSpec, SeriesData};
use rayon::prelude::*;
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;
use thiserror::Error;

/// Why the benchmark could not run.
#[derive(Debug, Error)]
pub enum BenchError {
    // The I/O error is part of the message (not a `source`), so that it is
    // printed once whichever way the caller reports errors.
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("bad input: {0}")]
    Format(String),
    #[error("cannot write {path}: {error}")]
    Write { path: String, error: std::io::Error },
    #[error("thread pool: {0}")]
    Pool(String),
}

/// Which seasons the engine is given.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeasonsMode {
    /// The `seasons` column (`period` without one).
    #[default]
    Declared,
    /// None: only the season candidates of the `freq` column (none without
    /// one), which the engine tests, or detection from the data.
    Auto,
}

/// Command-line arguments of the benchmark.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Long-format CSV: dataset,series_id,group,period,horizon,split,t,value.
    pub file: PathBuf,
    /// Model to fit: auto, naive, seasonal_naive, drift, mean, naive2, ses,
    /// ets, arima, theta, optimized_theta, dynamic_theta, ces, the
    /// intermittent-demand methods, dhr.
    #[arg(long, default_value = "auto")]
    pub model: Method,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write every forecast as CSV: series_id,step,forecast,lo80,hi80,lo95,hi95.
    #[arg(long, value_name = "PATH")]
    pub forecasts_out: Option<PathBuf>,
    /// Only the first N series (for quick checks).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Only the series of this group (e.g. monthly).
    #[arg(long)]
    pub group: Option<String>,
    /// Seasons given to the engine: `declared` (the `seasons` column) or
    /// `auto` (only the candidates of the `freq` column).
    #[arg(long, value_enum, default_value_t = SeasonsMode::Declared)]
    pub seasons: SeasonsMode,
    /// Leave out the series of this dataset (repeatable), e.g.
    /// modeldata.Chicago, which has no statsforecast reference scores.
    #[arg(long, value_name = "DATASET")]
    pub exclude_dataset: Vec<String>,
    /// The last K training values of every series are sent as missing
    /// (days not reported yet): how gaps at the end cost accuracy.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub missing_tail: usize,
}

/// Scores of one group (or of all series).
#[derive(Debug, Clone, Serialize)]
pub struct GroupScore {
    pub name: String,
    pub series: usize,
    /// Mean sMAPE over the windows whose values are all > 0 ([`Self::smape_windows`]).
    pub smape: f64,
    pub smape_windows: usize,
    pub mase: f64,
    pub owa: f64,
    pub coverage80: f64,
    pub coverage95: f64,
    pub naive2_smape: f64,
    pub naive2_mase: f64,
    pub fallbacks: usize,
    pub failures: usize,
    /// Windows with a mean forecast outside [min − 2·range, max + 2·range]
    /// of their training data.
    pub out_of_range: usize,
    /// Sum of the per-series fit+forecast thread CPU times. A long fit runs
    /// pieces on other threads of the pool when they are idle: those are
    /// counted with whatever series that thread was running, or not at all
    /// when it was idle ([`Report::process_cpu_seconds`] is the exact total).
    pub cpu_seconds: f64,
    /// Wall seconds of the whole run (overall only; 0 for groups).
    pub seconds: f64,
    pub series_per_second: f64,
}

/// A series whose model fell back or failed.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    pub series_id: String,
    pub reason: String,
}

/// The full benchmark result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub file: String,
    pub threads: usize,
    pub groups: Vec<GroupScore>,
    pub overall: GroupScore,
    pub fallback_list: Vec<Incident>,
    pub failure_list: Vec<Incident>,
    /// The slowest series: (id, seconds).
    pub slowest: Vec<(String, f64)>,
    pub peak_memory_mb: Option<f64>,
    /// CPU seconds of every thread while the series were fitted and scored.
    pub process_cpu_seconds: f64,
}

/// Result of one series.
struct Outcome {
    smape: f64,
    /// Train and test values all > 0 (sMAPE is counted).
    positive: bool,
    out_of_range: bool,
    mase: Option<f64>,
    naive2_smape: f64,
    naive2_mase: Option<f64>,
    covered80: usize,
    covered95: usize,
    points: usize,
    fallback: Option<String>,
    failure: Option<String>,
    seconds: f64,
    forecast: Forecast,
}

/// Runs the benchmark and prints the table (or JSON) to stdout.
pub fn run_cli(args: &Args) -> Result<Report, BenchError> {
    let report = run(args)?;
    let out = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(|e| BenchError::Format(format!("json: {e}")))?
    } else {
        report.table()
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (e.g. `| head`) is not an error worth failing for.
    let _ = writeln!(stdout, "{out}");
    Ok(report)
}

/// Runs the benchmark and returns the report.
pub fn run(args: &Args) -> Result<Report, BenchError> {
    let mut all = read_long_csv(&args.file)?;
    if let Some(g) = &args.group {
        all.retain(|s| &s.group == g);
    }
    all.retain(|s| !args.exclude_dataset.contains(&s.dataset));
    if let Some(limit) = args.limit {
        all.truncate(limit);
    }
    if all.is_empty() {
        return Err(BenchError::Format("no series selected".into()));
    }
    let threads = args
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| BenchError::Pool(e.to_string()))?;

    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(all.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(args.model.to_string());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let method = args.model;
    let mode = args.seasons;
    let tail = args.missing_tail;
    let (start, cpu_start) = (Instant::now(), process_cpu_seconds());
    let outcomes: Vec<Outcome> = pool.install(|| {
        all.par_iter()
            .map(|s| {
                let o = run_one(s, method, mode, tail);
                bar.inc(1);
                o
            })
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    let process_cpu = process_cpu_seconds() - cpu_start;
    bar.finish_and_clear();

    if let Some(path) = &args.forecasts_out {
        write_forecasts(path, &all, &outcomes)?;
    }
    Ok(build_report(
        args,
        threads,
        &all,
        &outcomes,
        wall,
        process_cpu,
    ))
}

/// Fits, forecasts and scores one series; panics and non-finite output are
/// caught and reported as failures (scored with the naive forecast).
fn run_one(s: &Series, method: Method, mode: SeasonsMode, missing_tail: usize) -> Outcome {
    let levels = [Level::parse(80.0), Level::parse(95.0)];
    let levels: Vec<Level> = levels.into_iter().flatten().collect();
    let scale = score::mase_scale(&s.train, s.period);
    let h = s.horizon;

    let t0 = thread_cpu_seconds();
    let attempt = catch_unwind(AssertUnwindSafe(|| {
        fit_forecast(s, method, mode, &levels, missing_tail)
    }));
    let seconds = thread_cpu_seconds() - t0;
    let (forecast, fallback, failure) = match attempt {
        Ok(Ok((f, fallback))) => (f, fallback, None),
        Ok(Err(e)) => (naive_forecast(s), None, Some(e)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            (naive_forecast(s), None, Some(format!("panic: {msg}")))
        }
    };

    // The Naive2 benchmark of the OWA (the model itself when it is Naive2).
    let naive2_mean = if method == Method::Naive2 && failure.is_none() {
        forecast.mean.clone()
    } else {
        catch_unwind(AssertUnwindSafe(|| {
            fit_forecast(s, Method::Naive2, SeasonsMode::Declared, &[], 0)
        }))
        .ok()
        .and_then(Result::ok)
        .map(|(f, _)| f.mean)
        .unwrap_or_else(|| naive_forecast(s).mean)
    };

    let interval = |level: f64| {
        forecast
            .intervals
            .iter()
            .find(|i| (i.level - level).abs() < 1e-9)
            .map(|i| score::covered(&s.test, &i.lower, &i.upper))
            .unwrap_or(0)
    };
    let (lo, hi) = s
        .train
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let range = hi - lo;
    Outcome {
        smape: score::smape(&s.test, &forecast.mean),
        positive: s.train.iter().chain(&s.test).all(|v| *v > 0.0),
        out_of_range: forecast
            .mean
            .iter()
            .any(|v| *v < lo - 2.0 * range || *v > hi + 2.0 * range),
        mase: scale.map(|sc| score::mase(&s.test, &forecast.mean, sc)),
        naive2_smape: score::smape(&s.test, &naive2_mean),
        naive2_mase: scale.map(|sc| score::mase(&s.test, &naive2_mean, sc)),
        covered80: interval(80.0),
        covered95: interval(95.0),
        points: h.min(s.test.len()),
        fallback,
        failure,
        seconds,
        forecast,
    }
}

type FitResult = Result<(Forecast, Option<String>), String>;

/// The model spec of `s` for `method` and the seasons mode.
pub fn spec_for(s: &Series, method: Method, mode: SeasonsMode) -> ModelSpec {
    match mode {
        SeasonsMode::Declared => ModelSpec::with_seasons(method, s.seasons.clone()),
        SeasonsMode::Auto => ModelSpec {
            method,
            seasons: Vec::new(),
            season_candidates: s
                .freq
                .as_deref()
                .and_then(|f| protocol::calendar::Freq::parse(f).ok())
                .map(|f| f.season_candidates())
                .unwrap_or_default(),
            nonnegative: None,
        },
    }
}

fn fit_forecast(
    s: &Series,
    method: Method,
    mode: SeasonsMode,
    levels: &[Level],
    missing_tail: usize,
) -> FitResult {
    let observed = s.train.len().saturating_sub(missing_tail);
    let values = (0..s.train.len())
        .map(|t| (t < observed).then(|| s.train[t]))
        .collect();
    let data = SeriesData::with_gaps(values).map_err(|e| e.to_string())?;
    let horizon = Horizon::parse(s.horizon as i64).map_err(|e| e.to_string())?;
    // Naive2 (the OWA benchmark) keeps the shortest declared season.
    let spec = if method == Method::Naive2 {
        ModelSpec::new(method, Some(s.period))
    } else {
        spec_for(s, method, mode)
    };
    let fitted = spec.fit(&data).map_err(|e| e.to_string())?;
    let f = fitted.forecast(horizon, levels);
    let finite = f.mean.iter().all(|v| v.is_finite())
        && f.intervals
            .iter()
            .all(|i| i.lower.iter().chain(&i.upper).all(|v| v.is_finite()));
    if f.mean.len() != s.horizon {
        return Err(format!(
            "forecast has {} steps, expected {}",
            f.mean.len(),
            s.horizon
        ));
    }
    if !finite {
        return Err("non-finite forecast or interval".into());
    }
    Ok((f, fitted.fallback().map(str::to_string)))
}

fn naive_forecast(s: &Series) -> Forecast {
    let last = s.train.last().copied().unwrap_or(0.0);
    Forecast {
        mean: vec![last; s.horizon],
        intervals: Vec::new(),
    }
}

fn build_report(
    args: &Args,
    threads: usize,
    all: &[Series],
    outcomes: &[Outcome],
    wall: f64,
    process_cpu_seconds: f64,
) -> Report {
    let mut group_names: Vec<&str> = Vec::new();
    for s in all {
        if !group_names.contains(&s.group.as_str()) {
            group_names.push(&s.group);
        }
    }
    let pairs: Vec<(&Series, &Outcome)> = all.iter().zip(outcomes).collect();
    let label = |s: &Series| {
        let p: Vec<String> = s.seasons.iter().map(usize::to_string).collect();
        format!("{}[{}]", s.group, p.join(";"))
    };
    let mut groups = Vec::new();
    for g in &group_names {
        let members: Vec<&(&Series, &Outcome)> =
            pairs.iter().filter(|(s, _)| s.group == *g).collect();
        groups.push(aggregate(g, &members, 0.0));
        // A group that mixes season sets is also reported per set.
        let mut labels: Vec<String> = Vec::new();
        for (s, _) in &members {
            let l = label(s);
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        if labels.len() > 1 {
            labels.sort();
            for l in labels {
                let part: Vec<&(&Series, &Outcome)> = members
                    .iter()
                    .copied()
                    .filter(|(s, _)| label(s) == l)
                    .collect();
                groups.push(aggregate(&l, &part, 0.0));
            }
        }
    }
    let everything: Vec<&(&Series, &Outcome)> = pairs.iter().collect();
    let overall = aggregate("overall", &everything, wall);

    let incidents = |pick: fn(&Outcome) -> Option<&String>| {
        pairs
            .iter()
            .filter_map(|(s, o)| {
                pick(o).map(|r| Incident {
                    series_id: s.id.clone(),
                    reason: r.clone(),
                })
            })
            .collect::<Vec<_>>()
    };
    let mut slowest: Vec<(String, f64)> = pairs
        .iter()
        .map(|(s, o)| (s.id.clone(), o.seconds))
        .collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    slowest.truncate(5);

    Report {
        model: args.model.to_string(),
        file: args.file.display().to_string(),
        threads,
        groups,
        overall,
        fallback_list: incidents(|o| o.fallback.as_ref()),
        failure_list: incidents(|o| o.failure.as_ref()),
        slowest,
        peak_memory_mb: peak_memory_mb(),
        process_cpu_seconds,
    }
}

fn aggregate(name: &str, members: &[&(&Series, &Outcome)], wall: f64) -> GroupScore {
    let n = members.len().max(1) as f64;
    let _ = n;
    let positive: Vec<&&(&Series, &Outcome)> = members.iter().filter(|(_, o)| o.positive).collect();
    let np = positive.len().max(1) as f64;
    let smape = positive.iter().map(|(_, o)| o.smape).sum::<f64>() / np;
    let naive2_smape = positive.iter().map(|(_, o)| o.naive2_smape).sum::<f64>() / np;
    // MASE over the series that have a scale (all of M3).
    let with_scale: Vec<&&(&Series, &Outcome)> =
        members.iter().filter(|(_, o)| o.mase.is_some()).collect();
    let ms = with_scale.len().max(1) as f64;
    let mase = with_scale.iter().filter_map(|(_, o)| o.mase).sum::<f64>() / ms;
    let naive2_mase = with_scale
        .iter()
        .filter_map(|(_, o)| o.naive2_mase)
        .sum::<f64>()
        / ms;
    let points: usize = members.iter().map(|(_, o)| o.points).sum();
    let cov = |f: fn(&Outcome) -> usize| {
        members.iter().map(|(_, o)| f(o)).sum::<usize>() as f64 / points.max(1) as f64
    };
    let cpu: f64 = members.iter().map(|(_, o)| o.seconds).sum();
    GroupScore {
        name: name.to_string(),
        series: members.len(),
        smape,
        smape_windows: positive.len(),
        mase,
        owa: score::owa(smape, mase, naive2_smape, naive2_mase),
        coverage80: cov(|o| o.covered80),
        coverage95: cov(|o| o.covered95),
        naive2_smape,
        naive2_mase,
        fallbacks: members.iter().filter(|(_, o)| o.fallback.is_some()).count(),
        failures: members.iter().filter(|(_, o)| o.failure.is_some()).count(),
        out_of_range: members.iter().filter(|(_, o)| o.out_of_range).count(),
        cpu_seconds: cpu,
        seconds: wall,
        series_per_second: if wall > 0.0 {
            members.len() as f64 / wall
        } else {
            0.0
        },
    }
}

fn write_forecasts(
    path: &std::path::Path,
    all: &[Series],
    outcomes: &[Outcome],
) -> Result<(), BenchError> {
    let err = |e: std::io::Error| BenchError::Write {
        path: path.display().to_string(),
        error: e,
    };
    let file = std::fs::File::create(path).map_err(err)?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(w, "series_id,step,forecast,lo80,hi80,lo95,hi95").map_err(err)?;
    for (s, o) in all.iter().zip(outcomes) {
        let f = &o.forecast;
        let band = |level: f64| f.intervals.iter().find(|i| (i.level - level).abs() < 1e-9);
        let (i80, i95) = (band(80.0), band(95.0));
        for (k, mean) in f.mean.iter().enumerate() {
            let pick = |i: Option<&engine::Interval>, lower: bool| {
                i.and_then(|i| {
                    if lower {
                        i.lower.get(k)
                    } else {
                        i.upper.get(k)
                    }
                })
                .map(|v| v.to_string())
                .unwrap_or_default()
            };
            writeln!(
                w,
                "{},{},{},{},{},{},{}",
                s.id,
                k + 1,
                mean,
                pick(i80, true),
                pick(i80, false),
                pick(i95, true),
                pick(i95, false)
            )
            .map_err(err)?;
        }
    }
    w.flush().map_err(err)
}

/// CPU seconds consumed by the calling thread so far (wall-clock seconds
/// where the platform has no thread clock).
pub fn thread_cpu_seconds() -> f64 {
    cpu_seconds(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU seconds consumed by every thread of this process so far (wall-clock
/// seconds where the platform has no process clock): what one fit costs when
/// the engine spreads its pieces over several threads.
pub fn process_cpu_seconds() -> f64 {
    cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer given.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc == 0 {
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    } else {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    }
}

/// Peak resident memory of this process (VmHWM), in MiB; Linux only.
pub fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let line = |g: &GroupScore| {
            format!(
                "{:<16} {:>6} {:>7.3} {:>4} {:>7.3} {:>6.3} {:>6.3} {:>6.3} {:>8.3} {:>7.3} {:>5} {:>5} {:>5} {:>8.2}\n",
                g.name,
                g.series,
                g.smape,
                g.smape_windows,
                g.mase,
                g.owa,
                g.coverage80,
                g.coverage95,
                g.naive2_smape,
                g.naive2_mase,
                g.fallbacks,
                g.failures,
                g.out_of_range,
                g.cpu_seconds
            )
        };
        out.push_str(&format!(
            "model {} on {} ({} threads)\n",
            self.model, self.file, self.threads
        ));
        out.push_str(&format!(
            "{:<16} {:>6} {:>7} {:>4} {:>7} {:>6} {:>6} {:>6} {:>8} {:>7} {:>5} {:>5} {:>5} {:>8}\n",
            "group",
            "series",
            "sMAPE",
            "n>0",
            "MASE",
            "OWA",
            "cov80",
            "cov95",
            "N2 sMAPE",
            "N2 MASE",
            "fallb",
            "fail",
            "range",
            "cpu s"
        ));
        for g in &self.groups {
            out.push_str(&line(g));
        }
        out.push_str(&line(&self.overall));
        out.push_str(&format!(
            "wall {:.2} s, process cpu {:.2} s, {:.0} series/s, peak memory {}\n",
            self.overall.seconds,
            self.process_cpu_seconds,
            self.overall.series_per_second,
            self.peak_memory_mb
                .map(|m| format!("{m:.0} MiB"))
                .unwrap_or_else(|| "unknown".into())
        ));
        let slow: Vec<String> = self
            .slowest
            .iter()
            .map(|(id, s)| format!("{id} {s:.3}s"))
            .collect();
        out.push_str(&format!("slowest series: {}\n", slow.join(", ")));
        for (title, list) in [
            ("failures", &self.failure_list),
            ("fallbacks", &self.fallback_list),
        ] {
            if list.is_empty() {
                continue;
            }
            out.push_str(&format!("{title} ({}):\n", list.len()));
            // Group by reason so a systematic problem reads as one line.
            let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
            for i in list {
                match reasons.iter_mut().find(|(r, _)| *r == i.reason) {
                    Some((_, ids)) => ids.push(&i.series_id),
                    None => reasons.push((&i.reason, vec![&i.series_id])),
                }
            }
            for (reason, ids) in reasons {
                let shown: Vec<&str> = ids.iter().take(10).copied().collect();
                let more = if ids.len() > 10 {
                    format!(" and {} more", ids.len() - 10)
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "  {} x {reason}: {}{more}\n",
                    ids.len(),
                    shown.join(" ")
                ));
            }
        }
        out
    }
}
