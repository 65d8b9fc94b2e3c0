//! A small least-recently-used cache of decoded model versions, sized in
//! series, so forecasts do not decode the store's bytes every time.

use crate::state::LoadedModel;
use protocol::{ModelName, Version};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Key = (ModelName, Version);

struct Entry {
    model: Arc<LoadedModel>,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
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
        let entry = inner.entries.get_mut(&(model.clone(), version))?;
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
        let old = inner.entries.insert(
            (model.clone(), version),
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
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
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
}
