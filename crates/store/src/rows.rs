//! Version rows as both SQL stores select them, and what they mean.

use crate::{ModelInfo, StoreError, VersionInfo, VersionStatus};
use protocol::{FitSummary, ModelName};
use std::time::{Duration, UNIX_EPOCH};

/// Columns of a version row, in the order [`VersionRow`] holds them.
pub(crate) const VERSION_COLUMNS: &str =
    "version, status, reason, created_at_ms, n_series, summary";

/// A row of [`VERSION_COLUMNS`].
pub(crate) type VersionRow = (i64, String, Option<String>, i64, i64, Option<String>);
/// A version row preceded by its model's name (`SELECT model, {VERSION_COLUMNS}`).
pub(crate) type ModelVersionRow = (
    String,
    i64,
    String,
    Option<String>,
    i64,
    i64,
    Option<String>,
);

pub(crate) fn to_info(row: VersionRow) -> Result<VersionInfo, StoreError> {
    let (version, status, reason, created_at_ms, n_series, summary) = row;
    let status = match status.as_str() {
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
    };
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
        status,
        created_at: UNIX_EPOCH + Duration::from_millis(u64::try_from(created_at_ms).unwrap_or(0)),
        n_series: usize::try_from(n_series).unwrap_or(0),
        summary,
    })
}

/// Groups rows ordered by model, then version, into models.
pub(crate) fn models_from_rows(rows: Vec<ModelVersionRow>) -> Result<Vec<ModelInfo>, StoreError> {
    let mut models: Vec<ModelInfo> = Vec::new();
    for (name, version, status, reason, created, n_series, summary) in rows {
        let info = to_info((version, status, reason, created, n_series, summary))?;
        match models.last_mut() {
            Some(last) if last.name.as_str() == name => last.versions.push(info),
            _ => {
                let name = ModelName::parse(&name)
                    .map_err(|e| StoreError::Internal(format!("stored model name: {e}")))?;
                models.push(ModelInfo {
                    name,
                    versions: vec![info],
                });
            }
        }
    }
    Ok(models)
}
