//! The shards of a sharded version in PostgreSQL (see
//! [`crate::ModelStore::complete_shard`]). The shard's row is written
//! first, then its version's row is locked for the count: two workers
//! storing the last two shards at once cannot both miss that the version is
//! complete (the second to take the lock counts the first's committed row),
//! and the lock is never held while a large shard is written. The lock is
//! `FOR NO KEY UPDATE`: the shard's insert holds `KEY SHARE` on the same
//! row (its foreign key), which `FOR UPDATE` would wait for in another
//! transaction doing the same: a deadlock.

use super::{db_error, PgStore, NOW_MS};
use crate::rows::{
    shard_count_of, shard_state_of, shard_summary_of, shard_wanted, still_pending, ShardSummaries,
    StoredSummary,
};
use crate::StoreError;
use protocol::shard::Shard;
use protocol::{FitSummary, ModelName, Version};

impl PgStore {
    pub(super) async fn store_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: Shard,
        state: &[u8],
        summary: &FitSummary,
    ) -> Result<(), StoreError> {
        let _timed = crate::Timed::new("postgres", "complete_shard");
        let encoded = StoredSummary::new(summary)?;
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let status = |lock: &'static str| {
            sqlx::query_scalar::<_, String>(if lock.is_empty() {
                "SELECT status FROM versions WHERE model = $1 AND version = $2"
            } else {
                "SELECT status FROM versions WHERE model = $1 AND version = $2 FOR NO KEY UPDATE"
            })
            .bind(model.as_str())
            .bind(version)
        };
        // Settled already (failed by another shard, cancelled): first wins.
        let current = status("")
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        if !shard_wanted(model, version, current.as_deref())? {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO shards (model, version, shard, n_series, summary, state, n_fallbacks) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(model.as_str())
        .bind(version)
        .bind(i64::from(shard.index))
        .bind(encoded.n_series)
        .bind(&encoded.text)
        .bind(state)
        .bind(encoded.n_fallbacks)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // Settled while the shard was written: nothing more to do (the row
        // goes with its version).
        let locked = status("lock")
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        if !still_pending(locked.as_deref()) {
            tx.commit().await.map_err(db_error)?;
            return Ok(());
        }
        let (stored, done): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(n_series), 0)::bigint FROM shards \
             WHERE model = $1 AND version = $2",
        )
        .bind(model.as_str())
        .bind(version)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let sql = format!(
            "UPDATE jobs SET status = 'running', done = $3, \
             started_at_ms = COALESCE(started_at_ms, {NOW_MS}) WHERE model = $1 AND version = $2"
        );
        sqlx::query(&sql)
            .bind(model.as_str())
            .bind(version)
            .bind(done)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let complete = stored >= i64::from(shard.count);
        if complete {
            // The version's counts from its shards' rows; its summary stays
            // in them (see `ShardSummaries`). A shard stored before the
            // rows kept their count is counted from its summary, here.
            let n_fallbacks: i64 = sqlx::query_scalar(
                "SELECT COALESCE(SUM(COALESCE(n_fallbacks, (SELECT COUNT(*) \
                 FROM jsonb_array_elements(summary::jsonb -> 'series') e \
                 WHERE e ->> 'fallback' IS NOT NULL))), 0)::bigint \
                 FROM shards WHERE model = $1 AND version = $2",
            )
            .bind(model.as_str())
            .bind(version)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
            let sql = format!(
                "UPDATE versions SET status = 'ready', method = $3, \
                 n_fallbacks = $4, n_shards = $5, settled_at_ms = {NOW_MS} \
                 WHERE model = $1 AND version = $2 AND status = 'pending'"
            );
            sqlx::query(&sql)
                .bind(model.as_str())
                .bind(version)
                .bind(encoded.method)
                .bind(n_fallbacks)
                .bind(i64::from(shard.count))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            // What `settle` tells the other processes, in the same commit.
            self.announce(&mut tx, "ready", version, model).await?;
        }
        tx.commit().await.map_err(db_error)?;
        if complete {
            self.shared.signals.notify(model);
        }
        Ok(())
    }

    pub(super) async fn count_shards(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<u32, StoreError> {
        let n: Option<Option<i64>> =
            sqlx::query_scalar("SELECT n_shards FROM versions WHERE model = $1 AND version = $2")
                .bind(model.as_str())
                .bind(version)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        shard_count_of(model, version, n)
    }

    pub(super) async fn read_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<Vec<u8>, StoreError> {
        let _timed = crate::Timed::new("postgres", "load_shard");
        let row: Option<(String, Option<i64>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT v.status, v.n_shards, s.state FROM versions v \
             LEFT JOIN shards s ON s.model = v.model AND s.version = v.version AND s.shard = $3 \
             WHERE v.model = $1 AND v.version = $2",
        )
        .bind(model.as_str())
        .bind(version)
        .bind(i64::from(shard))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        match shard_state_of(model, version, shard, row)? {
            Some(state) => Ok(state),
            // Stored whole: the version's own state is its only shard.
            None => crate::ModelStore::load_state(self, model, version).await,
        }
    }

    pub(super) async fn read_shard_summary(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<FitSummary, StoreError> {
        let _timed = crate::Timed::new("postgres", "shard_summary");
        // The version's own summary only when it is stored whole (a sharded
        // version's row holds none, or, stored before, every series).
        let row: Option<(String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT v.status, v.n_shards, \
             CASE WHEN v.n_shards IS NULL THEN v.summary ELSE s.summary END FROM versions v \
             LEFT JOIN shards s ON s.model = v.model AND s.version = v.version AND s.shard = $3 \
             WHERE v.model = $1 AND v.version = $2",
        )
        .bind(model.as_str())
        .bind(version)
        .bind(i64::from(shard))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        shard_summary_of(model, version, shard, row)
    }

    /// The summary of a sharded version, assembled from its shards' rows
    /// (`None` when it has none: stored whole).
    pub(super) async fn assemble_summary(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<Option<FitSummary>, StoreError> {
        let _timed = crate::Timed::new("postgres", "assemble_summary");
        let rows = sqlx::query_scalar::<_, String>(
            "SELECT summary FROM shards WHERE model = $1 AND version = $2 ORDER BY shard",
        )
        .bind(model.as_str())
        .bind(version)
        .fetch(&self.pool);
        ShardSummaries::assemble(model, version, rows, db_error).await
    }
}
