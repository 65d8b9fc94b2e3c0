//! Table fits in shards whose size does not grow the gateway's memory: the
//! rows of a CSV or Parquet body are spooled to a temporary file as they
//! are read (`tabular::RowSpool`: per series only its id and row count stay
//! in memory), then split by shard ([`protocol::shard::shard_of`]), and
//! each shard is read back, checked and converted like a whole table
//! ([`validate::table_fit`]), checked to travel, and written as its fit job
//! to a second temporary file. Every shard is checked before the version is
//! registered, so a bad series in the last shard is answered 400 with
//! nothing registered; once registered, the transport takes the jobs from
//! that file one at a time ([`SpooledFit::shards`]).
//!
//! A table that fits in one shard is read back into memory and takes the
//! path of every fit, as before.

use crate::bulk;
use crate::handlers::FitError;
use crate::jsend::ApiError;
use crate::validate::{self, FitRequest};
use axum::http::StatusCode;
use engine::ModelSpec;
use futures_util::StreamExt;
use protocol::calendar::Freq;
use protocol::shard::{shard_of, Shard, ShardSizes};
use protocol::{FitJob, ModelName, Version};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tabular::SpooledRows;
use transport::{FitShards, Transport, TransportError};

/// A table's fit: in memory when it is one shard, else spooled.
pub(crate) enum TableFit {
    Whole(FitRequest),
    Spooled(SpooledFit),
}

/// The checked shards of a table fit, as fit jobs in a temporary file.
pub(crate) struct SpooledFit {
    file: Arc<Mutex<File>>,
    /// Each shard's job in the file: where it starts, how many bytes.
    jobs: Vec<(u64, u64)>,
    /// The spec of every shard (found from all of them).
    spec: ModelSpec,
    n_series: usize,
    n_points: u64,
}

fn spool_error(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "spooling a table fit");
    ApiError::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the table could not be spooled to a temporary file: {e}"),
    )
}

/// What the gateway needs to check a table's shards.
pub(crate) struct Check<'a> {
    pub model: &'a ModelName,
    pub sizes: ShardSizes,
    pub transport: &'a dyn Transport,
    pub fit_timeout: Duration,
}

/// The fit of spooled rows (blocking: call it on the blocking pool). The
/// checks that need only each series' id and row count come first, then
/// each shard's series are read back and checked as a whole table's are.
pub(crate) fn table_fit(
    rows: SpooledRows,
    options: &[u8],
    check: &Check<'_>,
) -> Result<TableFit, ApiError> {
    validate::table_rows(options, rows.n_series(), rows.series_rows())?;
    let points = usize::try_from(rows.n_rows()).unwrap_or(usize::MAX);
    let count = check.sizes.count(rows.n_series(), points);
    if count <= 1 {
        let series = rows
            .into_series()
            .map_err(|e| ApiError::field("body", e.to_string()))?;
        return bulk::to_fit(Ok(series), options).map(TableFit::Whole);
    }
    let n_series = rows.n_series();
    let parts = rows
        .partition(count, |id| shard_of(id, count))
        .map_err(spool_error)?;
    let mut out = BufWriter::new(tempfile::tempfile().map_err(spool_error)?);
    let mut jobs = Vec::with_capacity(count as usize);
    let mut freqs: Vec<Freq> = Vec::new();
    let mut n_points = 0u64;
    let mut at = 0u64;
    for index in 0..count {
        let series = parts.series(index as usize).map_err(spool_error)?;
        // A shard without series is sent all the same (as `shard::split`
        // does): the version counts on every shard.
        let (spec, series) = if series.is_empty() {
            (ModelSpec::default(), Vec::new())
        } else {
            let request = bulk::to_fit(Ok(series), options)?;
            (request.spec, request.series)
        };
        for s in &series {
            n_points += s.values.len() as u64;
            if let Some(freq) = s.calendar.map(|c| c.freq) {
                if !freqs.contains(&freq) {
                    freqs.push(freq);
                }
            }
        }
        let job = FitJob {
            model: check.model.clone(),
            version: 0, // set once registered
            spec,
            series,
            base: None,
            shard: Some(Shard { index, count }),
        };
        check
            .transport
            .check_fit(&job)
            .map_err(|e| FitError::Transport(e).answer(check.model, None, check.fit_timeout))?;
        let bytes = serde_json::to_vec(&job).map_err(spool_error)?;
        out.write_all(&bytes).map_err(spool_error)?;
        jobs.push((at, bytes.len() as u64));
        at += bytes.len() as u64;
    }
    let spec = validate::table_spec(options, &freqs)?;
    let file = out.into_inner().map_err(|e| spool_error(e.error()))?;
    Ok(TableFit::Spooled(SpooledFit {
        file: Arc::new(Mutex::new(file)),
        jobs,
        spec,
        n_series,
        n_points,
    }))
}

impl SpooledFit {
    pub(crate) fn n_series(&self) -> usize {
        self.n_series
    }

    /// Values in all (after placing the series on their grids).
    pub(crate) fn n_points(&self) -> u64 {
        self.n_points
    }

    /// The shards as jobs of `version` of `model`, each read from the file
    /// (on the blocking pool) when the transport asks for it.
    pub(crate) fn shards(self, model: ModelName, version: Version) -> FitShards {
        let Self {
            file, jobs, spec, ..
        } = self;
        let count = jobs.len();
        let read = move |(start, len): (u64, u64)| {
            let (file, spec) = (file.clone(), spec.clone());
            async move {
                let job = tokio::task::spawn_blocking(move || read_job(&file, start, len))
                    .await
                    .map_err(|e| TransportError::Internal(format!("reading a shard: {e}")))??;
                Ok(FitJob {
                    version,
                    spec,
                    ..job
                })
            }
        };
        let stream = futures_util::stream::iter(jobs).then(read).boxed();
        FitShards::new(model, version, count, stream)
    }
}

