//! Turns request bodies (already parsed as JSON) into jobs, collecting a
//! message for every offending field so the client can fix them all at once.

use crate::jsend::{ApiError, FieldErrors};
use engine::{Horizon, Level, Method, SeriesData, MAX_HORIZON, MAX_SERIES_LEN};
use protocol::NamedSeries;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Fewest points a series may have.
pub const MIN_SERIES_LEN: usize = 3;
/// Most series one fit may hold.
pub const MAX_SERIES_PER_FIT: usize = 100_000;
/// Largest accepted season length.
pub const MAX_SEASON_LENGTH: i64 = 10_000;
/// Most prediction-interval levels one forecast may ask for.
pub const MAX_LEVELS: usize = 20;
/// Longest series id.
pub const MAX_ID_LEN: usize = 256;
/// Id of the one series of the original `/fit_model` endpoint.
pub const SEED_SERIES_ID: &str = "y";

/// A validated fit request.
#[derive(Debug)]
pub struct FitRequest {
    pub series: Vec<NamedSeries>,
    pub method: Method,
    pub season_length: Option<usize>,
}

/// A validated forecast request.
#[derive(Debug)]
pub struct ForecastRequest {
    pub horizon: Horizon,
    pub levels: Vec<Level>,
    pub series_ids: Option<Vec<String>>,
}

/// Collects field errors while a body is read.
#[derive(Default)]
struct Errors(FieldErrors);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_insert_with(|| message.into());
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ if self.0.is_empty() => Err(ApiError::field("body", "invalid request")),
            _ => Err(ApiError::Fail(axum::http::StatusCode::BAD_REQUEST, self.0)),
        }
    }
}

fn object<'a>(
    body: &'a Value,
    allowed: &[&str],
    errors: &mut Errors,
) -> Option<&'a Map<String, Value>> {
    let Some(map) = body.as_object() else {
        errors.add("body", format!("must be a JSON object, got {}", kind(body)));
        return None;
    };
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.add(
                key,
                format!("unknown field; expected one of: {}", allowed.join(", ")),
            );
        }
    }
    Some(map)
}

/// `POST /fit_model`: `{"data": [...], "season_length"?, "method"?}`.
pub fn seed_fit(body: &Value) -> Result<FitRequest, ApiError> {
    let mut errors = Errors::default();
    let parsed = object(body, &["data", "season_length", "method"], &mut errors).and_then(|map| {
        let common = common_fit_fields(map, &mut errors);
        let values = match map.get("data") {
            None | Some(Value::Null) => {
                errors.add("data", "is required: an array of numbers");
                None
            }
            Some(v) => series_values(v, "data", &mut errors),
        };
        let (method, season_length) = common?;
        Some(FitRequest {
            series: vec![NamedSeries {
                id: SEED_SERIES_ID.to_string(),
                values: values?,
            }],
            method,
            season_length,
        })
    });
    errors.finish(parsed)
}

/// `PUT /v1/models/{name}`: `{"series": [{"id", "values"}, ...]}` or
/// `{"sizes": [...], "y": [...], "ids"?: [...]}`, plus `season_length`, `method`.
pub fn v1_fit(body: &Value) -> Result<FitRequest, ApiError> {
    let mut errors = Errors::default();
    let allowed = ["series", "sizes", "y", "ids", "season_length", "method"];
    let parsed = object(body, &allowed, &mut errors).and_then(|map| {
        let common = common_fit_fields(map, &mut errors);
        let long = map.contains_key("series");
        let compact = map.contains_key("sizes") || map.contains_key("y") || map.contains_key("ids");
        let series = match (long, compact) {
            (true, true) => {
                errors.add("series", "send either 'series' or the compact 'sizes' and 'y', not both");
                None
            }
            (false, false) => {
                errors.add(
                    "series",
                    "is required: [{\"id\": \"a\", \"values\": [...]}, ...] (or the compact form 'sizes' + 'y')",
                );
                None
            }
            (true, false) => long_series(&map["series"], &mut errors),
            (false, true) => compact_series(map, &mut errors),
        };
        let (method, season_length) = common?;
        Some(FitRequest {
            series: series?,
            method,
            season_length,
        })
    });
    errors.finish(parsed)
}

