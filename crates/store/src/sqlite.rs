//! The embedded store: one SQLite file (WAL mode) in the data directory.
//!
//! Only one process uses the file at a time, so waiting for a version to
//! settle is an in-process signal plus a re-read of the database. Versions
//! left pending by a process that died mid-fit are marked failed when the
//! store opens, so they cannot block forecasts forever.
//!
//! Two in-memory caches keep the forecast path off the database (each query
//! is a hand-off to one of sqlx's SQLite threads and back):
//! - settled versions never change again, so their [`VersionInfo`] is kept;
//! - the newest version of every model is loaded at open and updated by
//!   `register_pending` in the same critical section as the insert, before
//!   it returns. The lock file guarantees no other process writes the
//!   database, so the cache is exact: a forecast sees every version whose
//!   registration finished before it arrived (the mechanism shared with
//!   PostgreSQL, `newest.rs`). Without the lock (a file system that cannot
//!   lock) the cache is not used.

mod shards;

use crate::jobs::{self, to_job, JobRow, JOB_COLUMNS};
use crate::keys::{tenant_range, SqliteKeys};
use crate::newest::{Newest, NewestVersions};
use crate::rows::{
    kept_versions, model_name, now_ms, state_of, still_pending, to_entry, to_info, to_model_info,
    version_columns, ModelRow, StoredSummary, VersionRow, LISTED_VERSION_COLUMNS,
};
use crate::settled::SettledVersions;
use crate::signals::SettleSignals;
use crate::{
    lock, JobInfo, ModelEntry, ModelInfo, ModelStore, Page, Registered, StoreError, VersionInfo,
};
use async_trait::async_trait;
use protocol::{FitSummary, ModelName, Tenant, Version};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::Mutex;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "horizon.db";
/// Lock file that keeps a second process away from the same data directory.
pub const LOCK_FILE: &str = "horizon.lock";

/// Reason given to versions that were pending when the process stopped.
pub const INTERRUPTED: &str = "interrupted by a restart";

/// The SQLite model registry.
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    signals: SettleSignals,
    /// SQLite has one writer at a time anyway; taking turns here avoids
    /// busy retries between the pool's connections.
    write: Mutex<()>,
    /// Held while the store is open: a second process on the same directory
    /// would fail this process's pending versions as "interrupted".
    lock: std::sync::Mutex<Option<std::fs::File>>,
    /// Newest version of every model; `None` when another process could
    /// write the database (the directory could not be locked).
    latest: Option<NewestVersions>,
    /// Versions that are no longer pending.
    settled: SettledVersions,
}

impl SqliteStore {
    /// The API keys in this store's database.
    pub fn keys(&self) -> SqliteKeys {
        SqliteKeys(self.pool.clone())
    }

    /// The API keys of the store in `data_dir`, without taking the data
    /// directory (a running `horizon serve` holds it): for `horizon keys`.
    pub async fn open_keys(data_dir: &Path) -> Result<SqliteKeys, StoreError> {
        create_data_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        // A short-lived command: one connection, SQLite's default syncing.
        let options = connect_options(&path);
        Ok(SqliteKeys(open_pool(&path, options, 1).await?))
    }

