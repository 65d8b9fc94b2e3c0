//! Progress of a fit, told to the store while it runs, and its cancellation.
//!
//! The fit counts the series it has done; a task beside it writes the count
//! to the store every [`REPORT_EVERY`] (a job shows it as progress). The
//! store answers whether the version is still pending: once it is not (the
//! job was cancelled, or the version settled another way), the fit stops at
//! the next series instead of finishing work nobody will keep.
//!
//! A shard of a sharded fit marks its job running but leaves the count
//! alone: its version's progress is the series of the shards stored so far
//! (the store counts them), not one shard's count. A
//! backtest run as a job reports to its job, and stops once the job has
//! ended (cancelled).

use protocol::{ModelName, Version};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::ModelStore;

/// How often a running fit reports its progress.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);
/// When a fit first reports: short fits (most of them) never write.
const FIRST_REPORT: Duration = Duration::from_millis(250);

/// Shared between the fit (on blocking threads) and its reporter.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    done: AtomicU64,
    stopped: AtomicBool,
}

impl Progress {
    pub(crate) fn series_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the work is no longer wanted.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

/// What a running piece of work reports to.
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    /// The fit of a whole version: its progress, and whether it is still
    /// pending.
    Fit { model: ModelName, version: Version },
    /// A shard of a sharded fit: its job is running; whether its version is
    /// still pending.
    Shard { model: ModelName, version: Version },
    /// A job with its own outcome (a backtest): its progress, and whether it
    /// is still unfinished.
    Job(String),
}

impl Subject {
    /// Reports `done` of `total`; answers whether the work is still wanted.
    async fn tell(
        &self,
        store: &dyn ModelStore,
        done: u64,
        total: u64,
    ) -> Result<bool, store::StoreError> {
        match self {
            Subject::Fit { model, version } => {
                store
                    .report_progress(model, *version, Some((done, total)))
                    .await
            }
            // The job is running, but its count stays the store's: the
            // series of the shards stored so far.
            Subject::Shard { model, version } => store.report_progress(model, *version, None).await,
            Subject::Job(id) => {
                store.job_progress(id, done, total).await?;
                // A job deleted with its model is no longer wanted either.
                Ok(store
                    .job(id)
                    .await?
                    .is_some_and(|j| !j.status.is_finished()))
            }
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Fit { model, version } | Subject::Shard { model, version } => {
                write!(f, "version {version} of '{model}'")
            }
            Subject::Job(id) => write!(f, "job {id}"),
        }
    }
}

/// Reports `progress` of the work on `subject` until dropped (abort the
/// handle when the work ends).
pub(crate) fn report(
    store: Arc<dyn ModelStore>,
    subject: Subject,
    total: u64,
    progress: Arc<Progress>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let first = tokio::time::Instant::now() + FIRST_REPORT;
        let mut tick = tokio::time::interval_at(first, REPORT_EVERY);
        loop {
            tick.tick().await;
            let done = progress.done.load(Ordering::Relaxed);
            match subject.tell(store.as_ref(), done, total).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(%subject, "no longer wanted; stopping its work");
                    progress.stopped.store(true, Ordering::Relaxed);
                    return;
                }
                // Progress is a courtesy: a store that is down only delays it.
                Err(e) => tracing::debug!(%subject, error = %e, "could not report progress"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::jobs::{JobStatus, KIND_FIT};
    use store::SqliteStore;

    #[tokio::test]
    async fn a_shard_marks_its_job_running_and_leaves_the_count_to_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ModelStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let model = ModelName::parse("m").unwrap();
        store.register_pending(&model, 50, None).await.unwrap();
        let job = store.create_job(KIND_FIT, &model, 1, 50).await.unwrap();
        assert_eq!(job.status, JobStatus::Queued);

        // A shard of 25 series has done 10 of them: the job shows running,
        // its count still the store's (no shard stored yet).
        let progress = Arc::new(Progress::default());
        for _ in 0..10 {
            progress.series_done();
        }
        let subject = Subject::Shard {
            model: model.clone(),
            version: 1,
        };
        let reporter = report(store.clone(), subject, 25, progress.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let seen = loop {
            let seen = store.job(&job.id).await.unwrap().unwrap();
            if seen.status != JobStatus::Queued || tokio::time::Instant::now() > deadline {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        reporter.abort();
        assert_eq!(
            (seen.status, seen.done, seen.total),
            (JobStatus::Running, 0, 50)
        );
        assert!(seen.started_at.is_some());
        assert!(!progress.is_stopped());
    }
}
