//! Validated inputs: types that cannot hold values the models cannot use.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest series the engine accepts.
pub const MAX_SERIES_LEN: usize = 100_000;
/// Longest horizon the engine forecasts.
pub const MAX_HORIZON: usize = 10_000;
/// Fewest values a model is fitted on through the service: a fit's series
/// and every backtest window's history.
pub const MIN_TRAIN_LEN: usize = 3;

/// Why a raw input was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SeriesError {
    #[error("series is empty")]
    Empty,
    #[error("series has {0} points; at most {MAX_SERIES_LEN} are accepted")]
    TooLong(usize),
    #[error("value at index {index} is not a finite number ({value})")]
    NotFinite { index: usize, value: f64 },
    #[error("{missing} of {len} values are missing; at most half may be")]
    MostlyMissing { missing: usize, len: usize },
    #[error("horizon must be between 1 and {MAX_HORIZON}, got {0}")]
    BadHorizon(i64),
    #[error("level must be strictly between 0 and 100, got {0}")]
    BadLevel(f64),
}

/// A non-empty series, at most [`MAX_SERIES_LEN`] long, of finite values
/// and, where the series has gaps, missing ones (at most half of them; new
/// observations, [`SeriesData::appended`], are checked with their series).
/// Missing values are kept as NaN inside and written as `null` on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    values: Vec<f64>,
    missing: usize,
}

impl SeriesData {
    /// A series without gaps.
    pub fn parse(values: Vec<f64>) -> Result<Self, SeriesError> {
        Self::check_len(values.len())?;
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(SeriesError::NotFinite { index, value });
        }
        Ok(Self { values, missing: 0 })
    }

    /// A series with gaps: `None` is a missing value. At most half of the
    /// values may be missing.
    pub fn with_gaps(values: Vec<Option<f64>>) -> Result<Self, SeriesError> {
        let series = Self::appended(values)?;
        series.check_missing()?;
        Ok(series)
    }

    /// New values that follow a series already held (new observations): any
    /// of them may be missing, since the rule on missing values is the whole
    /// series' ([`crate::FittedModel::extend`] applies it).
    pub fn appended(values: Vec<Option<f64>>) -> Result<Self, SeriesError> {
        Self::check_len(values.len())?;
        if let Some((index, value)) = values
            .iter()
            .enumerate()
            .find_map(|(i, v)| v.filter(|x| !x.is_finite()).map(|x| (i, x)))
        {
            return Err(SeriesError::NotFinite { index, value });
        }
        // A vector of its own, not `into_iter().collect()`: that would reuse
        // the options' allocation, twice the size the values need, for as
        // long as the series lives (every decoded model's training series).
        let mut nan_gaps = Vec::with_capacity(values.len());
        nan_gaps.extend(values.iter().map(|v| v.unwrap_or(f64::NAN)));
        let missing = values.iter().filter(|v| v.is_none()).count();
        Ok(Self {
            values: nan_gaps,
            missing,
        })
    }

    /// A series with gaps written as NaN, kept in the vector it came in (no
    /// copy: large request bodies are parsed straight into it). Infinite
    /// values are refused; at most half of the values may be missing.
    pub fn with_nan_gaps(values: Vec<f64>) -> Result<Self, SeriesError> {
        Self::check_len(values.len())?;
        let mut missing = 0;
        for (index, &value) in values.iter().enumerate() {
            if value.is_nan() {
                missing += 1;
            } else if value.is_infinite() {
                return Err(SeriesError::NotFinite { index, value });
            }
        }
        let series = Self { values, missing };
        series.check_missing()?;
        Ok(series)
    }

    /// Refuses a series with more than half of its values missing.
    pub(crate) fn check_missing(&self) -> Result<(), SeriesError> {
        Self::missing_allowed(self.missing, self.len())
    }

    /// The rule on missing values: `missing` of `len` values may be missing
    /// when that is at most half of them (and not all).
    pub fn missing_allowed(missing: usize, len: usize) -> Result<(), SeriesError> {
        if missing * 2 > len || missing == len {
            return Err(SeriesError::MostlyMissing { missing, len });
        }
        Ok(())
    }

    fn check_len(len: usize) -> Result<(), SeriesError> {
        if len == 0 {
            return Err(SeriesError::Empty);
        }
        if len > MAX_SERIES_LEN {
            return Err(SeriesError::TooLong(len));
        }
        Ok(())
    }

    /// The values, NaN where one is missing.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// How many values are missing.
    pub fn n_missing(&self) -> usize {
        self.missing
    }

    /// The values with every gap filled by linear interpolation between its
    /// neighbours (a gap at either end takes the nearest observed value).
    pub fn filled(&self) -> Vec<f64> {
        let mut out = self.values.clone();
        if self.missing == 0 {
            return out;
        }
        let observed: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_finite()).collect();
        for w in observed.windows(2) {
            let (a, b) = (w[0], w[1]);
            for i in a + 1..b {
                let t = (i - a) as f64 / (b - a) as f64;
                out[i] = out[a] + t * (out[b] - out[a]);
            }
        }
        if let (Some(&first), Some(&last)) = (observed.first(), observed.last()) {
            let (head, tail) = (out[first], out[last]);
            out[..first].fill(head);
            out[last + 1..].fill(tail);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Serialize for SeriesData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.values.iter().map(|v| v.is_finite().then_some(*v)))
    }
}