    /// Opens (creating if needed) the store in `data_dir`, runs the
    /// migrations and fails the versions a previous process left pending.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        create_data_dir(data_dir)?;
        // A process that is exiting (or a child just forked by this one,
        // which holds a copy of the lock until it execs) lets go of the
        // lock within moments: wait a little before calling it taken.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let (lock, exclusive) = loop {
            match lock_dir(data_dir)? {
                Some(taken) => break taken,
                None if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                None => {
                    return Err(StoreError::Unavailable(format!(
                        "the data directory {} is in use by another horizon process",
                        data_dir.display()
                    )))
                }
            }
        };
        let path = data_dir.join(DB_FILE);
        let options = connect_options(&path).synchronous(SqliteSynchronous::Normal);
        let pool = open_pool(&path, options, 8).await?;
        let store = Self {
            pool,
            path,
            signals: SettleSignals::new(),
            write: Mutex::new(()),
            lock: std::sync::Mutex::new(Some(lock)),
            latest: None,
            settled: SettledVersions::default(),
        };
        let interrupted = store.fail_stale_pending().await?;
        if interrupted > 0 {
            tracing::warn!(
                versions = interrupted,
                "marked versions left pending by a previous run as failed"
            );
        }
        let latest = if exclusive {
            Some(NewestVersions::complete(store.read_latest().await?))
        } else {
            None
        };
        Ok(Self { latest, ..store })
    }

    /// The newest version of every model, from the database.
    async fn read_latest(&self) -> Result<HashMap<ModelName, Version>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT model, MAX(version) FROM versions GROUP BY model")
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        let mut versions = HashMap::with_capacity(rows.len());
        for (name, version) in rows {
            versions.insert(model_name(&name)?, version);
        }
        Ok(versions)
    }

    /// The caches must not answer for a closed store.
    fn check_open(&self) -> Result<(), StoreError> {
        if self.pool.is_closed() {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn fail_stale_pending(&self) -> Result<u64, StoreError> {
        let _turn = self.write.lock().await;
        // The key is released: a client retrying the fit it sent to the dead
        // process (the retry carries the whole fit) gets a new version
        // instead of this failure for ever.
        let done = sqlx::query(
            "UPDATE versions SET status = 'failed', reason = ?, settled_at_ms = ?, \
             idempotency_key = NULL WHERE status = 'pending'",
        )
        .bind(INTERRUPTED)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        // Jobs with their own outcome (backtests) ran in the process that
        // died with them: they end the same way.
        sqlx::query(
            "UPDATE jobs SET error = ?, finished_at_ms = ? \
             WHERE kind != 'fit' AND finished_at_ms IS NULL",
        )
        .bind(INTERRUPTED)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    /// A version's row; with its per-series summary only when `whole`
    /// (the summary grows with the version's series).
    async fn version_row(
        &self,
        model: &ModelName,
        version: Version,
        whole: bool,
    ) -> Result<Option<VersionInfo>, StoreError> {
        let columns = version_columns(whole);
        let sql = format!("SELECT {columns} FROM versions WHERE model = ? AND version = ?");
        let row: Option<VersionRow> = sqlx::query_as(&sql)
            .bind(model.as_str())
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        let Some(mut info) = row.map(to_info).transpose()? else {
            return Ok(None);
        };
        // A sharded version's summary is in its shards' rows.
        if whole && info.lacks_summary() {
            info.summary = self.assemble_summary(model, version).await?;
        }
        Ok(Some(info))
    }

    /// A settled version (with its summary only when `whole`), from the
    /// cache of settled versions or else once it settles.
    async fn wait_for(
        &self,
        model: &ModelName,
        version: Version,
        timeout: Duration,
        whole: bool,
    ) -> Result<VersionInfo, StoreError> {
        self.check_open()?;
        self.settled
            .wait_for(&self.signals, model, version, timeout, whole, || {
                self.version_row(model, version, whole)
            })
            .await
    }

    /// Settles a pending version; a version already settled is left alone.
    async fn settle<'q>(
        &self,
        model: &ModelName,
        version: Version,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<(), StoreError> {
        let changed = {
            let _turn = self.write.lock().await;
            query
                .execute(&self.pool)
                .await
                .map_err(db_error)?
                .rows_affected()
        };
        if changed == 0 && self.version_row(model, version, false).await?.is_none() {
            return Err(StoreError::unknown_version(model, version));
        }
        self.signals.notify(model);
        Ok(())
    }
}

#[async_trait]
impl ModelStore for SqliteStore {
    async fn register_pending(
        &self,
        model: &ModelName,
        n_series: usize,
        idempotency_key: Option<&str>,
    ) -> Result<Registered, StoreError> {
        self.register_pending_keyed(model, n_series, idempotency_key, None)
            .await
    }

    async fn register_pending_keyed(
        &self,
        model: &ModelName,
        n_series: usize,
        idempotency_key: Option<&str>,
        body_hash: Option<&str>,
    ) -> Result<Registered, StoreError> {
        let _timed = crate::Timed::new("sqlite", "register_pending");
        let _turn = self.write.lock().await;
        // Armed before the insert: if this future is dropped while the insert
        // runs, the insert may still commit, so the cache must not be trusted
        // for this model until it is known again.
        let guard = self.latest.as_ref().map(|l| l.register(model));
        if let Some(key) = idempotency_key {
            let existing: Option<(i64, Option<String>)> = sqlx::query_as(
                "SELECT version, body_hash FROM versions WHERE model = ? AND idempotency_key = ?",
            )
            .bind(model.as_str())
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
            if let Some((version, stored)) = existing {
                if let Some(guard) = guard {
                    guard.nothing();
                }
                return crate::keyed_outcome(version, stored.as_deref(), body_hash);
            }
        }
        // One statement, so the next number and the insert are atomic.
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO versions (model, version, status, created_at_ms, n_series, idempotency_key, body_hash) \
             SELECT ?1, COALESCE(MAX(version), \
                 (SELECT latest FROM deleted_models WHERE model = ?1), 0) + 1, \
                 'pending', ?2, ?3, ?4, ?5 \
             FROM versions WHERE model = ?1 \
             RETURNING version",
        )
        .bind(model.as_str())
        .bind(now_ms())
        .bind(i64::try_from(n_series).unwrap_or(i64::MAX))
        .bind(idempotency_key)
        .bind(idempotency_key.and(body_hash))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        // Still holding the write turn: no registration can come in between.
        if let Some(guard) = guard {
            guard.done(version);
        }
        Ok(Registered::New(version))
    }

    async fn complete(
        &self,
        model: &ModelName,
        version: Version,
        state: &[u8],
        summary: &FitSummary,
    ) -> Result<(), StoreError> {
        let _timed = crate::Timed::new("sqlite", "complete");
        let stored = StoredSummary::new(summary)?;
        let query = sqlx::query(
            "UPDATE versions SET status = 'ready', state = ?, summary = ?, method = ?, \
             n_fallbacks = ?, settled_at_ms = ? \
             WHERE model = ? AND version = ? AND status = 'pending'",
        )
        .bind(state)
        .bind(stored.text)
        .bind(stored.method)
        .bind(stored.n_fallbacks)
        .bind(now_ms())
        .bind(model.as_str())
        .bind(version);
        self.settle(model, version, query).await
    }

    async fn fail(
        &self,
        model: &ModelName,
        version: Version,
        reason: &str,
    ) -> Result<(), StoreError> {
        let _timed = crate::Timed::new("sqlite", "fail");
        let query = sqlx::query(
            "UPDATE versions SET status = 'failed', reason = ?, settled_at_ms = ? \
             WHERE model = ? AND version = ? AND status = 'pending'",
        )
        .bind(reason)
        .bind(now_ms())
        .bind(model.as_str())
        .bind(version);
        self.settle(model, version, query).await
    }

    async fn heartbeat(&self, model: &ModelName, version: Version) -> Result<(), StoreError> {
        let _turn = self.write.lock().await;
        sqlx::query(
            "UPDATE versions SET heartbeat_at_ms = ? \
             WHERE model = ? AND version = ? AND status = 'pending'",
        )
        .bind(now_ms())
        .bind(model.as_str())
        .bind(version)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn is_orphaned(
        &self,
        model: &ModelName,
        version: Version,
        idle: Duration,
    ) -> Result<bool, StoreError> {
        let alive: Option<i64> = sqlx::query_scalar(
            "SELECT COALESCE(heartbeat_at_ms, created_at_ms) FROM versions \
             WHERE model = ? AND version = ? AND status = 'pending'",
        )
        .bind(model.as_str())
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        Ok(alive.is_some_and(|at| at < now_ms().saturating_sub(idle_ms)))
    }

    async fn latest_version(&self, model: &ModelName) -> Result<Option<Version>, StoreError> {
        let _timed = crate::Timed::new("sqlite", "latest_version");
        self.check_open()?;
        if let Some(Newest::Known(version)) = self.latest.as_ref().map(|l| l.get(model)) {
            return Ok(version);
        }
        sqlx::query_scalar("SELECT MAX(version) FROM versions WHERE model = ?")
            .bind(model.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn wait_settled(
        &self,
        model: &ModelName,
        version: Version,
        timeout: Duration,
    ) -> Result<VersionInfo, StoreError> {
        self.wait_for(model, version, timeout, true).await
    }

    async fn wait_status(
        &self,
        model: &ModelName,
        version: Version,
        timeout: Duration,
    ) -> Result<VersionInfo, StoreError> {
        self.wait_for(model, version, timeout, false).await
    }

    async fn shard_summary(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<FitSummary, StoreError> {
        self.check_open()?;
        self.read_shard_summary(model, version, shard).await
    }

    async fn complete_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: protocol::shard::Shard,
        state: &[u8],
        summary: &FitSummary,
    ) -> Result<(), StoreError> {
        self.store_shard(model, version, shard, state, summary)
            .await
    }

    async fn shard_count(&self, model: &ModelName, version: Version) -> Result<u32, StoreError> {
        self.count_shards(model, version).await
    }

    async fn load_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<Vec<u8>, StoreError> {
        self.read_shard(model, version, shard).await
    }

    async fn load_state(&self, model: &ModelName, version: Version) -> Result<Vec<u8>, StoreError> {
        let _timed = crate::Timed::new("sqlite", "load_state");
        let row: Option<(String, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT status, state FROM versions WHERE model = ? AND version = ?")
                .bind(model.as_str())
                .bind(version)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        state_of(model, version, row)
    }

    async fn versions(
        &self,
        model: &ModelName,
        page: Page<Version>,
    ) -> Result<Option<ModelInfo>, StoreError> {
        let Some(latest_version) = self.latest_version(model).await? else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {LISTED_VERSION_COLUMNS} FROM versions \
             WHERE model = ? AND version > ? ORDER BY version LIMIT ?"
        );
        let rows: Vec<VersionRow> = sqlx::query_as(&sql)
            .bind(model.as_str())
            .bind(page.sql_after())
            .bind(page.sql_limit())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        to_model_info(model, latest_version, rows).map(Some)
    }

    async fn list_models(
        &self,
        tenant: &Tenant,
        page: Page<ModelName>,
    ) -> Result<Vec<ModelEntry>, StoreError> {
        self.check_open()?;
        // Only the tenant's keys: within its range, or without '/' for the default.
        let (lo, hi) = tenant_range(tenant).unwrap_or_default();
        let rows: Vec<ModelRow> = sqlx::query_as(
            "SELECT g.model, g.latest, v.status, v.reason, g.n FROM \
             (SELECT model, MAX(version) AS latest, COUNT(*) AS n FROM versions \
              WHERE model > ?1 AND ((?3 = '' AND model NOT LIKE '%/%') \
                                    OR (?3 <> '' AND model >= ?3 AND model < ?4)) \
              GROUP BY model ORDER BY model LIMIT ?2) AS g \
             JOIN versions v ON v.model = g.model AND v.version = g.latest \
             ORDER BY g.model",
        )
        .bind(page.sql_after())
        .bind(page.sql_limit())
        .bind(lo)
        .bind(hi)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(to_entry).collect()
    }

    async fn count_pending(&self) -> Result<Option<u64>, StoreError> {
        let _timed = crate::Timed::new("sqlite", "count_pending");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM versions WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(Some(u64::try_from(n).unwrap_or(0)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
        // Dropping the file releases the directory for the next process.
        drop(lock(&self.lock).take());
    }

    async fn create_job(
        &self,
        kind: &str,
        model: &ModelName,
        version: Version,
        total: u64,
    ) -> Result<JobInfo, StoreError> {
        let id = jobs::new_id();
        {
            let _turn = self.write.lock().await;
            sqlx::query(
                "INSERT INTO jobs (id, kind, model, version, status, total, created_at_ms) \
                 VALUES (?, ?, ?, ?, 'queued', ?, ?)",
            )
            .bind(&id)
            .bind(kind)
            .bind(model.as_str())
            .bind(version)
            .bind(i64::try_from(total).unwrap_or(i64::MAX))
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        }
        jobs::created(&id, self.job(&id).await?)
    }

    async fn job(&self, id: &str) -> Result<Option<JobInfo>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j \
             LEFT JOIN versions v ON v.model = j.model AND v.version = j.version WHERE j.id = ?"
        );
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(to_job).transpose()
    }

    async fn job_of_version(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<Option<JobInfo>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j \
             LEFT JOIN versions v ON v.model = j.model AND v.version = j.version \
             WHERE j.model = ? AND j.version = ? AND j.kind = 'fit' \
             ORDER BY j.created_at_ms LIMIT 1"
        );
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(model.as_str())
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(to_job).transpose()
    }

    async fn report_progress(
        &self,
        model: &ModelName,
        version: Version,
        counts: Option<(u64, u64)>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write.lock().await;
        let (done, total) = jobs::counted(counts);
        sqlx::query(
            "UPDATE jobs SET status = 'running', done = MAX(done, COALESCE(?, done)), \
             total = COALESCE(?, total), started_at_ms = COALESCE(started_at_ms, ?) \
             WHERE model = ? AND version = ? AND kind = 'fit'",
        )
        .bind(done)
        .bind(total)
        .bind(now_ms())
        .bind(model.as_str())
        .bind(version)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM versions WHERE model = ? AND version = ?")
                .bind(model.as_str())
                .bind(version)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(still_pending(status.as_deref()))
    }

    async fn delete_model(&self, model: &ModelName) -> Result<bool, StoreError> {
        let _turn = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM versions WHERE model = ?")
                .bind(model.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
        let Some(latest) = latest else {
            return Ok(false);
        };
        sqlx::query("INSERT OR REPLACE INTO deleted_models (model, latest) VALUES (?, ?)")
            .bind(model.as_str())
            .bind(latest)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        for table in ["versions", "jobs"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE model = ?"))
                .bind(model.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        if let Some(latest) = &self.latest {
            latest.forget(model);
        }
        self.settled.forget(model);
        // Forecasts waiting on a pending version of it wake to find it gone.
        self.signals.notify(model);
        Ok(true)
    }

    async fn delete_version(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<bool, StoreError> {
        let deleted = {
            let _turn = self.write.lock().await;
            sqlx::query(
                "DELETE FROM versions WHERE model = ?1 AND version = ?2 AND status != 'pending' \
                 AND version < (SELECT MAX(version) FROM versions WHERE model = ?1)",
            )
            .bind(model.as_str())
            .bind(version)
            .execute(&self.pool)
            .await
            .map_err(db_error)?
            .rows_affected()
        };
        self.after_deletes(model).await?;
        Ok(deleted > 0)
    }

    async fn prune(
        &self,
        model: &ModelName,
        keep: usize,
        grace: Duration,
    ) -> Result<u64, StoreError> {
        // A version goes only once `keep` newer versions were registered
        // more than `grace` ago: it fell out of the newest `keep` at least
        // `grace` ago. A forecast uses the newest version registered before
        // it arrived (or a pinned one among the newest `keep`), so every
        // version that pushes its version out is registered after it
        // arrived: its version stays for `grace` after its arrival, which
        // the gateway sets to outlast a forecast's wait and read. (Counting
        // only "keep newest" would delete a version that a waiting forecast
        // is about to read as soon as `keep` quick fits follow it.)
        let cutoff = now_ms().saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        let deleted = {
            let _turn = self.write.lock().await;
            sqlx::query(
                "DELETE FROM versions WHERE model = ?1 AND status != 'pending' \
                 AND (SELECT COUNT(*) FROM versions w WHERE w.model = ?1 \
                     AND w.version > versions.version AND w.created_at_ms <= ?3) >= ?2 \
                 AND version != COALESCE((SELECT MAX(version) FROM versions \
                     WHERE model = ?1 AND status = 'ready'), 0)",
            )
            .bind(model.as_str())
            .bind(kept_versions(keep))
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(db_error)?
            .rows_affected()
        };
        if deleted > 0 {
            self.after_deletes(model).await?;
        }
        Ok(deleted)
    }

    async fn job_progress(&self, id: &str, done: u64, total: u64) -> Result<(), StoreError> {
        let _turn = self.write.lock().await;
        sqlx::query(
            "UPDATE jobs SET status = 'running', done = MAX(done, ?), total = ?, \
             started_at_ms = COALESCE(started_at_ms, ?) WHERE id = ? AND finished_at_ms IS NULL",
        )
        .bind(i64::try_from(done).unwrap_or(i64::MAX))
        .bind(i64::try_from(total).unwrap_or(i64::MAX))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn finish_job(&self, id: &str, outcome: Result<&str, &str>) -> Result<bool, StoreError> {
        let (result, error) = jobs::outcome_columns(outcome);
        let _turn = self.write.lock().await;
        let done = sqlx::query(
            "UPDATE jobs SET result = ?, error = ?, finished_at_ms = ? \
             WHERE id = ? AND kind != 'fit' AND finished_at_ms IS NULL",
        )
        .bind(result)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_error)?
        .rows_affected();
        Ok(done > 0)
    }
}

impl SqliteStore {
    /// After versions of `model` were deleted: their jobs go, and the cache
    /// of settled versions forgets them.
    async fn after_deletes(&self, model: &ModelName) -> Result<(), StoreError> {
        {
            let _turn = self.write.lock().await;
            sqlx::query(
                "DELETE FROM jobs WHERE model = ?1 AND kind = 'fit' \
                 AND version NOT IN (SELECT version FROM versions WHERE model = ?1)",
            )
            .bind(model.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        }
        self.settled.forget(model);
        Ok(())
    }
}

/// How long opening waits for the data directory's lock.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Takes the data directory's lock file; `None` while another holds it. The
/// flag says whether the lock is held (false on file systems that cannot
/// lock).
fn lock_dir(data_dir: &Path) -> Result<Option<(std::fs::File, bool)>, StoreError> {
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some((file, true))),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            // Some file systems cannot lock; run without the guard.
            tracing::warn!(path = %path.display(), error = %e, "cannot lock the data directory");
            Ok(Some((file, false)))
        }
    }
}

/// Creates the data directory if needed.
fn create_data_dir(data_dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot create data directory {}: {e}",
            data_dir.display()
        ))
    })
}

/// How every connection to the database file at `path` is opened.
fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10))
}

