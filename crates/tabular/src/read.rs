//! Rows into series: a collector that groups rows by id (in order of first
//! appearance) as they stream past, and the CSV reader that feeds it (or
//! any other [`RowSink`], e.g. a [`crate::RowSpool`]) record by record.

use crate::{parse_value, Columns, Series, TableError, Time};
use protocol::calendar::Timestamp;
use std::collections::HashMap;
use std::io::Read;

/// One row's time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    Date(Timestamp),
    Index(i64),
}

impl At {
    /// A time as text: an integer is a position, anything else must be an
    /// ISO 8601 date or date-time.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(At::Index(i));
        }
        Timestamp::parse(text).map(At::Date).map_err(|_| {
            "is neither an integer nor an ISO 8601 date or date-time such as 2024-01-31".to_string()
        })
    }
}

/// The times of one series' rows as read.
enum Times {
    Dates(Vec<Timestamp>),
    Index(Vec<i64>),
    /// Integer rows so far in order on a constant step: `first + k * step`
    /// for the k-th row (`step` is 0 until the second row). Left for
    /// [`Times::Index`] at the first row that breaks the run.
    Run {
        first: i64,
        step: i64,
    },
}

/// The rows of one series as read: 8 bytes a value (NaN for a missing
/// one) and, while the rows come in order on a step, no bytes a time.
struct Rows {
    times: Times,
    values: Vec<f64>,
}

impl Rows {
    fn push_index(&mut self, i: i64) {
        let n = self.values.len() as i64;
        if let Times::Run { first, step } = &mut self.times {
            match n {
                0 => {
                    *first = i;
                    return;
                }
                1 if i > *first => {
                    *step = i - *first;
                    return;
                }
                _ if n > 1 && step.checked_mul(n).and_then(|d| first.checked_add(d)) == Some(i) => {
                    return
                }
                _ => {
                    let (first, step) = (*first, *step);
                    let mut index = Vec::with_capacity(self.values.capacity());
                    index.extend((0..n).map(|k| first + k * step));
                    self.times = Times::Index(index);
                }
            }
        }
        if let Times::Index(index) = &mut self.times {
            index.push(i);
        }
    }
}

/// Where the readers put the rows they read, one at a time.
pub trait RowSink {
    /// Takes a row; the message says what is wrong with it.
    fn push(&mut self, id: &str, at: At, value: Option<f64>) -> Result<(), String>;
}

impl RowSink for Collector {
    fn push(&mut self, id: &str, at: At, value: Option<f64>) -> Result<(), String> {
        Collector::push(self, id, at, value)
    }
}

/// Groups rows into series while they are read.
#[derive(Default)]
pub(crate) struct Collector {
    slots: HashMap<String, usize>,
    series: Vec<(String, Rows)>,
}

impl Collector {
    /// Adds a row; the message says what is wrong with it.
    pub(crate) fn push(&mut self, id: &str, at: At, value: Option<f64>) -> Result<(), String> {
        let slot = match self.slots.get(id) {
            Some(&slot) => slot,
            None => {
                let times = match at {
                    At::Date(_) => Times::Dates(Vec::new()),
                    At::Index(_) => Times::Run { first: 0, step: 0 },
                };
                let rows = Rows {
                    times,
                    values: Vec::new(),
                };
                self.slots.insert(id.to_string(), self.series.len());
                self.series.push((id.to_string(), rows));
                self.series.len() - 1
            }
        };
        let rows = &mut self.series[slot].1;
        match (&mut rows.times, at) {
            (Times::Dates(ds), At::Date(t)) => ds.push(t),
            (Times::Index(_) | Times::Run { .. }, At::Index(i)) => rows.push_index(i),
            (Times::Dates(_), At::Index(_)) => {
                return Err(format!(
                    "series '{id}' has dates in earlier rows but an integer here"
                ))
            }
            (Times::Index(_) | Times::Run { .. }, At::Date(_)) => {
                return Err(format!(
                    "series '{id}' has integers in earlier rows but a date here"
                ))
            }
        }
        rows.values.push(value.unwrap_or(f64::NAN));
        Ok(())
    }

