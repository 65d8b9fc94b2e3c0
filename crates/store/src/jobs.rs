//! Jobs: long work (a fit or a backtest: the `kind`) that a client follows by
//! id instead of waiting on one HTTP request.
//!
//! A fit job's row is written beside the version its work produces, before
//! that work is dispatched. Its outcome is not copied into the row: it is
//! read from the version when the job is read (ready: succeeded; failed:
//! failed, or cancelled when failed with [`CANCELLED`]), so every path that
//! settles a version (a worker, a restart, the pending sweep, a cancel)
//! settles its job in the same write, and a gateway that dies leaves no job
//! behind in a state nobody will change. Workers report progress through
//! [`crate::ModelStore::report_progress`], which also tells them whether the
//! version is still worth working on.
//!
//! A backtest (or a TimeGPT-compatible job, kinds named by the gateway)
//! produces no version, so its job keeps its own outcome in its
//! row ([`crate::ModelStore::finish_job`]: the answer as JSON, or the error;
//! the first finish wins, so a cancel and a late answer cannot both land).
//! Its `model`/`version` name what it measures (version 0 and the tenant's
//! `default` model for data sent in the body: the tenant is what matters).

use crate::rows::time_of as time;
use crate::StoreError;
use protocol::{ModelName, Version};
use serde::{Deserialize, Serialize};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The reason a cancelled job's version fails with.
pub const CANCELLED: &str = "cancelled";

/// The kind of a fit job.
pub const KIND_FIT: &str = "fit";

/// The kind of a backtest job (its outcome is its own, see the module doc).
pub const KIND_BACKTEST: &str = "backtest";

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the job is over.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// A job as the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    pub id: String,
    pub kind: String,
    pub model: ModelName,
    /// The version the job's work produces.
    pub version: Version,
    pub status: JobStatus,
    /// Why the job failed.
    pub error: Option<String>,
    /// A finished job's own answer, as JSON (backtests; a fit's answer is
    /// its version's summary).
    pub result: Option<String>,
    /// Series done so far, of `total`.
    pub done: u64,
    pub total: u64,
    pub created_at: SystemTime,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
}

/// Columns of a job read with its version's outcome (`j` jobs, `v` versions).
pub(crate) const JOB_COLUMNS: &str = "j.id, j.kind, j.model, j.version, j.status, j.done, \
     j.total, j.created_at_ms, j.started_at_ms, v.status, v.reason, v.settled_at_ms, \
     j.result, j.error, j.finished_at_ms";

/// A row of [`JOB_COLUMNS`].
pub(crate) type JobRow = (
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// A fit's reported `(done, total)` as the columns' values (`NULL`: keep
/// the row's, as a shard's report does).
pub(crate) fn counted(counts: Option<(u64, u64)>) -> (Option<i64>, Option<i64>) {
    let column = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    match counts {
        Some((done, total)) => (Some(column(done)), Some(column(total))),
        None => (None, None),
    }
}

/// A finished job's outcome as its `result` and `error` columns.
pub(crate) fn outcome_columns<'a>(
    outcome: Result<&'a str, &'a str>,
) -> (Option<&'a str>, Option<&'a str>) {
    match outcome {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    }
}

/// The job `id` just created, read back (`None`: it is not there).
pub(crate) fn created(id: &str, job: Option<JobInfo>) -> Result<JobInfo, StoreError> {
    job.ok_or_else(|| StoreError::Internal(format!("job {id} vanished")))
}

