//! A least-recently-used cache of decoded model versions, sized in series,
//! so forecasts do not decode the store's bytes every time. Entries are
//! shards (see `protocol::shard`): a version stored whole is its shard 0,
//! and a forecast of a few series of a huge version keeps only their shards.
//!
//! Every operation is O(1) (the `lru` crate's linked hash map), so the lock
//! is held for microseconds whatever the cache holds: inserting a large
//! model into a cache full of small ones evicts them one by one from the
//! cold end. Evicted models are dropped after the lock is released.

use crate::state::LoadedModel;
use lru::LruCache;
use protocol::{ModelName, Version};
use std::sync::{Arc, Mutex};

struct Inner {
    entries: LruCache<(ModelName, Version, u32), Arc<LoadedModel>>,
    /// Series held in all.
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
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                weight: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, model: &ModelName, version: Version, shard: u32) -> Option<Arc<LoadedModel>> {
        let key = (model.clone(), version, shard);
        self.lock().entries.get(&key).cloned()
    }

    pub fn insert(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
        loaded: Arc<LoadedModel>,
    ) {
        let weight = loaded.weight();
        if weight > self.capacity {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut inner = self.lock();
            if let Some(old) = inner.entries.put((model.clone(), version, shard), loaded) {
                inner.weight -= old.weight();
                evicted.push(old);
            }
            inner.weight += weight;
            while inner.weight > self.capacity {
                let Some((_, gone)) = inner.entries.pop_lru() else {
                    break;
                };
                inner.weight -= gone.weight();
                evicted.push(gone);
            }
        }
        drop(evicted);
    }

    /// Series held now.
    #[cfg(test)]
    fn weight(&self) -> usize {
        self.lock().weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Method, ModelSpec, SeriesData};

    fn empty() -> Arc<LoadedModel> {
        Arc::new(LoadedModel::new(vec![]))
    }

    /// A model of `n` series.
    fn of_series(n: usize) -> Arc<LoadedModel> {
        let y = SeriesData::parse(vec![1.0, 2.0, 3.0]).expect("series");
        let fitted = ModelSpec::new(Method::Naive, None).fit(&y).expect("fit");
        Arc::new(LoadedModel::new(
            (0..n).map(|i| (format!("s{i}"), fitted.clone())).collect(),
        ))
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let cache = ModelCache::new(2);
        let m = ModelName::parse("m").unwrap();
        cache.insert(&m, 1, 0, empty());
        cache.insert(&m, 2, 0, empty());
        assert!(cache.get(&m, 1, 0).is_some());
        cache.insert(&m, 3, 0, empty());
        assert!(cache.get(&m, 1, 0).is_some());
        assert!(cache.get(&m, 2, 0).is_none());
        assert!(cache.get(&m, 3, 0).is_some());
    }

    #[test]
    fn evicts_across_models() {
        let cache = ModelCache::new(2);
        let (a, b) = (
            ModelName::parse("a").unwrap(),
            ModelName::parse("b").unwrap(),
        );
        cache.insert(&a, 1, 0, empty());
        cache.insert(&b, 1, 0, empty());
        assert!(cache.get(&a, 1, 0).is_some());
        cache.insert(&b, 2, 0, empty());
        assert!(cache.get(&a, 1, 0).is_some());
        assert!(cache.get(&b, 1, 0).is_none());
        assert!(cache.get(&b, 2, 0).is_some());
        assert!(cache.get(&a, 2, 0).is_none());
    }

    #[test]
    fn evicts_by_series_count_from_the_cold_end() {
        let cache = ModelCache::new(10);
        let m = ModelName::parse("m").unwrap();
        for v in 1..=10 {
            cache.insert(&m, v, 0, of_series(1));
        }
        assert_eq!(cache.weight(), 10);
        // Version 1 becomes the most recently used.
        assert!(cache.get(&m, 1, 0).is_some());
        // Four series must make room: versions 2 to 5 (the coldest) go.
        cache.insert(&m, 11, 0, of_series(4));
        assert_eq!(cache.weight(), 10);
        for v in 2..=5 {
            assert!(cache.get(&m, v, 0).is_none(), "version {v} kept");
        }
        for v in [1, 6, 7, 8, 9, 10, 11] {
            assert!(cache.get(&m, v, 0).is_some(), "version {v} evicted");
        }
        // Replacing a version counts its new weight only.
        cache.insert(&m, 11, 0, of_series(2));
        assert_eq!(cache.weight(), 8);
        // A model larger than the whole cache is not kept, and evicts nothing.
        cache.insert(&m, 12, 0, of_series(11));
        assert!(cache.get(&m, 12, 0).is_none());
        assert_eq!(cache.weight(), 8);
        // A model as large as the cache evicts everything else.
        cache.insert(&m, 13, 0, of_series(10));
        assert_eq!(cache.weight(), 10);
        assert!(cache.get(&m, 13, 0).is_some());
        assert!(cache.get(&m, 1, 0).is_none());
    }
}