    /// The series, each sorted by time; each series' rows are moved, not
    /// copied, unless they must be sorted.
    pub(crate) fn finish(self) -> Result<Vec<Series>, TableError> {
        if self.series.is_empty() {
            return Err(TableError::Empty);
        }
        drop(self.slots);
        Ok(self
            .series
            .into_iter()
            .map(|(id, rows)| {
                let Rows { times, values } = rows;
                let (time, values) = match times {
                    // Stable: equal times keep file order, so duplicates are reported as sent.
                    Times::Dates(ds) => {
                        let (ds, values) = sorted(ds, values, |t| t.local());
                        (Time::Dates(ds), values)
                    }
                    Times::Index(index) => {
                        let (index, values) = sorted(index, values, |&i| i);
                        (Time::Index(index), values)
                    }
                    // A single row has no step; any step places it alike.
                    Times::Run { first, step } => (
                        Time::Steps {
                            first,
                            step: step.max(1),
                        },
                        values,
                    ),
                };
                Series { id, time, values }
            })
            .collect())
    }
}

/// Times and their values sorted by time, stably; untouched when already
/// in order (no copy).
fn sorted<T, K: Ord>(times: Vec<T>, values: Vec<f64>, key: impl Fn(&T) -> K) -> (Vec<T>, Vec<f64>) {
    if times.windows(2).all(|w| key(&w[0]) <= key(&w[1])) {
        return (times, values);
    }
    let mut rows: Vec<(T, f64)> = times.into_iter().zip(values).collect();
    rows.sort_by_key(|r| key(&r.0));
    rows.into_iter().unzip()
}

/// The positions of the three columns among the names found.
pub(crate) fn positions<'a>(
    names: impl Iterator<Item = &'a str> + Clone,
    columns: &Columns,
) -> Result<[usize; 3], TableError> {
    let find = |name: &str| {
        let count = names.clone().filter(|h| *h == name).count();
        if count > 1 {
            return Err(TableError::RepeatedColumn {
                name: name.to_string(),
                count,
            });
        }
        names
            .clone()
            .position(|h| h == name)
            .ok_or_else(|| TableError::MissingColumn {
                name: name.to_string(),
                found: names.clone().collect::<Vec<_>>().join(", "),
            })
    };
    Ok([
        find(&columns.id)?,
        find(&columns.time)?,
        find(&columns.target)?,
    ])
}

/// Reads a long-format CSV with a header row, record by record; fields are
/// trimmed. Errors name the line (the header is line 1).
pub fn read_csv<R: Read>(reader: R, columns: &Columns) -> Result<Vec<Series>, TableError> {
    let mut collector = Collector::default();
    csv_rows(reader, columns, &mut collector)?;
    collector.finish()
}

/// Reads a long-format CSV as [`read_csv`] does, into `sink` instead of
/// series.
pub fn csv_rows<R: Read>(
    reader: R,
    columns: &Columns,
    sink: &mut impl RowSink,
) -> Result<(), TableError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = reader.headers().map_err(csv_error)?.clone();
    let [id_at, ds_at, y_at] = positions(headers.iter(), columns)?;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        let bad = |message: String| TableError::Line { line, message };
        let field = |at: usize| record.get(at).unwrap_or("");
        let id = field(id_at);
        if id.is_empty() {
            return Err(bad(format!("{} is empty", columns.id)));
        }
        let text = field(ds_at);
        let at = At::parse(text).map_err(|m| bad(format!("{} '{text}' {m}", columns.time)))?;
        let text = field(y_at);
        let y = parse_value(text).map_err(|m| bad(format!("{} '{text}' {m}", columns.target)))?;
        sink.push(id, at, y).map_err(bad)?;
    }
    Ok(())
}