/// A pool of at most `connections` on the database file at `path`, its
/// schema migrated.
async fn open_pool(
    path: &Path,
    options: SqliteConnectOptions,
    connections: u32,
) -> Result<SqlitePool, StoreError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(connections)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .map_err(|e| StoreError::Internal(format!("migrating {}: {e}", path.display())))?;
    Ok(pool)
}

fn db_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VersionStatus;
    use engine::Method;
    use protocol::SeriesFit;

    fn name(s: &str) -> ModelName {
        ModelName::parse(s).unwrap()
    }

    fn summary(model: &ModelName, version: Version) -> FitSummary {
        FitSummary {
            model: model.clone(),
            version,
            method: Method::Naive,
            series: vec![SeriesFit {
                id: "a".into(),
                chosen: "Naive".into(),
                fallback: None,
                n_obs: 3,
                n_missing: 0,
                calendar: None,
                index: None,
            }],
            base: None,
        }
    }

    #[tokio::test]
    async fn versions_count_up_and_settle() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let m = name("m");
        assert_eq!(store.latest_version(&m).await.unwrap(), None);
        assert_eq!(
            store.register_pending(&m, 1, None).await.unwrap(),
            Registered::New(1)
        );
        assert_eq!(
            store.register_pending(&m, 1, None).await.unwrap(),
            Registered::New(2)
        );
        assert_eq!(
            store
                .register_pending(&name("other"), 1, None)
                .await
                .unwrap(),
            Registered::New(1)
        );
        assert_eq!(store.latest_version(&m).await.unwrap(), Some(2));

        store
            .complete(&m, 1, b"state", &summary(&m, 1))
            .await
            .unwrap();
        store.fail(&m, 2, "boom").await.unwrap();
        // Settling twice leaves the first outcome.
        store.fail(&m, 1, "late").await.unwrap();
        let info = store.versions(&m, Page::default()).await.unwrap().unwrap();
        assert_eq!(info.latest_version, 2);
        assert_eq!(info.versions.len(), 2);
        assert_eq!(info.versions[0].status, VersionStatus::Ready);
        // Listings show the stored counts and never decode the summary.
        assert_eq!(info.versions[0].summary, None);
        assert_eq!(info.versions[0].method, Some(engine::Method::Naive));
        assert_eq!(info.versions[0].n_fallbacks, Some(0));
        assert_eq!(info.versions[1].method, None);
        let settled = store
            .wait_settled(&m, 1, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(settled.summary, Some(summary(&m, 1)));
        assert_eq!(
            info.versions[1].status,
            VersionStatus::Failed {
                reason: "boom".into()
            }
        );
        assert_eq!(store.load_state(&m, 1).await.unwrap(), b"state");
        assert!(store.load_state(&m, 2).await.is_err());
        assert!(matches!(
            store.complete(&m, 9, b"", &summary(&m, 9)).await,
            Err(StoreError::UnknownVersion { .. })
        ));
        let all = store
            .list_models(&Tenant::default_tenant(), Page::default())
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].name.as_str(), all[0].n_versions), ("m", 2));
        assert_eq!(all[0].latest_version, 2);
        assert!(matches!(all[0].latest_status, VersionStatus::Failed { .. }));
        assert_eq!((all[1].name.as_str(), all[1].n_versions), ("other", 1));
        // Pages, by name then by version.
        let first = store
            .list_models(&Tenant::default_tenant(), Page::new(1, None))
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        let rest = store
            .list_models(
                &Tenant::default_tenant(),
                Page::new(10, Some(first[0].name.clone())),
            )
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].name.as_str(), "other");
        let page = store
            .versions(&m, Page::new(1, Some(1)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.versions.len(), 1);
        assert_eq!(page.versions[0].version, 2);
        assert!(store
            .versions(&name("nobody"), Page::default())
            .await
            .unwrap()
            .is_none());
        store.ping().await.unwrap();
    }

    #[tokio::test]
    async fn idempotency_key_returns_the_same_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let m = name("m");
        let first = store.register_pending(&m, 1, Some("k1")).await.unwrap();
        let again = store.register_pending(&m, 1, Some("k1")).await.unwrap();
        let other = store.register_pending(&m, 1, Some("k2")).await.unwrap();
        assert_eq!(first, Registered::New(1));
        assert_eq!(again, Registered::Existing(1));
        assert_eq!(other, Registered::New(2));
        // Keys are per model.
        assert_eq!(
            store
                .register_pending(&name("n"), 1, Some("k1"))
                .await
                .unwrap(),
            Registered::New(1)
        );
    }

    #[tokio::test]
    async fn idempotency_key_with_another_body_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let m = name("m");
        let keyed = |hash| store.register_pending_keyed(&m, 1, Some("k"), Some(hash));
        assert_eq!(keyed("aaa").await.unwrap(), Registered::New(1));
        assert_eq!(keyed("aaa").await.unwrap(), Registered::Existing(1));
        assert!(matches!(
            keyed("bbb").await,
            Err(StoreError::KeyReused { version: 1 })
        ));
        // Without a digest to compare, the key alone decides.
        assert_eq!(
            store.register_pending(&m, 1, Some("k")).await.unwrap(),
            Registered::Existing(1)
        );
    }

    #[tokio::test]
    async fn wait_settled_wakes_on_complete_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let m = name("m");
        store.register_pending(&m, 1, None).await.unwrap();
        let timeout = store
            .wait_settled(&m, 1, Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(matches!(timeout, StoreError::WaitTimeout(_)));

        let waiter = {
            let store = store.clone();
            let m = m.clone();
            tokio::spawn(async move { store.wait_settled(&m, 1, Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        store.complete(&m, 1, b"s", &summary(&m, 1)).await.unwrap();
        let info = waiter.await.unwrap().unwrap();
        assert_eq!(info.status, VersionStatus::Ready);
        assert!(matches!(
            store.wait_settled(&m, 7, Duration::from_secs(1)).await,
            Err(StoreError::UnknownVersion { .. })
        ));
    }

    #[tokio::test]
    async fn a_second_store_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SqliteStore::open(dir.path()).await.unwrap();
        match SqliteStore::open(dir.path()).await {
            Err(StoreError::Unavailable(msg)) => assert!(msg.contains("in use"), "{msg}"),
            other => panic!("expected the lock to refuse, got {:?}", other.map(|_| ())),
        }
        first.close().await;
        SqliteStore::open(dir.path()).await.unwrap().close().await;
    }

    /// A lock let go of moments later (a process exiting, or a forked child
    /// holding a copy until it execs) is waited for, not refused.
    #[tokio::test]
    async fn a_lock_released_moments_later_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let first = SqliteStore::open(dir.path()).await.unwrap();
        let release = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            first.close().await;
        };
        let (second, ()) = tokio::join!(SqliteStore::open(dir.path()), release);
        second.unwrap().close().await;
    }

    #[tokio::test]
    async fn reopening_fails_interrupted_versions_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let m = name("m");
        {
            let store = SqliteStore::open(dir.path()).await.unwrap();
            store.register_pending(&m, 1, None).await.unwrap();
            store
                .complete(&m, 1, b"one", &summary(&m, 1))
                .await
                .unwrap();
            store.register_pending(&m, 1, Some("k")).await.unwrap();
            store.close().await;
        }
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let info = store
            .wait_settled(&m, 2, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            info.status,
            VersionStatus::Failed {
                reason: INTERRUPTED.into()
            }
        );
        assert_eq!(store.load_state(&m, 1).await.unwrap(), b"one");
        // The interrupted fit's key is free again: its retry fits anew.
        assert_eq!(
            store.register_pending(&m, 1, Some("k")).await.unwrap(),
            Registered::New(3)
        );
    }

    #[tokio::test]
    async fn the_newest_version_is_known_at_open_and_after_each_registration() {
        let dir = tempfile::tempdir().unwrap();
        let (m, n) = (name("m"), name("n"));
        {
            let store = SqliteStore::open(dir.path()).await.unwrap();
            for _ in 0..3 {
                store.register_pending(&m, 1, None).await.unwrap();
            }
            store.close().await;
        }
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert!(store.latest.is_some(), "the directory is locked");
        assert_eq!(store.latest_version(&m).await.unwrap(), Some(3));
        assert_eq!(store.latest_version(&n).await.unwrap(), None);
        store.register_pending(&n, 1, Some("k")).await.unwrap();
        assert_eq!(store.latest_version(&n).await.unwrap(), Some(1));
        // A replayed key registers nothing.
        store.register_pending(&n, 1, Some("k")).await.unwrap();
        assert_eq!(store.latest_version(&n).await.unwrap(), Some(1));
        assert_eq!(store.latest_version(&m).await.unwrap(), Some(3));
        store.close().await;
        assert!(matches!(
            store.latest_version(&m).await,
            Err(StoreError::Unavailable(_))
        ));
    }

    /// Inserts a pending version straight into the database, as another
    /// connection's committed insert the cache has not heard of.
    async fn insert_pending_behind_the_cache(store: &SqliteStore, m: &ModelName, version: i64) {
        sqlx::query(
            "INSERT INTO versions (model, version, status, created_at_ms, n_series) \
             VALUES (?, ?, 'pending', 0, 1)",
        )
        .bind(m.as_str())
        .bind(version)
        .execute(&store.pool)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn an_interrupted_registration_sends_readers_to_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let m = name("m");
        store.register_pending(&m, 1, None).await.unwrap();
        // As if a registration was cancelled after its insert committed but
        // before the cache heard of it.
        drop(store.latest.as_ref().unwrap().register(&m));
        insert_pending_behind_the_cache(&store, &m, 2).await;
        assert_eq!(store.latest_version(&m).await.unwrap(), Some(2));
        assert_eq!(
            store.register_pending(&m, 1, None).await.unwrap(),
            Registered::New(3)
        );
        assert_eq!(store.latest_version(&m).await.unwrap(), Some(3));
        assert!(!store.latest.as_ref().unwrap().is_unsure(&m));
    }

    #[tokio::test]
    async fn a_registration_in_progress_sends_readers_to_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let m = name("m");
        store.register_pending(&m, 1, None).await.unwrap();
        // The insert of version 2 has committed (other connections see it)
        // but the registering task has not updated the cache yet.
        let guard = store.latest.as_ref().unwrap().register(&m);
        insert_pending_behind_the_cache(&store, &m, 2).await;
        assert_eq!(store.latest_version(&m).await.unwrap(), Some(2));
        guard.done(2);
        assert_eq!(store.latest_version(&m).await.unwrap(), Some(2));
        assert!(!store.latest.as_ref().unwrap().is_unsure(&m));
        // A registration that inserts nothing leaves the cache trusted.
        store.latest.as_ref().unwrap().register(&m).nothing();
        assert!(!store.latest.as_ref().unwrap().is_unsure(&m));
    }

    #[tokio::test]
    async fn a_heartbeat_keeps_a_pending_version_from_being_orphaned() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let m = name("m");
        store.register_pending(&m, 1, None).await.unwrap();
        let idle = Duration::from_millis(100);
        assert!(
            !store.is_orphaned(&m, 1, idle).await.unwrap(),
            "just registered"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(store.is_orphaned(&m, 1, idle).await.unwrap());
        store.heartbeat(&m, 1).await.unwrap();
        assert!(!store.is_orphaned(&m, 1, idle).await.unwrap(), "just beat");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(store.is_orphaned(&m, 1, idle).await.unwrap());
        store.complete(&m, 1, b"s", &summary(&m, 1)).await.unwrap();
        assert!(!store.is_orphaned(&m, 1, idle).await.unwrap(), "settled");
        // A beat on a settled or unknown version changes nothing.
        store.heartbeat(&m, 1).await.unwrap();
        store.heartbeat(&m, 9).await.unwrap();
        assert!(!store.is_orphaned(&m, 9, idle).await.unwrap());
    }

    #[tokio::test]
    async fn settled_versions_are_answered_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let m = name("m");
        store.register_pending(&m, 1, None).await.unwrap();
        store.fail(&m, 1, "boom").await.unwrap();
        let first = store
            .wait_settled(&m, 1, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(store.settled.get(&m, 1, true), Some(first.clone()));
        assert_eq!(
            store
                .wait_settled(&m, 1, Duration::from_secs(1))
                .await
                .unwrap(),
            first
        );
        // Pending versions are never cached.
        store.register_pending(&m, 1, None).await.unwrap();
        assert!(store
            .wait_settled(&m, 2, Duration::from_millis(20))
            .await
            .is_err());
        assert_eq!(store.settled.get(&m, 2, true), None);
    }

    #[tokio::test]
    async fn jobs_follow_their_version_and_report_progress() {
        use crate::jobs::{JobStatus, CANCELLED, KIND_FIT};
        let dir = tempfile::tempdir().unwrap();
        let m = name("m");
        let id = {
            let store = SqliteStore::open(dir.path()).await.unwrap();
            store.register_pending(&m, 4, None).await.unwrap();
            let job = store.create_job(KIND_FIT, &m, 1, 4).await.unwrap();
            assert_eq!((job.status, job.done, job.total), (JobStatus::Queued, 0, 4));
            assert!(store.report_progress(&m, 1, Some((2, 4))).await.unwrap());
            let job = store.job(&job.id).await.unwrap().unwrap();
            assert_eq!((job.status, job.done), (JobStatus::Running, 2));
            assert!(job.started_at.is_some() && job.finished_at.is_none());
            // A shard's report keeps the count (the shards stored make it),
            // and a fit sent again after its worker died never lowers it.
            assert!(store.report_progress(&m, 1, None).await.unwrap());
            assert!(store.report_progress(&m, 1, Some((1, 4))).await.unwrap());
            let job = store.job(&job.id).await.unwrap().unwrap();
            assert_eq!(
                (job.status, job.done, job.total),
                (JobStatus::Running, 2, 4)
            );
            assert_eq!(
                store.job_of_version(&m, 1).await.unwrap(),
                Some(job.clone())
            );
            // A second job, cancelled: its version fails with CANCELLED.
            store.register_pending(&m, 1, None).await.unwrap();
            let other = store.create_job(KIND_FIT, &m, 2, 1).await.unwrap();
            store.fail(&m, 2, CANCELLED).await.unwrap();
            assert!(!store.report_progress(&m, 2, Some((0, 1))).await.unwrap());
            let other = store.job(&other.id).await.unwrap().unwrap();
            assert_eq!(other.status, JobStatus::Cancelled);
            assert!(other.finished_at.is_some());
            store.close().await;
            job.id
        };
        // A restart fails the running job with a clear error.
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let job = store.job(&id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error.as_deref(), Some(INTERRUPTED));
        assert_eq!(store.job("0123").await.unwrap(), None);
    }

    #[tokio::test]
    async fn deletes_and_retention_keep_the_newest_and_the_numbering() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let m = name("m");
        for v in 1..=5 {
            store.register_pending(&m, 1, None).await.unwrap();
            if v <= 2 {
                store.complete(&m, v, b"s", &summary(&m, v)).await.unwrap();
            } else {
                store.fail(&m, v, "boom").await.unwrap();
            }
        }
        store
            .wait_settled(&m, 1, Duration::from_secs(1))
            .await
            .unwrap();
        // Keep 2: versions 4 and 5 stay, and 2, the newest ready one.
        assert_eq!(store.prune(&m, 2, Duration::ZERO).await.unwrap(), 2);
        let left: Vec<Version> = store
            .versions(&m, Page::default())
            .await
            .unwrap()
            .unwrap()
            .versions
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(left, vec![2, 4, 5]);
        // Deleted versions are gone from the cache too.
        assert!(matches!(
            store.wait_settled(&m, 1, Duration::from_secs(1)).await,
            Err(StoreError::UnknownVersion { .. })
        ));
        // The newest version cannot be deleted; an older one can.
        assert!(!store.delete_version(&m, 5).await.unwrap());
        assert!(store.delete_version(&m, 4).await.unwrap());
        assert!(!store.delete_version(&m, 4).await.unwrap());
        assert!(store.delete_model(&m).await.unwrap());
        assert!(!store.delete_model(&m).await.unwrap());
        assert_eq!(store.latest_version(&m).await.unwrap(), None);
        assert!(store.versions(&m, Page::default()).await.unwrap().is_none());
        // Fitted again, the model continues its numbers.
        assert_eq!(
            store.register_pending(&m, 1, None).await.unwrap(),
            Registered::New(6)
        );
    }

    #[tokio::test]
    async fn pruning_spares_a_version_a_waiting_forecast_chose() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let m = name("m");
        // A forecast arrives while version 1 is the newest: it will read 1.
        store.register_pending(&m, 1, None).await.unwrap();
        store.complete(&m, 1, b"s1", &summary(&m, 1)).await.unwrap();
        // Before it reads, two quick fits follow, and retention keeps 1.
        for v in 2..=3 {
            store.register_pending(&m, 1, None).await.unwrap();
            store.complete(&m, v, b"s", &summary(&m, v)).await.unwrap();
        }
        let grace = Duration::from_secs(60);
        assert_eq!(store.prune(&m, 1, grace).await.unwrap(), 0);
        assert_eq!(store.load_state(&m, 1).await.unwrap(), b"s1".to_vec());
        // Once the grace is over (here: none), it goes; the newest stays.
        assert_eq!(store.prune(&m, 1, Duration::ZERO).await.unwrap(), 2);
        assert!(matches!(
            store.load_state(&m, 1).await,
            Err(StoreError::UnknownVersion { .. })
        ));
        assert_eq!(store.load_state(&m, 3).await.unwrap(), b"s".to_vec());
    }

    #[tokio::test]
    async fn backtest_jobs_keep_their_own_outcome_and_end_at_a_restart() {
        use crate::jobs::{JobStatus, CANCELLED, KIND_BACKTEST, KIND_FIT};
        let dir = tempfile::tempdir().unwrap();
        let m = name("m");
        let running = {
            let store = SqliteStore::open(dir.path()).await.unwrap();
            let job = store.create_job(KIND_BACKTEST, &m, 0, 3).await.unwrap();
            assert_eq!(job.status, JobStatus::Queued);
            store.job_progress(&job.id, 2, 3).await.unwrap();
            // Work sent again after a worker died counts from 0: progress
            // never goes back.
            store.job_progress(&job.id, 1, 3).await.unwrap();
            let job = store.job(&job.id).await.unwrap().unwrap();
            assert_eq!((job.status, job.done), (JobStatus::Running, 2));
            // The first finish wins.
            assert!(store.finish_job(&job.id, Ok("{\"x\":1}")).await.unwrap());
            assert!(!store.finish_job(&job.id, Err(CANCELLED)).await.unwrap());
            let job = store.job(&job.id).await.unwrap().unwrap();
            assert_eq!(
                (job.status, job.done, job.result.as_deref()),
                (JobStatus::Succeeded, 3, Some("{\"x\":1}"))
            );
            // Not a fit's job: a version 0 of the model is no fit.
            assert_eq!(store.job_of_version(&m, 0).await.unwrap(), None);
            let cancelled = store.create_job(KIND_BACKTEST, &m, 0, 1).await.unwrap();
            assert!(store
                .finish_job(&cancelled.id, Err(CANCELLED))
                .await
                .unwrap());
            let cancelled = store.job(&cancelled.id).await.unwrap().unwrap();
            assert_eq!(cancelled.status, JobStatus::Cancelled);
            // A fit's job is not finished this way.
            store.register_pending(&m, 1, None).await.unwrap();
            let fit = store.create_job(KIND_FIT, &m, 1, 1).await.unwrap();
            assert!(!store.finish_job(&fit.id, Ok("{}")).await.unwrap());
            let running = store.create_job(KIND_BACKTEST, &m, 0, 1).await.unwrap();
            store.close().await;
            running.id
        };
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let job = store.job(&running).await.unwrap().unwrap();
        assert_eq!(
            (job.status, job.error.as_deref()),
            (JobStatus::Failed, Some(INTERRUPTED))
        );
    }

    #[tokio::test]
    async fn tenants_see_their_own_models_and_keys() {
        use crate::keys::{KeyStore, NewKey};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let (acme, beta) = (
            Tenant::parse("acme").unwrap(),
            Tenant::parse("acme-b").unwrap(),
        );
        let mine = ModelName::parse_in(&acme, "sales").unwrap();
        let theirs = ModelName::parse_in(&beta, "sales").unwrap();
        let open = name("sales");
        for m in [&mine, &theirs, &open] {
            store.register_pending(m, 3, None).await.unwrap();
            store
                .complete(m, 1, b"12345", &summary(m, 1))
                .await
                .unwrap();
        }
        store.register_pending(&mine, 2, None).await.unwrap();
        for (tenant, model) in [
            (&acme, &mine),
            (&beta, &theirs),
            (&Tenant::default_tenant(), &open),
        ] {
            let listed = store.list_models(tenant, Page::default()).await.unwrap();
            assert_eq!(listed.len(), 1, "{tenant}");
            assert_eq!(&listed[0].name, model);
            assert_eq!(listed[0].name.name(), "sales");
        }
        // Same name, another tenant: another model.
        assert_eq!(store.latest_version(&mine).await.unwrap(), Some(2));
        assert_eq!(store.latest_version(&theirs).await.unwrap(), Some(1));
        let keys = store.keys();
        assert!(!keys.has_live_keys().await.unwrap());
        let key = NewKey::generate(&acme);
        keys.insert_key(&key).await.unwrap();
        assert!(keys.has_live_keys().await.unwrap());
        assert_eq!(
            keys.authenticate(&key.plaintext).await.unwrap(),
            Some(acme.clone())
        );
        let mut forged = key.plaintext.clone();
        forged.pop();
        forged.push(if key.plaintext.ends_with('0') {
            '1'
        } else {
            '0'
        });
        assert_eq!(keys.authenticate(&forged).await.unwrap(), None);
        let usage = keys.usage(&acme).await.unwrap();
        assert_eq!((usage.series, usage.bytes), (5, 5));
        assert_eq!(
            keys.usage(&Tenant::default_tenant()).await.unwrap().series,
            3
        );
        assert!(
            !keys.revoke_key(&beta, &key.id).await.unwrap(),
            "not beta's key"
        );
        assert!(keys.revoke_key(&acme, &key.plaintext).await.unwrap());
        assert_eq!(keys.authenticate(&key.plaintext).await.unwrap(), None);
        assert!(keys.list_keys(Some(&acme)).await.unwrap()[0].revoked);
    }
}
