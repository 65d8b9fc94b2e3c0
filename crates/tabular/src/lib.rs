//! Horizon's long format as tables: one row per observation
//! (`unique_id, ds, y`, the column names configurable), read from CSV or
//! Apache Parquet into series, and forecasts written back as the columns of
//! the Python client and statsforecast
//! (`unique_id, ds, <method>, <method>-lo-80, <method>-hi-80, ...`).
//!
//! Readers are streaming: CSV record by record from any [`std::io::Read`],
//! Parquet record batch by record batch, so only the parsed series are
//! held, never the file's text. Writers are streaming too: a forecast is
//! written series by series (Parquet in row groups). Used by the CLI
//! (`horizon forecast FILE`) and the gateway's bulk bodies; what a series
//! means (calendars, limits) is decided by their callers.

mod parquet_io;
mod read;
mod write;

pub use parquet_io::{read_parquet, ParquetForecastWriter};
pub use read::read_csv;
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
}

/// One series of a table, its rows sorted by time (ties keep file order).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub id: String,
    pub time: Time,
    /// One value per row, `None` where it was missing.
    pub values: Vec<Option<f64>>,
}

/// A series with an integer time axis placed on its own step: positions
/// that no row names are missing values.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexGrid {
    pub first: i64,
    pub step: i64,
    pub values: Vec<Option<f64>>,
}

impl IndexGrid {
    /// The `h` integer times after the last position.
    pub fn future(&self, h: usize) -> Vec<i64> {
        let last = self.first + self.step * (self.values.len() as i64 - 1);
        (1..=h as i64).map(|k| last + self.step * k).collect()
    }
}

impl Series {
    /// Places an integer axis on the step between its first and last
    /// position (the mean step, at least 1); `None` for a date axis.
    pub fn index_grid(&self, max_len: usize) -> Option<Result<IndexGrid, TableError>> {
        let Time::Index(index) = &self.time else {
            return None;
        };
        Some(self.place_index(index, max_len))
    }

    fn place_index(&self, index: &[i64], max_len: usize) -> Result<IndexGrid, TableError> {
        let fail = |message: String| TableError::Series {
            id: self.id.clone(),
            message,
        };
        let step = match index {
            [first, .., last] => (last.saturating_sub(*first) / (index.len() as i64 - 1)).max(1),
            _ => 1,
        };
        let first = index.first().copied().unwrap_or(0);
        let mut values: Vec<Option<f64>> = Vec::with_capacity(index.len());
        for (&t, &v) in index.iter().zip(&self.values) {
            let offset = t.saturating_sub(first);
            if offset % step != 0 {
                return Err(fail(format!(
                    "ds {t} is not on the step {step} from {first}"
                )));
            }
            let pos = usize::try_from(offset / step).unwrap_or(usize::MAX);
            if pos >= max_len {
                return Err(fail(format!(
                    "the ds span more than {max_len} steps of {step}"
                )));
            }
            if pos < values.len() && values[pos].is_some() && v.is_some() {
                return Err(fail(format!("ds {t} appears twice")));
            }
            if pos >= values.len() {
                values.resize(pos + 1, None);
            }
            values[pos] = v;
        }
        Ok(IndexGrid {
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

    #[test]
    fn index_axis_keeps_gaps_and_refuses_off_step() {
        let series = Series {
            id: "a".into(),
            time: Time::Index(vec![10, 12, 16]),
            values: vec![Some(1.0), Some(2.0), Some(4.0)],
        };
        // The mean step is 3, which 12 - 10 is not on: refused.
        assert!(series.index_grid(100).unwrap().is_err());
        let series = Series {
            time: Time::Index(vec![10, 12, 14, 18]),
            values: vec![Some(1.0); 4],
            ..series
        };
        let grid = series.index_grid(100).unwrap().unwrap();
        assert_eq!(grid.step, 2);
        assert_eq!(
            grid.values,
            [Some(1.0), Some(1.0), Some(1.0), None, Some(1.0)]
        );
        assert_eq!(grid.future(2), [20, 22]);
        let off = Series {
            time: Time::Index(vec![0, 3, 4]),
            ..series
        };
        assert!(off.index_grid(100).unwrap().is_err());
    }
}
