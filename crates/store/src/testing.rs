//! A store for tests that records what is read from it.
//!
//! [`Recording`] wraps a real store and passes every call on; it notes the
//! reads whose count a test wants to pin down (a forecast must read only the
//! shards of its series, never a whole version), so that the tests of the
//! gateway and of the app share one wrapper instead of each keeping a copy.

use crate::{
    JobInfo, ModelEntry, ModelInfo, ModelStore, Page, Registered, StoreError, VersionInfo,
};
use async_trait::async_trait;
use protocol::shard::Shard;
use protocol::{FitSummary, ModelName, Tenant, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// `inner`, with a log of its reads: `whole summary` (a version's summary,
/// [`ModelStore::wait_settled`]), `whole state` ([`ModelStore::load_state`]),
/// `summary {shard}` and `state {shard}` (one shard's), and a count of
/// [`ModelStore::shard_count`] calls.
pub struct Recording<S> {
    pub inner: S,
    log: Mutex<Vec<String>>,
    shard_counts: AtomicUsize,
}

impl<S: ModelStore> Recording<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            log: Mutex::new(Vec::new()),
            shard_counts: AtomicUsize::new(0),
        }
    }

    fn note(&self, what: String) {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(what);
    }

    /// What was read since the last call, sorted.
    pub fn take(&self) -> Vec<String> {
        let mut got = std::mem::take(
            &mut *self
                .log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        got.sort();
        got
    }

    /// How many times the shard count of a version was asked for.
    pub fn shard_counts(&self) -> usize {
        self.shard_counts.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl<S: ModelStore> ModelStore for Recording<S> {
    async fn register_pending(
        &self,
        model: &ModelName,
        n_series: usize,
        key: Option<&str>,
    ) -> Result<Registered, StoreError> {
        self.inner.register_pending(model, n_series, key).await
    }
    async fn register_pending_keyed(
        &self,
        model: &ModelName,
        n_series: usize,
        key: Option<&str>,
        body_hash: Option<&str>,
    ) -> Result<Registered, StoreError> {
        self.inner
            .register_pending_keyed(model, n_series, key, body_hash)
            .await
    }
    async fn complete(
        &self,
        model: &ModelName,
        version: Version,
        state: &[u8],
        summary: &FitSummary,
    ) -> Result<(), StoreError> {
        self.inner.complete(model, version, state, summary).await
    }
    async fn fail(
        &self,
        model: &ModelName,
        version: Version,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.inner.fail(model, version, reason).await
    }
    async fn heartbeat(&self, model: &ModelName, version: Version) -> Result<(), StoreError> {
        self.inner.heartbeat(model, version).await
    }
    async fn is_orphaned(
        &self,
        model: &ModelName,
        version: Version,
        idle: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.is_orphaned(model, version, idle).await
    }
    async fn latest_version(&self, model: &ModelName) -> Result<Option<Version>, StoreError> {
        self.inner.latest_version(model).await
    }
    async fn wait_settled(
        &self,
        model: &ModelName,
        version: Version,
        timeout: Duration,
    ) -> Result<VersionInfo, StoreError> {
        self.note("whole summary".into());
        self.inner.wait_settled(model, version, timeout).await
    }
    async fn wait_status(
        &self,
        model: &ModelName,
        version: Version,
        timeout: Duration,
    ) -> Result<VersionInfo, StoreError> {
        self.inner.wait_status(model, version, timeout).await
    }
    async fn load_state(&self, model: &ModelName, version: Version) -> Result<Vec<u8>, StoreError> {
        self.note("whole state".into());
        self.inner.load_state(model, version).await
    }
    async fn versions(
        &self,
        model: &ModelName,
        page: Page<Version>,
    ) -> Result<Option<ModelInfo>, StoreError> {
        self.inner.versions(model, page).await
    }
    async fn list_models(
        &self,
        tenant: &Tenant,
        page: Page<ModelName>,
    ) -> Result<Vec<ModelEntry>, StoreError> {
        self.inner.list_models(tenant, page).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
    async fn complete_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: Shard,
        state: &[u8],
        summary: &FitSummary,
    ) -> Result<(), StoreError> {
        self.inner
            .complete_shard(model, version, shard, state, summary)
            .await
    }
    async fn shard_count(&self, model: &ModelName, version: Version) -> Result<u32, StoreError> {
        self.shard_counts.fetch_add(1, Ordering::Relaxed);
        self.inner.shard_count(model, version).await
    }
    async fn load_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<Vec<u8>, StoreError> {
        self.note(format!("state {shard}"));
        self.inner.load_shard(model, version, shard).await
    }
    async fn shard_summary(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<FitSummary, StoreError> {
        self.note(format!("summary {shard}"));
        self.inner.shard_summary(model, version, shard).await
    }
    async fn mark_dispatched(&self, model: &ModelName, version: Version) -> Result<(), StoreError> {
        self.inner.mark_dispatched(model, version).await
    }
    async fn is_undispatched(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<bool, StoreError> {
        self.inner.is_undispatched(model, version).await
    }
    async fn count_pending(&self) -> Result<Option<u64>, StoreError> {
        self.inner.count_pending().await
    }
    async fn create_job(
        &self,
        kind: &str,
        model: &ModelName,
        version: Version,
        total: u64,
    ) -> Result<JobInfo, StoreError> {
        self.inner.create_job(kind, model, version, total).await
    }
    async fn job(&self, id: &str) -> Result<Option<JobInfo>, StoreError> {
        self.inner.job(id).await
    }
    async fn job_of_version(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<Option<JobInfo>, StoreError> {
        self.inner.job_of_version(model, version).await
    }
    async fn report_progress(
        &self,
        model: &ModelName,
        version: Version,
        counts: Option<(u64, u64)>,
    ) -> Result<bool, StoreError> {
        self.inner.report_progress(model, version, counts).await
    }
    async fn job_progress(&self, id: &str, done: u64, total: u64) -> Result<(), StoreError> {
        self.inner.job_progress(id, done, total).await
    }
    async fn finish_job(&self, id: &str, outcome: Result<&str, &str>) -> Result<bool, StoreError> {
        self.inner.finish_job(id, outcome).await
    }
    async fn delete_model(&self, model: &ModelName) -> Result<bool, StoreError> {
        self.inner.delete_model(model).await
    }
    async fn delete_version(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<bool, StoreError> {
        self.inner.delete_version(model, version).await
    }
    async fn prune(
        &self,
        model: &ModelName,
        keep: usize,
        grace: Duration,
    ) -> Result<u64, StoreError> {
        self.inner.prune(model, keep, grace).await
    }
}