fn read_job(file: &Mutex<File>, start: u64, len: u64) -> Result<FitJob, TransportError> {
    let failed = |e: String| {
        tracing::error!(error = %e, "reading a spooled shard");
        TransportError::Internal(format!("the spooled shard could not be read: {e}"))
    };
    let mut bytes = vec![0u8; usize::try_from(len).map_err(|e| failed(e.to_string()))?];
    {
        let mut file = file.lock().map_err(|e| failed(e.to_string()))?;
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| failed(e.to_string()))?;
    }
    serde_json::from_slice(&bytes).map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use protocol::{FitReply, ForecastJob, ForecastReply};
    use tabular::{Columns, RowSpool};

    /// A transport that carries nothing (the tests read the shards back).
    struct Nowhere;

    #[async_trait]
    impl Transport for Nowhere {
        async fn fit(&self, _job: FitJob) -> Result<FitReply, TransportError> {
            Err(TransportError::Unavailable("nowhere".into()))
        }
        async fn forecast(&self, _job: ForecastJob) -> Result<ForecastReply, TransportError> {
            Err(TransportError::Unavailable("nowhere".into()))
        }
        async fn ready(&self) -> Result<(), TransportError> {
            Ok(())
        }
    }

    fn rows(text: &str) -> SpooledRows {
        let mut spool = RowSpool::new(validate::MAX_TABLE_SERIES_PER_FIT).unwrap();
        tabular::csv_rows(text.as_bytes(), &Columns::default(), &mut spool).unwrap();
        spool.finish().unwrap()
    }

    fn fit(text: &str, options: &str, series_per_shard: usize) -> Result<TableFit, ApiError> {
        let model = ModelName::parse("m").unwrap();
        let check = Check {
            model: &model,
            sizes: ShardSizes {
                series: series_per_shard,
                points: 1_000_000,
            },
            transport: &Nowhere,
            fit_timeout: Duration::from_secs(1),
        };
        table_fit(rows(text), options.as_bytes(), &check)
    }

    /// `n` series of 8 rows: the first `dated` with monthly dates, the
    /// rest with integers; grouped by series or interleaved.
    fn table(n: usize, dated: usize, interleaved: bool) -> String {
        let mut rows = Vec::new();
        for i in 0..n {
            for t in 0..8 {
                let ds = if i < dated {
                    format!("2024-{:02}-01", t + 1)
                } else {
                    (t + 1).to_string()
                };
                rows.push((t, i, format!("s{i},{ds},{}\n", i * 10 + t % 3)));
            }
        }
        if interleaved {
            rows.sort_by_key(|r| (r.0, r.1));
        }
        std::iter::once("unique_id,ds,y\n".to_string())
            .chain(rows.into_iter().map(|r| r.2))
            .collect()
    }

    async fn jobs(fit: TableFit) -> Vec<FitJob> {
        let TableFit::Spooled(spooled) = fit else {
            panic!("expected a spooled fit");
        };
        let mut shards = spooled.shards(ModelName::parse("m").unwrap(), 7);
        let mut out = Vec::new();
        while let Some(job) = shards.next().await {
            out.push(job.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn spooled_shards_are_those_of_the_whole_request_split() {
        let text = table(30, 1, false);
        let whole = match fit(&text, "{}", 1_000).unwrap() {
            TableFit::Whole(request) => request,
            TableFit::Spooled(_) => panic!("one shard is fitted whole"),
        };
        let expected = protocol::shard::split(
            FitJob {
                model: ModelName::parse("m").unwrap(),
                version: 7,
                spec: whole.spec,
                series: whole.series,
                base: None,
                shard: None,
            },
            &ShardSizes {
                series: 8,
                points: 1_000_000,
            },
        );
        assert_eq!(expected.len(), 4);
        // The dated series gives every shard its candidates, even shards
        // of integer series only.
        assert_eq!(expected[0].spec.season_candidates, [12]);
        for interleaved in [false, true] {
            let got = jobs(fit(&table(30, 1, interleaved), "{}", 8).unwrap()).await;
            assert_eq!(got, expected, "interleaved: {interleaved}");
        }
    }

    #[tokio::test]
    async fn a_bad_series_in_the_last_shard_is_refused() {
        let count = 4;
        let last = (0..30)
            .map(|i| format!("s{i}"))
            .rfind(|id| shard_of(id, count) == count - 1)
            .unwrap();
        // A repeated date: seen only once its shard is read back.
        let text = table(30, 30, true) + &format!("{last},2024-02-01,5\n");
        let Err(e) = fit(&text, "{}", 8) else {
            panic!("a repeated date is refused");
        };
        let text = format!("{e:?}");
        assert!(text.contains(&format!("series '{last}'")), "{text}");
        // Different frequencies in different shards: refused as one
        // request's would be.
        let mut text = table(30, 30, false);
        text.push_str("w,2024-01-01,1\nw,2024-01-08,2\nw,2024-01-15,3\n");
        let Err(e) = fit(&text, "{}", 8) else {
            panic!("two frequencies are refused");
        };
        assert!(format!("{e:?}").contains("different seasons"), "{e:?}");
        // Bad options: refused before any shard is read.
        assert!(fit(&table(30, 1, false), r#"{"method": "nope"}"#, 8).is_err());
    }
}