fn common_fit_fields(
    map: &Map<String, Value>,
    errors: &mut Errors,
) -> Option<(Method, Option<usize>)> {
    let method = match map.get("method") {
        None | Some(Value::Null) => Some(Method::default()),
        Some(Value::String(s)) => match s.parse::<Method>() {
            Ok(m) => Some(m),
            Err(e) => {
                errors.add("method", e.to_string());
                None
            }
        },
        Some(other) => {
            errors.add(
                "method",
                format!("must be a string such as \"auto\", got {}", kind(other)),
            );
            None
        }
    };
    let season_length = match map.get("season_length") {
        None | Some(Value::Null) => Some(None),
        Some(v) => {
            integer(v, "season_length", 1, MAX_SEASON_LENGTH, errors).map(|n| Some(n as usize))
        }
    };
    Some((method?, season_length?))
}

fn long_series(value: &Value, errors: &mut Errors) -> Option<Vec<NamedSeries>> {
    let Some(items) = value.as_array() else {
        errors.add(
            "series",
            format!(
                "must be an array of {{\"id\", \"values\"}} objects, got {}",
                kind(value)
            ),
        );
        return None;
    };
    if !series_count_ok(items.len(), "series", errors) {
        return None;
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("series[{i}]");
        let Some(obj) = item.as_object() else {
            errors.add(
                &at,
                format!(
                    "must be an object {{\"id\", \"values\"}}, got {}",
                    kind(item)
                ),
            );
            continue;
        };
        for key in obj
            .keys()
            .filter(|k| !matches!(k.as_str(), "id" | "values"))
        {
            errors.add(&format!("{at}.{key}"), "unknown field; expected id, values");
        }
        let id = match obj.get("id") {
            Some(v) => series_id(v, &format!("{at}.id"), &mut seen, errors),
            None => {
                errors.add(&format!("{at}.id"), "is required");
                None
            }
        };
        let values = match obj.get("values") {
            Some(v) => series_values(v, &format!("{at}.values"), errors),
            None => {
                errors.add(&format!("{at}.values"), "is required: an array of numbers");
                None
            }
        };
        if let (Some(id), Some(values)) = (id, values) {
            out.push(NamedSeries { id, values });
        }
        if errors.0.len() >= 20 {
            break; // enough for the client to get going
        }
    }
    Some(out)
}

