//! Sharded fits: a large fit is split into shards, each a [`FitJob`] of its
//! own that any worker may take; the version is ready once every shard is
//! stored.
//!
//! A series belongs to shard `fnv1a(id) % count` ([`shard_of`]): the index
//! from series id to shard is this function, fixed for ever, so a forecast
//! of some series knows which shards to read without a lookup table, and the
//! fit and the forecast agree without sharing anything but the count.

use crate::FitJob;
use serde::{Deserialize, Serialize};

/// Which shard of its version a fit job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based.
    pub index: u32,
    /// Shards of the version in all (at least 2: a fit of one shard is an
    /// ordinary fit and carries no [`Shard`]).
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard {} of {}", self.index + 1, self.count)
    }
}

/// Most series in one shard, by default.
pub const DEFAULT_SHARD_SERIES: usize = 5_000;
/// Most values (points) in one shard, by default.
pub const DEFAULT_SHARD_POINTS: usize = 1_000_000;

/// How large a shard may grow: a fit is split into as many shards as it
/// takes for each to hold about `series` series and `points` values at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSizes {
    pub series: usize,
    pub points: usize,
}

impl Default for ShardSizes {
    fn default() -> Self {
        Self {
            series: DEFAULT_SHARD_SERIES,
            points: DEFAULT_SHARD_POINTS,
        }
    }
}

impl ShardSizes {
    /// Shards for `n_series` series of `n_points` values in all (1: no
    /// sharding).
    pub fn count(&self, n_series: usize, n_points: usize) -> u32 {
        let by_series = n_series.div_ceil(self.series.max(1));
        let by_points = n_points.div_ceil(self.points.max(1));
        u32::try_from(by_series.max(by_points).max(1)).unwrap_or(u32::MAX)
    }
}

/// The shard of series `id` in a version of `count` shards: FNV-1a (64
/// bits) of the id's bytes, modulo `count`. Never change it: stored
/// versions are read with it.
pub fn shard_of(id: &str, count: u32) -> u32 {
    if count <= 1 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(count)) as u32
}

/// Splits `job` into its shards (each a job whose [`FitJob::shard`] says
/// which), or returns it whole when it fits in one shard or adds
/// observations to a version (those are filtered forward as one job). The
/// series keep their order within a shard.
pub fn split(job: FitJob, sizes: &ShardSizes) -> Vec<FitJob> {
    let points: usize = job.series.iter().map(|s| s.values.len()).sum();
    let count = sizes.count(job.series.len(), points);
    if count <= 1 || job.base.is_some() {
        return vec![job];
    }
    let FitJob {
        model,
        version,
        spec,
        series,
        base,
        shard: _,
    } = job;
    let mut parts: Vec<Vec<_>> = (0..count).map(|_| Vec::new()).collect();
    for s in series {
        parts[shard_of(&s.id, count) as usize].push(s);
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(index, series)| FitJob {
            model: model.clone(),
            version,
            spec: spec.clone(),
            series,
            base,
            shard: Some(Shard {
                index: index as u32,
                count,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelName, NamedSeries};
    use engine::{Method, ModelSpec, SeriesData};

    fn job(n: usize, len: usize) -> FitJob {
        FitJob {
            model: ModelName::parse("m").unwrap(),
            version: 3,
            spec: ModelSpec::new(Method::Naive, None),
            series: (0..n)
                .map(|i| NamedSeries {
                    id: format!("s{i}"),
                    values: SeriesData::parse(vec![i as f64; len]).unwrap(),
                    calendar: None,
                    index: None,
                })
                .collect(),
            base: None,
            shard: None,
        }
    }

    #[test]
    fn small_fits_stay_whole() {
        let sizes = ShardSizes {
            series: 10,
            points: 100,
        };
        let whole = job(10, 10);
        assert_eq!(split(whole.clone(), &sizes), vec![whole]);
    }

    #[test]
    fn large_fits_split_by_series_and_by_points_and_lose_nothing() {
        let sizes = ShardSizes {
            series: 100,
            points: 1_000,
        };
        // By series: 1,000 series of 1 value -> 10 shards.
        let shards = split(job(1_000, 1), &sizes);
        assert_eq!(shards.len(), 10);
        // By points: 50 series of 100 values -> 5 shards.
        assert_eq!(split(job(50, 100), &sizes).len(), 5);
        let mut seen = std::collections::HashSet::new();
        for (i, s) in shards.iter().enumerate() {
            let shard = s.shard.expect("a shard");
            assert_eq!((shard.index as usize, shard.count), (i, 10));
            assert_eq!(s.version, 3);
            // Roughly even, and each series where `shard_of` says.
            assert!((50..=150).contains(&s.series.len()), "{}", s.series.len());
            for series in &s.series {
                assert_eq!(shard_of(&series.id, 10), shard.index);
                assert!(seen.insert(series.id.clone()), "{} twice", series.id);
            }
        }
        assert_eq!(seen.len(), 1_000);
    }

    #[test]
    fn observations_are_never_split() {
        let sizes = ShardSizes {
            series: 1,
            points: 1,
        };
        let mut j = job(5, 5);
        j.base = Some(1);
        assert_eq!(split(j, &sizes).len(), 1);
    }

    #[test]
    fn the_shard_of_an_id_is_fixed() {
        // Stored versions depend on these values: they must never change.
        // FNV-1a 64 test vectors (from its published definition).
        assert_eq!(shard_of("anything", 1), 0);
        for (id, fnv) in [
            ("", 0xcbf2_9ce4_8422_2325u64),
            ("a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", 0x8594_4171_f739_67e8),
        ] {
            for count in [2u32, 7, 1000] {
                assert_eq!(u64::from(shard_of(id, count)), fnv % u64::from(count));
            }
        }
    }
}
