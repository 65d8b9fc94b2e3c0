//! Horizon's long format as tables: one row per observation
//! (`unique_id, ds, y`, the column names configurable), read from CSV or
//! Apache Parquet into series, and forecasts written back as the columns of
//! the Python client and statsforecast
//! (`unique_id, ds, <method>, <method>-lo-80, <method>-hi-80, ...`).
//!
//! Readers are streaming: CSV record by record from any [`std::io::Read`],
//! Parquet record batch by record batch, so only the parsed series are
//! held, never the file's text; or, into a [`RowSpool`], not even those
//! (rows go to a temporary file, split by shard later). Writers are streaming too: a forecast is
//! written series by series (Parquet in row groups). Used by the CLI
//! (`horizon forecast FILE`) and the gateway's bulk bodies; what a series
//! means (calendars, limits) is decided by their callers.

mod parquet_io;
mod read;
mod spool;
mod write;

pub use parquet_io::{parquet_rows, read_parquet, ParquetForecastWriter};
pub use read::{csv_rows, read_csv, At, RowSink};
pub use spool::{Parts, RowSpool, SpooledRows};
pub use write::{CsvForecastWriter, ForecastLayout};

use protocol::calendar::Timestamp;

/// The names of the long format's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// The series id (`unique_id`).
    pub id: String,
    /// The time (`ds`): dates, date-times or integers.
    pub time: String,
    /// The observed value (`y`); empty, `NaN`, `NA` or null for a missing one.
    pub target: String,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            id: "unique_id".to_string(),
            time: "ds".to_string(),
            target: "y".to_string(),
        }
    }
}

/// The time axis of one series, sorted.
#[derive(Debug, Clone, PartialEq)]
pub enum Time {
    /// Timestamps (put on a calendar grid by the caller).
    Dates(Vec<Timestamp>),
    /// Integer positions (`ds` of whole numbers).
    Index(Vec<i64>),
    /// Integer positions `first + k * step` (`step` ≥ 1), one per value:
    /// what rows that arrive in order on a constant step are kept as, so a
    /// big table does not hold a position per row.
    Steps { first: i64, step: i64 },
}

/// One series of a table, its rows sorted by time (ties keep file order).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub id: String,
    pub time: Time,
    /// One value per row, NaN where it was missing (8 bytes a row, not
    /// the 16 of an `Option<f64>`).
    pub values: Vec<f64>,
}

/// A series with an integer time axis placed on its own step: positions
/// that no row names are missing values (NaN).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexGrid {
    pub first: i64,
    pub step: i64,
    pub values: Vec<f64>,
}

impl IndexGrid {
    /// The `h` integer times after the last position.
    pub fn future(&self, h: usize) -> Vec<i64> {
        let last = self.first + self.step * (self.values.len() as i64 - 1);
        (1..=h as i64).map(|k| last + self.step * k).collect()
    }
}

impl Series {
    /// Places an integer axis on its step (the smallest gap between
    /// neighbouring positions; wider gaps are missing values); `None` for
    /// a date axis.
    pub fn index_grid(&self, max_len: usize) -> Option<Result<IndexGrid, TableError>> {
        match &self.time {
            Time::Dates(_) => None,
            Time::Index(index) => Some(self.place_index(index.iter().copied(), max_len)),
            &Time::Steps { first, step } => {
                let at = move |k: usize| first + k as i64 * step;
                Some(self.place_index((0..self.values.len()).map(at), max_len))
            }
        }
    }

    /// As [`Series::index_grid`] with the id, but a run on its step gives
    /// up its values instead of copying them; `Err(self)` for a date axis.
    #[allow(clippy::type_complexity)]
    pub fn into_index_grid(
        self,
        max_len: usize,
    ) -> Result<Result<(String, IndexGrid), TableError>, Self> {
        match self.time {
            Time::Dates(_) => Err(self),
            Time::Steps { first, step } if self.values.len() <= max_len => {
                Ok(match IndexGrid::with_room(first, step, self.values) {
                    Ok(grid) => Ok((self.id, grid)),
                    Err(message) => Err(TableError::Series {
                        id: self.id,
                        message,
                    }),
                })
            }
            _ => match self.index_grid(max_len) {
                Some(grid) => Ok(grid.map(|grid| (self.id, grid))),
                None => Err(self),
            },
        }
    }

    fn place_index(
        &self,
        index: impl ExactSizeIterator<Item = i64> + Clone,
        max_len: usize,
    ) -> Result<IndexGrid, TableError> {
        IndexGrid::place(index, &self.values, max_len).map_err(|message| TableError::Series {
            id: self.id.clone(),
            message,
        })
    }
}

