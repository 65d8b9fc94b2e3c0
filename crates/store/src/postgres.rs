//! The production store: PostgreSQL, shared by the gateway and every worker.
//!
//! Each deployment lives in its own schema (the namespace), created and
//! migrated at start. Every change of a version is announced with
//! `NOTIFY` on the channel `{schema}_versions` (payload
//! `<status> <version> <model>`), in the same transaction as the change.
//! One `LISTEN` connection per process turns these into in-process wake-ups
//! for [`ModelStore::wait_settled`], which also re-reads the row every
//! second, so a notification lost with a dropped connection delays a waiter
//! by at most that second and never blocks it.
//!
//! Two caches keep the forecast path off the database:
//! - settled versions never change again, so their [`VersionInfo`] is kept;
//! - the newest version of each model is kept while the `LISTEN` connection
//!   is up (every `register_pending`, in any process, notifies it) and
//!   dropped the moment that connection fails. A gateway sees its own
//!   registrations at once (while one of a model is being committed, the
//!   cache is bypassed for that model, so no committed version is ever
//!   missed: the mechanism shared with SQLite, `newest.rs`); registrations by
//!   other gateways arrive with the notification, typically within a
//!   millisecond.
//!
//! A version can be left pending for ever if its gateway died before
//! dispatching the fit; [`PgStore::fail_stale_pending`] marks such versions
//! failed once they are older than a limit (the gateway runs it
//! periodically), and waiters always have a timeout.

mod shards;

use crate::jobs::{self, to_job, JobRow, JOB_COLUMNS};
use crate::keys::{tenant_range, PgKeys};
use crate::newest::{Newest, NewestVersions};
use crate::rows::{
    kept_versions, state_of, still_pending, to_entry, to_info, to_model_info, version_columns,
    ModelRow, StoredSummary, VersionRow, LISTED_VERSION_COLUMNS,
};
use crate::settled::SettledVersions;
use crate::signals::SettleSignals;
use crate::{
    JobInfo, ModelEntry, ModelInfo, ModelStore, Page, Registered, StoreError, VersionInfo,
};
use async_trait::async_trait;
use protocol::{FitSummary, ModelName, Tenant, Version};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Executor, PgPool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Settings of [`PgStore::connect`].
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// e.g. `postgres://postgres@127.0.0.1:5432/test`
    pub url: String,
    /// Schema holding the tables; created if missing.
    pub schema: String,
    pub max_connections: u32,
    /// How long a query waits for a pooled connection: bounds how long a
    /// request hangs while the database is down.
    pub acquire_timeout: Duration,
}

