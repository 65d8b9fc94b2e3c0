//! Version rows as both SQL stores select them, and what they mean: the
//! rules of the registry that do not depend on the database (how a row is
//! read, which answer a row gives, what a write stores), kept here once so
//! that the PostgreSQL and SQLite stores differ only in their SQL and their
//! driver calls.

use crate::{ModelEntry, ModelInfo, StoreError, VersionInfo, VersionStatus};
use engine::Method;
use protocol::{FitSummary, ModelName, Version};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Columns of a version row, in the order [`VersionRow`] holds them.
pub(crate) const VERSION_COLUMNS: &str =
    "version, status, reason, created_at_ms, n_series, method, n_fallbacks, summary";

/// [`VERSION_COLUMNS`] without the per-series summary, for listings: they
/// show the stored counts and never decode summaries.
pub(crate) const LISTED_VERSION_COLUMNS: &str =
    "version, status, reason, created_at_ms, n_series, method, n_fallbacks, CAST(NULL AS TEXT)";

/// The columns of a version read: with the per-series summary only when
/// `whole` (the summary grows with the version's series).
pub(crate) fn version_columns(whole: bool) -> &'static str {
    if whole {
        VERSION_COLUMNS
    } else {
        LISTED_VERSION_COLUMNS
    }
}

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
        created_at: time_of(created_at_ms),
        n_series: usize::try_from(n_series).unwrap_or(0),
        method: method.and_then(|m| m.parse::<Method>().ok()),
        n_fallbacks: n_fallbacks.and_then(|n| usize::try_from(n).ok()),
        summary,
    })
}

/// A page of `model`'s versions (rows of [`LISTED_VERSION_COLUMNS`]).
pub(crate) fn to_model_info(
    model: &ModelName,
    latest_version: Version,
    rows: Vec<VersionRow>,
) -> Result<ModelInfo, StoreError> {
    Ok(ModelInfo {
        name: model.clone(),
        latest_version,
        versions: rows.into_iter().map(to_info).collect::<Result<_, _>>()?,
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

/// Now, as the stores keep times: milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A stored time (milliseconds since the Unix epoch; a negative one, which
/// no store writes, reads as the epoch).
pub(crate) fn time_of(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The answer of `load_state` from a row of (status, state).
pub(crate) fn state_of(
    model: &ModelName,
    version: Version,
    row: Option<(String, Option<Vec<u8>>)>,
) -> Result<Vec<u8>, StoreError> {
    match row {
        Some((status, Some(state))) if status == "ready" => Ok(state),
        Some((status, _)) => Err(StoreError::Internal(format!(
            "version {version} of model '{model}' has no fitted state (status {status})"
        ))),
        None => Err(StoreError::unknown_version(model, version)),
    }
}

/// How many of a model's newest versions `prune` keeps, as SQL takes it:
/// at least one, whatever the caller asked.
pub(crate) fn kept_versions(keep: usize) -> i64 {
    i64::try_from(keep.max(1)).unwrap_or(i64::MAX)
}

/// Whether work on a version is still wanted, from its status (`None`: the
/// version is gone): only while it is pending.
pub(crate) fn still_pending(status: Option<&str>) -> bool {
    status == Some("pending")
}

/// Whether a shard of a version whose status is `status` is to be stored:
/// only while the version is pending (one settled meanwhile, failed by
/// another shard or cancelled, stays as it is: first wins).
pub(crate) fn shard_wanted(
    model: &ModelName,
    version: Version,
    status: Option<&str>,
) -> Result<bool, StoreError> {
    match status {
        None => Err(StoreError::unknown_version(model, version)),
        Some(_) => Ok(still_pending(status)),
    }
}

/// A fit summary as `complete` and `complete_shard` store it.
pub(crate) struct StoredSummary {
    /// The summary as JSON.
    pub text: String,
    pub n_series: i64,
    pub method: &'static str,
    pub n_fallbacks: i64,
}

impl StoredSummary {
    pub(crate) fn new(summary: &FitSummary) -> Result<Self, StoreError> {
        let text = serde_json::to_string(summary)
            .map_err(|e| StoreError::Internal(format!("encoding the fit summary: {e}")))?;
        let (method, n_fallbacks) = summary_counts(summary);
        Ok(Self {
            text,
            n_series: i64::try_from(summary.series.len()).unwrap_or(i64::MAX),
            method,
            n_fallbacks,
        })
    }
}

/// What `complete` stores besides the summary: its method and fallback
/// count (`complete_shard` stores the count of each shard in its row, and
/// the version's count is their sum).
fn summary_counts(summary: &FitSummary) -> (&'static str, i64) {
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
    version: Version,
    merged: Option<FitSummary>,
}

impl<'a> ShardSummaries<'a> {
    fn new(model: &'a ModelName, version: Version) -> Self {
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
        version: Version,
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
    version: Version,
    shard: u32,
    row: Option<(String, Option<i64>, Option<String>)>,
) -> Result<FitSummary, StoreError> {
    match row {
        None => Err(StoreError::unknown_version(model, version)),
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
    version: Version,
    n: Option<Option<i64>>,
) -> Result<u32, StoreError> {
    match n {
        None => Err(StoreError::unknown_version(model, version)),
        Some(n) => Ok(n.and_then(|n| u32::try_from(n).ok()).unwrap_or(1).max(1)),
    }
}

/// The answer of `load_shard` from a row of (version status, shard count:
/// `None` when stored whole, the shard's state): `None` when the version is
/// stored whole and its own state is the shard asked for.
pub(crate) fn shard_state_of(
    model: &ModelName,
    version: Version,
    shard: u32,
    row: Option<(String, Option<i64>, Option<Vec<u8>>)>,
) -> Result<Option<Vec<u8>>, StoreError> {
    match row {
        None => Err(StoreError::unknown_version(model, version)),
        Some((_, None, _)) if shard == 0 => Ok(None),
        Some((status, _, Some(state))) if status == "ready" => Ok(Some(state)),
        Some((status, _, _)) => Err(StoreError::Internal(format!(
            "version {version} of model '{model}' has no fitted shard {shard} (status {status})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_answered_only_for_a_ready_version() {
        let m = ModelName::parse("m").unwrap();
        let row =
            |status: &str, state: Option<&[u8]>| Some((status.into(), state.map(<[u8]>::to_vec)));
        assert_eq!(state_of(&m, 1, row("ready", Some(b"s"))).unwrap(), b"s");
        assert!(matches!(
            state_of(&m, 1, row("pending", None)),
            Err(StoreError::Internal(e)) if e.contains("status pending")
        ));
        assert!(matches!(
            state_of(&m, 1, None),
            Err(StoreError::UnknownVersion { version: 1, .. })
        ));
    }

    #[test]
    fn a_shard_is_stored_only_while_its_version_is_pending() {
        let m = ModelName::parse("m").unwrap();
        assert!(shard_wanted(&m, 1, Some("pending")).unwrap());
        assert!(!shard_wanted(&m, 1, Some("failed")).unwrap());
        assert!(matches!(
            shard_wanted(&m, 1, None),
            Err(StoreError::UnknownVersion { .. })
        ));
        assert_eq!(kept_versions(0), 1);
    }
}
