//! The model registry.
//!
//! Every fit creates a new version of a model. A version is registered as
//! `pending` before its fit is dispatched, and later settles as `ready` (with
//! the fitted state) or `failed` (with the reason). Forecasts wait on pending
//! versions through [`ModelStore::wait_settled`]; this is what enforces the
//! consistency rule. The fitted state is opaque bytes to the store.

pub mod jobs;
pub mod keys;
mod newest;
pub mod postgres;
mod rows;
mod settled;
pub mod signals;
pub mod sqlite;
pub mod testing;

pub use jobs::{JobInfo, JobStatus};
pub use keys::{KeyInfo, KeyStore, NewKey, PgKeys, SqliteKeys, Usage};
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use engine::Method;
use protocol::shard::Shard;
use protocol::{FitSummary, ModelName, Tenant, Version};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};
use thiserror::Error;

/// Where a version is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VersionStatus {
    Pending,
    Ready,
    Failed { reason: String },
}

/// One version of a model, as the registry knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: Version,
    #[serde(flatten)]
    pub status: VersionStatus,
    pub created_at: SystemTime,
    pub n_series: usize,
    /// The method of the fit, once ready.
    pub method: Option<Method>,
    /// How many series fell back to a simpler model, once ready.
    pub n_fallbacks: Option<usize>,
    /// Per-series outcome of the fit, once ready; only from
    /// [`ModelStore::wait_settled`] (listings never decode it).
    pub summary: Option<FitSummary>,
}

impl VersionInfo {
    /// A copy without the per-series summary (which is not cloned).
    pub fn without_summary(&self) -> VersionInfo {
        VersionInfo {
            version: self.version,
            status: self.status.clone(),
            created_at: self.created_at,
            n_series: self.n_series,
            method: self.method,
            n_fallbacks: self.n_fallbacks,
            summary: None,
        }
    }

    /// Whether a ready version's summary was left out (read by
    /// [`ModelStore::wait_status`]): [`ModelStore::wait_settled`] reads it
    /// again rather than answer without it.
    pub(crate) fn lacks_summary(&self) -> bool {
        self.status == VersionStatus::Ready && self.summary.is_none()
    }
}

/// Most items in one page of a listing.
pub const MAX_PAGE: usize = 1000;

/// A page of a listing: at most `limit` items, those after `after` in the
/// listing's order (the last item of the previous page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<K> {
    limit: usize,
    pub after: Option<K>,
}

impl<K> Page<K> {
    /// `limit` is clamped to 1..=[`MAX_PAGE`].
    pub fn new(limit: usize, after: Option<K>) -> Self {
        Self {
            limit: limit.clamp(1, MAX_PAGE),
            after,
        }
    }

    /// The same page with one item more (beyond [`MAX_PAGE`] if need be),
    /// so that a listing learns whether another page follows without
    /// sending its callers to an empty one.
    pub fn with_lookahead(self) -> Self {
        Self {
            limit: self.limit + 1,
            ..self
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The limit as SQL takes it.
    fn sql_limit(&self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX)
    }
}

impl Page<Version> {
    /// The version the page starts after, as SQL takes it: versions count
    /// from 1, so the first page starts after 0.
    fn sql_after(&self) -> i64 {
        self.after.unwrap_or(0)
    }
}

impl Page<ModelName> {
    /// The name the page starts after, as SQL takes it: no name is empty,
    /// so the first page starts after "".
    fn sql_after(&self) -> &str {
        self.after.as_ref().map_or("", ModelName::as_str)
    }
}

impl<K> Default for Page<K> {
    /// The first page of [`MAX_PAGE`] items.
    fn default() -> Self {
        Self::new(MAX_PAGE, None)
    }
}

/// A model as [`ModelStore::list_models`] shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub name: ModelName,
    pub latest_version: Version,
    #[serde(flatten)]
    pub latest_status: VersionStatus,
    pub n_versions: usize,
}

/// A page of a model's versions, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: ModelName,
    /// The newest version, whether or not it is on this page.
    pub latest_version: Version,
    pub versions: Vec<VersionInfo>,
}