impl PgConfig {
    pub fn new(url: impl Into<String>, schema: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: schema.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

struct Shared {
    signals: SettleSignals,
    settled: SettledVersions,
    /// Trusted while the LISTEN connection is up.
    latest: NewestVersions,
}

impl Shared {
    /// Forgets the cached versions of `model`, and its newest version too
    /// when the whole model was deleted.
    fn forget(&self, model: &ModelName, whole: bool) {
        self.settled.forget(model);
        if whole {
            self.latest.forget(model);
        }
    }
}

/// The PostgreSQL model registry.
pub struct PgStore {
    pool: PgPool,
    channel: String,
    shared: Arc<Shared>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgStore {
    /// Announces to every process, when `tx` commits, that `version` of
    /// `model` became `status` (see the module's doc; `deleted 0`: the
    /// whole model, `deleted 1`: some of its versions, so they drop what
    /// they cached of them).
    async fn announce(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        status: &str,
        version: Version,
        model: &ModelName,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            // The model's key (with its tenant), which is not its `Display`.
            .bind(format!("{status} {version} {}", model.as_str()))
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// After versions of `model` were deleted: their jobs go, and every
    /// process forgets its cached copies of them.
    async fn after_deletes(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        model: &ModelName,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM jobs WHERE model = $1 AND kind = 'fit' \
             AND version NOT IN (SELECT version FROM versions WHERE model = $1)",
        )
        .bind(model.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        self.announce(tx, "deleted", 1, model).await
    }

    /// The API keys in this store's schema.
    pub fn keys(&self) -> PgKeys {
        PgKeys(self.pool.clone())
    }

    /// Sets the time column `column` of a version to now, where `condition`
    /// holds (both are fixed SQL written in this file, never input).
    async fn stamp(
        &self,
        model: &ModelName,
        version: Version,
        column: &str,
        condition: &str,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE versions SET {column} = {NOW_MS} \
             WHERE model = $1 AND version = $2 AND {condition}"
        );
        sqlx::query(&sql)
            .bind(model.as_str())
            .bind(version)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Connects, creates the schema if needed and runs the migrations, then
    /// starts listening for version changes.
    pub async fn connect(cfg: &PgConfig) -> Result<Self, StoreError> {
        if !valid_schema(&cfg.schema) {
            return Err(StoreError::Internal(format!(
                "schema name must be 1 to 40 characters from a-z, 0-9, '_' starting with a letter, got '{}'",
                cfg.schema
            )));
        }
        let base = PgConnectOptions::from_str(&cfg.url)
            .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {e}")))?
            .application_name("horizon");
        let options = base.clone().options([("search_path", cfg.schema.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.max(2))
            .acquire_timeout(cfg.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        create_schema(&pool, &cfg.schema).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migrating schema {}: {e}", cfg.schema)))?;
        let shared = Arc::new(Shared {
            signals: SettleSignals::new(),
            settled: SettledVersions::default(),
            latest: NewestVersions::partial(),
        });
        let channel = format!("{}_versions", cfg.schema);
        let listener = tokio::spawn(listen(pool.clone(), channel.clone(), shared.clone()));
        Ok(Self {
            pool,
            channel,
            shared,
            listener,
        })
    }

    /// Marks failed every version pending with no sign of life (its
    /// registration, or a worker's heartbeat) for longer than `older_than`
    /// whose fit never reached the broker (its gateway died before the
    /// broker confirmed it); returns how many. A fit the broker confirmed is
    /// the broker's to deliver: it may wait behind a backlog, or for a
    /// redelivery after its worker died, for any time, and is settled by a
    /// worker or, dead-lettered, by a gateway. A fit running on a live
    /// worker heartbeats, so it is never failed here either.
    pub async fn fail_stale_pending(&self, older_than: Duration) -> Result<u64, StoreError> {
        let limit_ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let reason = format!(
            "abandoned: pending with no worker alive on it for {}s (its gateway or workers stopped before finishing the fit)",
            older_than.as_secs()
        );
        let sql = format!(
            "WITH u AS (UPDATE versions SET status = 'failed', reason = $1, settled_at_ms = {NOW_MS} \
             WHERE status = 'pending' AND dispatched_at_ms IS NULL \
             AND COALESCE(heartbeat_at_ms, created_at_ms) < {NOW_MS} - $2 \
             RETURNING model, version) \
             SELECT pg_notify($3, 'failed ' || version || ' ' || model) FROM u"
        );
        let rows = sqlx::query(&sql)
            .bind(reason)
            .bind(limit_ms)
            .bind(&self.channel)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(rows.len() as u64)
    }

    /// Drops the schema with everything in it (tests clean up with this).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::Internal(format!("bad schema name '{schema}'")));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        pool.execute(&*format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .map_err(db_error)?;
        pool.close().await;
        Ok(())
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
        let sql = format!("SELECT {columns} FROM versions WHERE model = $1 AND version = $2");
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
        let shared = &self.shared;
        shared
            .settled
            .wait_for(&shared.signals, model, version, timeout, whole, || {
                self.version_row(model, version, whole)
            })
            .await
    }

    /// Runs an `UPDATE ... WHERE status = 'pending'` that settles a version,
    /// notifying in the same statement; an already settled version is left
    /// alone.
    async fn settle(
        &self,
        model: &ModelName,
        version: Version,
        status: &str,
        set: &str,
        bind: impl FnOnce(
            sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        )
            -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<(), StoreError> {
        // $1 model, $2 version, $3 channel, then the SET arguments from $4.
        let sql = format!(
            "WITH u AS (UPDATE versions SET status = '{status}', settled_at_ms = {NOW_MS}, {set} \
             WHERE model = $1 AND version = $2 AND status = 'pending' RETURNING version) \
             SELECT pg_notify($3, '{status} ' || version || ' ' || $1) FROM u"
        );
        let query = sqlx::query(&sql)
            .bind(model.as_str())
            .bind(version)
            .bind(&self.channel);
        let changed = bind(query)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .len();
        if changed == 0 && self.version_row(model, version, false).await?.is_none() {
            return Err(StoreError::unknown_version(model, version));
        }
        self.shared.signals.notify(model);
        Ok(())
    }
}

async fn create_schema(pool: &PgPool, schema: &str) -> Result<(), StoreError> {
    let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    // Two processes creating the same schema at once can collide on the
    // catalog's unique index; the second attempt then finds it.
    let mut last = None;
    for _ in 0..5 {
        match pool.execute(&*sql).await {
            Ok(_) => return Ok(()),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Err(StoreError::Internal(format!(
        "cannot create schema {schema}: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// Keeps one LISTEN connection, reconnecting with backoff, and turns
/// notifications into wake-ups and cache updates.
async fn listen(pool: PgPool, channel: String, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(&channel).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        match connected {
            Ok(mut l) => {
                backoff = Duration::from_millis(100);
                shared.latest.trust(true);
                // `Ok(None)` means the connection was lost.
                while let Ok(Some(n)) = l.try_recv().await {
                    on_notification(&shared, n.payload());
                }
                tracing::warn!("lost the PostgreSQL LISTEN connection; reconnecting");
                shared.latest.trust(false);
            }
            Err(e) => {
                tracing::debug!("cannot LISTEN on PostgreSQL: {e}");
                shared.latest.trust(false);
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// A connection that failed: retrying helps when PostgreSQL is unreachable,
/// never when TLS was refused or the certificate is wrong (sslmode=require
/// or verify-full cannot be met): that is a startup error, not a downgrade.
fn connect_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Tls(e) => StoreError::Internal(format!("PostgreSQL TLS failed: {e}")),
        // rustls' handshake errors (e.g. a certificate that does not
        // verify) reach sqlx as I/O errors.
        sqlx::Error::Io(e) if is_tls_failure(&e) => {
            StoreError::Internal(format!("PostgreSQL TLS failed: {e}"))
        }
        sqlx::Error::Configuration(e) => {
            StoreError::Internal(format!("bad PostgreSQL settings: {e}"))
        }
        // A file named in the URL (sslrootcert, sslcert, sslkey) that cannot
        // be read will not appear by retrying.
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => StoreError::Internal(
            format!("PostgreSQL TLS failed: a file named in the URL cannot be read: {e}"),
        ),
        // No such database, a wrong password, no pg_hba.conf entry: the
        // server answered, and will answer the same again.
        sqlx::Error::Database(e)
            if matches!(e.code().as_deref(), Some("3D000" | "28P01" | "28000")) =>
        {
            StoreError::Internal(format!("PostgreSQL refused the connection: {e}"))
        }
        e => StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")),
    }
}

fn is_tls_failure(e: &std::io::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    e.kind() == std::io::ErrorKind::InvalidData
        && (text.contains("certificate") || text.contains("tls") || text.contains("handshake"))
}

fn on_notification(shared: &Shared, payload: &str) {
    let mut parts = payload.splitn(3, ' ');
    let (Some(status), Some(version), Some(model)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let (Ok(version), Ok(model)) = (version.parse::<Version>(), ModelName::from_key(model)) else {
        return;
    };
    if status == "pending" {
        shared.latest.note(&model, version);
    }
    if status == "deleted" {
        // Versions of the model were deleted (by any process).
        shared.forget(&model, version == 0);
    }
    shared.signals.notify(&model);
}

#[async_trait]
impl ModelStore for PgStore {
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
        let _timed = crate::Timed::new("postgres", "register_pending");
        // From before the commit until `latest` knows the new version, so a
        // forecast never reads a cached version older than a committed one.
        let registration = self.shared.latest.register(model);
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // Creates the model or locks its row: registrations of one model
        // take turns from here to the commit.
        sqlx::query(
            "INSERT INTO models (name, latest) VALUES ($1, 0) \
             ON CONFLICT (name) DO UPDATE SET latest = models.latest",
        )
        .bind(model.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if let Some(key) = idempotency_key {
            let existing: Option<(i64, Option<String>)> = sqlx::query_as(
                "SELECT version, body_hash FROM versions WHERE model = $1 AND idempotency_key = $2",
            )
            .bind(model.as_str())
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            if let Some((version, stored)) = existing {
                tx.commit().await.map_err(db_error)?;
                registration.nothing();
                return crate::keyed_outcome(version, stored.as_deref(), body_hash);
            }
        }
        let version: i64 = sqlx::query_scalar(
            "UPDATE models SET latest = latest + 1 WHERE name = $1 RETURNING latest",
        )
        .bind(model.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let sql = format!(
            "INSERT INTO versions (model, version, status, created_at_ms, n_series, idempotency_key, body_hash) \
             VALUES ($1, $2, 'pending', {NOW_MS}, $3, $4, $5)"
        );
        sqlx::query(&sql)
            .bind(model.as_str())
            .bind(version)
            .bind(i64::try_from(n_series).unwrap_or(i64::MAX))
            .bind(idempotency_key)
            .bind(idempotency_key.and(body_hash))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        self.announce(&mut tx, "pending", version, model).await?;
        tx.commit().await.map_err(db_error)?;
        registration.done(version);
        Ok(Registered::New(version))
    }

    async fn complete(
        &self,
        model: &ModelName,
        version: Version,
        state: &[u8],
        summary: &FitSummary,
    ) -> Result<(), StoreError> {
        let _timed = crate::Timed::new("postgres", "complete");
        let stored = StoredSummary::new(summary)?;
        self.settle(
            model,
            version,
            "ready",
            "state = $4, summary = $5, method = $6, n_fallbacks = $7",
            |q| {
                q.bind(state.to_vec())
                    .bind(stored.text)
                    .bind(stored.method)
                    .bind(stored.n_fallbacks)
            },
        )
        .await
    }

    async fn fail(
        &self,
        model: &ModelName,
        version: Version,
        reason: &str,
    ) -> Result<(), StoreError> {
        let _timed = crate::Timed::new("postgres", "fail");
        let reason = reason.to_string();
        self.settle(model, version, "failed", "reason = $4", |q| q.bind(reason))
            .await
    }

    async fn heartbeat(&self, model: &ModelName, version: Version) -> Result<(), StoreError> {
        self.stamp(model, version, "heartbeat_at_ms", "status = 'pending'")
            .await
    }

    async fn is_orphaned(
        &self,
        model: &ModelName,
        version: Version,
        idle: Duration,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT COALESCE(heartbeat_at_ms, created_at_ms) < {NOW_MS} - $3 FROM versions \
             WHERE model = $1 AND version = $2 AND status = 'pending'"
        );
        let orphaned: Option<bool> = sqlx::query_scalar(&sql)
            .bind(model.as_str())
            .bind(version)
            .bind(i64::try_from(idle.as_millis()).unwrap_or(i64::MAX))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(orphaned.unwrap_or(false))
    }

    async fn latest_version(&self, model: &ModelName) -> Result<Option<Version>, StoreError> {
        let _timed = crate::Timed::new("postgres", "latest_version");
        let latest_cache = &self.shared.latest;
        if let Newest::Known(version) = latest_cache.get(model) {
            return Ok(version);
        }
        let epoch = latest_cache.epoch();
        // A deleted model keeps its row (and numbering) but has no versions.
        let latest: Option<i64> = sqlx::query_scalar(
            "SELECT m.latest FROM models m WHERE m.name = $1 \
             AND EXISTS (SELECT 1 FROM versions v WHERE v.model = m.name)",
        )
        .bind(model.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let latest = latest.filter(|v| *v > 0);
        // Cached only if notifications flowed the whole time.
        if let Some(v) = latest {
            latest_cache.fill(model, v, epoch);
        }
        Ok(latest)
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
        let _timed = crate::Timed::new("postgres", "load_state");
        let row: Option<(String, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT status, state FROM versions WHERE model = $1 AND version = $2")
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
             WHERE model = $1 AND version > $2 ORDER BY version LIMIT $3"
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
        // The models table holds each model's newest version number. Only
        // the tenant's keys: within its range, or without '/' for the default.
        let (lo, hi) = tenant_range(tenant).unwrap_or_default();
        let rows: Vec<ModelRow> = sqlx::query_as(
            "SELECT m.name, m.latest, v.status, v.reason, \
                    (SELECT count(*) FROM versions c WHERE c.model = m.name) \
             FROM models m JOIN versions v ON v.model = m.name AND v.version = m.latest \
             WHERE m.name > $1 AND (($3 = '' AND m.name NOT LIKE '%/%') \
                                    OR ($3 <> '' AND m.name >= $3 AND m.name < $4)) \
             ORDER BY m.name LIMIT $2",
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
        let _timed = crate::Timed::new("postgres", "count_pending");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM versions WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(Some(u64::try_from(n).unwrap_or(0)))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(Duration::from_secs(2), self.pool.execute("SELECT 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(db_error(e)),
            Err(_) => Err(StoreError::Unavailable(
                "PostgreSQL did not answer within 2s".to_string(),
            )),
        }
    }

    async fn close(&self) {
        self.listener.abort();
        self.pool.close().await;
    }

    // ---- dispatch tracking ----

    async fn mark_dispatched(&self, model: &ModelName, version: Version) -> Result<(), StoreError> {
        self.stamp(
            model,
            version,
            "dispatched_at_ms",
            "dispatched_at_ms IS NULL",
        )
        .await
    }

    async fn is_undispatched(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<bool, StoreError> {
        let undispatched: Option<bool> = sqlx::query_scalar(
            "SELECT status = 'pending' AND dispatched_at_ms IS NULL FROM versions \
             WHERE model = $1 AND version = $2",
        )
        .bind(model.as_str())
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(undispatched.unwrap_or(false))
    }

    async fn create_job(
        &self,
        kind: &str,
        model: &ModelName,
        version: Version,
        total: u64,
    ) -> Result<JobInfo, StoreError> {
        let id = jobs::new_id();
        let sql = format!(
            "INSERT INTO jobs (id, kind, model, version, status, total, created_at_ms) \
             VALUES ($1, $2, $3, $4, 'queued', $5, {NOW_MS})"
        );
        sqlx::query(&sql)
            .bind(&id)
            .bind(kind)
            .bind(model.as_str())
            .bind(version)
            .bind(i64::try_from(total).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        jobs::created(&id, self.job(&id).await?)
    }

    async fn job(&self, id: &str) -> Result<Option<JobInfo>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j \
             LEFT JOIN versions v ON v.model = j.model AND v.version = j.version WHERE j.id = $1"
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
             WHERE j.model = $1 AND j.version = $2 AND j.kind = 'fit' \
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
        let (done, total) = crate::jobs::counted(counts);
        let sql = format!(
            "UPDATE jobs SET status = 'running', done = GREATEST(done, COALESCE($3, done)), \
             total = COALESCE($4, total), started_at_ms = COALESCE(started_at_ms, {NOW_MS}) \
             WHERE model = $1 AND version = $2 AND kind = 'fit'"
        );
        sqlx::query(&sql)
            .bind(model.as_str())
            .bind(version)
            .bind(done)
            .bind(total)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM versions WHERE model = $1 AND version = $2")
                .bind(model.as_str())
                .bind(version)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(still_pending(status.as_deref()))
    }

    async fn delete_model(&self, model: &ModelName) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // Locks the model's row: registrations wait for the delete. The row
        // stays, with `latest`, so a model fitted again continues its numbers.
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT latest FROM models WHERE name = $1 FOR UPDATE")
                .bind(model.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        if latest.is_none() {
            return Ok(false);
        }
        let deleted = sqlx::query("DELETE FROM versions WHERE model = $1")
            .bind(model.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        sqlx::query("DELETE FROM jobs WHERE model = $1")
            .bind(model.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        self.announce(&mut tx, "deleted", 0, model).await?;
        tx.commit().await.map_err(db_error)?;
        self.shared.forget(model, true);
        Ok(deleted > 0)
    }

    async fn delete_version(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let deleted = sqlx::query(
            "DELETE FROM versions WHERE model = $1 AND version = $2 AND status != 'pending' \
             AND version < (SELECT latest FROM models WHERE name = $1)",
        )
        .bind(model.as_str())
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        self.after_deletes(&mut tx, model).await?;
        tx.commit().await.map_err(db_error)?;
        self.shared.forget(model, false);
        Ok(deleted > 0)
    }

    async fn prune(
        &self,
        model: &ModelName,
        keep: usize,
        grace: Duration,
    ) -> Result<u64, StoreError> {
        // As in the SQLite store: a version goes only once `keep` newer
        // versions were registered more than `grace` ago, so a forecast that
        // chose it (the newest when it arrived, or pinned among the newest
        // `keep`) has `grace` to read it.
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let sql = format!(
            "DELETE FROM versions WHERE model = $1 AND status != 'pending' \
             AND (SELECT COUNT(*) FROM versions w WHERE w.model = $1 \
                 AND w.version > versions.version AND w.created_at_ms <= {NOW_MS} - $3) >= $2 \
             AND version != COALESCE((SELECT MAX(version) FROM versions \
                 WHERE model = $1 AND status = 'ready'), 0)"
        );
        let deleted = sqlx::query(&sql)
            .bind(model.as_str())
            .bind(kept_versions(keep))
            .bind(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        if deleted > 0 {
            self.after_deletes(&mut tx, model).await?;
        }
        tx.commit().await.map_err(db_error)?;
        if deleted > 0 {
            self.shared.forget(model, false);
        }
        Ok(deleted)
    }

    async fn job_progress(&self, id: &str, done: u64, total: u64) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE jobs SET status = 'running', done = GREATEST(done, $2), total = $3, \
             started_at_ms = COALESCE(started_at_ms, {NOW_MS}) \
             WHERE id = $1 AND finished_at_ms IS NULL"
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(i64::try_from(done).unwrap_or(i64::MAX))
            .bind(i64::try_from(total).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn finish_job(&self, id: &str, outcome: Result<&str, &str>) -> Result<bool, StoreError> {
        let (result, error) = jobs::outcome_columns(outcome);
        let sql = format!(
            "UPDATE jobs SET result = $2, error = $3, finished_at_ms = {NOW_MS} \
             WHERE id = $1 AND kind != 'fit' AND finished_at_ms IS NULL"
        );
        let done = sqlx::query(&sql)
            .bind(id)
            .bind(result)
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(db_error)?
            .rows_affected();
        Ok(done > 0)
    }
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn db_error(e: sqlx::Error) -> StoreError {
    let unavailable = match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        // Connection exceptions (08), operator intervention such as a
        // shutdown (57), insufficient resources (53).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57") || c.starts_with("53")),
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable(format!("PostgreSQL: {e}"))
    } else {
        StoreError::Internal(format!("PostgreSQL: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VersionStatus;

    #[test]
    fn schema_names() {
        assert!(valid_schema("horizon"));
        assert!(valid_schema("t_abc123"));
        assert!(!valid_schema(""));
        assert!(!valid_schema("1abc"));
        assert!(!valid_schema("a\"b"));
        assert!(!valid_schema("Upper"));
    }

    const URL: &str = test_services::STORE_URL;

    fn postgres_or_skip(test: &str) -> bool {
        test_services::available_or_skip(test, &[test_services::POSTGRES])
    }

    fn summary(model: &ModelName, version: Version) -> FitSummary {
        FitSummary {
            model: model.clone(),
            version,
            method: engine::Method::Naive,
            series: vec![],
            base: None,
        }
    }

    #[tokio::test]
    async fn two_processes_share_versions_and_wake_each_other() {
        if !postgres_or_skip("two_processes_share_versions_and_wake_each_other") {
            return;
        }
        let schema = format!("t_pgstore_{}", std::process::id());
        let cfg = PgConfig::new(URL, &schema);
        // Two stores stand for the gateway and a worker in other processes.
        let (a, b) = tokio::join!(PgStore::connect(&cfg), PgStore::connect(&cfg));
        let (a, b) = (a.expect("store a"), b.expect("store b"));
        let m = ModelName::parse("m").unwrap();
        assert_eq!(a.latest_version(&m).await.unwrap(), None);
        assert!(a.versions(&m, Page::default()).await.unwrap().is_none());

        let v1 = a.register_pending(&m, 2, Some("k1")).await.unwrap();
        assert_eq!(v1, Registered::New(1));
        assert_eq!(
            b.register_pending(&m, 2, Some("k1")).await.unwrap(),
            Registered::Existing(1)
        );
        let v2 = b.register_pending(&m, 1, None).await.unwrap().version();
        assert_eq!(v2, 2);
        // a learns about v2 through the notification or a read.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while a.latest_version(&m).await.unwrap() != Some(2) {
            assert!(
                std::time::Instant::now() < deadline,
                "a never saw version 2"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // A waiter in a is woken by a settle in b.
        let waiting = a.wait_settled(&m, 1, Duration::from_secs(10));
        let settling = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            b.complete(&m, 1, b"state", &summary(&m, 1)).await.unwrap();
        };
        let (info, ()) = tokio::join!(waiting, settling);
        let info = info.unwrap();
        assert_eq!(info.status, VersionStatus::Ready);
        assert_eq!(info.n_series, 2);
        assert_eq!(info.summary, Some(summary(&m, 1)));
        assert_eq!(a.load_state(&m, 1).await.unwrap(), b"state".to_vec());
        // Settling again changes nothing.
        b.fail(&m, 1, "late").await.unwrap();
        assert_eq!(
            b.wait_settled(&m, 1, Duration::from_secs(1))
                .await
                .unwrap()
                .status,
            VersionStatus::Ready
        );

        // Waiting times out on a version that stays pending.
        assert!(matches!(
            a.wait_settled(&m, 2, Duration::from_millis(300)).await,
            Err(StoreError::WaitTimeout(_))
        ));
        assert!(matches!(
            a.wait_settled(&m, 9, Duration::from_millis(300)).await,
            Err(StoreError::UnknownVersion { .. })
        ));
        assert!(matches!(
            a.complete(&m, 9, b"", &summary(&m, 9)).await,
            Err(StoreError::UnknownVersion { .. })
        ));
        // Abandoned pending versions are failed after the limit.
        assert_eq!(
            a.fail_stale_pending(Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            a.fail_stale_pending(Duration::from_millis(1))
                .await
                .unwrap(),
            1
        );
        let info = b.wait_settled(&m, 2, Duration::from_secs(5)).await.unwrap();
        assert!(matches!(info.status, VersionStatus::Failed { .. }));
        let listed = b
            .list_models(&Tenant::default_tenant(), Page::default())
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].n_versions, 2);
        assert_eq!(listed[0].latest_version, 2);
        assert!(matches!(
            listed[0].latest_status,
            VersionStatus::Failed { .. }
        ));
        // Listings page by name and by version, and never decode summaries.
        let n = ModelName::parse("n").unwrap();
        a.register_pending(&n, 1, None).await.unwrap();
        let first = a
            .list_models(&Tenant::default_tenant(), Page::new(1, None))
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].name, m);
        let second = a
            .list_models(
                &Tenant::default_tenant(),
                Page::new(1, Some(first[0].name.clone())),
            )
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].name, n);
        assert_eq!(second[0].latest_status, VersionStatus::Pending);
        let page = a
            .versions(&m, Page::new(1, Some(1)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.latest_version, 2);
        assert_eq!(page.versions.len(), 1);
        assert_eq!(page.versions[0].version, 2);
        let page = a.versions(&m, Page::new(5, None)).await.unwrap().unwrap();
        assert_eq!(page.versions[0].method, Some(engine::Method::Naive));
        assert_eq!(page.versions[0].n_fallbacks, Some(0));
        assert_eq!(page.versions[0].summary, None);
        // The digest of the body is kept with the key, across processes.
        let k = ModelName::parse("keyed").unwrap();
        let first = a.register_pending_keyed(&k, 1, Some("kh"), Some("aaa"));
        assert_eq!(first.await.unwrap(), Registered::New(1));
        let same = b.register_pending_keyed(&k, 1, Some("kh"), Some("aaa"));
        assert_eq!(same.await.unwrap(), Registered::Existing(1));
        assert!(matches!(
            b.register_pending_keyed(&k, 1, Some("kh"), Some("bbb"))
                .await,
            Err(StoreError::KeyReused { version: 1 })
        ));
        a.ping().await.unwrap();
        a.close().await;
        b.close().await;
        PgStore::drop_schema(URL, &schema).await.unwrap();
    }

    #[test]
    fn errors_that_retrying_cannot_mend_end_the_start() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert!(matches!(
            connect_error(sqlx::Error::Io(missing)),
            StoreError::Internal(_)
        ));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(
            connect_error(sqlx::Error::Io(refused)),
            StoreError::Unavailable(_)
        ));
    }

    /// A fit the broker confirmed waits in its queue for as long as it
    /// takes: the sweep fails only fits that never reached the broker.
    #[tokio::test]
    async fn the_sweep_leaves_dispatched_fits_to_the_broker() {
        if !postgres_or_skip("the_sweep_leaves_dispatched_fits_to_the_broker") {
            return;
        }
        let schema = format!("t_pgsweep_{}", std::process::id());
        let store = PgStore::connect(&PgConfig::new(URL, &schema))
            .await
            .unwrap();
        let m = ModelName::parse("m").unwrap();
        let queued = store.register_pending(&m, 1, None).await.unwrap().version();
        store.mark_dispatched(&m, queued).await.unwrap();
        let lost = store.register_pending(&m, 1, None).await.unwrap().version();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            store
                .fail_stale_pending(Duration::from_millis(1))
                .await
                .unwrap(),
            1
        );
        let status = |v| store.wait_settled(&m, v, Duration::from_millis(50));
        assert!(matches!(
            status(queued).await,
            Err(StoreError::WaitTimeout(_))
        ));
        assert!(matches!(
            status(lost).await.unwrap().status,
            VersionStatus::Failed { .. }
        ));
        store.close().await;
        PgStore::drop_schema(URL, &schema).await.unwrap();
    }

    #[tokio::test]
    async fn backtest_jobs_and_pruning_with_a_grace() {
        use crate::jobs::{JobStatus, CANCELLED, KIND_BACKTEST};
        if !postgres_or_skip("backtest_jobs_and_pruning_with_a_grace") {
            return;
        }
        let schema = format!("t_pgbtjobs_{}", std::process::id());
        let store = PgStore::connect(&PgConfig::new(URL, &schema))
            .await
            .unwrap();
        let m = ModelName::parse("m").unwrap();
        let job = store.create_job(KIND_BACKTEST, &m, 0, 2).await.unwrap();
        store.job_progress(&job.id, 1, 2).await.unwrap();
        store.job_progress(&job.id, 0, 2).await.unwrap();
        let got = store.job(&job.id).await.unwrap().unwrap();
        assert_eq!((got.status, got.done), (JobStatus::Running, 1));
        assert!(store.finish_job(&job.id, Err(CANCELLED)).await.unwrap());
        assert!(!store.finish_job(&job.id, Ok("{}")).await.unwrap());
        let got = store.job(&job.id).await.unwrap().unwrap();
        assert_eq!((got.status, got.result), (JobStatus::Cancelled, None));
        // Retention spares a version that fell out of the newest `keep`
        // less than the grace ago.
        for v in 1..=3 {
            store.register_pending(&m, 1, None).await.unwrap();
            store.complete(&m, v, b"s", &summary(&m, v)).await.unwrap();
        }
        assert_eq!(
            store.prune(&m, 1, Duration::from_secs(60)).await.unwrap(),
            0
        );
        assert_eq!(store.prune(&m, 1, Duration::ZERO).await.unwrap(), 2);
        // The backtest job of the model survives its versions' pruning.
        assert!(store.job(&job.id).await.unwrap().is_some());
        store.close().await;
        PgStore::drop_schema(URL, &schema).await.unwrap();
    }

    #[tokio::test]
    async fn concurrent_registrations_get_distinct_versions() {
        if !postgres_or_skip("concurrent_registrations_get_distinct_versions") {
            return;
        }
        let schema = format!("t_pgconc_{}", std::process::id());
        let store = Arc::new(
            PgStore::connect(&PgConfig::new(URL, &schema))
                .await
                .unwrap(),
        );
        let m = ModelName::parse("m").unwrap();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            let m = m.clone();
            tasks.push(tokio::spawn(async move {
                // Every fourth registration reuses a key.
                let key = (i % 4 == 0).then(|| "same".to_string());
                store.register_pending(&m, 1, key.as_deref()).await.unwrap()
            }));
        }
        let mut versions = Vec::new();
        for t in tasks {
            versions.push(t.await.unwrap());
        }
        let new: Vec<_> = versions
            .iter()
            .filter_map(|r| match r {
                Registered::New(v) => Some(*v),
                Registered::Existing(_) => None,
            })
            .collect();
        assert_eq!(new.len(), 31, "30 without a key and one for the shared key");
        let mut sorted = new.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=31).collect::<Vec<_>>());
        assert_eq!(store.latest_version(&m).await.unwrap(), Some(31));
        store.close().await;
        PgStore::drop_schema(URL, &schema).await.unwrap();
    }

    #[test]
    fn notifications_raise_the_latest_version() {
        let shared = Shared {
            signals: SettleSignals::new(),
            settled: SettledVersions::default(),
            latest: NewestVersions::partial(),
        };
        shared.latest.trust(true);
        on_notification(&shared, "pending 3 m.a-b");
        on_notification(&shared, "pending 2 m.a-b");
        on_notification(&shared, "ready 9 m.a-b");
        on_notification(&shared, "garbage");
        let m = ModelName::parse("m.a-b").unwrap();
        assert_eq!(shared.latest.get(&m), Newest::Known(Some(3)));
    }
}
