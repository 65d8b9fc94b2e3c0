//! Reading long-format competition CSV files
//! (`dataset,series_id,group,period,horizon,split,t,value`, optionally with
//! realworld.csv's `freq`, `ds` and `seasons` columns).

use crate::BenchError;
use std::collections::HashMap;
use std::path::Path;

/// One series with its training values and the test values to forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub id: String,
    /// The `dataset` column (e.g. `m3`, `fpp2.elecdemand`).
    pub dataset: String,
    /// Pandas frequency alias (`freq` column), when the file has one.
    pub freq: Option<String>,
    /// Every season length (`seasons` column, `;`-separated); without that
    /// column, `[period]`.
    pub seasons: Vec<usize>,
    pub group: String,
    /// Seasonal period m (1 = none).
    pub period: usize,
    pub horizon: usize,
    pub train: Vec<f64>,
    pub test: Vec<f64>,
}

const COLUMNS: [&str; 8] = [
    "dataset",
    "series_id",
    "group",
    "period",
    "horizon",
    "split",
    "t",
    "value",
];

/// Reads a long-format CSV file; series keep the order of their first row.
pub fn read_long_csv(path: &Path) -> Result<Vec<Series>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|e| BenchError::Io {
        path: path.display().to_string(),
        error: e,
    })?;
    parse_long_csv(&text)
}

/// Parses the text of a long-format CSV (see [`read_long_csv`]).
pub fn parse_long_csv(text: &str) -> Result<Vec<Series>, BenchError> {
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, l)| l)
        .ok_or_else(|| BenchError::Format("empty file".into()))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut col = [0usize; 8];
    for (slot, want) in col.iter_mut().zip(COLUMNS) {
        *slot = names
            .iter()
            .position(|n| *n == want)
            .ok_or_else(|| BenchError::Format(format!("missing column '{want}'")))?;
    }
    let width = names.len();

    // Per series: metadata plus (t, value) pairs for each split.
    let optional = |want: &str| names.iter().position(|n| *n == want);
    let (freq_col, seasons_col) = (optional("freq"), optional("seasons"));
    struct Raw {
        dataset: String,
        freq: Option<String>,
        seasons: Option<Vec<usize>>,
        group: String,
        period: usize,
        horizon: usize,
        train: Vec<(usize, f64)>,
        test: Vec<(usize, f64)>,
    }
    let mut order: Vec<String> = Vec::new();
    let mut by_id: HashMap<String, Raw> = HashMap::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = i + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != width {
            return Err(BenchError::Format(format!(
                "line {line_no}: {} fields, expected {width}",
                fields.len()
            )));
        }
        let bad = |what: &str| BenchError::Format(format!("line {line_no}: bad {what}"));
        let id = fields[col[1]];
        let period: usize = fields[col[3]].parse().map_err(|_| bad("period"))?;
        let horizon: usize = fields[col[4]].parse().map_err(|_| bad("horizon"))?;
        let t: usize = fields[col[6]].parse().map_err(|_| bad("t"))?;
        let value: f64 = fields[col[7]].parse().map_err(|_| bad("value"))?;
        if !value.is_finite() {
            return Err(bad("value (not finite)"));
        }
        let seasons = match seasons_col {
            Some(c) => Some(
                fields[c]
                    .split(';')
                    .map(|v| v.trim().parse::<usize>())
                    .collect::<Result<Vec<usize>, _>>()
                    .map_err(|_| bad("seasons"))?,
            ),
            None => None,
        };
        let raw = by_id.entry(id.to_string()).or_insert_with(|| {
            order.push(id.to_string());
            Raw {
                dataset: fields[col[0]].to_string(),
                freq: freq_col.map(|c| fields[c].to_string()),
                seasons,
                group: fields[col[2]].to_string(),
                period,
                horizon,
                train: Vec::new(),
                test: Vec::new(),
            }
        });
        match fields[col[5]] {
            "train" => raw.train.push((t, value)),
            "test" => raw.test.push((t, value)),
            other => {
                return Err(BenchError::Format(format!(
                    "line {line_no}: split '{other}' (expected train or test)"
                )))
            }
        }
    }

    let mut out = Vec::with_capacity(order.len());
    for id in order {
        let Some(mut raw) = by_id.remove(&id) else {
            continue;
        };
        raw.train.sort_by_key(|p| p.0);
        raw.test.sort_by_key(|p| p.0);
        if raw.train.is_empty() {
            return Err(BenchError::Format(format!("series {id} has no train rows")));
        }
        if raw.test.is_empty() {
            return Err(BenchError::Format(format!("series {id} has no test rows")));
        }
        let horizon = if raw.horizon == 0 {
            raw.test.len()
        } else {
            raw.horizon.min(raw.test.len())
        };
        let period = raw.period.max(1);
        out.push(Series {
            id,
            dataset: raw.dataset,
            freq: raw.freq,
            seasons: raw.seasons.unwrap_or_else(|| vec![period]),
            group: raw.group,
            period,
            horizon,
            train: raw.train.into_iter().map(|p| p.1).collect(),
            test: raw.test.into_iter().take(horizon).map(|p| p.1).collect(),
        });
    }
    if out.is_empty() {
        return Err(BenchError::Format("no series in the file".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_series_in_order_and_sorts_by_t() {
        let text = "dataset,series_id,group,period,horizon,split,t,value\n\
                    m3,B,yearly,1,2,train,1,2.5\n\
                    m3,B,yearly,1,2,train,0,1.5\n\
                    m3,B,yearly,1,2,test,0,3\n\
                    m3,B,yearly,1,2,test,1,4\n\
                    m3,A,monthly,12,1,train,0,7\n\
                    m3,A,monthly,12,1,test,0,8\n";
        let s = parse_long_csv(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].id, "B");
        assert_eq!(s[0].train, vec![1.5, 2.5]);
        assert_eq!(s[0].test, vec![3.0, 4.0]);
        assert_eq!(s[1].period, 12);
        assert_eq!(s[1].group, "monthly");
        assert_eq!(s[1].seasons, vec![12]);
        assert_eq!(s[1].freq, None);
    }

    #[test]
    fn reads_freq_and_seasons_columns() {
        let text = "dataset,series_id,group,period,horizon,split,t,value,freq,ds,seasons\n\
                    fpp2.x,E,hourly,24,1,train,0,1.0,h,2014-01-01T00:00:00,24;168\n\
                    fpp2.x,E,hourly,24,1,test,0,2.0,h,2014-01-01T01:00:00,24;168\n";
        let s = parse_long_csv(text).unwrap();
        assert_eq!(s[0].seasons, vec![24, 168]);
        assert_eq!(s[0].freq.as_deref(), Some("h"));
        assert_eq!(s[0].dataset, "fpp2.x");
    }

    #[test]
    fn refuses_bad_rows() {
        let text = "dataset,series_id,group,period,horizon,split,t,value\nm3,A,y,1,1,train,0,x\n";
        assert!(parse_long_csv(text).is_err());
        assert!(parse_long_csv("a,b\n").is_err());
    }
}
