//! Validated inputs: types that cannot hold values the models cannot use.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest series the engine accepts.
pub const MAX_SERIES_LEN: usize = 100_000;
/// Longest horizon the engine forecasts.
pub const MAX_HORIZON: usize = 10_000;

/// Why a raw input was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SeriesError {
    #[error("series is empty")]
    Empty,
    #[error("series has {0} points; at most {MAX_SERIES_LEN} are accepted")]
    TooLong(usize),
    #[error("value at index {index} is not a finite number ({value})")]
    NotFinite { index: usize, value: f64 },
    #[error("horizon must be between 1 and {MAX_HORIZON}, got {0}")]
    BadHorizon(i64),
    #[error("level must be strictly between 0 and 100, got {0}")]
    BadLevel(f64),
}

/// A non-empty series of finite values, at most [`MAX_SERIES_LEN`] long.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesData(Vec<f64>);

impl SeriesData {
    pub fn parse(values: Vec<f64>) -> Result<Self, SeriesError> {
        if values.is_empty() {
            return Err(SeriesError::Empty);
        }
        if values.len() > MAX_SERIES_LEN {
            return Err(SeriesError::TooLong(values.len()));
        }
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(SeriesError::NotFinite { index, value });
        }
        Ok(Self(values))
    }

    pub fn values(&self) -> &[f64] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

impl<'de> Deserialize<'de> for SeriesData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<f64>::deserialize(d)?;
        Self::parse(raw).map_err(serde::de::Error::custom)
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
    fn refuses_bad_horizon_and_level() {
        assert!(Horizon::parse(0).is_err());
        assert!(Horizon::parse(MAX_HORIZON as i64 + 1).is_err());
        assert_eq!(Horizon::parse(3).map(Horizon::get), Ok(3));
        assert!(Level::parse(100.0).is_err());
        assert!(Level::parse(0.0).is_err());
        assert!(Level::parse(95.0).is_ok());
    }
}