pub(crate) fn to_job(row: JobRow) -> Result<JobInfo, StoreError> {
    let (
        id,
        kind,
        model,
        version,
        own,
        done,
        total,
        created,
        started,
        v_status,
        reason,
        settled,
        result,
        own_error,
        finished,
    ) = row;
    let own = match own.as_str() {
        "running" => JobStatus::Running,
        _ => JobStatus::Queued,
    };
    // The status, the error, the job's own answer and when it finished.
    let (status, error, result, finished_at) = if kind != KIND_FIT {
        // Its own outcome: finished when `finished_at_ms` is set.
        let (status, error) = match (finished, own_error) {
            (None, _) => (own, None),
            (Some(_), None) => (JobStatus::Succeeded, None),
            (Some(_), Some(e)) if e == CANCELLED => (JobStatus::Cancelled, None),
            (Some(_), Some(e)) => (JobStatus::Failed, Some(e)),
        };
        let result = result.filter(|_| status == JobStatus::Succeeded);
        (status, error, result, finished)
    } else {
        // Its version's outcome: finished when the version settled.
        let (status, error) = match (v_status.as_deref(), reason) {
            (Some("ready"), _) => (JobStatus::Succeeded, None),
            (Some("failed"), Some(r)) if r == CANCELLED => (JobStatus::Cancelled, None),
            (Some("failed"), reason) => (
                JobStatus::Failed,
                Some(reason.unwrap_or_else(|| "unknown reason".into())),
            ),
            (Some(_), _) => (own, None),
            (None, _) => (
                JobStatus::Failed,
                Some(format!("version {version} was deleted")),
            ),
        };
        (
            status,
            error,
            None,
            settled.filter(|_| status.is_finished()),
        )
    };
    let total = u64::try_from(total).unwrap_or(0);
    Ok(JobInfo {
        id,
        kind,
        model: crate::rows::model_name(&model)?,
        version,
        status,
        error,
        result,
        // A job that succeeded did all it had to.
        done: if status == JobStatus::Succeeded {
            total
        } else {
            u64::try_from(done).unwrap_or(0)
        },
        total,
        created_at: time(created),
        started_at: started.map(time),
        finished_at: finished_at.map(time),
    })
}

/// A new job id: 128 random bits in hex (the standard library's hasher keys
/// are random per process and per hasher).
pub(crate) fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    };
    format!("{:016x}{:016x}", word(), word())
}

/// Whether `id` can be a job id (so that bad ids never reach SQL).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_valid() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert!(valid_id(&a) && valid_id(&b), "{a} {b}");
        assert!(!valid_id("../x"));
    }

    fn row(v_status: Option<&str>, reason: Option<&str>) -> JobRow {
        (
            new_id(),
            KIND_FIT.into(),
            "m".into(),
            3,
            "running".into(),
            2,
            5,
            1,
            Some(2),
            v_status.map(str::to_string),
            reason.map(str::to_string),
            Some(9),
            None,
            None,
            None,
        )
    }

    #[test]
    fn a_job_takes_its_outcome_from_its_version() {
        let j = to_job(row(Some("pending"), None)).unwrap();
        assert_eq!(
            (j.status, j.done, j.finished_at),
            (JobStatus::Running, 2, None)
        );
        let j = to_job(row(Some("ready"), None)).unwrap();
        assert_eq!((j.status, j.done), (JobStatus::Succeeded, 5));
        assert!(j.finished_at.is_some());
        let j = to_job(row(Some("failed"), Some(CANCELLED))).unwrap();
        assert_eq!(j.status, JobStatus::Cancelled);
        let j = to_job(row(Some("failed"), Some("boom"))).unwrap();
        assert_eq!(
            (j.status, j.error.as_deref()),
            (JobStatus::Failed, Some("boom"))
        );
        let j = to_job(row(None, None)).unwrap();
        assert_eq!(j.status, JobStatus::Failed);
    }

    #[test]
    fn a_backtest_job_keeps_its_own_outcome() {
        let own = |result: Option<&str>, error: Option<&str>, finished: Option<i64>| {
            let mut r = row(None, None);
            r.1 = KIND_BACKTEST.into();
            r.12 = result.map(str::to_string);
            r.13 = error.map(str::to_string);
            r.14 = finished;
            to_job(r).unwrap()
        };
        let j = own(None, None, None);
        assert_eq!((j.status, j.done, j.error), (JobStatus::Running, 2, None));
        let j = own(Some("{}"), None, Some(7));
        assert_eq!(
            (j.status, j.done, j.result.as_deref()),
            (JobStatus::Succeeded, 5, Some("{}"))
        );
        assert!(j.finished_at.is_some());
        let j = own(None, Some(CANCELLED), Some(7));
        assert_eq!(j.status, JobStatus::Cancelled);
        let j = own(None, Some("boom"), Some(7));
        assert_eq!(
            (j.status, j.error.as_deref()),
            (JobStatus::Failed, Some("boom"))
        );
    }
}