/// The outcome of [`ModelStore::register_pending`].
#[derive(Debug, Clone, PartialEq)]
pub enum Registered {
    /// A new pending version.
    New(Version),
    /// The idempotency key was used before, for this version.
    Existing(Version),
}

/// An idempotency key found registered for `version` with the digest
/// `stored`: the same version again, unless both digests are known and differ.
pub(crate) fn keyed_outcome(
    version: Version,
    stored: Option<&str>,
    body_hash: Option<&str>,
) -> Result<Registered, StoreError> {
    match (stored, body_hash) {
        (Some(a), Some(b)) if a != b => Err(StoreError::KeyReused { version }),
        _ => Ok(Registered::Existing(version)),
    }
}

impl Registered {
    pub fn version(&self) -> Version {
        match self {
            Registered::New(v) | Registered::Existing(v) => *v,
        }
    }
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("model '{0}' does not exist")]
    UnknownModel(ModelName),
    #[error("version {version} of model '{model}' does not exist")]
    UnknownVersion { model: ModelName, version: Version },
    #[error("timed out after {0:?} waiting for a pending version")]
    WaitTimeout(Duration),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Internal(String),
    /// The idempotency key was used before, for `version`, with another body.
    #[error("the idempotency key was used before for version {version} with another request body")]
    KeyReused { version: Version },
}

impl StoreError {
    /// `version` of `model` is not in the store.
    pub(crate) fn unknown_version(model: &ModelName, version: Version) -> Self {
        StoreError::UnknownVersion {
            model: model.clone(),
            version,
        }
    }
}

/// Records that `version` failed (`reason`), for callers that can only log
/// when that goes wrong. A version deleted meanwhile has nothing left to
/// record, which is no error.
pub async fn record_failure(
    store: &dyn ModelStore,
    model: &ModelName,
    version: Version,
    reason: &str,
) {
    match store.fail(model, version, reason).await {
        Ok(()) => {}
        Err(StoreError::UnknownVersion { .. }) => {
            tracing::info!(%model, version, "the failed fit's version was deleted meanwhile");
        }
        Err(e) => tracing::error!(%model, version, error = %e, "could not record a failed fit"),
    }
}

