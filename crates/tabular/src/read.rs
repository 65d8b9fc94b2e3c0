//! Rows into series: a collector that groups rows by id (in order of first
//! appearance) as they stream past, and the CSV reader that feeds it record
//! by record.

use crate::{parse_value, Columns, Series, TableError, Time};
use protocol::calendar::Timestamp;
use std::collections::HashMap;
use std::io::Read;

/// One row's time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum At {
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

/// The rows of one series as read.
enum Rows {
    Dates(Vec<(Timestamp, Option<f64>)>),
    Index(Vec<(i64, Option<f64>)>),
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
                let rows = match at {
                    At::Date(_) => Rows::Dates(Vec::new()),
                    At::Index(_) => Rows::Index(Vec::new()),
                };
                self.slots.insert(id.to_string(), self.series.len());
                self.series.push((id.to_string(), rows));
                self.series.len() - 1
            }
        };
        match (&mut self.series[slot].1, at) {
            (Rows::Dates(rows), At::Date(t)) => rows.push((t, value)),
            (Rows::Index(rows), At::Index(i)) => rows.push((i, value)),
            (Rows::Dates(_), At::Index(_)) => {
                return Err(format!(
                    "series '{id}' has dates in earlier rows but an integer here"
                ))
            }
            (Rows::Index(_), At::Date(_)) => {
                return Err(format!(
                    "series '{id}' has integers in earlier rows but a date here"
                ))
            }
        }
        Ok(())
    }

    /// The series, each sorted by time.
    pub(crate) fn finish(self) -> Result<Vec<Series>, TableError> {
        if self.series.is_empty() {
            return Err(TableError::Empty);
        }
        Ok(self
            .series
            .into_iter()
            .map(|(id, rows)| match rows {
                Rows::Dates(mut rows) => {
                    // Stable: equal times keep file order, so duplicates are reported as sent.
                    rows.sort_by_key(|r| r.0.local());
                    let (ds, values) = rows.into_iter().unzip();
                    Series {
                        id,
                        time: Time::Dates(ds),
                        values,
                    }
                }
                Rows::Index(mut rows) => {
                    rows.sort_by_key(|r| r.0);
                    let (ds, values) = rows.into_iter().unzip();
                    Series {
                        id,
                        time: Time::Index(ds),
                        values,
                    }
                }
            })
            .collect())
    }
}

/// The positions of the three columns among the names found.
pub(crate) fn positions<'a>(
    names: impl Iterator<Item = &'a str> + Clone,
    columns: &Columns,
) -> Result<[usize; 3], TableError> {
    let find = |name: &str| {
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
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = reader.headers().map_err(csv_error)?.clone();
    let [id_at, ds_at, y_at] = positions(headers.iter(), columns)?;
    let mut collector = Collector::default();
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
        collector.push(id, at, y).map_err(bad)?;
    }
    collector.finish()
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
        assert_eq!(series[0].values, [Some(1.0), Some(2.0)]);
        assert_eq!(series[1].values, [Some(1.0), None]);
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
        assert_eq!(series[0].values, [Some(4.0), Some(5.0)]);
        let missing = read_csv("a,b\n1,2\n".as_bytes(), &columns).unwrap_err();
        assert!(
            missing.to_string().contains("no column 'store'"),
            "{missing}"
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
}
