//! The shards of a sharded version in SQLite (see [`crate::ModelStore::complete_shard`]).

use super::{db_error, SqliteStore};
use crate::rows::{
    now_ms, shard_count_of, shard_state_of, shard_summary_of, shard_wanted, ShardSummaries,
    StoredSummary,
};
use crate::StoreError;
use protocol::shard::Shard;
use protocol::{FitSummary, ModelName, Version};

impl SqliteStore {
    pub(super) async fn store_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: Shard,
        state: &[u8],
        summary: &FitSummary,
    ) -> Result<(), StoreError> {
        let _timed = crate::Timed::new("sqlite", "complete_shard");
        let encoded = StoredSummary::new(summary)?;
        let settled = {
            let _turn = self.write.lock().await;
            let mut tx = self.pool.begin().await.map_err(db_error)?;
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM versions WHERE model = ? AND version = ?")
                    .bind(model.as_str())
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
            // Settled meanwhile (failed by another shard, cancelled): first
            // wins.
            if !shard_wanted(model, version, status.as_deref())? {
                return Ok(());
            }
            sqlx::query(
                "INSERT OR IGNORE INTO shards \
                 (model, version, shard, n_series, summary, state, n_fallbacks) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
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
            let (stored, done): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(n_series), 0) FROM shards \
                 WHERE model = ? AND version = ?",
            )
            .bind(model.as_str())
            .bind(version)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
            sqlx::query(
                "UPDATE jobs SET status = 'running', done = ?, \
                 started_at_ms = COALESCE(started_at_ms, ?) WHERE model = ? AND version = ?",
            )
            .bind(done)
            .bind(now_ms())
            .bind(model.as_str())
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            let complete = stored >= i64::from(shard.count);
            if complete {
                // The version's counts from its shards' rows; its summary
                // stays in them (see `ShardSummaries`). A shard stored before
                // the rows kept their count is counted from its summary, here.
                let n_fallbacks: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(SUM(COALESCE(n_fallbacks, (SELECT COUNT(*) \
                     FROM json_each(summary, '$.series') \
                     WHERE json_extract(value, '$.fallback') IS NOT NULL))), 0) \
                     FROM shards WHERE model = ? AND version = ?",
                )
                .bind(model.as_str())
                .bind(version)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                sqlx::query(
                    "UPDATE versions SET status = 'ready', method = ?, \
                     n_fallbacks = ?, n_shards = ?, settled_at_ms = ? \
                     WHERE model = ? AND version = ? AND status = 'pending'",
                )
                .bind(encoded.method)
                .bind(n_fallbacks)
                .bind(i64::from(shard.count))
                .bind(now_ms())
                .bind(model.as_str())
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)?;
            complete
        };
        if settled {
            self.signals.notify(model);
        }
        Ok(())
    }

    pub(super) async fn count_shards(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<u32, StoreError> {
        let n: Option<Option<i64>> =
            sqlx::query_scalar("SELECT n_shards FROM versions WHERE model = ? AND version = ?")
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
        let _timed = crate::Timed::new("sqlite", "load_shard");
        let row: Option<(String, Option<i64>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT v.status, v.n_shards, s.state FROM versions v \
             LEFT JOIN shards s ON s.model = v.model AND s.version = v.version AND s.shard = ? \
             WHERE v.model = ? AND v.version = ?",
        )
        .bind(i64::from(shard))
        .bind(model.as_str())
        .bind(version)
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
        let _timed = crate::Timed::new("sqlite", "shard_summary");
        // The version's own summary only when it is stored whole (a sharded
        // version's row holds none, or, stored before, every series).
        let row: Option<(String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT v.status, v.n_shards, \
             CASE WHEN v.n_shards IS NULL THEN v.summary ELSE s.summary END FROM versions v \
             LEFT JOIN shards s ON s.model = v.model AND s.version = v.version AND s.shard = ? \
             WHERE v.model = ? AND v.version = ?",
        )
        .bind(i64::from(shard))
        .bind(model.as_str())
        .bind(version)
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
        let _timed = crate::Timed::new("sqlite", "assemble_summary");
        let rows = sqlx::query_scalar::<_, String>(
            "SELECT summary FROM shards WHERE model = ? AND version = ? ORDER BY shard",
        )
        .bind(model.as_str())
        .bind(version)
        .fetch(&self.pool);
        ShardSummaries::assemble(model, version, rows, db_error).await
    }
}
