//! A least-recently-used cache of decoded model versions, sized in bytes
//! (each entry weighs its estimated heap bytes, [`LoadedModel::heap_bytes`]),
//! so forecasts do not decode the store's bytes every time. Bytes, not
//! series: a series of one method or length can weigh ten times one of
//! another, and what must stay bounded is the worker's memory. Entries are
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

/// A cached model and its weight, computed once when it was inserted (so
/// eviction, under the lock, subtracts exactly what was added, in O(1)).
type Entry = (Arc<LoadedModel>, usize);

struct Inner {
    entries: LruCache<(ModelName, Version, u32), Entry>,
    /// Bytes held in all.
    weight: usize,
}

pub struct ModelCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl ModelCache {
    /// A cache holding up to `capacity` bytes in all.
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
        self.lock()
            .entries
            .get(&key)
            .map(|(loaded, _)| loaded.clone())
    }

    pub fn insert(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
        loaded: Arc<LoadedModel>,
    ) {
        // Outside the lock: weighing walks every series.
        let weight = loaded.heap_bytes();
        self.insert_weighing(model, version, shard, loaded, weight)
    }

    /// [`Self::insert`] of a model weighing `weight` bytes.
    fn insert_weighing(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
        loaded: Arc<LoadedModel>,
        weight: usize,
    ) {
        if weight > self.capacity {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut inner = self.lock();
            let key = (model.clone(), version, shard);
            if let Some((old, old_weight)) = inner.entries.put(key, (loaded, weight)) {
                inner.weight -= old_weight;
                evicted.push(old);
            }
            inner.weight += weight;
            while inner.weight > self.capacity {
                let Some((_, (gone, gone_weight))) = inner.entries.pop_lru() else {
                    break;
                };
                inner.weight -= gone_weight;
                evicted.push(gone);
            }
        }
        drop(evicted);
    }

    /// Bytes held now.
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

    /// Inserts a model said to weigh `weight` (the eviction order on round
    /// numbers).
    fn put(cache: &ModelCache, model: &ModelName, version: Version, weight: usize) {
        cache.insert_weighing(model, version, 0, empty(), weight);
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let cache = ModelCache::new(2);
        let m = ModelName::parse("m").unwrap();
        put(&cache, &m, 1, 1);
        put(&cache, &m, 2, 1);
        assert!(cache.get(&m, 1, 0).is_some());
        put(&cache, &m, 3, 1);
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
        put(&cache, &a, 1, 1);
        put(&cache, &b, 1, 1);
        assert!(cache.get(&a, 1, 0).is_some());
        put(&cache, &b, 2, 1);
        assert!(cache.get(&a, 1, 0).is_some());
        assert!(cache.get(&b, 1, 0).is_none());
        assert!(cache.get(&b, 2, 0).is_some());
        assert!(cache.get(&a, 2, 0).is_none());
    }

    #[test]
    fn evicts_by_weight_from_the_cold_end() {
        let cache = ModelCache::new(10);
        let m = ModelName::parse("m").unwrap();
        for v in 1..=10 {
            put(&cache, &m, v, 1);
        }
        assert_eq!(cache.weight(), 10);
        // Version 1 becomes the most recently used.
        assert!(cache.get(&m, 1, 0).is_some());
        // Four units must make room: versions 2 to 5 (the coldest) go.
        put(&cache, &m, 11, 4);
        assert_eq!(cache.weight(), 10);
        for v in 2..=5 {
            assert!(cache.get(&m, v, 0).is_none(), "version {v} kept");
        }
        for v in [1, 6, 7, 8, 9, 10, 11] {
            assert!(cache.get(&m, v, 0).is_some(), "version {v} evicted");
        }
        // Replacing a version counts its new weight only.
        put(&cache, &m, 11, 2);
        assert_eq!(cache.weight(), 8);
        // A model larger than the whole cache is not kept, and evicts nothing.
        put(&cache, &m, 12, 11);
        assert!(cache.get(&m, 12, 0).is_none());
        assert_eq!(cache.weight(), 8);
        // A model as large as the cache evicts everything else.
        put(&cache, &m, 13, 10);
        assert_eq!(cache.weight(), 10);
        assert!(cache.get(&m, 13, 0).is_some());
        assert!(cache.get(&m, 1, 0).is_none());
    }

    /// Models are weighed by their estimated heap bytes: a cache of bytes
    /// keeps many small models, or few large ones.
    #[test]
    fn weighs_models_by_their_bytes() {
        let (small, large) = (of_series(1), of_series(1000));
        let (s, l) = (small.heap_bytes(), large.heap_bytes());
        assert!(l > 100 * s, "1000 series weigh {l} bytes, one {s}");
        let cache = ModelCache::new(l + 2 * s);
        let m = ModelName::parse("m").unwrap();
        cache.insert(&m, 1, 0, small.clone());
        cache.insert(&m, 2, 0, small.clone());
        assert_eq!(cache.weight(), 2 * s);
        cache.insert(&m, 3, 0, large.clone());
        assert_eq!(cache.weight(), l + 2 * s);
        // One more small model: the coldest goes, and only it.
        cache.insert(&m, 4, 0, small);
        assert!(cache.get(&m, 1, 0).is_none());
        for v in 2..=4 {
            assert!(cache.get(&m, v, 0).is_some(), "version {v} evicted");
        }
        // A second large model evicts the first (and the small ones colder
        // than it), never itself.
        cache.insert(&m, 5, 0, large);
        assert!(cache.get(&m, 5, 0).is_some());
        assert!(cache.get(&m, 3, 0).is_none());
        assert!(cache.weight() <= l + 2 * s);
    }
}
