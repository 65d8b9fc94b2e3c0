//! Future timestamps for forecast answers: each series fitted with
//! timestamps keeps its calendar (frequency and last timestamp) in its
//! shard's fit summary, a series fitted on integer positions (a table's
//! `ds`) its last position and step; a forecast's steps are labelled from
//! them.
//!
//! A forecast reads the calendars of the shards that hold the series it
//! asks for, never the version's whole summary (which grows with its
//! series: a million entries for a million-series model), and keeps them in
//! a [`CalendarCache`] shared by every request. A ready version never
//! changes, so what is cached never goes stale; the cache is bounded by an
//! estimate of its memory.

use futures_util::{StreamExt, TryStreamExt};
use lru::LruCache;
use protocol::calendar::{IndexAxis, SeriesCalendar};
use protocol::shard::shard_of;
use protocol::{FitSummary, ModelName, Version};
use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use store::{ModelStore, StoreError, VersionInfo};

/// The time axes of one shard's series, by series id (series fitted on
/// plain values have none).
type ShardCalendars = HashMap<String, Axis>;

/// Where a series' time axis ends.
#[derive(Debug, Clone, Copy)]
enum Axis {
    Calendar(SeriesCalendar),
    Index(IndexAxis),
}

/// The labels of a forecast's steps: timestamps as ISO 8601 text, or the
/// integer positions that continue a series fitted on integers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Labels {
    Dates(Vec<String>),
    Index(Vec<i64>),
}