/// The registry as the gateway and the workers use it.
#[async_trait]
pub trait ModelStore: Send + Sync + 'static {
    /// Registers the next version of `model` (creating the model on its first
    /// fit) as pending. With an idempotency key used before for this model,
    /// registers nothing and returns the version that key created.
    async fn register_pending(
        &self,
        model: &ModelName,
        n_series: usize,
        idempotency_key: Option<&str>,
    ) -> Result<Registered, StoreError>;

    /// [`Self::register_pending`] with a digest of the request body stored
    /// beside the key: the same key with another digest is
    /// [`StoreError::KeyReused`]. A key stored without a digest (before the
    /// digest was kept) matches any body.
    async fn register_pending_keyed(
        &self,
        model: &ModelName,
        n_series: usize,
        idempotency_key: Option<&str>,
        body_hash: Option<&str>,
    ) -> Result<Registered, StoreError> {
        let _ = body_hash;
        self.register_pending(model, n_series, idempotency_key)
            .await
    }

    /// Marks a pending version ready with its fitted state. Idempotent: a
    /// version that is already settled is left as it is.
    async fn complete(
        &self,
        model: &ModelName,
        version: Version,
        state: &[u8],
        summary: &FitSummary,
    ) -> Result<(), StoreError>;

    /// Marks a pending version failed. Idempotent like [`Self::complete`].
    async fn fail(
        &self,
        model: &ModelName,
        version: Version,
        reason: &str,
    ) -> Result<(), StoreError>;

    /// Says that a worker is working on `version` now: its claim when the
    /// fit starts, then a heartbeat while it runs. A version that is not
    /// pending is left alone. Versions are judged abandoned by the time of
    /// their last heartbeat (or their registration, before any claim).
    async fn heartbeat(&self, model: &ModelName, version: Version) -> Result<(), StoreError>;

    /// Whether `version` is pending with no sign of life (registration or
    /// heartbeat) for at least `idle`: its fit was lost (its gateway died
    /// before sending it, or its worker gave up), so nobody will settle it.
    /// `false` for a settled version.
    async fn is_orphaned(
        &self,
        model: &ModelName,
        version: Version,
        idle: Duration,
    ) -> Result<bool, StoreError>;

    /// The newest registered version of `model`, whatever its status.
    async fn latest_version(&self, model: &ModelName) -> Result<Option<Version>, StoreError>;

    /// Waits until `version` is no longer pending, at most `timeout`.
    async fn wait_settled(
        &self,
        model: &ModelName,
        version: Version,
        timeout: Duration,
    ) -> Result<VersionInfo, StoreError>;

    /// [`Self::wait_settled`] without the per-series summary (`summary` is
    /// `None`): what a forecast needs, at a cost that does not grow with the
    /// version's series. The calendars of some series are in their shards'
    /// summaries ([`Self::shard_summary`]).
    async fn wait_status(
        &self,
        model: &ModelName,
        version: Version,
        timeout: Duration,
    ) -> Result<VersionInfo, StoreError> {
        let info = self.wait_settled(model, version, timeout).await?;
        Ok(info.without_summary())
    }

    /// The fitted state of a ready version.
    async fn load_state(&self, model: &ModelName, version: Version) -> Result<Vec<u8>, StoreError>;

    /// A page of one model's versions, by version number; `None` if the
    /// model was never fitted.
    async fn versions(
        &self,
        model: &ModelName,
        page: Page<Version>,
    ) -> Result<Option<ModelInfo>, StoreError>;

    /// A page of `tenant`'s models, by name, each with its newest version.
    async fn list_models(
        &self,
        tenant: &Tenant,
        page: Page<ModelName>,
    ) -> Result<Vec<ModelEntry>, StoreError>;

    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes connections on shutdown. Nothing to do by default.
    async fn close(&self) {}

    // ---- sharded fits (see [`protocol::shard`]) ----

    /// Stores one shard of a pending version, first wins: a shard stored
    /// before (a redelivery), or a version settled meanwhile, is left as it
    /// is. The shard's series count as its job's progress. The store that
    /// stores the last of the `shard.count` shards makes the version ready
    /// in the same write, its fallback count the sum of its shards'. Its
    /// summary stays in the shards' rows: [`Self::wait_settled`] assembles
    /// it (the shards' summaries in shard order) for a caller that asks.
    async fn complete_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: Shard,
        state: &[u8],
        summary: &FitSummary,
    ) -> Result<(), StoreError> {
        let _ = (version, shard, state, summary);
        Err(StoreError::Internal(format!(
            "this store cannot keep the shards of model '{model}'"
        )))
    }

    /// How many shards a version is stored in: 1 for a version stored whole
    /// (every version before sharded fits).
    async fn shard_count(&self, model: &ModelName, version: Version) -> Result<u32, StoreError> {
        let _ = (model, version);
        Ok(1)
    }

    /// The fitted state of one shard of a ready version; shard 0 of a
    /// version stored whole is its whole state.
    async fn load_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<Vec<u8>, StoreError> {
        if shard == 0 {
            return self.load_state(model, version).await;
        }
        Err(StoreError::Internal(format!(
            "version {version} of model '{model}' has no shard {shard}"
        )))
    }

    /// The per-series summary of one shard of a ready version: only the
    /// series of that shard; shard 0 of a version stored whole is its whole
    /// summary.
    async fn shard_summary(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<FitSummary, StoreError> {
        if shard != 0 {
            return Err(StoreError::Internal(format!(
                "version {version} of model '{model}' has no shard {shard}"
            )));
        }
        let info = self.wait_settled(model, version, Duration::ZERO).await?;
        info.summary.ok_or_else(|| {
            StoreError::Internal(format!(
                "version {version} of model '{model}' has no fit summary"
            ))
        })
    }

    // ---- dispatch tracking: a registration whose fit was never sent ----

    /// Records that the fit of `version` is in the transport's safe keeping
    /// (e.g. confirmed by a durable queue): it will settle without its
    /// gateway. Nothing to record for a store used by one process only,
    /// whose pending versions end with the process.
    async fn mark_dispatched(
        &self,
        _model: &ModelName,
        _version: Version,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether `version` is pending and its fit was never marked dispatched:
    /// its gateway may have died between registering it and sending the fit,
    /// so a retry that carries the fit must send it again (a duplicate is
    /// harmless: settling is first-wins and workers answer a settled version
    /// from the store). `false` for a store used by one process only.
    async fn is_undispatched(
        &self,
        _model: &ModelName,
        _version: Version,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// How many versions are pending now, over every tenant (the
    /// `horizon_versions_pending` gauge, read when `/metrics` is scraped);
    /// `None` when this store cannot tell.
    async fn count_pending(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    // ---- jobs (see [`jobs`]) ----

    /// Records a job whose work produces `version` of `model` (registered
    /// before, still pending), `total` series to do. Called before the work
    /// is dispatched.
    async fn create_job(
        &self,
        _kind: &str,
        _model: &ModelName,
        _version: Version,
        _total: u64,
    ) -> Result<JobInfo, StoreError> {
        Err(StoreError::Internal("this store keeps no jobs".into()))
    }

    /// A job by id, with the outcome of its version; `None` if unknown.
    async fn job(&self, _id: &str) -> Result<Option<JobInfo>, StoreError> {
        Ok(None)
    }

    /// The job that produces `version` of `model`, if there is one.
    async fn job_of_version(
        &self,
        _model: &ModelName,
        _version: Version,
    ) -> Result<Option<JobInfo>, StoreError> {
        Ok(None)
    }

    /// A worker is fitting `version` and has done `done` of `total` series
    /// (`counts`; `None` for a shard, whose version counts the shards stored
    /// instead). Its job, if any, is then running. Answers whether the
    /// version is still pending: `false` (e.g. cancelled) means the work is
    /// no longer wanted.
    async fn report_progress(
        &self,
        _model: &ModelName,
        _version: Version,
        _counts: Option<(u64, u64)>,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// A job with its own outcome (not a fit) is running: `done` of
    /// `total` done.
    async fn job_progress(&self, _id: &str, _done: u64, _total: u64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Finishes a job with its own outcome (not a fit): `Ok(answer as
    /// JSON)` or `Err(error)` ([`jobs::CANCELLED`] to cancel). The first
    /// finish wins: answers `false` when the job was already finished (or
    /// is unknown), and nothing is written.
    async fn finish_job(
        &self,
        _id: &str,
        _outcome: Result<&str, &str>,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    // ---- the life of a model: delete and retention ----

    /// Deletes every version of `model` (and its jobs); `false` if it had
    /// none. A model fitted again later continues its version numbers.
    async fn delete_model(&self, model: &ModelName) -> Result<bool, StoreError> {
        Err(StoreError::Internal(format!(
            "this store cannot delete model '{model}'"
        )))
    }

    /// Deletes one settled version that is not the model's newest; `false`
    /// if there is no such version.
    async fn delete_version(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Internal(format!(
            "this store cannot delete version {version} of model '{model}'"
        )))
    }

    /// Deletes the settled versions of `model` beyond its newest `keep`
    /// (at least 1), never its newest ready version, and never a version
    /// that was still among the newest `keep` less than `grace` ago (so a
    /// forecast that chose it has `grace` to read it); returns how many.
    async fn prune(
        &self,
        _model: &ModelName,
        _keep: usize,
        _grace: std::time::Duration,
    ) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// Locks `m`, going on after a panic elsewhere while it was held: the data
/// it guards (caches) stays usable.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records how long a store operation took
/// (`horizon_store_operation_duration_seconds{backend, op}`) when dropped.
pub(crate) struct Timed {
    backend: &'static str,
    op: &'static str,
    start: std::time::Instant,
}

impl Timed {
    pub(crate) fn new(backend: &'static str, op: &'static str) -> Self {
        Self {
            backend,
            op,
            start: std::time::Instant::now(),
        }
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        metrics::histogram!("horizon_store_operation_duration_seconds", "backend" => self.backend, "op" => self.op)
            .record(self.start.elapsed().as_secs_f64());
    }
}
