//! Version rows as both SQL stores select them, and what they mean.

use crate::{ModelEntry, StoreError, VersionInfo, VersionStatus};
use engine::Method;
use protocol::{FitSummary, ModelName};
use std::time::{Duration, UNIX_EPOCH};

/// Columns of a version row, in the order [`VersionRow`] holds them.
pub(crate) const VERSION_COLUMNS: &str =
    "version, status, reason, created_at_ms, n_series, method, n_fallbacks, summary";

/// [`VERSION_COLUMNS`] without the per-series summary, for listings: they
/// show the stored counts and never decode summaries.
pub(crate) const LISTED_VERSION_COLUMNS: &str =
    "version, status, reason, created_at_ms, n_series, method, n_fallbacks, CAST(NULL AS TEXT)";

/// A row of [`VERSION_COLUMNS`].
pub(crate) type VersionRow = (
    i64,
    String,
    Option<String>,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// A row of a model listing: name, newest version, its status and reason,
/// number of versions.
pub(crate) type ModelRow = (String, i64, String, Option<String>, i64);

fn status(version: i64, status: &str, reason: Option<String>) -> Result<VersionStatus, StoreError> {
    Ok(match status {
        "pending" => VersionStatus::Pending,
        "ready" => VersionStatus::Ready,
        "failed" => VersionStatus::Failed {
            reason: reason.unwrap_or_else(|| "unknown reason".to_string()),
        },
        other => {
            return Err(StoreError::Internal(format!(
                "version {version} has an unknown status '{other}'"
            )))
        }
    })
}

pub(crate) fn to_info(row: VersionRow) -> Result<VersionInfo, StoreError> {
    let (version, status_text, reason, created_at_ms, n_series, method, n_fallbacks, summary) = row;
    let summary = match summary {
        Some(text) => match serde_json::from_str::<FitSummary>(&text) {
            Ok(summary) => Some(summary),
            Err(e) => {
                tracing::warn!(version, error = %e, "unreadable fit summary");
                None
            }
        },
        None => None,
    };
    Ok(VersionInfo {
        version,
        status: status(version, &status_text, reason)?,
        created_at: UNIX_EPOCH + Duration::from_millis(u64::try_from(created_at_ms).unwrap_or(0)),
        n_series: usize::try_from(n_series).unwrap_or(0),
        method: method.and_then(|m| m.parse::<Method>().ok()),
        n_fallbacks: n_fallbacks.and_then(|n| usize::try_from(n).ok()),
        summary,
    })
}

pub(crate) fn to_entry(row: ModelRow) -> Result<ModelEntry, StoreError> {
    let (name, latest, status_text, reason, n_versions) = row;
    Ok(ModelEntry {
        name: model_name(&name)?,
        latest_version: latest,
        latest_status: status(latest, &status_text, reason)?,
        n_versions: usize::try_from(n_versions).unwrap_or(0),
    })
}

pub(crate) fn model_name(name: &str) -> Result<ModelName, StoreError> {
    ModelName::from_key(name).map_err(|e| StoreError::Internal(format!("stored model name: {e}")))
}

/// What `complete` stores besides the summary: its method and fallback
/// count (`complete_shard` stores the count of each shard in its row, and
/// the version's count is their sum).
pub(crate) fn summary_counts(summary: &FitSummary) -> (&'static str, i64) {
    let fallbacks = summary
        .series
        .iter()
        .filter(|s| s.fallback.is_some())
        .count();
    (
        summary.method.name(),
        i64::try_from(fallbacks).unwrap_or(i64::MAX),
    )
}

/// The summary of a sharded version, assembled when a reader asks for it:
/// its shards' summaries (JSON, pushed in shard order) one after the other.
/// The version's row holds none (a million series would make the worker
/// storing the last shard hold a million entries); one shard's text is
/// decoded at a time.
pub(crate) struct ShardSummaries<'a> {
    model: &'a ModelName,
    version: protocol::Version,
    merged: Option<FitSummary>,
}