fn compact_series(map: &Map<String, Value>, errors: &mut Errors) -> Option<Vec<NamedSeries>> {
    let sizes: Option<Vec<usize>> = match map.get("sizes") {
        None => {
            errors.add("sizes", "is required with 'y': the length of each series");
            None
        }
        Some(Value::Array(items)) => {
            if series_count_ok(items.len(), "sizes", errors) {
                let mut sizes = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match integer(
                        item,
                        &format!("sizes[{i}]"),
                        1,
                        MAX_SERIES_LEN as i64,
                        errors,
                    ) {
                        Some(n) => sizes.push(n as usize),
                        None => break,
                    }
                }
                (sizes.len() == items.len()).then_some(sizes)
            } else {
                None
            }
        }
        Some(other) => {
            errors.add(
                "sizes",
                format!("must be an array of positive integers, got {}", kind(other)),
            );
            None
        }
    };
    let y: Option<Vec<f64>> = match map.get("y") {
        None => {
            errors.add(
                "y",
                "is required with 'sizes': all values, series after series",
            );
            None
        }
        Some(v) => numbers(v, "y", usize::MAX, errors),
    };
    let ids: Option<Option<Vec<String>>> = match map.get("ids") {
        None | Some(Value::Null) => Some(None),
        Some(Value::Array(items)) => {
            let mut seen = HashSet::new();
            let ids: Vec<String> = items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| series_id(v, &format!("ids[{i}]"), &mut seen, errors))
                .collect();
            (ids.len() == items.len()).then_some(Some(ids))
        }
        Some(other) => {
            errors.add(
                "ids",
                format!("must be an array of strings, got {}", kind(other)),
            );
            None
        }
    };
    let (sizes, y, ids) = (sizes?, y?, ids?);
    let total: usize = sizes.iter().sum();
    if total != y.len() {
        errors.add(
            "y",
            format!("has {} values but 'sizes' add up to {total}", y.len()),
        );
        return None;
    }
    if let Some(ids) = &ids {
        if ids.len() != sizes.len() {
            errors.add(
                "ids",
                format!(
                    "has {} ids but 'sizes' has {} series",
                    ids.len(),
                    sizes.len()
                ),
            );
            return None;
        }
    }
    let mut out = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for (i, &n) in sizes.iter().enumerate() {
        let id = ids
            .as_ref()
            .map_or_else(|| i.to_string(), |ids| ids[i].clone());
        let field = format!("sizes[{i}]");
        if n < MIN_SERIES_LEN {
            errors.add(
                &field,
                format!("series '{id}' has {n} points; at least {MIN_SERIES_LEN} are needed"),
            );
        } else {
            match SeriesData::parse(y[start..start + n].to_vec()) {
                Ok(values) => out.push(NamedSeries { id, values }),
                Err(e) => errors.add(&field, e.to_string()),
            }
        }
        start += n;
    }
    Some(out)
}

fn series_count_ok(n: usize, field: &str, errors: &mut Errors) -> bool {
    if n == 0 {
        errors.add(field, "must not be empty");
        false
    } else if n > MAX_SERIES_PER_FIT {
        errors.add(
            field,
            format!("has {n} series; at most {MAX_SERIES_PER_FIT} are accepted in one fit"),
        );
        false
    } else {
        true
    }
}

fn series_id(
    value: &Value,
    field: &str,
    seen: &mut HashSet<String>,
    errors: &mut Errors,
) -> Option<String> {
    let id = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => {
            errors.add(field, format!("must be a string, got {}", kind(other)));
            return None;
        }
    };
    if id.is_empty() || id.len() > MAX_ID_LEN {
        errors.add(field, format!("must be 1 to {MAX_ID_LEN} bytes long"));
        return None;
    }
    if !seen.insert(id.clone()) {
        errors.add(field, format!("duplicate series id '{id}'"));
        return None;
    }
    Some(id)
}

/// One series' values: finite numbers, between the length limits.
fn series_values(value: &Value, field: &str, errors: &mut Errors) -> Option<SeriesData> {
    let values = numbers(value, field, MAX_SERIES_LEN, errors)?;
    if values.len() < MIN_SERIES_LEN {
        errors.add(
            field,
            format!(
                "has {} point{}; at least {MIN_SERIES_LEN} are needed",
                values.len(),
                if values.len() == 1 { "" } else { "s" }
            ),
        );
        return None;
    }
    match SeriesData::parse(values) {
        Ok(data) => Some(data),
        Err(e) => {
            errors.add(field, e.to_string());
            None
        }
    }
}

