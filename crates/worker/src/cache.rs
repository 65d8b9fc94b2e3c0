//! A small least-recently-used cache of decoded model versions, sized in
//! series, so forecasts do not decode the store's bytes every time.

use crate::state::LoadedModel;
use protocol::{ModelName, Version};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

struct Entry {
    model: Arc<LoadedModel>,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    /// By model then version, so a lookup does not clone the model's name.
    entries: HashMap<ModelName, HashMap<Version, Entry>>,
    clock: u64,
    weight: usize,
}

pub struct ModelCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl ModelCache {
    /// A cache holding up to `capacity` series in all.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, model: &ModelName, version: Version) -> Option<Arc<LoadedModel>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(model)?.get_mut(&version)?;
        entry.last_used = now;
        Some(entry.model.clone())
    }

    pub fn insert(&self, model: &ModelName, version: Version, loaded: Arc<LoadedModel>) {
        let weight = loaded.weight();
        if weight > self.capacity {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clock += 1;
        let now = inner.clock;
        let old = inner.entries.entry(model.clone()).or_default().insert(
            version,
            Entry {
                model: loaded,
                last_used: now,
            },
        );
        inner.weight += weight;
        if let Some(old) = old {
            inner.weight -= old.model.weight();
        }
        while inner.weight > self.capacity {
            let Some((name, version)) = inner
                .entries
                .iter()
                .flat_map(|(name, versions)| versions.iter().map(move |(v, e)| (name, *v, e)))
                .min_by_key(|(_, _, e)| e.last_used)
                .map(|(name, v, _)| (name.clone(), v))
            else {
                break;
            };
            let Some(versions) = inner.entries.get_mut(&name) else {
                break;
            };
            let gone = versions.remove(&version);
            if versions.is_empty() {
                inner.entries.remove(&name);
            }
            if let Some(gone) = gone {
                inner.weight -= gone.model.weight();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Arc<LoadedModel> {
        Arc::new(LoadedModel::new(vec![]))
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let cache = ModelCache::new(2);
        let m = ModelName::parse("m").unwrap();
        cache.insert(&m, 1, empty());
        cache.insert(&m, 2, empty());
        assert!(cache.get(&m, 1).is_some());
        cache.insert(&m, 3, empty());
        assert!(cache.get(&m, 1).is_some());
        assert!(cache.get(&m, 2).is_none());
        assert!(cache.get(&m, 3).is_some());
    }

    #[test]
    fn evicts_across_models() {
        let cache = ModelCache::new(2);
        let (a, b) = (
            ModelName::parse("a").unwrap(),
            ModelName::parse("b").unwrap(),
        );
        cache.insert(&a, 1, empty());
        cache.insert(&b, 1, empty());
        assert!(cache.get(&a, 1).is_some());
        cache.insert(&b, 2, empty());
        assert!(cache.get(&a, 1).is_some());
        assert!(cache.get(&b, 1).is_none());
        assert!(cache.get(&b, 2).is_some());
        assert!(cache.get(&a, 2).is_none());
    }
}
