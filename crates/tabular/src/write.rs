//! Forecasts as the columns of the Python client and statsforecast:
//! `unique_id, ds, <method>, <method>-lo-<level>, <method>-hi-<level>, ...`,
//! levels ascending; written series by series.

use crate::TableError;
use engine::Interval;
use std::io::Write;

/// The columns of a forecast table.
#[derive(Debug, Clone)]
pub struct ForecastLayout {
    pub id_col: String,
    pub time_col: String,
    /// The method's column name (e.g. `ets`, `auto`).
    pub alias: String,
    /// Interval levels in percent, ascending, without repeats.
    pub levels: Vec<f64>,
}

impl ForecastLayout {
    pub fn new(id_col: &str, time_col: &str, alias: &str, levels: &[f64]) -> Self {
        let mut levels = levels.to_vec();
        levels.sort_by(f64::total_cmp);
        levels.dedup();
        Self {
            id_col: id_col.to_string(),
            time_col: time_col.to_string(),
            alias: alias.to_string(),
            levels,
        }
    }

    /// The value columns after the id and the time: the mean, then each
    /// level's lower and upper bound.
    pub fn value_columns(&self) -> Vec<String> {
        let mut names = vec![self.alias.clone()];
        for &l in &self.levels {
            names.push(format!("{}-lo-{}", self.alias, level_name(l)));
            names.push(format!("{}-hi-{}", self.alias, level_name(l)));
        }
        names
    }

    /// The header: id, time, then [`Self::value_columns`].
    pub fn header(&self) -> Vec<String> {
        let mut names = vec![self.id_col.clone(), self.time_col.clone()];
        names.extend(self.value_columns());
        names
    }

    /// For each level of the layout, the interval of the forecast at that
    /// level (`None` when the forecast lacks it: its cells stay empty).
    pub(crate) fn bands<'a>(&self, intervals: &'a [Interval]) -> Vec<Option<&'a Interval>> {
        self.levels
            .iter()
            .map(|l| intervals.iter().find(|i| i.level == *l))
            .collect()
    }
}

/// `80` for 80.0, `99.5` for 99.5: statsforecast's column names.
fn level_name(level: f64) -> String {
    if level.fract() == 0.0 {
        format!("{}", level as i64)
    } else {
        format!("{level}")
    }
}

/// Writes a forecast as CSV, series by series, to any writer.
pub struct CsvForecastWriter<W: Write> {
    out: W,
    layout: ForecastLayout,
    /// One series' rows, reused.
    buf: Vec<u8>,
}

impl<W: Write> CsvForecastWriter<W> {
    /// Writes the header.
    pub fn new(out: W, layout: ForecastLayout) -> Result<Self, TableError> {
        let mut writer = Self {
            out,
            layout,
            buf: Vec::new(),
        };
        let header = writer.layout.header();
        writer.rows(|w| w.write_record(&header))?;
        Ok(writer)
    }

    /// Writes one series' rows; `ds` has one label per step (empty cells
    /// without it).
    pub fn write_series(
        &mut self,
        id: &str,
        ds: Option<&[String]>,
        mean: &[f64],
        intervals: &[Interval],
    ) -> Result<(), TableError> {
        let bands = self.layout.bands(intervals);
        let mut number = Number::default();
        self.rows(|w| {
            for (k, m) in mean.iter().enumerate() {
                w.write_field(id)?;
                w.write_field(ds.and_then(|d| d.get(k)).map_or("", String::as_str))?;
                w.write_field(number.format(*m))?;
                for band in &bands {
                    match band {
                        Some(b) => {
                            w.write_field(number.format(b.lower[k]))?;
                            w.write_field(number.format(b.upper[k]))?;
                        }
                        None => {
                            w.write_field("")?;
                            w.write_field("")?;
                        }
                    }
                }
                w.write_record(None::<&[u8]>)?;
            }
            Ok(())
        })
    }

    /// The writer, e.g. to take the bytes written so far out of a `Vec<u8>`.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, TableError> {
        self.out.flush()?;
        Ok(self.out)
    }

    /// Formats rows into the buffer with a CSV writer, then writes them out.
    fn rows(
        &mut self,
        f: impl FnOnce(&mut csv::Writer<&mut Vec<u8>>) -> csv::Result<()>,
    ) -> Result<(), TableError> {
        self.buf.clear();
        {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut self.buf);
            f(&mut writer).map_err(|e| TableError::Format(e.to_string()))?;
            writer.flush()?;
        }
        self.out.write_all(&self.buf)?;
        Ok(())
    }
}

/// Shortest round-trip text of a float (Rust's `Display`), formatted into a
/// reused string.
#[derive(Default)]
struct Number(String);

impl Number {
    fn format(&mut self, v: f64) -> &str {
        use std::fmt::Write as _;
        self.0.clear();
        let _ = write!(self.0, "{v}");
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_statsforecast() {
        let layout = ForecastLayout::new("unique_id", "ds", "ets", &[95.0, 80.0, 99.5]);
        assert_eq!(
            layout.header(),
            [
                "unique_id",
                "ds",
                "ets",
                "ets-lo-80",
                "ets-hi-80",
                "ets-lo-95",
                "ets-hi-95",
                "ets-lo-99.5",
                "ets-hi-99.5"
            ]
        );
    }

    #[test]
    fn rows_per_step_with_bands_in_level_order() {
        let layout = ForecastLayout::new("unique_id", "ds", "naive", &[80.0]);
        let mut w = CsvForecastWriter::new(Vec::new(), layout).unwrap();
        let band = Interval {
            level: 80.0,
            lower: vec![0.5, 0.25],
            upper: vec![1.5, 1.75],
        };
        let ds = ["2024-01-01".to_string(), "2024-01-02".to_string()];
        w.write_series("a,b", Some(&ds), &[1.0, 1.0], &[band])
            .unwrap();
        w.write_series("c", None, &[2.0], &[]).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "unique_id,ds,naive,naive-lo-80,naive-hi-80\n\
             \"a,b\",2024-01-01,1,0.5,1.5\n\
             \"a,b\",2024-01-02,1,0.25,1.75\n\
             c,,2,,\n"
        );
    }
}