impl<'a> ShardSummaries<'a> {
    fn new(model: &'a ModelName, version: protocol::Version) -> Self {
        Self {
            model,
            version,
            merged: None,
        }
    }

    /// The summary assembled from `rows`, the shards' summary texts in
    /// shard order as a store streams them (its errors told by `db_error`).
    pub(crate) async fn assemble(
        model: &'a ModelName,
        version: protocol::Version,
        mut rows: impl futures_util::Stream<Item = Result<String, sqlx::Error>> + Unpin,
        db_error: fn(sqlx::Error) -> StoreError,
    ) -> Result<Option<FitSummary>, StoreError> {
        use futures_util::TryStreamExt;
        let mut parts = Self::new(model, version);
        while let Some(text) = rows.try_next().await.map_err(db_error)? {
            parts.push(&text)?;
        }
        Ok(parts.merged)
    }

    /// Appends the next shard's summary.
    fn push(&mut self, text: &str) -> Result<(), StoreError> {
        let part: FitSummary = serde_json::from_str(text).map_err(|e| {
            StoreError::Internal(format!(
                "a shard summary of version {} of '{}' is unreadable: {e}",
                self.version, self.model
            ))
        })?;
        match &mut self.merged {
            None => self.merged = Some(part),
            Some(all) => all.series.extend(part.series),
        }
        Ok(())
    }
}

/// The answer of `shard_summary` from a row of (version status, shard
/// count: `None` when stored whole, the summary's text).
pub(crate) fn shard_summary_of(
    model: &ModelName,
    version: protocol::Version,
    shard: u32,
    row: Option<(String, Option<i64>, Option<String>)>,
) -> Result<FitSummary, StoreError> {
    match row {
        None => Err(StoreError::UnknownVersion {
            model: model.clone(),
            version,
        }),
        Some((_, None, _)) if shard != 0 => Err(StoreError::Internal(format!(
            "version {version} of model '{model}' is stored whole: it has no shard {shard}"
        ))),
        Some((status, _, Some(text))) if status == "ready" => serde_json::from_str(&text)
            .map_err(|e| {
                StoreError::Internal(format!(
                    "the summary of shard {shard} of version {version} of '{model}' is unreadable: {e}"
                ))
            }),
        Some((status, _, _)) => Err(StoreError::Internal(format!(
            "version {version} of model '{model}' has no fitted shard {shard} (status {status})"
        ))),
    }
}

/// The answer of `shard_count` from the version's `n_shards` (`None` for an
/// unknown version; a version stored whole is one shard).
pub(crate) fn shard_count_of(
    model: &ModelName,
    version: protocol::Version,
    n: Option<Option<i64>>,
) -> Result<u32, StoreError> {
    match n {
        None => Err(StoreError::UnknownVersion {
            model: model.clone(),
            version,
        }),
        Some(n) => Ok(n.and_then(|n| u32::try_from(n).ok()).unwrap_or(1).max(1)),
    }
}

/// The answer of `load_shard` from a row of (version status, shard count:
/// `None` when stored whole, the shard's state): `None` when the version is
/// stored whole and its own state is the shard asked for.
pub(crate) fn shard_state_of(
    model: &ModelName,
    version: protocol::Version,
    shard: u32,
    row: Option<(String, Option<i64>, Option<Vec<u8>>)>,
) -> Result<Option<Vec<u8>>, StoreError> {
    match row {
        None => Err(StoreError::UnknownVersion {
            model: model.clone(),
            version,
        }),
        Some((_, None, _)) if shard == 0 => Ok(None),
        Some((status, _, Some(state))) if status == "ready" => Ok(Some(state)),
        Some((status, _, _)) => Err(StoreError::Internal(format!(
            "version {version} of model '{model}' has no fitted shard {shard} (status {status})"
        ))),
    }
}