impl IndexGrid {
    /// Places `values` at the sorted integer positions `index` on their
    /// step; why not when a position is off the step, repeated, or the
    /// span exceeds `max_len` steps.
    pub fn place(
        index: impl ExactSizeIterator<Item = i64> + Clone,
        values: &[f64],
        max_len: usize,
    ) -> Result<Self, String> {
        let n = index.len();
        let first = index.clone().next().unwrap_or(0);
        // The smallest gap between neighbours: a missing position leaves a
        // wider one, which is a multiple of the step on a regular axis.
        let step = index
            .clone()
            .zip(index.clone().skip(1))
            .map(|(a, b)| b.saturating_sub(a))
            .filter(|d| *d > 0)
            .min()
            .unwrap_or(1);
        let mut placed: Vec<f64> = Vec::with_capacity(n);
        for (t, &v) in index.zip(values) {
            let offset = t.saturating_sub(first);
            if offset % step != 0 {
                return Err(format!("ds {t} is not on the step {step} from {first}"));
            }
            let pos = usize::try_from(offset / step).unwrap_or(usize::MAX);
            if pos >= max_len {
                return Err(format!("the ds span more than {max_len} steps of {step}"));
            }
            if pos < placed.len() && !placed[pos].is_nan() && !v.is_nan() {
                return Err(format!("ds {t} appears twice"));
            }
            if pos >= placed.len() {
                placed.resize(pos + 1, f64::NAN);
            }
            placed[pos] = v;
        }
        Self::with_room(first, step, placed)
    }

    /// The grid, if forecasts can continue it: the positions of the longest
    /// horizon after its last one must be integers too.
    fn with_room(first: i64, step: i64, values: Vec<f64>) -> Result<Self, String> {
        let axis = protocol::calendar::IndexAxis::from_first(first, step, values.len());
        let horizon = engine::MAX_HORIZON as i64;
        if axis.checked_position(horizon).is_none() {
            return Err(format!(
                "ds {} is too large: {horizon} steps of {step} after it pass the largest \
                 integer position ({})",
                axis.last,
                i64::MAX
            ));
        }
        Ok(Self {
            first,
            step,
            values,
        })
    }
}

/// Why a table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A column the caller asked for is not in the header or schema.
    #[error("no column '{name}' (columns: {found})")]
    MissingColumn { name: String, found: String },
    /// A column the caller asked for is named more than once: which one
    /// holds the data cannot be told.
    #[error("column '{name}' appears {count} times in the header; name it once")]
    RepeatedColumn { name: String, count: usize },
    /// A bad CSV line (1-based, the header is line 1).
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    /// A bad Parquet row (1-based).
    #[error("row {row}: {message}")]
    Row { row: u64, message: String },
    /// A column whose type cannot hold what it should.
    #[error("column '{name}': {message}")]
    ColumnType { name: String, message: String },
    /// A series that cannot be placed on its time axis.
    #[error("series '{id}': {message}")]
    Series { id: String, message: String },
    /// The table has a header but no rows.
    #[error("the table has no rows")]
    Empty,
    /// Not a valid file of its format (e.g. a broken Parquet footer).
    #[error("{0}")]
    Format(String),
    /// Reading or writing the bytes failed (the caller's reader may say why).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A value: a number, or empty / `NaN` / `NA` / `null` / `None` for a missing one.
pub fn parse_value(text: &str) -> Result<Option<f64>, String> {
    if text.is_empty()
        || ["nan", "na", "null", "none"]
            .iter()
            .any(|m| text.eq_ignore_ascii_case(m))
    {
        return Ok(None);
    }
    let v: f64 = text.parse().map_err(|_| "is not a number".to_string())?;
    if !v.is_finite() {
        return Err("is not a finite number".to_string());
    }
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_missing_markers() {
        assert_eq!(parse_value("1.5"), Ok(Some(1.5)));
        for missing in ["", "NaN", "nan", "NA", "null", "None"] {
            assert_eq!(parse_value(missing), Ok(None), "{missing}");
        }
        assert!(parse_value("abc").is_err());
        assert!(parse_value("inf").is_err());
    }

    fn missing(values: &[f64]) -> Vec<bool> {
        values.iter().map(|v| v.is_nan()).collect()
    }

    #[test]
    fn index_axis_keeps_gaps_and_refuses_off_step() {
        let series = Series {
            id: "a".into(),
            time: Time::Index(vec![10, 12, 16]),
            values: vec![1.0, 2.0, 4.0],
        };
        // The step is the smallest gap, 2: 14 is missing.
        let grid = series.index_grid(100).unwrap().unwrap();
        assert_eq!((grid.first, grid.step), (10, 2));
        assert_eq!(missing(&grid.values), [false, false, true, false]);
        let series = Series {
            time: Time::Index(vec![10, 12, 14, 18]),
            values: vec![1.0; 4],
            ..series
        };
        let grid = series.index_grid(100).unwrap().unwrap();
        assert_eq!(grid.step, 2);
        assert_eq!(missing(&grid.values), [false, false, false, true, false]);
        assert_eq!(grid.future(2), [20, 22]);
        let off = Series {
            time: Time::Index(vec![0, 4, 6, 9]),
            ..series
        };
        let message = off.index_grid(100).unwrap().unwrap_err().to_string();
        assert!(
            message.contains("ds 9 is not on the step 2 from 0"),
            "{message}"
        );
        // Positions the forecasts could not continue are refused, however
        // they are kept.
        let near_max = i64::MAX - 5;
        for time in [
            Time::Index(vec![near_max - 2, near_max - 1, near_max]),
            Time::Steps {
                first: near_max - 2,
                step: 1,
            },
        ] {
            let series = Series {
                id: "far".into(),
                time,
                values: vec![1.0; 3],
            };
            let Ok(Err(refused)) = series.into_index_grid(100) else {
                panic!("an axis forecasts cannot continue was accepted");
            };
            assert!(refused.to_string().contains("is too large"), "{refused}");
        }
    }
}
