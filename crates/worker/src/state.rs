//! The fitted state of one model version: every series' fitted model, in the
//! order they were fitted, encoded with postcard for the store.

use engine::FittedModel;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use thiserror::Error;

/// Layout version of [`Stored`]; bump on any change.
const STATE_FORMAT: u32 = 1;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("the stored model cannot be read ({0}); fit the model again")]
    Decode(String),
    #[error(
        "the stored model has layout {found}, this build reads {expected}; fit the model again"
    )]
    Format { found: u32, expected: u32 },
    #[error("{0}")]
    Encode(String),
}

impl StateError {
    /// The state was written by a newer build than this one.
    pub fn is_newer(&self) -> bool {
        matches!(self, StateError::Format { found, expected } if found > expected)
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    engine_format: u32,
    series: Vec<(String, FittedModel)>,
}

/// A decoded model version with an index by series id.
#[derive(Debug)]
pub struct LoadedModel {
    series: Vec<(String, FittedModel)>,
    index: HashMap<String, usize>,
}

impl LoadedModel {
    pub fn new(series: Vec<(String, FittedModel)>) -> Self {
        let index = series
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.clone(), i))
            .collect();
        Self { series, index }
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The `i`-th series; `i` must be below [`Self::len`].
    pub fn get(&self, i: usize) -> (&str, &FittedModel) {
        let (id, fitted) = &self.series[i];
        (id, fitted)
    }

    pub fn encode(&self) -> Result<Vec<u8>, StateError> {
        #[derive(Serialize)]
        struct StoredRef<'a> {
            format: u32,
            engine_format: u32,
            series: &'a [(String, FittedModel)],
        }
        postcard::to_stdvec(&StoredRef {
            format: STATE_FORMAT,
            engine_format: engine::FORMAT_VERSION,
            series: &self.series,
        })
        .map_err(|e| StateError::Encode(e.to_string()))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        // The two leading numbers first, so a layout change gives a clear error.
        let (format, rest): (u32, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| StateError::Decode(e.to_string()))?;
        let (engine_format, _): (u32, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|e| StateError::Decode(e.to_string()))?;
        if format != STATE_FORMAT {
            return Err(StateError::Format {
                found: format,
                expected: STATE_FORMAT,
            });
        }
        if engine_format != engine::FORMAT_VERSION {
            return Err(StateError::Format {
                found: engine_format,
                expected: engine::FORMAT_VERSION,
            });
        }
        let stored: Stored =
            postcard::from_bytes(bytes).map_err(|e| StateError::Decode(e.to_string()))?;
        Ok(Self::new(stored.series))
    }

    /// How much of the cache this model takes.
    pub fn weight(&self) -> usize {
        self.series.len().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Method, ModelSpec, SeriesData};

    #[test]
    fn round_trips_and_refuses_garbage() {
        let y = SeriesData::parse(vec![1.0, 2.0, 4.0, 3.0]).unwrap();
        let fitted = ModelSpec::new(Method::Naive, None).fit(&y).unwrap();
        let model = LoadedModel::new(vec![("a".into(), fitted.clone())]);
        let back = LoadedModel::decode(&model.encode().unwrap()).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back.position("a"), Some(0));
        assert_eq!(back.get(0).1, &fitted);
        assert!(LoadedModel::decode(b"").is_err());
        assert!(matches!(
            LoadedModel::decode(&[9, 1, 0]),
            Err(StateError::Format { found: 9, .. })
        ));
    }
}