/// An array of finite numbers, not empty, at most `max_len` long.
fn numbers(value: &Value, field: &str, max_len: usize, errors: &mut Errors) -> Option<Vec<f64>> {
    let Some(items) = value.as_array() else {
        errors.add(
            field,
            format!("must be an array of numbers, got {}", kind(value)),
        );
        return None;
    };
    if items.is_empty() {
        errors.add(field, "must not be empty");
        return None;
    }
    if items.len() > max_len {
        errors.add(
            field,
            format!("has {} points; at most {max_len} are accepted", items.len()),
        );
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut bad: Option<String> = None;
    let mut n_bad = 0usize;
    for (i, item) in items.iter().enumerate() {
        let problem = match item {
            Value::Number(n) => match n.as_f64() {
                Some(x) if x.is_finite() => {
                    out.push(x);
                    continue;
                }
                _ => format!("element {i} is not a finite number"),
            },
            Value::String(s) if s.trim().parse::<f64>().is_ok_and(|x| !x.is_finite()) => {
                format!(
                    "element {i} is the string {item}; NaN and infinite values are not accepted"
                )
            }
            Value::Null => format!("element {i} is null; missing values are not accepted"),
            other => format!("element {i} is not a number ({})", short(other)),
        };
        n_bad += 1;
        bad.get_or_insert(problem);
    }
    if let Some(first) = bad {
        let more = match n_bad {
            1 => String::new(),
            2 => " (and 1 more bad element)".to_string(),
            n => format!(" (and {} more bad elements)", n - 1),
        };
        errors.add(field, format!("{first}{more}"));
        return None;
    }
    Some(out)
}

/// An integer in `min..=max`; integral floats like `12.0` are accepted.
fn integer(value: &Value, field: &str, min: i64, max: i64, errors: &mut Errors) -> Option<i64> {
    let expected = format!("must be an integer between {min} and {max}");
    let n = match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i)
            } else if n.is_u64() {
                None
            } else {
                n.as_f64()
                    .filter(|x| x.fract() == 0.0 && x.abs() < 9.0e15)
                    .map(|x| x as i64)
            }
        }
        _ => None,
    };
    match n {
        Some(i) if (min..=max).contains(&i) => Some(i),
        Some(i) => {
            errors.add(field, format!("{expected}, got {i}"));
            None
        }
        None => {
            errors.add(field, format!("{expected}, got {}", short(value)));
            None
        }
    }
}

/// `POST /forecast`: `{"num_steps": 12}`.
pub fn seed_forecast(body: &Value) -> Result<Horizon, ApiError> {
    let mut errors = Errors::default();
    let parsed =
        object(body, &["num_steps"], &mut errors).and_then(|map| match map.get("num_steps") {
            None | Some(Value::Null) => {
                errors.add(
                    "num_steps",
                    format!("is required: an integer between 1 and {MAX_HORIZON}"),
                );
                None
            }
            Some(v) => horizon(v, "num_steps", &mut errors),
        });
    errors.finish(parsed)
}

/// `POST /v1/models/{name}/forecast`: `{"horizon": 12, "level"?: [80, 95], "series"?: ["a"]}`.
pub fn v1_forecast(body: &Value) -> Result<ForecastRequest, ApiError> {
    let mut errors = Errors::default();
    let parsed = object(body, &["horizon", "level", "series"], &mut errors).and_then(|map| {
        let h = match map.get("horizon") {
            None | Some(Value::Null) => {
                errors.add(
                    "horizon",
                    format!("is required: an integer between 1 and {MAX_HORIZON}"),
                );
                None
            }
            Some(v) => horizon(v, "horizon", &mut errors),
        };
        let levels = match map.get("level") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(items)) if items.len() > MAX_LEVELS => {
                errors.add("level", format!("at most {MAX_LEVELS} levels are accepted"));
                None
            }
            Some(Value::Array(items)) => {
                let mut levels = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item.as_f64().map(Level::parse) {
                        Some(Ok(level)) => levels.push(level),
                        Some(Err(e)) => errors.add(&format!("level[{i}]"), e.to_string()),
                        None => errors.add(
                            &format!("level[{i}]"),
                            format!(
                                "must be a number strictly between 0 and 100, got {}",
                                short(item)
                            ),
                        ),
                    }
                }
                (levels.len() == items.len()).then_some(levels)
            }
            Some(other) => {
                errors.add(
                    "level",
                    format!(
                        "must be an array of numbers such as [80, 95], got {}",
                        kind(other)
                    ),
                );
                None
            }
        };
        let series_ids = match map.get("series") {
            None | Some(Value::Null) => Some(None),
            Some(Value::Array(items)) if items.is_empty() => {
                errors.add(
                    "series",
                    "must not be empty; leave it out to forecast every series",
                );
                None
            }
            Some(Value::Array(items)) => {
                let mut seen = HashSet::new();
                let ids: Vec<String> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| {
                        series_id(v, &format!("series[{i}]"), &mut seen, &mut errors)
                    })
                    .collect();
                (ids.len() == items.len()).then_some(Some(ids))
            }
            Some(other) => {
                errors.add(
                    "series",
                    format!("must be an array of series ids, got {}", kind(other)),
                );
                None
            }
        };
        Some(ForecastRequest {
            horizon: h?,
            levels: levels?,
            series_ids: series_ids?,
        })
    });
    errors.finish(parsed)
}