impl Labels {
    /// Every label as text (for table cells).
    pub fn into_text(self) -> Vec<String> {
        match self {
            Labels::Dates(dates) => dates,
            Labels::Index(index) => index.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The calendars of the series of a version that a forecast asked for (by
/// shard: those of the shards read), and the method the version was fitted
/// with (the forecast columns' name in table downloads).
#[derive(Debug, Default)]
pub struct Calendars {
    /// By shard index; `None` for a shard that was not read.
    shards: Vec<Option<Arc<ShardCalendars>>>,
    method: Option<engine::Method>,
}

impl Calendars {
    /// The method the version was fitted with, once ready.
    pub fn method(&self) -> Option<engine::Method> {
        self.method
    }

    /// The labels of the `horizon` steps after series `id`'s last
    /// observation; `None` for a series fitted on plain values.
    pub fn future(&self, id: &str, horizon: usize) -> Option<Labels> {
        let count = u32::try_from(self.shards.len()).ok()?;
        let shard = self.shards.get(shard_of(id, count) as usize)?.as_ref()?;
        let labels = match shard.get(id)? {
            Axis::Calendar(calendar) => Labels::Dates(
                calendar
                    .future(horizon)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            Axis::Index(axis) => Labels::Index(axis.future(horizon)),
        };
        // No labels (a calendar at the end of time, or no steps): none
        // rather than an empty list, which would fit both shapes of the schema.
        (horizon > 0 && labels != Labels::Dates(Vec::new())).then_some(labels)
    }
}

/// The calendars in one shard's fit summary.
fn calendars_of(summary: &FitSummary) -> ShardCalendars {
    summary
        .series
        .iter()
        .filter_map(|s| {
            let axis = match (s.calendar, s.index) {
                (Some(calendar), _) => Axis::Calendar(calendar),
                (None, Some(index)) => Axis::Index(index),
                (None, None) => return None,
            };
            Some((s.id.clone(), axis))
        })
        .collect()
}

/// Bytes of time axes [`CalendarCache`] keeps by default, at most (an
/// estimate: some 90 bytes per series with dates or integer positions and
/// an id of 7 characters, so about 3 million series; series fitted on
/// plain values take none).
pub const CALENDAR_CACHE_BYTES: usize = 256 << 20;

/// Shard counts of versions remembered.
const SHARD_COUNTS: usize = 4096;

/// Shard summaries read from the store at once by one forecast: a download
/// of every series reads them all, and must leave the store's connections
/// to other requests.
const READS_AT_ONCE: usize = 4;

/// A version: its model, number and registration time (a version number
/// seen again after its model was deleted, or a store was reset under a
/// running gateway, is another version).
type VersionKey = (ModelName, Version, SystemTime);

/// The shard calendars of ready versions, least recently used first out,
/// bounded by their estimated bytes.
pub struct CalendarCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Each shard's calendars, with their estimated bytes.
    shards: LruCache<(VersionKey, u32), (Arc<ShardCalendars>, usize)>,
    /// Bytes held in all.
    weight: usize,
    /// How many shards each version is stored in.
    counts: LruCache<VersionKey, u32>,
}

/// Estimated bytes of one shard's calendars: the map's slots (an entry and
/// a control byte each), the ids' text and the map itself.
fn weight(calendars: &ShardCalendars) -> usize {
    let slot = std::mem::size_of::<(String, Axis)>() + 1;
    let ids: usize = calendars.keys().map(String::len).sum();
    calendars.capacity() * slot + ids + 128
}

impl CalendarCache {
    /// A cache of at most `capacity` bytes of calendars (estimated).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                shards: LruCache::unbounded(),
                weight: 0,
                counts: LruCache::new(NonZeroUsize::new(SHARD_COUNTS).unwrap_or(NonZeroUsize::MIN)),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The calendars a forecast of the series `ids` (every series when
    /// `None`) of the ready version `info` needs: those of the shards that
    /// hold them, from the cache or else from the store (and then cached).
    pub async fn calendars(
        &self,
        store: &dyn ModelStore,
        model: &ModelName,
        info: &VersionInfo,
        ids: Option<&[String]>,
    ) -> Result<Calendars, StoreError> {
        let key: VersionKey = (model.clone(), info.version, info.created_at);
        let cached_count = self.lock().counts.get(&key).copied();
        let count = match cached_count {
            Some(n) => n,
            None => {
                let n = store.shard_count(model, info.version).await?.max(1);
                self.lock().counts.put(key.clone(), n);
                n
            }
        };
        let wanted: BTreeSet<u32> = match ids {
            Some(ids) => ids.iter().map(|id| shard_of(id, count)).collect(),
            None => (0..count).collect(),
        };
        let mut shards: Vec<Option<Arc<ShardCalendars>>> = vec![None; count as usize];
        let mut missing = Vec::new();
        {
            let mut inner = self.lock();
            for &shard in &wanted {
                match inner.shards.get(&(key.clone(), shard)) {
                    Some((calendars, _)) => shards[shard as usize] = Some(calendars.clone()),
                    None => missing.push(shard),
                }
            }
        }
        let version = info.version;
        let read: Vec<(u32, ShardCalendars)> = futures_util::stream::iter(missing)
            .map(|shard| async move {
                let summary = store.shard_summary(model, version, shard).await?;
                Ok::<_, StoreError>((shard, calendars_of(&summary)))
            })
            .buffer_unordered(READS_AT_ONCE)
            .try_collect()
            .await?;
        for (shard, calendars) in read {
            let calendars = Arc::new(calendars);
            self.insert((key.clone(), shard), calendars.clone());
            shards[shard as usize] = Some(calendars);
        }
        Ok(Calendars {
            shards,
            method: info.method,
        })
    }

    fn insert(&self, key: (VersionKey, u32), calendars: Arc<ShardCalendars>) {
        let bytes = weight(&calendars);
        if bytes > self.capacity {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut inner = self.lock();
            if let Some(old) = inner.shards.put(key, (calendars, bytes)) {
                inner.weight -= old.1;
                evicted.push(old);
            }
            inner.weight += bytes;
            while inner.weight > self.capacity {
                let Some((_, gone)) = inner.shards.pop_lru() else {
                    break;
                };
                inner.weight -= gone.1;
                evicted.push(gone);
            }
        }
        // Freed after the lock is released.
        drop(evicted);
    }

    /// Shards held now, and their estimated bytes.
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.shards.len(), inner.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::calendar::{Freq, Timestamp};
    use protocol::shard::Shard;
    use protocol::SeriesFit;
    use std::time::Duration;
    use store::testing::Recording;
    use store::{SqliteStore, VersionStatus};

    fn fit(id: &str, calendar: Option<SeriesCalendar>) -> SeriesFit {
        SeriesFit {
            id: id.to_string(),
            chosen: "Naive".to_string(),
            fallback: None,
            n_obs: 3,
            n_missing: 0,
            calendar,
            index: None,
        }
    }

    fn monthly(last: &str) -> SeriesCalendar {
        SeriesCalendar {
            freq: Freq::parse("MS").unwrap(),
            last: Timestamp::parse(last).unwrap(),
        }
    }

    #[test]
    fn future_steps_follow_each_series_calendar() {
        let summary = FitSummary {
            model: ModelName::default_model(),
            version: 1,
            method: engine::Method::Naive,
            series: vec![
                fit("a", Some(monthly("2024-11-01"))),
                fit("b", None),
                SeriesFit {
                    index: Some(IndexAxis { last: 178, step: 2 }),
                    ..fit("c", None)
                },
            ],
            base: None,
        };
        let calendars = Calendars {
            shards: vec![Some(Arc::new(calendars_of(&summary)))],
            method: Some(summary.method),
        };
        assert_eq!(
            calendars.future("a", 3).unwrap().into_text(),
            ["2024-12-01", "2025-01-01", "2025-02-01"]
        );
        assert_eq!(calendars.future("b", 3), None);
        let c = calendars.future("c", 3).unwrap();
        assert_eq!(c, Labels::Index(vec![180, 182, 184]));
        assert_eq!(serde_json::to_string(&c).unwrap(), "[180,182,184]");
        assert_eq!(c.into_text(), ["180", "182", "184"]);
        assert_eq!(Calendars::default().future("a", 3), None);
    }

    /// The shards whose summaries were read since the last call; a read
    /// of a version's whole summary fails the test.
    fn take(store: &Recording<SqliteStore>) -> Vec<u32> {
        let mut shards = Vec::new();
        for read in store.take() {
            match read.strip_prefix("summary ") {
                Some(shard) => shards.push(shard.parse().unwrap()),
                None => panic!("the calendars read more than shard summaries: {read}"),
            }
        }
        shards.sort_unstable();
        shards
    }

    /// Series `s{i}` of a version of 3 shards, dated monthly up to month
    /// `i % 12 + 1` of 2024 (series 5 has no dates).
    async fn sharded(store: &SqliteStore, model: &ModelName) -> (Version, Vec<Vec<String>>) {
        let v = store
            .register_pending(model, 30, None)
            .await
            .unwrap()
            .version();
        let mut by_shard = vec![Vec::new(); 3];
        for i in 0..30 {
            let id = format!("s{i}");
            by_shard[shard_of(&id, 3) as usize].push(id);
        }
        for (index, ids) in by_shard.iter().enumerate() {
            let summary = FitSummary {
                model: model.clone(),
                version: v,
                method: engine::Method::Naive,
                series: ids
                    .iter()
                    .map(|id| {
                        let i: usize = id[1..].parse().unwrap();
                        let last = format!("2024-{:02}-01", i % 12 + 1);
                        fit(id, (i != 5).then(|| monthly(&last)))
                    })
                    .collect(),
                base: None,
            };
            let shard = Shard {
                index: index as u32,
                count: 3,
            };
            store
                .complete_shard(model, v, shard, b"state", &summary)
                .await
                .unwrap();
        }
        (v, by_shard)
    }

    #[tokio::test]
    async fn a_forecast_reads_the_calendars_of_its_series_shards_only_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Recording::new(SqliteStore::open(dir.path()).await.unwrap());
        let model = ModelName::parse("dated").unwrap();
        let (v, by_shard) = sharded(&store.inner, &model).await;
        let info = store.wait_status(&model, v, Duration::ZERO).await.unwrap();
        assert_eq!(info.status, VersionStatus::Ready);
        assert_eq!(info.summary, None);
        let cache = CalendarCache::new(CALENDAR_CACHE_BYTES);

        // Two series of shard 1 and one of shard 2: shard 0 is not read.
        let ids = vec![
            by_shard[1][0].clone(),
            by_shard[2][0].clone(),
            by_shard[1][1].clone(),
        ];
        let calendars = cache
            .calendars(&store, &model, &info, Some(&ids))
            .await
            .unwrap();
        assert_eq!(take(&store), [1, 2]);
        assert_eq!(calendars.method(), Some(engine::Method::Naive));
        for id in &ids {
            let i: usize = id[1..].parse().unwrap();
            let next = if i % 12 == 11 {
                "2025-01-01".to_string()
            } else {
                format!("2024-{:02}-01", i % 12 + 2)
            };
            let ds = calendars.future(id, 2).unwrap().into_text();
            assert_eq!(ds[0], next, "{id}");
        }
        // Series of a shard that was not read have no calendar here.
        assert_eq!(calendars.future(&by_shard[0][0], 1), None);

        // Again, and a series of shard 0: only shard 0 is read.
        let more = vec![ids[0].clone(), by_shard[0][0].clone()];
        let calendars = cache
            .calendars(&store, &model, &info, Some(&more))
            .await
            .unwrap();
        assert_eq!(take(&store), [0]);
        assert!(calendars.future(&by_shard[0][0], 1).is_some());
        // Every series: the rest is cached.
        let all = cache.calendars(&store, &model, &info, None).await.unwrap();
        assert_eq!(take(&store), Vec::<u32>::new());
        assert!((0..30)
            .filter(|i| *i != 5)
            .all(|i| all.future(&format!("s{i}"), 1).is_some()));
        assert_eq!(all.future("s5", 1), None, "no dates, no calendar");
        assert_eq!(store.shard_counts(), 1, "the shard count is cached");
        assert_eq!(cache.held().0, 3);

        // A version stored whole is its shard 0, read from its own summary.
        let whole = store
            .inner
            .register_pending(&model, 1, None)
            .await
            .unwrap()
            .version();
        let summary = FitSummary {
            model: model.clone(),
            version: whole,
            method: engine::Method::Naive,
            series: vec![fit("w", Some(monthly("2024-01-01")))],
            base: None,
        };
        store
            .inner
            .complete(&model, whole, b"state", &summary)
            .await
            .unwrap();
        let info = store
            .wait_status(&model, whole, Duration::ZERO)
            .await
            .unwrap();
        let calendars = cache
            .calendars(&store, &model, &info, Some(&["w".to_string()]))
            .await
            .unwrap();
        assert_eq!(take(&store), [0]);
        assert_eq!(
            calendars.future("w", 1).unwrap().into_text(),
            ["2024-02-01"]
        );
    }

    #[tokio::test]
    async fn the_cache_keeps_within_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Recording::new(SqliteStore::open(dir.path()).await.unwrap());
        let model = ModelName::parse("small").unwrap();
        let (v, _) = sharded(&store.inner, &model).await;
        let info = store.wait_status(&model, v, Duration::ZERO).await.unwrap();
        let one = CalendarCache::new(usize::MAX);
        one.calendars(&store, &model, &info, None).await.unwrap();
        let (n, bytes) = one.held();
        assert_eq!(n, 3);
        take(&store);
        // One byte short of the three shards: one is evicted.
        let cache = CalendarCache::new(bytes - 1);
        let all = cache.calendars(&store, &model, &info, None).await.unwrap();
        assert_eq!(take(&store), [0, 1, 2]);
        // The answer has every calendar even though the cache keeps two.
        assert!(all.future("s0", 1).is_some() && all.future("s29", 1).is_some());
        let (n, held) = cache.held();
        assert_eq!(n, 2);
        assert!(held < bytes);
        cache.calendars(&store, &model, &info, None).await.unwrap();
        assert_eq!(take(&store).len(), 1, "one shard was evicted");
    }
}