impl<'de> Deserialize<'de> for SeriesData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // New observations travel as a `SeriesData` too, so the rule on
        // missing values is not checked here: the fit and the filter check
        // the series they are given.
        let raw = Vec::<Option<f64>>::deserialize(d)?;
        Self::appended(raw).map_err(serde::de::Error::custom)
    }
}

/// Number of steps to forecast: 1 to [`MAX_HORIZON`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Horizon(usize);

impl Horizon {
    pub fn parse(steps: i64) -> Result<Self, SeriesError> {
        if steps < 1 || steps > MAX_HORIZON as i64 {
            return Err(SeriesError::BadHorizon(steps));
        }
        Ok(Self(steps as usize))
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl<'de> Deserialize<'de> for Horizon {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Coverage of a prediction interval in percent, strictly between 0 and 100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Level(f64);

impl Level {
    pub fn parse(percent: f64) -> Result<Self, SeriesError> {
        if !(percent > 0.0 && percent < 100.0) {
            return Err(SeriesError::BadLevel(percent));
        }
        Ok(Self(percent))
    }

    pub fn percent(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_series() {
        assert_eq!(SeriesData::parse(vec![]), Err(SeriesError::Empty));
        assert!(matches!(
            SeriesData::parse(vec![1.0, f64::NAN]),
            Err(SeriesError::NotFinite { index: 1, .. })
        ));
        assert!(SeriesData::parse(vec![1.0]).is_ok());
    }

    #[test]
    fn gaps_are_filled_and_round_trip() {
        let y =
            SeriesData::with_gaps(vec![None, Some(1.0), None, Some(3.0), Some(4.0), None]).unwrap();
        assert_eq!(y.n_missing(), 3);
        assert_eq!(y.filled(), vec![1.0, 1.0, 2.0, 3.0, 4.0, 4.0]);
        let json = serde_json::to_string(&y).unwrap();
        assert_eq!(json, "[null,1.0,null,3.0,4.0,null]");
        let back: SeriesData = serde_json::from_str(&json).unwrap();
        assert_eq!(back.n_missing(), 3);
        assert!(matches!(
            SeriesData::with_gaps(vec![None, None, Some(1.0)]),
            Err(SeriesError::MostlyMissing { missing: 2, len: 3 })
        ));
        assert!(matches!(
            SeriesData::with_gaps(vec![Some(1.0), Some(f64::NAN), Some(2.0)]),
            Err(SeriesError::NotFinite { index: 1, .. })
        ));
    }

    #[test]
    fn nan_gaps_keep_their_vector() {
        let values = vec![f64::NAN, 1.0, 2.0];
        let at = values.as_ptr();
        let y = SeriesData::with_nan_gaps(values).unwrap();
        assert_eq!((y.n_missing(), y.values().as_ptr()), (1, at));
        assert_eq!(y.filled(), vec![1.0, 1.0, 2.0]);
        assert!(matches!(
            SeriesData::with_nan_gaps(vec![1.0, f64::INFINITY, 2.0]),
            Err(SeriesError::NotFinite { index: 1, .. })
        ));
        assert!(matches!(
            SeriesData::with_nan_gaps(vec![f64::NAN, f64::NAN, 1.0]),
            Err(SeriesError::MostlyMissing { missing: 2, len: 3 })
        ));
    }

    #[test]
    fn refuses_bad_horizon_and_level() {
        assert!(Horizon::parse(0).is_err());
        assert!(Horizon::parse(MAX_HORIZON as i64 + 1).is_err());
        assert_eq!(Horizon::parse(3).map(Horizon::get), Ok(3));
        assert!(Level::parse(100.0).is_err());
        assert!(Level::parse(0.0).is_err());
        assert!(Level::parse(95.0).is_ok());
    }
}