fn horizon(value: &Value, field: &str, errors: &mut Errors) -> Option<Horizon> {
    let steps = integer(value, field, 1, MAX_HORIZON as i64, errors)?;
    match Horizon::parse(steps) {
        Ok(h) => Some(h),
        Err(e) => {
            errors.add(field, e.to_string());
            None
        }
    }
}

/// The JSON type of a value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value as short JSON text, for messages.
fn short(value: &Value) -> String {
    match value {
        Value::Array(_) | Value::Object(_) => kind(value).to_string(),
        other => {
            let text = other.to_string();
            if text.len() > 40 {
                format!("{}...", &text[..text.floor_char_boundary(40)])
            } else {
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fail_fields(err: ApiError) -> FieldErrors {
        match err {
            ApiError::Fail(_, fields) => fields,
            other => panic!("expected fail, got {other:?}"),
        }
    }

    #[test]
    fn seed_fit_reports_each_field() {
        let err =
            seed_fit(&json!({"data": [1, "NaN", 3], "method": "magic", "extra": 1})).unwrap_err();
        let fields = fail_fields(err);
        assert!(fields["data"].contains("NaN"), "{fields:?}");
        assert!(fields["method"].contains("unknown method"), "{fields:?}");
        assert!(fields["extra"].contains("unknown field"), "{fields:?}");
        let ok = seed_fit(&json!({"data": [1, 2, 3.5], "season_length": 2.0})).unwrap();
        assert_eq!(ok.season_length, Some(2));
        assert_eq!(ok.series[0].values.values(), &[1.0, 2.0, 3.5]);
    }

    #[test]
    fn compact_form_splits_series() {
        let ok = v1_fit(&json!({"sizes": [3, 4], "y": [1, 2, 3, 4, 5, 6, 7], "ids": ["a", "b"]}))
            .unwrap();
        assert_eq!(ok.series.len(), 2);
        assert_eq!(ok.series[1].id, "b");
        assert_eq!(ok.series[1].values.values(), &[4.0, 5.0, 6.0, 7.0]);
        let fields = fail_fields(v1_fit(&json!({"sizes": [3, 5], "y": [1, 2, 3]})).unwrap_err());
        assert!(fields["y"].contains("add up to 8"), "{fields:?}");
    }

    #[test]
    fn forecast_limits() {
        assert!(seed_forecast(&json!({"num_steps": 0})).is_err());
        assert!(seed_forecast(&json!({"num_steps": MAX_HORIZON + 1})).is_err());
        assert!(seed_forecast(&json!({"num_steps": 1.5})).is_err());
        assert_eq!(seed_forecast(&json!({"num_steps": 7})).unwrap().get(), 7);
        let fields =
            fail_fields(v1_forecast(&json!({"horizon": 3, "level": [100, "x"]})).unwrap_err());
        assert!(
            fields.contains_key("level[0]") && fields.contains_key("level[1]"),
            "{fields:?}"
        );
    }
}