fn csv_error(e: csv::Error) -> TableError {
    let line = e.position().map(|p| p.line());
    match (e.into_kind(), line) {
        (csv::ErrorKind::Io(io), _) => TableError::Io(io),
        (
            csv::ErrorKind::UnequalLengths {
                expected_len,
                len,
                pos,
            },
            _,
        ) => TableError::Line {
            line: pos.map_or(0, |p| p.line()),
            message: format!("has {len} fields but the header has {expected_len}"),
        },
        (csv::ErrorKind::Utf8 { pos, err }, _) => TableError::Line {
            line: pos.map_or(0, |p| p.line()),
            message: format!("is not UTF-8 text ({err})"),
        },
        (other, Some(line)) => TableError::Line {
            line,
            message: format!("{other:?}"),
        },
        (other, None) => TableError::Format(format!("bad CSV: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Series>, TableError> {
        read_csv(text.as_bytes(), &Columns::default())
    }

    #[test]
    fn groups_in_order_of_first_appearance_and_sorts_by_time() {
        let series = read(
            "unique_id,ds,y\n\
             b,2024-01-02,2\n\
             a,2024-01-01,1\n\
             b,2024-01-01,1\n\
             a,2024-01-02,\n",
        )
        .unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].id, "b");
        assert_eq!(series[0].values, [1.0, 2.0]);
        assert_eq!(series[1].values[0], 1.0);
        assert!(series[1].values[1].is_nan());
        match &series[0].time {
            Time::Dates(ds) => assert_eq!(ds[0].to_string(), "2024-01-01"),
            other => panic!("expected dates, got {other:?}"),
        }
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let columns = Columns {
            id: "store".into(),
            time: "t".into(),
            target: "sales".into(),
        };
        let series = read_csv("sales,t,store\n5,3,x\n4,1,x\n".as_bytes(), &columns).unwrap();
        assert_eq!(series[0].time, Time::Index(vec![1, 3]));
        assert_eq!(series[0].values, [4.0, 5.0]);
        let missing = read_csv("a,b\n1,2\n".as_bytes(), &columns).unwrap_err();
        assert!(
            missing.to_string().contains("no column 'store'"),
            "{missing}"
        );
        let twice = read_csv("store,t,sales,sales\nx,1,5,6\n".as_bytes(), &columns).unwrap_err();
        assert!(
            twice.to_string().contains("column 'sales' appears 2 times"),
            "{twice}"
        );
    }

    #[test]
    fn a_bad_row_is_named_by_its_line() {
        let e = read("unique_id,ds,y\na,2024-01-01,1\na,2024-01-02,abc\n").unwrap_err();
        assert_eq!(e.to_string(), "line 3: y 'abc' is not a number");
        let e = read("unique_id,ds,y\na,2024-01-01,1\na,yesterday,2\n").unwrap_err();
        assert!(e.to_string().starts_with("line 3: ds 'yesterday'"), "{e}");
        let e = read("unique_id,ds,y\na,2024-01-01,1\na,2024-01-02\n").unwrap_err();
        assert_eq!(e.to_string(), "line 3: has 2 fields but the header has 3");
        let e = read("unique_id,ds,y\na,1,1\na,2024-01-02,2\n").unwrap_err();
        assert!(
            e.to_string().starts_with("line 3: series 'a' has integers"),
            "{e}"
        );
        assert!(matches!(read("unique_id,ds,y\n"), Err(TableError::Empty)));
    }

    /// The integer axis as positions, whichever way it is kept.
    fn positions(s: &Series) -> Vec<i64> {
        match &s.time {
            Time::Index(index) => index.clone(),
            &Time::Steps { first, step } => (0..s.values.len() as i64)
                .map(|k| first + k * step)
                .collect(),
            Time::Dates(_) => panic!("expected an integer axis"),
        }
    }

    /// `y` as text: `-` for a missing value.
    fn ys(s: &Series) -> Vec<String> {
        let text = |v: &f64| {
            if v.is_nan() {
                "-".to_string()
            } else {
                v.to_string()
            }
        };
        s.values.iter().map(text).collect()
    }

    fn one(rows: &str) -> Series {
        let mut series = read(&format!("unique_id,ds,y\n{rows}")).unwrap();
        assert_eq!(series.len(), 1);
        series.remove(0)
    }

    #[test]
    fn rows_in_order_on_a_step_keep_no_positions() {
        let s = one("a,10,1\na,13,2\na,16,\na,19,4\n");
        assert_eq!(s.time, Time::Steps { first: 10, step: 3 });
        assert_eq!(ys(&s), ["1", "2", "-", "4"]);
        let grid = s.index_grid(100).unwrap().unwrap();
        assert_eq!((grid.first, grid.step), (10, 3));
        assert_eq!(grid.future(1), [22]);
        // A single row: a run of one, on step 1 as before.
        let s = one("a,5,1\n");
        assert_eq!(s.time, Time::Steps { first: 5, step: 1 });
        assert_eq!(s.index_grid(100).unwrap().unwrap().future(2), [6, 7]);
    }

    #[test]
    fn rows_that_break_the_run_are_kept_and_sorted_as_before() {
        // Out of order, from the first pair or later.
        let s = one("a,3,3\na,1,1\na,2,2\n");
        assert_eq!(s.time, Time::Index(vec![1, 2, 3]));
        assert_eq!(ys(&s), ["1", "2", "3"]);
        let s = one("a,1,1\na,2,2\na,4,4\na,3,3\n");
        assert_eq!(s.time, Time::Index(vec![1, 2, 3, 4]));
        assert_eq!(ys(&s), ["1", "2", "3", "4"]);
        // A gap: in order, but off the run's step; the grid fills it.
        let s = one("a,1,1\na,2,2\na,4,4\n");
        assert_eq!(positions(&s), [1, 2, 4]);
        let grid = s.index_grid(100).unwrap().unwrap();
        assert_eq!(grid.step, 1);
        let filled = Series {
            time: Time::Index(vec![1, 2, 3]),
            values: grid.values,
            ..s.clone()
        };
        assert_eq!(ys(&filled), ["1", "2", "-", "4"]);
        // Duplicates keep file order and are refused where they were.
        let s = one("a,1,1\na,2,2\na,2,3\n");
        assert_eq!(positions(&s), [1, 2, 2]);
        assert_eq!(ys(&s), ["1", "2", "3"]);
        let e = s.index_grid(100).unwrap().unwrap_err();
        assert_eq!(e.to_string(), "series 'a': ds 2 appears twice");
        let s = one("a,1,1\na,1,2\n");
        assert_eq!(positions(&s), [1, 1]);
        // A duplicate beside a missing value is taken, as before.
        let s = one("a,1,1\na,2,2\na,2,\n");
        let grid = s.index_grid(100).unwrap().unwrap();
        assert_eq!(grid.values[0], 1.0);
        assert!(grid.values[1].is_nan());
    }

    #[test]
    fn a_run_and_the_same_rows_sorted_give_the_same_grid() {
        let ordered = one("a,0,1\na,2,\na,4,3\na,6,4\n");
        let shuffled = one("a,4,3\na,0,1\na,6,4\na,2,\n");
        assert!(matches!(ordered.time, Time::Steps { .. }));
        assert!(matches!(shuffled.time, Time::Index(_)));
        assert_eq!(positions(&ordered), positions(&shuffled));
        assert_eq!(ys(&ordered), ys(&shuffled));
        let a = ordered.index_grid(100).unwrap().unwrap();
        let b = shuffled.index_grid(100).unwrap().unwrap();
        assert_eq!(
            (a.first, a.step, a.values.len()),
            (b.first, b.step, b.values.len())
        );
        let (id, moved) = ordered.clone().into_index_grid(100).unwrap().unwrap();
        assert_eq!(id, "a");
        assert_eq!((moved.first, moved.step), (a.first, a.step));
        // Too long a run is refused as the positions were.
        let e = ordered.clone().into_index_grid(3).unwrap().unwrap_err();
        assert_eq!(
            e.to_string(),
            "series 'a': the ds span more than 3 steps of 2"
        );
        assert!(shuffled.index_grid(3).unwrap().is_err());
    }
}
