//! Progress of a fit, told to the store while it runs, and its cancellation.
//!
//! The fit counts the series it has done; a task beside it writes the count
//! to the store every [`REPORT_EVERY`] (a job shows it as progress). The
//! store answers whether the version is still pending: once it is not (the
//! job was cancelled, or the version settled another way), the fit stops at
//! the next series instead of finishing work nobody will keep.
//!
//! A shard of a sharded fit only listens: its version's progress is the
//! shards stored so far (the store counts them), not one shard's count.

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

/// Reports `progress` of `version` until dropped (abort the handle when the
/// fit ends).
pub(crate) fn report(
    store: Arc<dyn ModelStore>,
    model: ModelName,
    version: Version,
    total: u64,
    progress: Arc<Progress>,
    shard: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let first = tokio::time::Instant::now() + FIRST_REPORT;
        let mut tick = tokio::time::interval_at(first, REPORT_EVERY);
        loop {
            tick.tick().await;
            let done = progress.done.load(Ordering::Relaxed);
            let pending = if shard {
                // Its status only: the summary of a ready version is every
                // shard's series.
                store
                    .wait_status(&model, version, Duration::ZERO)
                    .await
                    .map(|v| v.status == store::VersionStatus::Pending)
                    .or_else(|e| match e {
                        store::StoreError::WaitTimeout(_) => Ok(true),
                        e => Err(e),
                    })
            } else {
                store.report_progress(&model, version, done, total).await
            };
            match pending {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(%model, version, "version no longer pending; stopping its fit");
                    progress.stopped.store(true, Ordering::Relaxed);
                    return;
                }
                // Progress is a courtesy: a store that is down only delays it.
                Err(e) => tracing::debug!(%model, version, error = %e, "could not report progress"),
            }
        }
    })
}
