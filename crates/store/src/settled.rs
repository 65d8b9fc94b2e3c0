//! The cache of settled versions both SQL stores keep, and the wait of
//! [`crate::ModelStore::wait_settled`] that answers from it.
//!
//! A settled version never changes again (until it is deleted), so the
//! forecast path reads it from memory after the first time. A version read
//! without its per-series summary (a status read) is kept too, but never
//! replaces one read with it, and never answers a caller that wants the
//! summary.

use crate::signals::SettleSignals;
use crate::{lock, StoreError, VersionInfo, VersionStatus};
use protocol::{ModelName, Version};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// Settled versions kept in memory, at most; past that the cache starts
/// over (simpler than an eviction order, and rare).
const SETTLED_CACHE: usize = 4096;

/// Settled versions, by model then version (looked up without cloning the
/// model's name).
#[derive(Debug, Default)]
pub(crate) struct SettledVersions {
    inner: Mutex<Settled>,
}

#[derive(Debug, Default)]
struct Settled {
    by_model: HashMap<ModelName, HashMap<Version, VersionInfo>>,
    len: usize,
}

impl SettledVersions {
    /// A settled version: with its summary (only if it has it, when ready)
    /// when `whole`, else without it.
    pub(crate) fn get(
        &self,
        model: &ModelName,
        version: Version,
        whole: bool,
    ) -> Option<VersionInfo> {
        let settled = lock(&self.inner);
        let info = settled.by_model.get(model)?.get(&version)?;
        if !whole {
            return Some(info.without_summary());
        }
        (!info.lacks_summary()).then(|| info.clone())
    }

    /// Forgets the versions of a model some of which were deleted.
    pub(crate) fn forget(&self, model: &ModelName) {
        let mut settled = lock(&self.inner);
        if let Some(versions) = settled.by_model.remove(model) {
            settled.len = settled.len.saturating_sub(versions.len());
        }
    }

    /// Keeps a settled version (a pending one is not kept); one read
    /// without its summary never replaces one read with it.
    pub(crate) fn insert(&self, model: &ModelName, info: &VersionInfo) {
        if info.status == VersionStatus::Pending {
            return;
        }
        let mut settled = lock(&self.inner);
        if settled.len >= SETTLED_CACHE {
            settled.by_model.clear();
            settled.len = 0;
        }
        let versions = settled.by_model.entry(model.clone()).or_default();
        if info.lacks_summary() && versions.contains_key(&info.version) {
            return;
        }
        if versions.insert(info.version, info.clone()).is_none() {
            settled.len += 1;
        }
    }

    /// A settled version (with its summary only when `whole`), from the
    /// cache or else once it settles: `read` reads it from the database
    /// (see [`SettleSignals::wait_settled`]).
    pub(crate) async fn wait_for<F, Fut>(
        &self,
        signals: &SettleSignals,
        model: &ModelName,
        version: Version,
        timeout: Duration,
        whole: bool,
        read: F,
    ) -> Result<VersionInfo, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<VersionInfo>, StoreError>>,
    {
        if let Some(info) = self.get(model, version, whole) {
            return Ok(info);
        }
        let info = signals.wait_settled(model, version, timeout, read).await?;
        self.insert(model, &info);
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn info(version: Version, status: VersionStatus, summary: bool) -> VersionInfo {
        VersionInfo {
            version,
            status,
            created_at: UNIX_EPOCH,
            n_series: 1,
            method: None,
            n_fallbacks: None,
            summary: summary.then(|| protocol::FitSummary {
                model: ModelName::parse("m").unwrap(),
                version,
                method: engine::Method::Naive,
                series: vec![],
                base: None,
            }),
        }
    }

    #[test]
    fn a_status_read_never_replaces_a_whole_one_nor_answers_for_it() {
        let cache = SettledVersions::default();
        let m = ModelName::parse("m").unwrap();
        cache.insert(&m, &info(1, VersionStatus::Pending, false));
        assert_eq!(cache.get(&m, 1, false), None, "pending is not kept");
        cache.insert(&m, &info(1, VersionStatus::Ready, false));
        assert_eq!(cache.get(&m, 1, true), None, "no summary to answer with");
        assert!(cache.get(&m, 1, false).is_some());
        let whole = info(1, VersionStatus::Ready, true);
        cache.insert(&m, &whole);
        cache.insert(&m, &info(1, VersionStatus::Ready, false));
        assert_eq!(cache.get(&m, 1, true), Some(whole));
        assert_eq!(cache.get(&m, 1, false).and_then(|i| i.summary), None);
        cache.forget(&m);
        assert_eq!(cache.get(&m, 1, false), None);
    }
}
