//! Request bodies parsed into typed requests: every field is read straight
//! from the JSON text into a type that cannot hold a bad value (`Method`,
//! `Horizon`, `Level`, `Freq`, `Timestamp`, `SeriesData`, ...), and every
//! offending field gets its own message, keyed by its path
//! (`series[2].values`), so a client can fix them all at once.
//!
//! Each object is first split into its members (raw JSON text, no tree is
//! built), which catches unknown and repeated keys; each member is then
//! deserialized into its own type. Arrays are read element by element, so a
//! bad element is reported with its index without stopping the others.
//!
//! The large arrays of a fit (`y`, `ds`, `data`, `values`, `unique_id`,
//! `sizes`, `series`) are not kept as text: they are read into their types
//! as they arrive ([`Early`]), so a fit body can be parsed while it is
//! received (`body.rs`) and its text is never held whole. Each is bounded
//! by what came before it: `y` and `ds` after `sizes` or `unique_id` go
//! straight into their series and stop at the first row too many; before
//! them they are read whole (bounded by the body limit only) and cut
//! afterwards. A limit broken stops the body there ([`Refusal`]).

use crate::jsend::{ApiError, FieldErrors};
use engine::{Horizon, Level, Method, ModelSpec, SeriesData, MAX_HORIZON, MAX_SERIES_LEN};
use protocol::calendar::{
    CalendarError, Freq, FreqUnit, Grid, GridError, IndexAxis, SeriesCalendar, Timestamp,
};
use protocol::NamedSeries;
use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

/// The message of a key repeated in one object.
pub(crate) const REPEATED_KEY: &str = "appears more than once in the object; send each field once";

/// Fewest points a series may have.
pub const MIN_SERIES_LEN: usize = engine::MIN_TRAIN_LEN;
/// Most series one fit may hold.
pub const MAX_SERIES_PER_FIT: usize = 100_000;
/// Most series one fit with a CSV or Parquet body may hold: bulk fits are
/// sharded across the workers, but the gateway still holds the parsed
/// series (about 0.5 KiB per series of 60 points) while it splits them.
pub const MAX_TABLE_SERIES_PER_FIT: usize = 1_000_000;
/// Largest accepted season length.
pub const MAX_SEASON_LENGTH: i64 = 10_000;
/// Most season lengths one fit may give.
pub const MAX_SEASONS: usize = 10;
/// Most prediction-interval levels one forecast may ask for.
pub const MAX_LEVELS: usize = 20;
/// Longest series id.
pub const MAX_ID_LEN: usize = 256;
/// Id of the one series of the original `/fit_model` endpoint.
pub const SEED_SERIES_ID: &str = "y";
/// Messages collected before the rest of a body is skipped.
const MAX_MESSAGES: usize = 20;

/// A request type read from a JSON body.
pub trait FromJson: Sized + Send + 'static {
    /// Reads the request from a whole body.
    fn from_json(body: &[u8]) -> Result<Self, ApiError>;

    /// Reads the request from a body that is still arriving. By default the
    /// body is read whole first; fits read their arrays as they arrive, so
    /// the body's text is never held whole.
    fn from_reader(mut body: impl std::io::Read) -> Result<Self, ApiError> {
        let mut whole = Vec::new();
        body.read_to_end(&mut whole).map_err(|e| {
            ApiError::field("body", format!("the request body could not be read: {e}"))
        })?;
        Self::from_json(&whole)
    }
}

/// A validated fit request.
#[derive(Debug)]
pub struct FitRequest {
    pub series: Vec<NamedSeries>,
    pub spec: ModelSpec,
}

/// A validated forecast request.
#[derive(Debug)]
pub struct ForecastRequest {
    pub horizon: Horizon,
    pub levels: Vec<Level>,
    pub series_ids: Option<Vec<String>>,
    /// Forecast exactly this version instead of the newest.
    pub version: Option<protocol::Version>,
    /// The answer has room for one series (`POST /forecast`): a version
    /// with several is refused before any worker forecasts it.
    pub one_series: bool,
}

/// `POST /fit_model`: `{"data", "season_length"?, "method"?, "nonnegative"?,
/// "ds"? | "start"?, "freq"?}`.
#[derive(Debug)]
pub struct SeedFit(pub FitRequest);

/// `PUT /v1/models/{name}`: `{"series": [{"id", "values", "ds"?, "start"?,
/// "freq"?}]}`, `{"sizes", "y", "ids"?, "ds"?}` or `{"unique_id", "ds"?, "y"}`,
/// plus the fit options.
#[derive(Debug)]
pub struct V1Fit(pub FitRequest);

/// `POST /forecast`: `{"num_steps"}`.
#[derive(Debug)]
pub struct SeedForecast(pub Horizon);

/// `POST /v1/models/{name}/forecast`: `{"horizon", "level"?, "series"?}`.
#[derive(Debug)]
pub struct V1Forecast(pub ForecastRequest);

// ---- collecting messages ----

/// Messages per field while a body is read; the first message of a field wins.
#[derive(Default)]
struct Errors(FieldErrors);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_insert_with(|| message.into());
    }

    fn is_full(&self) -> bool {
        self.0.len() >= MAX_MESSAGES
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ if self.0.is_empty() => Err(ApiError::field("body", "invalid request")),
            _ => Err(ApiError::Fail(axum::http::StatusCode::BAD_REQUEST, self.0)),
        }
    }
}

/// The message for JSON that cannot be parsed.
pub fn json_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.contains("number out of range") {
        format!(
            "malformed JSON: {text}; numbers must be finite (NaN and infinity are not accepted)"
        )
    } else {
        format!("malformed JSON: {text}")
    }
}

// ---- the JSON shapes ----

/// The JSON type of a raw value, for messages.
fn kind(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

/// One JSON value read without building a tree: scalars kept, containers
/// only named.
#[derive(Debug)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Array,
    Object,
}

impl Scalar {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::I64(_) | Scalar::U64(_) | Scalar::F64(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
    }

    /// As short JSON text, for messages.
    fn short(&self) -> String {
        let text = match self {
            Scalar::Null => "null".to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::I64(n) => n.to_string(),
            Scalar::U64(n) => n.to_string(),
            Scalar::F64(x) => x.to_string(),
            Scalar::Str(s) => serde_json::to_string(s).unwrap_or_else(|_| "a string".into()),
            Scalar::Array | Scalar::Object => return self.kind().to_string(),
        };
        if text.len() > 40 {
            format!("{}...", &text[..text.floor_char_boundary(40)])
        } else {
            text
        }
    }

    fn number(&self) -> Option<f64> {
        match *self {
            Scalar::I64(n) => Some(n as f64),
            Scalar::U64(n) => Some(n as f64),
            Scalar::F64(x) => Some(x),
            _ => None,
        }
    }

    /// An integer in `min..=max`; integral floats like `12.0` are accepted.
    fn integer(&self, min: i64, max: i64) -> Result<i64, String> {
        let n = match *self {
            Scalar::I64(n) => Some(n),
            Scalar::F64(x) => whole_number(x),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "must be an integer between {min} and {max}, got {}",
                self.short()
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Scalar, E> {
                Ok(Scalar::I64(n))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Scalar, E> {
                Ok(i64::try_from(n).map_or(Scalar::U64(n), Scalar::I64))
            }
            fn visit_f64<E>(self, x: f64) -> Result<Scalar, E> {
                Ok(Scalar::F64(x))
            }
            fn visit_str<E>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Object)
            }
        }
        d.deserialize_any(V)
    }
}

/// An array element read into its type, or a message saying why not
/// (`"is not a number (\"x\")"`, read after `element 3 `).
trait Item: Sized {
    fn from_scalar(s: Scalar) -> Result<Self, String>;

    /// The array of these read as it arrived, if `early` is one.
    fn from_early(early: Early) -> Option<Items<Self>> {
        let _ = early;
        None
    }
}

/// An array read element by element: the good ones, and the first bad ones.
struct Items<T> {
    items: Vec<T>,
    /// A column read straight into its series (see [`Split`]): the good
    /// elements are here, `items` is empty.
    parts: Option<Vec<Vec<T>>>,
    bad: Vec<(usize, String)>,
    n_bad: usize,
    len: usize,
}

impl<T> Items<T> {
    /// The first bad element, and how many more there are.
    fn summary(&self) -> Option<String> {
        let (index, first) = self.bad.first()?;
        let more = match self.n_bad {
            1 => String::new(),
            2 => " (and 1 more bad element)".to_string(),
            n => format!(" (and {} more bad elements)", n - 1),
        };
        Some(format!("element {index} {first}{more}"))
    }
}

impl<'de, T: Item> Deserialize<'de> for Items<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ItemsAtMost::<T>::new(usize::MAX, 0).deserialize(d)
    }
}

/// Reads an array of at most `max` elements and stops at the first one more,
/// so an over-long array is refused before the rest of it is decoded. The
/// elements go into a vector of `capacity` (an upper bound of their number
/// when it is known), so a large array is not copied while it grows; what is
/// left over is given back at the end. With a [`Split`], a column goes
/// straight into the vectors of its series instead.
struct ItemsAtMost<T> {
    max: usize,
    capacity: usize,
    split: Option<Split>,
    _item: PhantomData<T>,
}

impl<T> ItemsAtMost<T> {
    fn new(max: usize, capacity: usize) -> Self {
        Self {
            max,
            capacity: capacity.min(max),
            split: None,
            _item: PhantomData,
        }
    }
}

/// Starts the error of an array longer than its [`ItemsAtMost`] limit.
const TOO_MANY: &str = "too many elements: ";

/// The rows of a column cut into series as they are read, when the series
/// came before the column in the body.
#[derive(Clone)]
enum Split {
    /// Compact form: consecutive runs of these lengths.
    Runs(Vec<usize>),
    /// Long form: the series of each row, and the rows of each series.
    Rows(Arc<Vec<u32>>, Vec<usize>),
}

impl Split {
    fn counts(&self) -> &[usize] {
        match self {
            Split::Runs(counts) | Split::Rows(_, counts) => counts,
        }
    }
}

impl<T: Item> ItemsAtMost<T> {
    fn read<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items<T>, A::Error> {
        let max = self.max;
        let hint = seq.size_hint().unwrap_or(0).min(1 << 16);
        let mut parts: Option<Vec<Vec<T>>> = self.split.as_ref().map(|split| {
            let counts = split.counts();
            counts.iter().map(|&n| Vec::with_capacity(n)).collect()
        });
        let mut out = Items {
            items: Vec::with_capacity(if parts.is_some() {
                0
            } else {
                self.capacity.max(hint)
            }),
            parts: None,
            bad: Vec::new(),
            n_bad: 0,
            len: 0,
        };
        // Compact form: the series being filled and the rows it still takes.
        let (mut run, mut left) = (0usize, 0usize);
        while let Some(scalar) = seq.next_element::<Scalar>()? {
            if out.len == max {
                return Err(serde::de::Error::custom(format!(
                    "{TOO_MANY}at most {max} are accepted"
                )));
            }
            match T::from_scalar(scalar) {
                Ok(item) if out.n_bad == 0 => match (&mut parts, &self.split) {
                    (Some(parts), Some(Split::Runs(counts))) => {
                        while left == 0 && run < counts.len() {
                            left = counts[run];
                            run += 1;
                        }
                        left = left.saturating_sub(1);
                        if let Some(part) = parts.get_mut(run.wrapping_sub(1)) {
                            part.push(item);
                        }
                    }
                    (Some(parts), Some(Split::Rows(of_row, _))) => {
                        let series = of_row.get(out.len).map_or(usize::MAX, |&s| s as usize);
                        if let Some(part) = parts.get_mut(series) {
                            part.push(item);
                        }
                    }
                    _ => out.items.push(item),
                },
                Ok(_) => {}
                Err(message) => {
                    out.n_bad += 1;
                    if out.bad.len() < MAX_MESSAGES {
                        out.bad.push((out.len, message));
                    }
                }
            }
            out.len += 1;
        }
        out.items.shrink_to_fit();
        out.parts = parts;
        Ok(out)
    }
}

impl<'de, T: Item> DeserializeSeed<'de> for ItemsAtMost<T> {
    type Value = Items<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Items<T>, D::Error> {
        struct V<T>(ItemsAtMost<T>);
        impl<'de, T: Item> Visitor<'de> for V<T> {
            type Value = Items<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Items<T>, A::Error> {
                self.0.read(seq)
            }
        }
        d.deserialize_seq(V(self))
    }
}

/// An observation: a finite number, or `null` for a missing one, kept as NaN
/// as [`SeriesData`] keeps it (so a column is read straight into the
/// `Vec<f64>` a series keeps; see [`values`]).
#[repr(transparent)]
struct Observation(f64);

/// The numbers of observations, in the vector they were read into (same
/// layout: the collect reuses the allocation).
fn values(items: Vec<Observation>) -> Vec<f64> {
    items.into_iter().map(|o| o.0).collect()
}

impl Item for Observation {
    fn from_early(early: Early) -> Option<Items<Self>> {
        match early {
            Early::Numbers(items) => Some(items),
            _ => None,
        }
    }

    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Null => Ok(Self(f64::NAN)),
            Scalar::Str(ref text) if text.trim().parse::<f64>().is_ok_and(|x| !x.is_finite()) => {
                Err(format!(
                    "is the string {}; NaN and infinite values are not accepted",
                    s.short()
                ))
            }
            other => match other.number() {
                Some(x) if x.is_finite() => Ok(Self(x)),
                Some(_) => Err("is not a finite number".to_string()),
                None => Err(format!("is not a number ({})", other.short())),
            },
        }
    }
}

/// One element of a series' values as a fit reads it: a number, or `None`
/// for `null` (a missing value); the message is the fit's.
pub(crate) fn observation(s: Scalar) -> Result<Option<f64>, String> {
    Observation::from_scalar(s).map(|o| (!o.0.is_nan()).then_some(o.0))
}

/// `x` as an integer when it is one written as a float (`3.0`), exactly
/// representable.
pub(crate) fn whole_number(x: f64) -> Option<i64> {
    (x.fract() == 0.0 && x.abs() < 9.0e15).then_some(x as i64)
}

/// One element of `ds`: a timestamp, or an integer position (as
/// statsforecast allows; every element of a series must be of one kind).
#[derive(Debug, Clone, Copy)]
enum Stamp {
    Date(Timestamp),
    Index(i64),
}

impl Item for Stamp {
    fn from_early(early: Early) -> Option<Items<Self>> {
        match early {
            Early::Stamps(items) => Some(items),
            _ => None,
        }
    }

    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Str(ref text) => Timestamp::parse(text).map(Stamp::Date).map_err(|_| {
                format!(
                    "is not an ISO 8601 date or date-time such as 2024-01-31 or 2024-01-31T13:30:00Z ({})",
                    s.short()
                )
            }),
            Scalar::I64(n) => Ok(Stamp::Index(n)),
            Scalar::U64(n) => i64::try_from(n)
                .map(Stamp::Index)
                .map_err(|_| format!("is too large an integer ({})", s.short())),
            // What pandas writes for an integer column with a gap (`3.0`).
            Scalar::F64(x) if whole_number(x).is_some() => Ok(Stamp::Index(x as i64)),
            other => Err(format!(
                "is neither a date string such as \"2024-01-31\" nor an integer ({})",
                other.short()
            )),
        }
    }
}

/// A series' `ds` as what it holds: timestamps or integer positions; a
/// message when it mixes them.
fn when_of(stamps: Vec<Stamp>) -> Result<When, String> {
    match stamps.first() {
        Some(Stamp::Index(_)) => stamps
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                Stamp::Index(n) => Ok(*n),
                Stamp::Date(_) => Err(i),
            })
            .collect::<Result<Vec<i64>, usize>>()
            .map(When::Positions),
        _ => stamps
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                Stamp::Date(t) => Ok(*t),
                Stamp::Index(_) => Err(i),
            })
            .collect::<Result<Vec<Timestamp>, usize>>()
            .map(When::Ds),
    }
    .map_err(|i| format!("mixes timestamps and integers (element 0 and element {i}); use one kind"))
}

/// A series id: a string, or an integer written as one.
struct SeriesId(String);

impl Item for SeriesId {
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        let id = match s {
            Scalar::Str(s) => s,
            Scalar::I64(n) => n.to_string(),
            Scalar::U64(n) => n.to_string(),
            other => return Err(format!("must be a string, got {}", other.kind())),
        };
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(format!("must be 1 to {MAX_ID_LEN} bytes long"));
        }
        if let Some(c) = id.chars().find(|&c| is_hidden_char(c)) {
            return Err(format!(
                "must not contain control or bidirectional formatting characters, found U+{:04X}",
                c as u32
            ));
        }
        Ok(Self(id))
    }
}

/// Characters that are invisible or reorder the text around them (control
/// characters, bidirectional marks, embeddings, overrides and isolates): in
/// an id they make two ids look alike or a log line read differently.
pub fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// A series length in the compact form.
struct Size(usize);

impl Item for Size {
    fn from_early(early: Early) -> Option<Items<Self>> {
        match early {
            Early::Sizes(items) => Some(items),
            _ => None,
        }
    }

    fn from_scalar(s: Scalar) -> Result<Self, String> {
        s.integer(1, MAX_SERIES_LEN as i64)
            .map(|n| Self(n as usize))
    }
}

/// A season length.
struct Season(usize);

impl Item for Season {
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        s.integer(1, MAX_SEASON_LENGTH).map(|n| Self(n as usize))
    }
}

impl Item for Level {
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s.number() {
            Some(x) => Level::parse(x).map_err(|e| e.to_string()),
            None => Err(format!(
                "must be a number strictly between 0 and 100, got {}",
                s.short()
            )),
        }
    }
}

/// A member of an object as it was kept while the body was read.
enum Member {
    /// Its JSON text. A column key whose value is not an array keeps a
    /// stand-in of the same JSON kind instead (only its kind is looked at).
    Raw(Box<RawValue>),
    /// An array read into its type as it arrived; taken once.
    Early(RefCell<Option<Early>>),
    /// An unknown key: its value was skipped.
    Skipped,
}

/// The large arrays of a fit, read into their types as they arrive, so that
/// their text is never held (the body is parsed while it is received).
enum Early {
    Numbers(Items<Observation>),
    Stamps(Items<Stamp>),
    Sizes(Items<Size>),
    Groups(Groups),
    Series(Vec<Entry>),
    /// Not decoded: the series it would be cut into were refused already.
    Skipped,
}

/// An item of `series`: an object, or the JSON kind of what is not one.
type Entry = Result<Fields, &'static str>;

/// Why the reading of a body stopped before its end (a limit was broken):
/// the field and the message.
type Refusal = RefCell<Option<(String, String)>>;

/// `[]`, what [`Fields::get`] shows of an array read as it arrived.
fn empty_array() -> &'static RawValue {
    static EMPTY: OnceLock<Box<RawValue>> = OnceLock::new();
    EMPTY.get_or_init(|| RawValue::from_string("[]".to_string()).expect("[] is JSON"))
}

/// A member kept as a constant JSON text of the kind its value had.
fn stand_in(text: &str) -> Member {
    Member::Raw(RawValue::from_string(text.to_string()).expect("a JSON constant"))
}

/// The members of one object of the body, with the path that names them.
struct Fields {
    at: String,
    members: Vec<(String, Member)>,
    repeated: Vec<String>,
}

impl Fields {
    /// Reports repeated and unknown keys.
    fn check(&self, allowed: &[&str], errors: &mut Errors) {
        for key in &self.repeated {
            errors.add(&self.path(key), REPEATED_KEY);
        }
        for (key, _) in &self.members {
            if !allowed.contains(&key.as_str()) {
                errors.add(
                    &self.path(key),
                    format!("unknown field; expected one of: {}", allowed.join(", ")),
                );
            }
        }
    }

    fn path(&self, name: &str) -> String {
        if self.at.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.at)
        }
    }

    fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|(k, _)| k == name).map(|(_, m)| m)
    }

    /// A member that is present and not `null` (`[]` for an array read as
    /// it arrived).
    fn get(&self, name: &str) -> Option<&RawValue> {
        match self.member(name)? {
            Member::Raw(raw) => Some(&**raw).filter(|v| !is_null(v)),
            Member::Early(_) => Some(empty_array()),
            Member::Skipped => None,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Takes the array `name` read as it arrived.
    fn early(&self, name: &str) -> Option<Early> {
        match self.member(name)? {
            Member::Early(cell) => cell.borrow_mut().take(),
            _ => None,
        }
    }

    /// Looks at the array `name` read as it arrived.
    fn peek<R>(&self, name: &str, look: impl FnOnce(&Early) -> Option<R>) -> Option<R> {
        match self.member(name)? {
            Member::Early(cell) => cell.borrow().as_ref().and_then(look),
            _ => None,
        }
    }

    /// A scalar member turned into its type by `convert`.
    fn scalar<T>(
        &self,
        name: &str,
        errors: &mut Errors,
        convert: impl FnOnce(Scalar) -> Result<T, String>,
    ) -> Option<Option<T>> {
        let Some(raw) = self.get(name) else {
            return Some(None);
        };
        match serde_json::from_str::<Scalar>(raw.get()) {
            Ok(s) => match convert(s) {
                Ok(v) => Some(Some(v)),
                Err(message) => {
                    errors.add(&self.path(name), message);
                    None
                }
            },
            Err(e) => {
                errors.add("body", json_error_message(&e));
                None
            }
        }
    }

    /// An array member read element by element; `what` names its elements
    /// for the message when it is not an array.
    fn items<T: Item>(&self, name: &str, what: &str, errors: &mut Errors) -> Option<Items<T>> {
        let raw = self.get(name)?;
        array(raw, &self.path(name), what, errors)
    }

    /// [`Self::items`] of an array that may hold at most `max` elements;
    /// `too_many(max)` says why one more is refused. An array read as it
    /// arrived was bounded then (and refused there).
    fn items_at_most<T: Item>(
        &self,
        name: &str,
        what: &str,
        max: usize,
        too_many: impl FnOnce(usize) -> String,
        errors: &mut Errors,
    ) -> Option<Items<T>> {
        let raw = self.get(name)?;
        let path = self.path(name);
        if kind(raw) != "an array" {
            return array(raw, &path, what, errors);
        }
        if let Some(Member::Early(_)) = self.member(name) {
            return self.early(name).and_then(T::from_early);
        }
        // Each element takes at least one byte and a comma.
        let capacity = raw.get().len() / 2 + 1;
        let mut de = serde_json::Deserializer::from_str(raw.get());
        match ItemsAtMost::<T>::new(max, capacity).deserialize(&mut de) {
            Ok(items) => Some(items),
            Err(e) if e.to_string().starts_with(TOO_MANY) => {
                errors.add(&path, too_many(max));
                None
            }
            Err(e) => {
                errors.add("body", json_error_message(&e));
                None
            }
        }
    }
}

/// Which members of an object are read into their types as they arrive.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// None: a small body (options, forecasts).
    Plain,
    /// `/fit_model`: `data` and `ds`.
    Seed,
    /// `PUT /v1/models/{name}`: `series`, `sizes`, `unique_id`, `y`, `ds`.
    V1,
    /// An item of `series`: `values` and `ds`.
    Item,
}

/// How an array member is read as it arrives.
enum Column {
    /// Observations, refused past `max` with the message `too_many`.
    Numbers {
        max: usize,
        capacity: usize,
        split: Option<Split>,
        too_many: String,
    },
    /// Timestamps, likewise.
    Stamps {
        max: usize,
        split: Option<Split>,
        too_many: String,
    },
    Sizes,
    Groups,
    Series,
    /// Skipped: the series it would be cut into were refused.
    Skip,
}

/// Reads one object of the body member by member as it arrives: small
/// members are kept as text, unknown ones skipped, and the large arrays
/// ([`Early`]) read into their types at once, within the limits known from
/// the members before them.
struct ObjectSeed<'r> {
    shape: Shape,
    allowed: &'r [&'r str],
    at: String,
    /// Capacity for `values` (the previous item's length: series are often
    /// equally long).
    hint: usize,
    refusal: &'r Refusal,
}

impl ObjectSeed<'_> {
    /// How the member `key` is read, if it is one of the large arrays;
    /// `fields` holds the members read before it.
    fn column(&self, key: &str, fields: &Fields) -> Option<Column> {
        match (self.shape, key) {
            (Shape::Seed, "data") | (Shape::Item, "values") => Some(Column::Numbers {
                max: MAX_SERIES_LEN,
                capacity: self.hint,
                split: None,
                too_many: format!(
                    "has more than {MAX_SERIES_LEN} elements; at most {MAX_SERIES_LEN} are accepted"
                ),
            }),
            (Shape::Seed | Shape::Item, "ds") => {
                // As many timestamps as values, when the values came first.
                let values = if self.shape == Shape::Seed {
                    "data"
                } else {
                    "values"
                };
                let n = fields
                    .peek(values, |early| match early {
                        Early::Numbers(items)
                            if items.n_bad == 0 && items.len >= MIN_SERIES_LEN =>
                        {
                            Some(items.len)
                        }
                        _ => None,
                    })
                    .unwrap_or(MAX_SERIES_LEN);
                Some(Column::Stamps {
                    max: n,
                    split: None,
                    too_many: format!("has more than {n} timestamps but there are {n} values"),
                })
            }
            (Shape::V1, "sizes") => Some(Column::Sizes),
            (Shape::V1, "unique_id") => Some(Column::Groups),
            (Shape::V1, "series") => Some(Column::Series),
            (Shape::V1, "y" | "ds") => Some(column_plan(key, fields)),
            _ => None,
        }
    }
}

/// How `y` or `ds` of the column forms is read: cut into its series as it
/// arrives when `sizes` or `unique_id` came before it (and stopped at the
/// first row too many); whole, and cut afterwards, when it comes first (it
/// is then bounded only by the body limit: two bytes a row at least);
/// skipped when the series were refused.
fn column_plan(key: &str, fields: &Fields) -> Column {
    let split = match (fields.has("sizes"), fields.has("unique_id")) {
        (false, false) => None,
        (true, false) => fields.peek("sizes", |early| match early {
            Early::Sizes(items)
                if items.bad.is_empty() && (1..=MAX_SERIES_PER_FIT).contains(&items.len) =>
            {
                Some(Split::Runs(items.items.iter().map(|s| s.0).collect()))
            }
            _ => None,
        }),
        (false, true) => fields.peek("unique_id", |early| match early {
            Early::Groups(groups) if (1..=MAX_SERIES_PER_FIT).contains(&groups.names.len()) => {
                let of_row = groups.of_row.clone()?;
                Some(Split::Rows(of_row, groups.counts.clone()))
            }
            _ => None,
        }),
        (true, true) => None,
    };
    let Some(split) = split else {
        return if fields.has("sizes") || fields.has("unique_id") {
            Column::Skip
        } else if key == "y" {
            Column::Numbers {
                max: usize::MAX,
                capacity: 0,
                split: None,
                too_many: String::new(),
            }
        } else {
            Column::Stamps {
                max: usize::MAX,
                split: None,
                too_many: String::new(),
            }
        };
    };
    let n: usize = split.counts().iter().sum();
    let rows = match split {
        Split::Runs(_) => format!("'sizes' add up to {n}"),
        Split::Rows(..) => format!("'unique_id' has {n} rows"),
    };
    if key == "y" {
        Column::Numbers {
            max: n,
            capacity: 0,
            split: Some(split),
            too_many: format!("has more than {n} values but {rows}"),
        }
    } else {
        Column::Stamps {
            max: n,
            split: Some(split),
            too_many: format!("has more than {n} timestamps but {rows}"),
        }
    }
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Entry;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let mut fields = Fields {
            at: self.at.clone(),
            members: Vec::new(),
            repeated: Vec::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            // The first one counts; the repeated one is reported.
            if fields.member(&key).is_some() {
                map.next_value::<IgnoredAny>()?;
                fields.repeated.push(key);
                continue;
            }
            let member = if let Some(column) = self.column(&key, &fields) {
                map.next_value_seed(EarlySeed {
                    column,
                    path: fields.path(&key),
                    refusal: self.refusal,
                })?
            } else if self.allowed.contains(&key.as_str()) {
                Member::Raw(map.next_value()?)
            } else {
                map.next_value::<IgnoredAny>()?;
                Member::Skipped
            };
            fields.members.push((key, member));
        }
        Ok(Ok(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array"))
    }

    fn visit_unit<E>(self) -> Result<Entry, E> {
        Ok(Err("null"))
    }

    fn visit_none<E>(self) -> Result<Entry, E> {
        Ok(Err("null"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Entry, E> {
        Ok(Err("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Entry, E> {
        Ok(Err("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Entry, E> {
        Ok(Err("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Entry, E> {
        Ok(Err("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Entry, E> {
        Ok(Err("a string"))
    }
}

/// Reads one of the large arrays as it arrives ([`Column`]); a value that
/// is not an array is kept as a stand-in of its kind. A limit broken stops
/// the whole body there, told in `refusal`.
struct EarlySeed<'r> {
    column: Column,
    path: String,
    refusal: &'r Refusal,
}

impl EarlySeed<'_> {
    fn refuse<E: serde::de::Error>(&self, e: E, message: String) -> E {
        if e.to_string().starts_with(TOO_MANY) {
            *self.refusal.borrow_mut() = Some((self.path.clone(), message));
        }
        e
    }
}

impl<'de> DeserializeSeed<'de> for EarlySeed<'_> {
    type Value = Member;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Member, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EarlySeed<'_> {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member, A::Error> {
        let early = match &self.column {
            Column::Numbers {
                max,
                capacity,
                split,
                too_many,
            } => {
                let mut read = ItemsAtMost::new(*max, *capacity);
                read.split = split.clone();
                Early::Numbers(
                    read.read(seq)
                        .map_err(|e| self.refuse(e, too_many.clone()))?,
                )
            }
            Column::Stamps {
                max,
                split,
                too_many,
            } => {
                let mut read = ItemsAtMost::new(*max, 0);
                read.split = split.clone();
                Early::Stamps(
                    read.read(seq)
                        .map_err(|e| self.refuse(e, too_many.clone()))?,
                )
            }
            Column::Sizes => Early::Sizes(
                ItemsAtMost::new(MAX_SERIES_PER_FIT, 0)
                    .read(seq)
                    .map_err(|e| self.refuse(e, too_many_series(MAX_SERIES_PER_FIT)))?,
            ),
            Column::Groups => {
                let mut refused = None;
                match (RowGroups {
                    refused: &mut refused,
                })
                .visit_seq(seq)
                {
                    Ok(groups) => Early::Groups(groups),
                    Err(e) => {
                        if let Some(refused) = refused {
                            *self.refusal.borrow_mut() = Some(refused);
                        }
                        return Err(e);
                    }
                }
            }
            Column::Series => {
                let mut entries: Vec<Entry> = Vec::new();
                let mut hint = 0;
                loop {
                    if entries.len() == MAX_SERIES_PER_FIT {
                        // Refused at the first item too many, not read.
                        if seq.next_element::<IgnoredAny>()?.is_some() {
                            let e: A::Error = serde::de::Error::custom(format!("{TOO_MANY}series"));
                            return Err(self.refuse(e, too_many_series(MAX_SERIES_PER_FIT)));
                        }
                        break;
                    }
                    let item = ObjectSeed {
                        shape: Shape::Item,
                        allowed: &ITEM_FIELDS,
                        at: format!("series[{}]", entries.len()),
                        hint,
                        refusal: self.refusal,
                    };
                    let Some(entry) = seq.next_element_seed(item)? else {
                        break;
                    };
                    if let Ok(fields) = &entry {
                        hint = fields
                            .peek("values", |early| match early {
                                Early::Numbers(items) => Some(items.len),
                                _ => None,
                            })
                            .unwrap_or(hint);
                    }
                    entries.push(entry);
                }
                Early::Series(entries)
            }
            Column::Skip => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Early::Skipped
            }
        };
        Ok(Member::Early(RefCell::new(Some(early))))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Member, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(stand_in("{}"))
    }

    fn visit_unit<E>(self) -> Result<Member, E> {
        Ok(stand_in("null"))
    }

    fn visit_none<E>(self) -> Result<Member, E> {
        Ok(stand_in("null"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Member, E> {
        Ok(stand_in("true"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Member, E> {
        Ok(stand_in("0"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Member, E> {
        Ok(stand_in("0"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Member, E> {
        Ok(stand_in("0"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Member, E> {
        Ok(stand_in("\"\""))
    }
}

fn array<T: Item>(raw: &RawValue, path: &str, what: &str, errors: &mut Errors) -> Option<Items<T>> {
    if kind(raw) != "an array" {
        errors.add(
            path,
            format!("must be an array of {what}, got {}", kind(raw)),
        );
        return None;
    }
    match serde_json::from_str::<Items<T>>(raw.get()) {
        Ok(items) => Some(items),
        Err(e) => {
            errors.add("body", json_error_message(&e));
            None
        }
    }
}

/// Reads the body's top-level object from `de` (a whole body, or one still
/// arriving), the large arrays of `shape` read as they come.
fn read_fields<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    shape: Shape,
    allowed: &[&str],
    errors: &mut Errors,
) -> Result<Option<Fields>, ApiError> {
    let refusal = Refusal::default();
    let seed = ObjectSeed {
        shape,
        allowed,
        at: String::new(),
        hint: 0,
        refusal: &refusal,
    };
    let read = seed
        .deserialize(&mut *de)
        .and_then(|entry| de.end().map(|()| entry));
    let entry = match read {
        Ok(entry) => entry,
        Err(e) => {
            return Err(match refusal.take() {
                Some((field, message)) => ApiError::field(&field, message),
                None => ApiError::field("body", json_error_message(&e)),
            })
        }
    };
    match entry {
        Ok(fields) => {
            fields.check(allowed, errors);
            Ok(Some(fields))
        }
        Err(kind) => {
            errors.add("body", format!("must be a JSON object, got {kind}"));
            Ok(None)
        }
    }
}

/// Parses a small body and splits the top-level object.
fn body_fields(
    body: &[u8],
    allowed: &[&str],
    errors: &mut Errors,
) -> Result<Option<Fields>, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    read_fields(&mut de, Shape::Plain, allowed, errors)
}

// ---- fit options ----

/// What a fit says besides its series.
struct FitOptions {
    method: Method,
    seasons: Option<Vec<usize>>,
    nonnegative: Option<bool>,
    freq: Option<Freq>,
}

fn method(s: Scalar) -> Result<Method, String> {
    match s {
        Scalar::Str(text) => text.parse::<Method>().map_err(|e| e.to_string()),
        other => Err(format!(
            "must be a string such as \"auto\", got {}",
            other.kind()
        )),
    }
}

fn freq(s: Scalar) -> Result<Freq, String> {
    match s {
        Scalar::Str(text) => Freq::parse(&text).map_err(|e| e.to_string()),
        other => Err(format!(
            "must be a frequency string such as \"h\", \"D\" or \"MS\", got {}",
            other.kind()
        )),
    }
}

fn timestamp(s: Scalar) -> Result<Timestamp, String> {
    match s {
        Scalar::Str(text) => Timestamp::parse(&text).map_err(|e| e.to_string()),
        other => Err(format!(
            "must be a date string such as \"2024-01-31\", got {}",
            other.kind()
        )),
    }
}

fn fit_options(f: &Fields, errors: &mut Errors) -> Option<FitOptions> {
    let method = f
        .scalar("method", errors, method)
        .map(|m| m.unwrap_or_default());
    let nonnegative = f.scalar("nonnegative", errors, |s| match s {
        Scalar::Bool(b) => Ok(b),
        other => Err(format!("must be true or false, got {}", other.short())),
    });
    let freq = f.scalar("freq", errors, freq);
    let seasons = season_lengths(f, errors);
    Some(FitOptions {
        method: method?,
        seasons: seasons?,
        nonnegative: nonnegative?,
        freq: freq?,
    })
}

/// `season_length`: an integer, or a list of them (`[24, 168]`).
fn season_lengths(f: &Fields, errors: &mut Errors) -> Option<Option<Vec<usize>>> {
    let Some(raw) = f.get("season_length") else {
        return Some(None);
    };
    let path = f.path("season_length");
    if kind(raw) != "an array" {
        return f
            .scalar("season_length", errors, |s| {
                s.integer(1, MAX_SEASON_LENGTH)
                    .map_err(|e| format!("{e} (or a list of such integers, e.g. [24, 168])"))
            })
            .map(|n| n.map(|n| vec![n as usize]));
    }
    let items: Items<Season> = array(raw, &path, "integers", errors)?;
    if let Some((index, message)) = items.bad.first() {
        errors.add(&format!("{path}[{index}]"), message.clone());
        return None;
    }
    let mut seasons: Vec<usize> = items.items.into_iter().map(|s| s.0).collect();
    if seasons.is_empty() {
        errors.add(
            &path,
            "must not be empty; leave it out to have the seasons found from the data",
        );
        return None;
    }
    if seasons.len() > MAX_SEASONS {
        errors.add(&path, format!("at most {MAX_SEASONS} seasons are accepted"));
        return None;
    }
    if seasons.len() > 1 && seasons.contains(&1) {
        errors.add(
            &path,
            "1 means no seasonality and cannot be combined with other season lengths",
        );
        return None;
    }
    seasons.sort_unstable();
    seasons.dedup();
    Some(Some(seasons))
}

/// The model spec of a fit: explicit seasons win; without them the
/// candidates come from the series' frequency.
fn spec(options: &FitOptions, freqs: &[Freq], errors: &mut Errors) -> Option<ModelSpec> {
    let mut spec = ModelSpec::with_seasons(options.method, Vec::new());
    spec.nonnegative = options.nonnegative;
    if let Some(seasons) = &options.seasons {
        spec.seasons = seasons.clone();
        return Some(spec);
    }
    // One spec serves every series: frequencies that propose the same
    // seasons (weeks ending on Friday and on Saturday) fit together.
    let mut distinct: Vec<(Vec<usize>, Vec<Freq>)> = Vec::new();
    for f in freqs {
        let candidates = f.season_candidates();
        match distinct.iter_mut().find(|(c, _)| *c == candidates) {
            Some((_, named)) if !named.contains(f) => named.push(*f),
            Some(_) => {}
            None => distinct.push((candidates, vec![*f])),
        }
    }
    match distinct.as_slice() {
        [] => {}
        [(one, _)] => spec.season_candidates = one.clone(),
        several => {
            let names: Vec<String> = several.iter().map(|(_, f)| f[0].to_string()).collect();
            let shown = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            let more = match names.len() {
                n if n > 5 => format!(" and {} more", n - 5),
                _ => String::new(),
            };
            errors.add(
                "freq",
                format!(
                    "the series have frequencies with different seasons ({shown}{more}); give \
                     'season_length' or fit them as separate models"
                ),
            );
            return None;
        }
    }
    Some(spec)
}

// ---- series and their calendars ----

/// When a series' values were observed.
enum When {
    Unknown,
    Ds(Vec<Timestamp>),
    Start(Timestamp),
    /// Integer positions, one per value, not yet placed on their step.
    Positions(Vec<i64>),
    /// Integer positions already placed on their step (a table's `ds`).
    Index(IndexAxis),
}

/// One series as the client sent it, before it is put on its calendar.
struct SeriesIn {
    id: String,
    /// NaN where a value is missing.
    values: Vec<f64>,
    when: When,
    freq: Option<Freq>,
    /// Field names for messages (borrowed where fixed: no allocation per
    /// series of a big table).
    values_field: Cow<'static, str>,
    ds_field: Cow<'static, str>,
    start_field: Cow<'static, str>,
    freq_field: Cow<'static, str>,
    /// Prefix of every message (`series 'a': ` in the column forms).
    label: String,
    /// Where its timestamps are in the body.
    rows: Rows,
}

/// Where a series' timestamps are in the body, for messages.
enum Rows {
    /// In its own `ds` array.
    Own,
    /// Compact form: consecutive rows of the `ds` column, from this one.
    From(usize),
    /// Long form: the rows of the `ds` column whose series (numbered in
    /// order of first appearance) is this one.
    Group(Arc<Vec<u32>>, u32),
    /// A CSV or Parquet table's rows, sorted by time on reading: a position
    /// among them is not a line of the file, so messages name the time.
    Sorted,
}

impl Rows {
    /// The row of the `ds` column that holds the series' `i`-th timestamp.
    fn row(&self, i: usize) -> usize {
        match self {
            Rows::Own | Rows::Sorted => i,
            Rows::From(start) => start + i,
            Rows::Group(of_row, series) => of_row
                .iter()
                .enumerate()
                .filter(|(_, s)| *s == series)
                .nth(i)
                .map_or(i, |(row, _)| row),
        }
    }
}

/// A series ready to fit, and the frequency it was given or found to have.
struct Placed {
    series: NamedSeries,
    freq: Option<Freq>,
}

impl SeriesIn {
    fn stamp_name(&self, ds: &[Timestamp], i: usize) -> String {
        let shown = ds.get(i).map(|t| t.to_string()).unwrap_or_default();
        match &self.rows {
            Rows::Own => format!("timestamp {i} ({shown})"),
            Rows::Sorted => format!("timestamp {shown}"),
            rows => format!("ds[{}] ({shown})", rows.row(i)),
        }
    }

    fn grid_message(&self, ds: &[Timestamp], e: &CalendarError, given: bool) -> String {
        let found = if given {
            "the given freq"
        } else {
            "the step found in these timestamps"
        };
        let body = match e {
            CalendarError::MixedZones {
                index,
                first,
                other,
            } => format!(
                "timestamps mix time zones: {} has {other} but {} has {first}; send every timestamp in one offset (e.g. UTC)",
                self.stamp_name(ds, *index),
                self.stamp_name(ds, 0)
            ),
            CalendarError::Grid(GridError::Duplicate { index }) => {
                let how = match self.rows {
                    Rows::Sorted => "is on more than one row",
                    _ => "repeats the timestamp before it",
                };
                format!(
                    "{} {how}; timestamps must be distinct",
                    self.stamp_name(ds, *index)
                )
            }
            CalendarError::Grid(GridError::Unsorted { index }) => format!(
                "{} is earlier than the timestamp before it; timestamps must be sorted",
                self.stamp_name(ds, *index)
            ),
            CalendarError::Grid(GridError::OffGrid { index: 0, freq }) => format!(
                "{} is not on the calendar of freq {freq} ({found})",
                self.stamp_name(ds, 0)
            ),
            CalendarError::Grid(GridError::OffGrid { index, freq }) => {
                // Monthly values dated mid-month step by 28 to 31 days.
                let monthly = !given
                    && freq.unit() == FreqUnit::Day
                    && (28..=31).contains(&freq.n());
                format!(
                    "{} is not on one regular grid with {}: the step is {freq} ({found}){}",
                    self.stamp_name(ds, *index),
                    self.stamp_name(ds, 0),
                    if monthly {
                        "; monthly values must be dated on month starts (freq MS) or month ends (ME)"
                    } else {
                        ""
                    }
                )
            }
            CalendarError::Grid(other) => other.to_string(),
        };
        format!("{}{body}", self.label)
    }

    /// Integer positions (sorted, distinct) on their step, the values at
    /// their places and NaN in the gaps: the rule of table bodies.
    fn place_positions(positions: &[i64], values: &[f64]) -> Result<(IndexAxis, Vec<f64>), String> {
        if positions.len() != values.len() {
            return Err(format!(
                "has {} positions but there are {} values",
                positions.len(),
                values.len()
            ));
        }
        if let Some(i) = (1..positions.len()).find(|&i| positions[i] <= positions[i - 1]) {
            return Err(format!(
                "element {i} ({}) is not after the one before ({}); integer positions must be sorted and distinct",
                positions[i],
                positions[i - 1]
            ));
        }
        let grid = tabular::IndexGrid::place(positions.iter().copied(), values, MAX_SERIES_LEN)?;
        Ok((
            IndexAxis::from_first(grid.first, grid.step, grid.values.len()),
            grid.values,
        ))
    }

    fn place(mut self, default_freq: Option<Freq>, errors: &mut Errors) -> Option<Placed> {
        let freq = self.freq.or(default_freq);
        // Moved, not copied: the series keeps the vector its values were read into.
        let values = std::mem::take(&mut self.values);
        let mut index = match self.when {
            When::Index(axis) => Some(axis),
            _ => None,
        };
        let (values, calendar) = match &self.when {
            When::Unknown | When::Index(_) => (values, None),
            // No calendar: a `freq` only proposes season lengths, as
            // without timestamps.
            When::Positions(positions) => match Self::place_positions(positions, &values) {
                Ok((axis, placed)) => {
                    index = Some(axis);
                    (placed, None)
                }
                Err(message) => {
                    errors.add(&self.ds_field, format!("{}{message}", self.label));
                    return None;
                }
            },
            When::Start(start) => {
                let Some(freq) = freq else {
                    errors.add(
                        &self.freq_field,
                        format!(
                            "{}is required with 'start' (e.g. \"D\", \"h\", \"MS\")",
                            self.label
                        ),
                    );
                    return None;
                };
                match SeriesCalendar::from_start(*start, freq, values.len()) {
                    Ok(cal) => (values, Some(cal)),
                    Err(GridError::OffGrid { .. }) => {
                        errors.add(
                            &self.start_field,
                            format!(
                                "{}{start} is not on the calendar of freq {freq}",
                                self.label
                            ),
                        );
                        return None;
                    }
                    Err(_) => {
                        errors.add(
                            &self.start_field,
                            format!(
                                "{}{} steps of {freq} from {start} pass the last date there \
                                 is ({})",
                                self.label,
                                values.len(),
                                SeriesCalendar::last_date()
                            ),
                        );
                        return None;
                    }
                }
            }
            When::Ds(ds) => {
                if ds.len() != values.len() {
                    errors.add(
                        &self.ds_field,
                        format!(
                            "{}has {} timestamps but there are {} values",
                            self.label,
                            ds.len(),
                            values.len()
                        ),
                    );
                    return None;
                }
                let grid = match Grid::of(ds, freq) {
                    Ok(grid) => grid,
                    Err(e) => {
                        errors.add(&self.ds_field, self.grid_message(ds, &e, freq.is_some()));
                        return None;
                    }
                };
                let span = grid.positions.last().map_or(0, |p| p + 1);
                if span > MAX_SERIES_LEN {
                    errors.add(
                        &self.ds_field,
                        format!(
                            "{}the timestamps span {span} steps of {}; at most {MAX_SERIES_LEN} are accepted",
                            self.label, grid.calendar.freq
                        ),
                    );
                    return None;
                }
                // Positions strictly increase from 0: as many steps as values
                // means no gap, and the values are already in place.
                if span == values.len() {
                    (values, Some(grid.calendar))
                } else {
                    let mut placed = vec![f64::NAN; span];
                    for (&p, &v) in grid.positions.iter().zip(&values) {
                        placed[p] = v;
                    }
                    (placed, Some(grid.calendar))
                }
            }
        };
        if let Some(cal) = calendar {
            // Forecasts must be able to date every step they may be asked for.
            if cal.last.step(&cal.freq, MAX_HORIZON as i64).is_none() {
                let field = match self.when {
                    When::Start(_) => &self.start_field,
                    _ => &self.ds_field,
                };
                errors.add(
                    field,
                    format!(
                        "{}the last timestamp {} leaves no room for {MAX_HORIZON} forecast steps \
                         of {} before the last date there is ({})",
                        self.label,
                        cal.last,
                        cal.freq,
                        SeriesCalendar::last_date()
                    ),
                );
                return None;
            }
        }
        let freq = calendar.map(|c| c.freq).or(freq);
        match SeriesData::with_nan_gaps(values) {
            Ok(data) => Some(Placed {
                series: NamedSeries {
                    id: self.id,
                    values: data,
                    calendar,
                    index,
                },
                freq,
            }),
            Err(e) => {
                let grid_note = if matches!(self.when, When::Ds(_) | When::Positions(_)) {
                    " (timestamps missing from the grid count as missing values)"
                } else {
                    ""
                };
                errors.add(&self.values_field, format!("{}{e}{grid_note}", self.label));
                None
            }
        }
    }
}

/// The values of one series: an array of numbers or `null` (NaN), between
/// the length limits.
fn observations(f: &Fields, name: &str, errors: &mut Errors) -> Option<Vec<f64>> {
    let path = f.path(name);
    let too_many = |max| format!("has more than {max} elements; at most {max} are accepted");
    let Some(items) =
        f.items_at_most::<Observation>(name, "numbers", MAX_SERIES_LEN, too_many, errors)
    else {
        if f.get(name).is_none() {
            errors.add(
                &path,
                "is required: an array of numbers (null for a missing one)",
            );
        }
        return None;
    };
    if let Some(message) = items.summary() {
        errors.add(&path, message);
        return None;
    }
    let n = items.len;
    if n == 0 {
        errors.add(&path, "must not be empty");
        return None;
    }
    if n > MAX_SERIES_LEN {
        errors.add(
            &path,
            format!("has {n} points; at most {MAX_SERIES_LEN} are accepted"),
        );
        return None;
    }
    if n < MIN_SERIES_LEN {
        errors.add(
            &path,
            format!(
                "has {n} point{}; at least {MIN_SERIES_LEN} are needed",
                if n == 1 { "" } else { "s" }
            ),
        );
        return None;
    }
    Some(values(items.items))
}

/// `ds` or `start` of a series given as an object; `ds` holds at most
/// `n_values` timestamps.
fn when(f: &Fields, n_values: usize, errors: &mut Errors) -> Option<When> {
    if f.has("ds") && f.has("start") {
        errors.add(&f.path("start"), "give either 'ds' or 'start', not both");
        return None;
    }
    if f.has("ds") {
        let too_many = |n| format!("has more than {n} timestamps but there are {n} values");
        let items: Items<Stamp> =
            f.items_at_most("ds", "date strings or integers", n_values, too_many, errors)?;
        if let Some(message) = items.summary() {
            errors.add(&f.path("ds"), message);
            return None;
        }
        return match when_of(items.items) {
            Ok(when) => Some(when),
            Err(message) => {
                errors.add(&f.path("ds"), message);
                None
            }
        };
    }
    match f.scalar("start", errors, timestamp)? {
        Some(start) => Some(When::Start(start)),
        None => Some(When::Unknown),
    }
}

/// A series given as an object (`/fit_model`'s body, or an item of `series`).
fn object_series(
    f: &Fields,
    id: String,
    values_name: &str,
    errors: &mut Errors,
) -> Option<SeriesIn> {
    let values = observations(f, values_name, errors);
    let n_values = values.as_ref().map_or(MAX_SERIES_LEN, Vec::len);
    let when = when(f, n_values, errors);
    let freq = f.scalar("freq", errors, freq);
    Some(SeriesIn {
        id,
        values: values?,
        when: when?,
        freq: freq?,
        values_field: f.path(values_name).into(),
        ds_field: f.path("ds").into(),
        start_field: f.path("start").into(),
        freq_field: f.path("freq").into(),
        label: String::new(),
        rows: Rows::Own,
    })
}

/// Puts every series on its calendar and builds the fit.
fn finish_fit(
    series: Vec<SeriesIn>,
    options: FitOptions,
    errors: &mut Errors,
) -> Option<FitRequest> {
    let mut placed = Vec::with_capacity(series.len());
    for s in series {
        if let Some(p) = s.place(options.freq, errors) {
            placed.push(p);
        }
        if errors.is_full() {
            return None;
        }
    }
    let freqs: Vec<Freq> = placed.iter().filter_map(|p| p.freq).collect();
    let spec = spec(&options, &freqs, errors)?;
    Some(FitRequest {
        series: placed.into_iter().map(|p| p.series).collect(),
        spec,
    })
}

const SEED_FIELDS: [&str; 7] = [
    "data",
    "season_length",
    "method",
    "nonnegative",
    "ds",
    "start",
    "freq",
];

impl FromJson for SeedFit {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        Self::read(serde_json::Deserializer::from_slice(body))
    }

    fn from_reader(body: impl std::io::Read) -> Result<Self, ApiError> {
        Self::read(serde_json::Deserializer::from_reader(body))
    }
}

impl SeedFit {
    fn read<'de, R: serde_json::de::Read<'de>>(
        mut de: serde_json::Deserializer<R>,
    ) -> Result<Self, ApiError> {
        let mut errors = Errors::default();
        let fields = read_fields(&mut de, Shape::Seed, &SEED_FIELDS, &mut errors)?;
        let parsed = fields.and_then(|f| {
            let options = fit_options(&f, &mut errors);
            // The top-level `freq` is the series' own here.
            let series = object_series(&f, SEED_SERIES_ID.to_string(), "data", &mut errors);
            finish_fit(vec![series?], options?, &mut errors)
        });
        errors.finish(parsed).map(SeedFit)
    }
}

const V1_FIELDS: [&str; 10] = [
    "series",
    "sizes",
    "y",
    "ids",
    "unique_id",
    "ds",
    "season_length",
    "method",
    "nonnegative",
    "freq",
];

const ITEM_FIELDS: [&str; 5] = ["id", "values", "ds", "start", "freq"];

impl FromJson for V1Fit {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        Self::read(serde_json::Deserializer::from_slice(body))
    }

    fn from_reader(body: impl std::io::Read) -> Result<Self, ApiError> {
        Self::read(serde_json::Deserializer::from_reader(body))
    }
}

impl V1Fit {
    fn read<'de, R: serde_json::de::Read<'de>>(
        mut de: serde_json::Deserializer<R>,
    ) -> Result<Self, ApiError> {
        let mut errors = Errors::default();
        let fields = read_fields(&mut de, Shape::V1, &V1_FIELDS, &mut errors)?;
        let parsed = fields.and_then(|f| {
            let options = fit_options(&f, &mut errors);
            let columns = ["sizes", "y", "ids", "unique_id", "ds"];
            let has_columns = columns.iter().any(|c| f.has(c));
            let series = match (f.has("series"), has_columns) {
                (true, true) => {
                    errors.add(
                        "series",
                        "send either 'series' or the columns ('sizes' + 'y', or 'unique_id' + 'ds' + 'y'), not both",
                    );
                    None
                }
                (false, false) => {
                    errors.add(
                        "series",
                        "is required: [{\"id\": \"a\", \"values\": [...]}, ...] (or the columns 'sizes' + 'y', or 'unique_id' + 'ds' + 'y')",
                    );
                    None
                }
                (true, false) => listed_series(&f, &mut errors),
                (false, true) => column_series(&f, &mut errors),
            };
            finish_fit(series?, options?, &mut errors)
        });
        errors.finish(parsed).map(V1Fit)
    }
}

/// One series of a table body (CSV, Parquet; see `bulk.rs`), its rows
/// sorted by time.
pub struct TableSeries {
    pub id: String,
    /// NaN for a missing value.
    pub values: Vec<f64>,
    pub time: TableTime,
}

/// The time axis of a [`TableSeries`].
#[derive(Debug)]
pub enum TableTime {
    /// Timestamps, one per value.
    Dates(Vec<Timestamp>),
    /// Values already placed on an integer axis's step.
    Index(IndexAxis),
}

/// The fit options a table body may come with (as a JSON object).
const TABLE_OPTIONS: [&str; 4] = ["season_length", "method", "nonnegative", "freq"];

/// `PUT /v1/models/{name}` with a table body: the options (a JSON object,
/// from the query string) and the table's series become the same
/// [`FitRequest`] as the JSON long form, through the same checks and
/// calendars.
pub fn table_fit(options: &[u8], series: Vec<TableSeries>) -> Result<FitRequest, ApiError> {
    let mut errors = Errors::default();
    let parsed = body_fields(options, &TABLE_OPTIONS, &mut errors)?.and_then(|f| {
        let options = fit_options(&f, &mut errors);
        if !series_count_within(
            series.len(),
            MAX_TABLE_SERIES_PER_FIT,
            "unique_id",
            &mut errors,
        ) {
            return None;
        }
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            if table_series_ok(&s.id, s.values.len(), &mut errors) {
                let label = format!("series '{}': ", s.id);
                out.push(SeriesIn {
                    id: s.id,
                    values: s.values,
                    when: match s.time {
                        TableTime::Dates(ds) => When::Ds(ds),
                        TableTime::Index(axis) => When::Index(axis),
                    },
                    freq: None,
                    values_field: "y".into(),
                    ds_field: "ds".into(),
                    start_field: "start".into(),
                    freq_field: "freq".into(),
                    label,
                    rows: Rows::Sorted,
                });
            }
            if errors.is_full() {
                return None;
            }
        }
        finish_fit(out, options?, &mut errors)
    });
    errors.finish(parsed)
}

/// Whether series `id` of a table, with `n` rows, may be fitted (its id
/// and length); the message why not goes to `errors`.
fn table_series_ok(id: &str, n: usize, errors: &mut Errors) -> bool {
    let label = || format!("series '{id}': ");
    if let Err(message) = SeriesId::from_scalar(Scalar::Str(id.to_string())) {
        errors.add("unique_id", format!("{}{message}", label()));
    } else if n < MIN_SERIES_LEN {
        errors.add(
            "y",
            format!(
                "{}has {n} points; at least {MIN_SERIES_LEN} are needed",
                label()
            ),
        );
    } else if n > MAX_SERIES_LEN {
        errors.add(
            "y",
            format!(
                "{}has {n} points; at most {MAX_SERIES_LEN} are accepted",
                label()
            ),
        );
    } else {
        return true;
    }
    false
}

/// The checks of [`table_fit`] that need each series' id and row count
/// only, for a table whose rows are spooled rather than held (see
/// `bulk.rs`): the fit options, the number of series, each id and length.
/// The series then go through [`table_fit`] shard by shard.
pub fn table_rows<'a>(
    options: &[u8],
    n_series: usize,
    series: impl Iterator<Item = (&'a str, usize)>,
) -> Result<(), ApiError> {
    let mut errors = Errors::default();
    let parsed = body_fields(options, &TABLE_OPTIONS, &mut errors)?.and_then(|f| {
        fit_options(&f, &mut errors)?;
        if !series_count_within(n_series, MAX_TABLE_SERIES_PER_FIT, "unique_id", &mut errors) {
            return None;
        }
        for (id, n) in series {
            table_series_ok(id, n, &mut errors);
            if errors.is_full() {
                return None;
            }
        }
        Some(())
    });
    errors.finish(parsed)
}

/// The model spec of a table fit checked shard by shard with
/// [`table_fit`]: as [`table_fit`] would find it for every series at once,
/// from the options and the frequencies every shard's series were found
/// to have (a shard's own spec knows only its own series).
pub fn table_spec(options: &[u8], freqs: &[Freq]) -> Result<ModelSpec, ApiError> {
    let mut errors = Errors::default();
    let parsed = body_fields(options, &TABLE_OPTIONS, &mut errors)?.and_then(|f| {
        let options = fit_options(&f, &mut errors)?;
        // Series without dates have the given freq, as in `SeriesIn::place`.
        let mut all = freqs.to_vec();
        all.extend(options.freq);
        spec(&options, &all, &mut errors)
    });
    errors.finish(parsed)
}

fn too_many_series(max: usize) -> String {
    format!("has more than {max} series; at most {max} are accepted in one fit")
}

fn series_count_ok(n: usize, field: &str, errors: &mut Errors) -> bool {
    series_count_within(n, MAX_SERIES_PER_FIT, field, errors)
}

fn series_count_within(n: usize, max: usize, field: &str, errors: &mut Errors) -> bool {
    if n == 0 {
        errors.add(field, "must not be empty");
        false
    } else if n > max {
        errors.add(
            field,
            format!("has {n} series; at most {max} are accepted in one fit"),
        );
        false
    } else {
        true
    }
}

/// `{"series": [{"id", "values", ...}, ...]}`.
fn listed_series(f: &Fields, errors: &mut Errors) -> Option<Vec<SeriesIn>> {
    let raw = f.get("series")?;
    if kind(raw) != "an array" {
        errors.add(
            "series",
            format!(
                "must be an array of {{\"id\", \"values\"}} objects, got {}",
                kind(raw)
            ),
        );
        return None;
    }
    // Read as it arrived, and stopped there past the limit.
    let Some(Early::Series(items)) = f.early("series") else {
        return None;
    };
    if !series_count_ok(items.len(), "series", errors) {
        return None;
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let fields = match item {
            Ok(fields) => {
                fields.check(&ITEM_FIELDS, errors);
                fields
            }
            Err(kind) => {
                errors.add(
                    &format!("series[{i}]"),
                    format!("must be an object {{\"id\", \"values\"}}, got {kind}"),
                );
                continue;
            }
        };
        let id = match fields.get("id") {
            None => {
                errors.add(&fields.path("id"), "is required");
                None
            }
            Some(_) => fields
                .scalar("id", errors, |s| SeriesId::from_scalar(s).map(|id| id.0))
                .flatten(),
        };
        let id = id.filter(|id| {
            let fresh = seen.insert(id.clone());
            if !fresh {
                errors.add(&fields.path("id"), format!("duplicate series id '{id}'"));
            }
            fresh
        });
        let series = object_series(&fields, id.clone().unwrap_or_default(), "values", errors);
        if let (Some(_), Some(series)) = (id, series) {
            out.push(series);
        }
        if errors.is_full() {
            break; // enough for the client to get going
        }
    }
    Some(out)
}

/// Ids read from an array (at most as many as a fit has series), each
/// checked and unique.
fn unique_ids(f: &Fields, name: &str, errors: &mut Errors) -> Option<Vec<String>> {
    let too_many = |max| format!("has more than {max} ids; at most {max} are accepted");
    let items: Items<SeriesId> =
        f.items_at_most(name, "strings", MAX_SERIES_PER_FIT, too_many, errors)?;
    let path = f.path(name);
    if let Some((index, message)) = items.bad.first() {
        errors.add(&format!("{path}[{index}]"), message.clone());
        return None;
    }
    let mut seen = HashSet::new();
    for (i, id) in items.items.iter().enumerate() {
        if !seen.insert(id.0.as_str()) {
            errors.add(
                &format!("{path}[{i}]"),
                format!("duplicate series id '{}'", id.0),
            );
            return None;
        }
    }
    Some(items.items.into_iter().map(|id| id.0).collect())
}

/// The series of a column form: their names, their lengths and, in the
/// long form, the series of each row.
struct Groups {
    names: Vec<String>,
    counts: Vec<usize>,
    /// Long form: the series of each row (its index in `names`). Compact
    /// form: `None`, the rows of a series are consecutive.
    of_row: Option<Arc<Vec<u32>>>,
}

/// The compact (`sizes` + `y`) and long (`unique_id` + `ds` + `y`) forms:
/// columns of equal length, cut into series.
///
/// The series and their lengths are read first, so `y` and `ds` are read
/// knowing how many rows they must have (stopped at the first one too many,
/// and a series too long is refused before `y` is read at all). `y` is read
/// straight into one `Vec<f64>` and cut into series from its end, giving its
/// memory back as they fill: about one copy of the values is in memory, not
/// two.
fn column_series(f: &Fields, errors: &mut Errors) -> Option<Vec<SeriesIn>> {
    if f.has("sizes") && f.has("unique_id") {
        errors.add(
            "unique_id",
            "send either 'sizes' (compact form) or 'unique_id' (long form), not both",
        );
        return None;
    }
    let long = f.has("unique_id");
    if !f.has("y") {
        errors.add(
            "y",
            if long {
                "is required with 'unique_id': the value of each row"
            } else {
                "is required with 'sizes': all values, series after series"
            },
        );
    }
    let groups = if long {
        if f.has("ids") {
            errors.add(
                "ids",
                "belongs to the compact form; the long form names series in 'unique_id'",
            );
            return None;
        }
        unique_ids_of_rows(f, errors)
    } else {
        compact_groups(f, errors)
    }?;
    if !f.has("y") {
        return None;
    }
    let n_rows: usize = groups.counts.iter().sum();
    let rows_are = |n: usize| {
        if long {
            format!("'unique_id' has {n} rows")
        } else {
            format!("'sizes' add up to {n}")
        }
    };
    let y = f
        .items_at_most::<Observation>(
            "y",
            "numbers",
            n_rows,
            |n| format!("has more than {n} values but {}", rows_are(n)),
            errors,
        )
        .and_then(|items| match items.summary() {
            Some(message) => {
                errors.add("y", message);
                None
            }
            None if items.len != n_rows => {
                errors.add(
                    "y",
                    format!("has {} values but {}", items.len, rows_are(n_rows)),
                );
                None
            }
            None => Some(match items.parts {
                Some(parts) => ColumnIn::Cut(parts.into_iter().map(values).collect()),
                None => ColumnIn::Whole(values(items.items)),
            }),
        });
    let ds: Option<Option<ColumnIn<Stamp>>> = match f.get("ds") {
        None => Some(None),
        Some(_) => f
            .items_at_most::<Stamp>(
                "ds",
                "date strings or integers",
                n_rows,
                |n| format!("has more than {n} timestamps but {}", rows_are(n)),
                errors,
            )
            .and_then(|items| match items.summary() {
                Some(message) => {
                    errors.add("ds", message);
                    None
                }
                None if items.len != n_rows => {
                    errors.add(
                        "ds",
                        format!("has {} timestamps but {}", items.len, rows_are(n_rows)),
                    );
                    None
                }
                None => Some(Some(match items.parts {
                    Some(parts) => ColumnIn::Cut(parts),
                    None => ColumnIn::Whole(items.items),
                })),
            }),
    };
    let (y, ds) = (y?, ds?);
    let mut short = false;
    for (i, (id, &n)) in groups.names.iter().zip(&groups.counts).enumerate() {
        if n < MIN_SERIES_LEN {
            let field = if long {
                "y".to_string()
            } else {
                format!("sizes[{i}]")
            };
            errors.add(
                &field,
                format!("series '{id}' has {n} points; at least {MIN_SERIES_LEN} are needed"),
            );
            short = true;
            if errors.is_full() {
                break;
            }
        }
    }
    if short {
        return None;
    }
    let Groups {
        names,
        counts,
        of_row,
    } = groups;
    let of_rows = of_row.as_deref().map(Vec::as_slice);
    let mut values = y.into_series(&counts, of_rows).into_iter();
    let mut stamps = ds.map(|ds| ds.into_series(&counts, of_rows).into_iter());
    let mut start = 0;
    let mut out = Vec::with_capacity(names.len());
    for (i, (id, n)) in names.into_iter().zip(counts).enumerate() {
        let (values_field, rows): (Cow<'static, str>, _) = match &of_row {
            Some(of_row) => ("y".into(), Rows::Group(of_row.clone(), i as u32)),
            None => (format!("sizes[{i}]").into(), Rows::From(start)),
        };
        start += n;
        let series_values = values.next().unwrap_or_default();
        let when = match stamps.as_mut() {
            Some(stamps) => match when_of(stamps.next().unwrap_or_default()) {
                Ok(when) => when,
                Err(message) => {
                    errors.add("ds", format!("series '{id}': {message}"));
                    if errors.is_full() {
                        break;
                    }
                    continue;
                }
            },
            None => When::Unknown,
        };
        out.push(SeriesIn {
            label: format!("series '{id}': "),
            id,
            values: series_values,
            when,
            freq: None,
            values_field,
            ds_field: "ds".into(),
            start_field: "start".into(),
            freq_field: "freq".into(),
            rows,
        });
    }
    Some(out)
}

/// A column as read: whole, or cut into its series as it arrived.
enum ColumnIn<T> {
    Whole(Vec<T>),
    Cut(Vec<Vec<T>>),
}

impl<T: Copy> ColumnIn<T> {
    fn into_series(self, counts: &[usize], of_row: Option<&[u32]>) -> Vec<Vec<T>> {
        match self {
            ColumnIn::Whole(column) => cut(column, counts, of_row),
            ColumnIn::Cut(series) => series,
        }
    }
}

/// Rows given back to the allocator at a time while a column is cut.
const CUT_CHUNK: usize = 1 << 20;

/// Cuts a column into the rows of each series: consecutive runs of
/// `counts` rows, or with `of_row` the rows of each series wherever they
/// are. Rows are taken from the end and the column shrinks as it goes, so
/// the column and its series never both hold all the rows.
fn cut<T: Copy>(mut column: Vec<T>, counts: &[usize], of_row: Option<&[u32]>) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>>;
    let mut taken = 0;
    match of_row {
        None => {
            out = Vec::with_capacity(counts.len());
            for &n in counts.iter().rev() {
                out.push(column.split_off(column.len().saturating_sub(n)));
                taken += n;
                if taken >= CUT_CHUNK {
                    column.shrink_to_fit();
                    taken = 0;
                }
            }
            out.reverse();
        }
        Some(of_row) => {
            out = counts.iter().map(|&n| Vec::with_capacity(n)).collect();
            while let Some(value) = column.pop() {
                let series = of_row.get(column.len()).map_or(usize::MAX, |&s| s as usize);
                if let Some(series) = out.get_mut(series) {
                    series.push(value);
                }
                taken += 1;
                if taken >= CUT_CHUNK {
                    column.shrink_to_fit();
                    taken = 0;
                }
            }
            out.iter_mut().for_each(|series| series.reverse());
        }
    }
    out
}

/// Long form: the series of each row of `unique_id`, numbered in order of
/// first appearance. Read id by id (no string kept per row) and stopped at
/// the first bad id, the first series too many, or the first row that makes
/// a series longer than [`MAX_SERIES_LEN`].
fn unique_ids_of_rows(f: &Fields, errors: &mut Errors) -> Option<Groups> {
    let raw = f.get("unique_id")?;
    if kind(raw) != "an array" {
        errors.add(
            "unique_id",
            format!("must be an array of series ids, got {}", kind(raw)),
        );
        return None;
    }
    // Read as it arrived (and stopped there at a refusal).
    match f.early("unique_id") {
        Some(Early::Groups(groups)) => {
            series_count_ok(groups.names.len(), "unique_id", errors).then_some(groups)
        }
        _ => None,
    }
}

/// Reads `unique_id` into [`Groups`]; why it stopped early goes in `refused`
/// (field, message), the deserializer's own error only ends the read.
struct RowGroups<'r> {
    refused: &'r mut Option<(String, String)>,
}

impl<'de> Visitor<'de> for RowGroups<'_> {
    type Value = Groups;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of series ids")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Groups, A::Error> {
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        let mut counts: Vec<usize> = Vec::new();
        let mut of_row: Vec<u32> = Vec::new();
        let mut stop = |field: String, message: String| {
            *self.refused = Some((field, message));
            serde::de::Error::custom("refused")
        };
        while let Some(scalar) = seq.next_element::<Scalar>()? {
            let row = of_row.len();
            let id = SeriesId::from_scalar(scalar)
                .map_err(|message| stop(format!("unique_id[{row}]"), message))?
                .0;
            let series = match index.get(&id) {
                Some(&series) => series as usize,
                None if names.len() == MAX_SERIES_PER_FIT => {
                    return Err(stop(
                        "unique_id".into(),
                        too_many_series(MAX_SERIES_PER_FIT),
                    ))
                }
                None => {
                    index.insert(id.clone(), names.len() as u32);
                    names.push(id);
                    counts.push(0);
                    names.len() - 1
                }
            };
            counts[series] += 1;
            if counts[series] > MAX_SERIES_LEN {
                return Err(stop(
                    "y".into(),
                    format!(
                        "series '{}': has more than {MAX_SERIES_LEN} rows; at most \
                         {MAX_SERIES_LEN} are accepted",
                        names[series]
                    ),
                ));
            }
            of_row.push(series as u32);
        }
        Ok(Groups {
            names,
            counts,
            of_row: Some(Arc::new(of_row)),
        })
    }
}

/// Compact form: consecutive runs of `sizes[i]` rows, named by `ids`.
fn compact_groups(f: &Fields, errors: &mut Errors) -> Option<Groups> {
    let sizes: Option<Vec<usize>> = match f.get("sizes") {
        None => {
            errors.add("sizes", "is required with 'y': the length of each series");
            None
        }
        Some(_) => f
            .items_at_most::<Size>(
                "sizes",
                "positive integers",
                MAX_SERIES_PER_FIT,
                too_many_series,
                errors,
            )
            .and_then(|items| {
                if let Some((index, message)) = items.bad.first() {
                    errors.add(&format!("sizes[{index}]"), message.clone());
                    return None;
                }
                series_count_ok(items.len, "sizes", errors)
                    .then(|| items.items.into_iter().map(|s| s.0).collect())
            }),
    };
    let ids = match f.get("ids") {
        None => Some(None),
        Some(_) => unique_ids(f, "ids", errors).map(Some),
    };
    let (sizes, ids) = (sizes?, ids?);
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
    let names = ids.unwrap_or_else(|| (0..sizes.len()).map(|i| i.to_string()).collect());
    Some(Groups {
        names,
        counts: sizes,
        of_row: None,
    })
}

// ---- forecasts ----

fn horizon(s: Scalar) -> Result<Horizon, String> {
    let steps = s.integer(1, MAX_HORIZON as i64)?;
    Horizon::parse(steps).map_err(|e| e.to_string())
}

fn required_horizon(f: &Fields, name: &str, errors: &mut Errors) -> Option<Horizon> {
    match f.scalar(name, errors, horizon)? {
        Some(h) => Some(h),
        None => {
            errors.add(
                name,
                format!("is required: an integer between 1 and {MAX_HORIZON}"),
            );
            None
        }
    }
}

/// A body that names one version: `{"version": N}` (a rollback's), N ≥ 1.
pub(crate) fn version_body(body: &[u8]) -> Result<i64, ApiError> {
    let mut errors = Errors::default();
    let parsed = body_fields(body, &["version"], &mut errors)?.and_then(|f| {
        match f.scalar("version", &mut errors, |s| s.integer(1, i64::MAX))? {
            Some(v) => Some(v),
            None => {
                errors.add("version", "is required: a version number (1 or more)");
                None
            }
        }
    });
    errors.finish(parsed)
}

impl FromJson for SeedForecast {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let mut errors = Errors::default();
        let parsed = body_fields(body, &["num_steps"], &mut errors)?
            .and_then(|f| required_horizon(&f, "num_steps", &mut errors));
        errors.finish(parsed).map(SeedForecast)
    }
}

/// The first level listed again (its index and a message): each level
/// is one interval (and one coverage in a backtest), so a list holds it once.
pub(crate) fn repeated_level(levels: &[Level]) -> Option<(usize, String)> {
    levels.iter().enumerate().find_map(|(i, l)| {
        levels[..i].contains(l).then(|| {
            (
                i,
                format!(
                    "{} is listed more than once; list each level once",
                    l.percent()
                ),
            )
        })
    })
}

impl FromJson for V1Forecast {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let mut errors = Errors::default();
        let allowed = ["horizon", "level", "series", "version"];
        let parsed = body_fields(body, &allowed, &mut errors)?.and_then(|f| {
            let h = required_horizon(&f, "horizon", &mut errors);
            let levels = match f.get("level") {
                None => Some(Vec::new()),
                Some(_) => f
                    .items::<Level>("level", "numbers such as [80, 95]", &mut errors)
                    .and_then(|items| {
                        if items.len > MAX_LEVELS {
                            errors
                                .add("level", format!("at most {MAX_LEVELS} levels are accepted"));
                            return None;
                        }
                        for (i, message) in &items.bad {
                            errors.add(&format!("level[{i}]"), message.clone());
                        }
                        if let Some((i, message)) = repeated_level(&items.items) {
                            errors.add(&format!("level[{i}]"), message);
                            return None;
                        }
                        items.bad.is_empty().then_some(items.items)
                    }),
            };
            let series_ids = match f.get("series") {
                None => Some(None),
                Some(_) => unique_ids(&f, "series", &mut errors).and_then(|ids| {
                    if ids.is_empty() {
                        errors.add(
                            "series",
                            "must not be empty; leave it out to forecast every series",
                        );
                        return None;
                    }
                    Some(Some(ids))
                }),
            };
            let version = f.scalar("version", &mut errors, |s| s.integer(1, i64::MAX));
            Some(ForecastRequest {
                horizon: h?,
                levels: levels?,
                series_ids: series_ids?,
                version: version?,
                one_series: false,
            })
        });
        errors.finish(parsed).map(V1Forecast)
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

    fn parse<T: FromJson>(body: serde_json::Value) -> Result<T, ApiError> {
        T::from_json(body.to_string().as_bytes())
    }

    #[test]
    fn seed_fit_reports_each_field() {
        let err = parse::<SeedFit>(json!({"data": [1, "NaN", 3], "method": "magic", "extra": 1}))
            .unwrap_err();
        let fields = fail_fields(err);
        assert!(fields["data"].contains("NaN"), "{fields:?}");
        assert!(fields["method"].contains("unknown method"), "{fields:?}");
        assert!(fields["extra"].contains("unknown field"), "{fields:?}");
        let SeedFit(ok) = parse(json!({"data": [1, 2, 3.5], "season_length": 2.0})).unwrap();
        assert_eq!(ok.spec.seasons, vec![2]);
        assert_eq!(ok.series[0].values.values(), &[1.0, 2.0, 3.5]);
    }

    #[test]
    fn a_tables_repeated_timestamp_is_named_by_its_time_not_a_position() {
        let day = |d: &str| Timestamp::parse(d).unwrap();
        let series = vec![TableSeries {
            id: "a".into(),
            values: vec![1.0, 2.0, 3.0, 4.0],
            time: TableTime::Dates(vec![
                day("2024-01-01"),
                day("2024-01-02"),
                day("2024-01-02"),
                day("2024-01-03"),
            ]),
        }];
        let fields = fail_fields(table_fit(b"{}", series).unwrap_err());
        assert_eq!(
            fields["ds"],
            "series 'a': timestamp 2024-01-02 is on more than one row; timestamps must be distinct",
            "{fields:?}"
        );
    }

    #[test]
    fn an_over_long_series_is_refused_at_the_first_point_too_many() {
        let mut body = String::from(r#"{"series": [{"id": "a", "values": ["#);
        for _ in 0..=MAX_SERIES_LEN {
            body.push_str("1,");
        }
        body.push_str("1]}]}");
        let fields = fail_fields(V1Fit::from_json(body.as_bytes()).unwrap_err());
        assert!(
            fields["series[0].values"].contains("more than 100000"),
            "{fields:?}"
        );
    }

    #[test]
    fn hidden_characters_are_refused_in_ids() {
        for id in [
            "a\u{0}",
            "a\u{7f}",
            "\u{202E}a",
            "a\u{2069}",
            "a\u{200F}",
            "a\u{061C}",
        ] {
            let err = parse::<V1Fit>(json!({"series": [{"id": id, "values": [1, 2, 3]}]}));
            let fields = fail_fields(err.unwrap_err());
            assert!(
                fields["series[0].id"].contains("control"),
                "{id:?}: {fields:?}"
            );
        }
        let ok = parse::<V1Fit>(json!({"series": [{"id": "naïve-日本", "values": [1, 2, 3]}]}));
        assert!(ok.is_ok());
    }

    #[test]
    fn repeated_keys_are_refused() {
        let body = br#"{"data": [1, 2, 3], "data": [4, 5, 6]}"#;
        let fields = fail_fields(SeedFit::from_json(body).unwrap_err());
        assert!(fields["data"].contains("more than once"), "{fields:?}");
        let body = br#"{"series": [{"id": "a", "id": "b", "values": [1, 2, 3]}]}"#;
        let fields = fail_fields(V1Fit::from_json(body).unwrap_err());
        assert!(
            fields["series[0].id"].contains("more than once"),
            "{fields:?}"
        );
    }

    #[test]
    fn season_length_is_one_or_several() {
        let SeedFit(one) = parse(json!({"data": [1, 2, 3], "season_length": 12})).unwrap();
        assert_eq!(one.spec.seasons, vec![12]);
        let SeedFit(two) = parse(json!({"data": [1, 2, 3], "season_length": [168, 24]})).unwrap();
        assert_eq!(two.spec.seasons, vec![24, 168]);
        let SeedFit(none) = parse(json!({"data": [1, 2, 3]})).unwrap();
        assert!(none.spec.seasons.is_empty() && none.spec.season_candidates.is_empty());
        let fields = fail_fields(
            parse::<SeedFit>(json!({"data": [1, 2, 3], "season_length": [24, 0]})).unwrap_err(),
        );
        assert!(
            fields["season_length[1]"].contains("between 1 and"),
            "{fields:?}"
        );
        let fields = fail_fields(
            parse::<SeedFit>(json!({"data": [1, 2, 3], "season_length": []})).unwrap_err(),
        );
        assert!(
            fields["season_length"].contains("not be empty"),
            "{fields:?}"
        );
    }

    #[test]
    fn frequencies_give_season_candidates() {
        let SeedFit(fit) = parse(json!({"data": [1, 2, 3], "freq": "h"})).unwrap();
        assert_eq!(fit.spec.season_candidates, vec![24, 168]);
        assert!(fit.series[0].calendar.is_none());
        let SeedFit(fit) =
            parse(json!({"data": [1, 2, 3], "freq": "h", "season_length": 24})).unwrap();
        assert_eq!(fit.spec.seasons, vec![24]);
        let V1Fit(fit) = parse(json!({"series": [
            {"id": "a", "values": [1, 2, 3], "ds": ["2024-01-01", "2024-02-01", "2024-03-01"]},
            {"id": "b", "values": [1, 2, 3], "start": "2024-01-01", "freq": "MS"}
        ]}))
        .unwrap();
        assert_eq!(fit.spec.season_candidates, vec![12]);
        let fields = fail_fields(
            parse::<V1Fit>(json!({"series": [
                {"id": "a", "values": [1, 2, 3], "freq": "h"},
                {"id": "b", "values": [1, 2, 3], "freq": "D"}
            ]}))
            .unwrap_err(),
        );
        assert!(fields["freq"].contains("different seasons"), "{fields:?}");
        // A body naming one version: each mistake under its field.
        assert_eq!(version_body(br#"{"version": 3}"#).ok(), Some(3));
        for (body, field) in [
            (&br#"{"version": "3"}"#[..], "version"),
            (br#"{"version": 0}"#, "version"),
            (br#"{}"#, "version"),
            (br#"{"version": 2, "x": 1}"#, "x"),
        ] {
            let fields = fail_fields(version_body(body).unwrap_err());
            assert!(fields.contains_key(field), "{fields:?}");
        }
        // Weeks anchored on different days propose the same season.
        let V1Fit(fit) = parse(json!({"series": [
            {"id": "a", "values": [1, 2, 3], "start": "2024-01-05", "freq": "W-FRI"},
            {"id": "b", "values": [1, 2, 3], "start": "2024-01-06", "freq": "W-SAT"}
        ]}))
        .unwrap();
        assert_eq!(fit.spec.season_candidates, vec![52]);
    }

    #[test]
    fn timestamps_place_values_on_the_grid() {
        let SeedFit(fit) = parse(json!({
            "data": [1, null, 3, 5],
            "ds": ["2024-01-01T00:00Z", "2024-01-01T01:00Z", "2024-01-01T02:00Z", "2024-01-01T04:00Z"]
        }))
        .unwrap();
        let s = &fit.series[0];
        assert_eq!(s.values.len(), 5);
        assert_eq!(s.values.n_missing(), 2);
        let cal = s.calendar.unwrap();
        assert_eq!(cal.freq.to_string(), "h");
        assert_eq!(cal.last.to_string(), "2024-01-01T04:00:00Z");
    }

    #[test]
    fn every_forecast_step_has_a_date() {
        // 10,000 steps of a year after +262000 pass the last date there is.
        let fields = fail_fields(
            parse::<SeedFit>(json!({"data": [1, 2, 3], "start": "+262000-01-01", "freq": "YS"}))
                .unwrap_err(),
        );
        assert!(
            fields["start"].contains("leaves no room for 10000 forecast steps"),
            "{fields:?}"
        );
        let fields = fail_fields(
            parse::<V1Fit>(json!({"series": [{"id": "a", "values": [1, 2, 3],
                "ds": ["+262000-01-01", "+262001-01-01", "+262002-01-01"]}]}))
            .unwrap_err(),
        );
        assert!(
            fields["series[0].ds"].contains("leaves no room"),
            "{fields:?}"
        );
        assert!(parse::<SeedFit>(
            json!({"data": [1, 2, 3], "start": "+250000-01-01", "freq": "YS"})
        )
        .is_ok());
        // Steps that overflow the dates are not "off the calendar".
        let fields = fail_fields(
            parse::<SeedFit>(
                json!({"data": [1, 2, 3, 4, 5], "start": "2024-01-01", "freq": "1000000000h"}),
            )
            .unwrap_err(),
        );
        assert!(
            fields["start"].contains("pass the last date there is"),
            "{fields:?}"
        );
    }

    #[test]
    fn integer_positions_are_placed_on_their_step() {
        let V1Fit(fit) = parse(json!({
            "unique_id": ["a", "a", "a", "a", "b", "b", "b"],
            "ds": [10, 20, 40, 50, 1, 2, 3],
            "y": [1, 2, 4, 5, 7, 8, 9]
        }))
        .unwrap();
        let a = &fit.series[0];
        assert_eq!(a.values.len(), 5);
        assert_eq!(a.values.n_missing(), 1);
        assert_eq!(a.index, Some(IndexAxis { last: 50, step: 10 }));
        assert_eq!(a.calendar, None);
        assert_eq!(fit.series[1].index, Some(IndexAxis { last: 3, step: 1 }));
        // The object form too; and refusals name the element.
        let V1Fit(fit) =
            parse(json!({"series": [{"id": "x", "values": [1, 2, 3], "ds": [5, 7, 9]}]})).unwrap();
        assert_eq!(fit.series[0].index, Some(IndexAxis { last: 9, step: 2 }));
        // Whole numbers written as floats are integers too.
        let V1Fit(fit) =
            parse(json!({"series": [{"id": "x", "values": [1, 2, 3], "ds": [5.0, 7.0, 9.0]}]}))
                .unwrap();
        assert_eq!(fit.series[0].index, Some(IndexAxis { last: 9, step: 2 }));
        for (ds, field, says) in [
            (
                json!([1, 3, 2]),
                "series[0].ds",
                "element 2 (2) is not after the one before (3)",
            ),
            (
                json!([1, 1, 2]),
                "series[0].ds",
                "element 1 (1) is not after",
            ),
            (
                json!([0, 4, 7]),
                "series[0].ds",
                "ds 4 is not on the step 3 from 0",
            ),
            (
                json!([1, "2024-01-01", 3]),
                "series[0].ds",
                "mixes timestamps and integers",
            ),
            (json!([1, 2.5, 3]), "series[0].ds", "nor an integer"),
            (
                json!([1.0, 2.5, 3.0]),
                "series[0].ds",
                "nor an integer (2.5)",
            ),
        ] {
            let fields = fail_fields(
                parse::<V1Fit>(json!({"series": [{"id": "x", "values": [1, 2, 3], "ds": ds}]}))
                    .unwrap_err(),
            );
            assert!(fields[field].contains(says), "{ds}: {fields:?}");
        }
        let V1Fit(fit) = parse(
            json!({"series": [{"id": "x", "values": [1, 2, 3], "ds": [1, 2, 3], "freq": "D"}]}),
        )
        .unwrap();
        assert_eq!(fit.spec.season_candidates, [7, 365]);
        assert_eq!(fit.series[0].calendar, None);
        let fields = fail_fields(
            parse::<V1Fit>(json!({
                "unique_id": ["a", "a", "a"],
                "ds": [1, "2024-01-02", 3],
                "y": [1, 2, 3]
            }))
            .unwrap_err(),
        );
        assert!(fields["ds"].contains("series 'a': mixes"), "{fields:?}");
    }

    #[test]
    fn long_form_groups_rows_by_id() {
        let V1Fit(fit) = parse(json!({
            "unique_id": ["a", "b", "a", "b", "a", "b"],
            "ds": ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03", "2024-01-03"],
            "y": [1, 10, 2, 20, 3, 30]
        }))
        .unwrap();
        assert_eq!(fit.series.len(), 2);
        assert_eq!(fit.series[1].id, "b");
        assert_eq!(fit.series[1].values.values(), &[10.0, 20.0, 30.0]);
        assert_eq!(fit.spec.season_candidates, vec![7, 365]);
        let fields = fail_fields(
            parse::<V1Fit>(json!({
                "unique_id": ["a", "a", "a"],
                "ds": ["2024-01-01", "2024-01-03", "2024-01-02"],
                "y": [1, 2, 3]
            }))
            .unwrap_err(),
        );
        assert!(fields["ds"].contains("series 'a': ds[2]"), "{fields:?}");
        assert!(fields["ds"].contains("sorted"), "{fields:?}");
    }

    #[test]
    fn compact_form_splits_series() {
        let V1Fit(ok) =
            parse(json!({"sizes": [3, 4], "y": [1, 2, 3, 4, 5, 6, 7], "ids": ["a", "b"]})).unwrap();
        assert_eq!(ok.series.len(), 2);
        assert_eq!(ok.series[1].id, "b");
        assert_eq!(ok.series[1].values.values(), &[4.0, 5.0, 6.0, 7.0]);
        let fields =
            fail_fields(parse::<V1Fit>(json!({"sizes": [3, 5], "y": [1, 2, 3]})).unwrap_err());
        assert!(fields["y"].contains("add up to 8"), "{fields:?}");
    }

    #[test]
    fn columns_are_refused_at_the_first_row_too_many() {
        // A series too long in the long form: refused from 'unique_id' alone.
        let mut body = String::from(r#"{"unique_id": ["#);
        for _ in 0..=MAX_SERIES_LEN {
            body.push_str("\"a\",");
        }
        body.push_str(r#""a"], "y": "not even read"}"#);
        let fields = fail_fields(V1Fit::from_json(body.as_bytes()).unwrap_err());
        assert!(
            fields["y"].contains("series 'a': has more than"),
            "{fields:?}"
        );
        // More values than 'sizes' add up to.
        let fields =
            fail_fields(parse::<V1Fit>(json!({"sizes": [3], "y": [1, 2, 3, 4, 5]})).unwrap_err());
        assert!(
            fields["y"].contains("more than 3 values but 'sizes' add up to 3"),
            "{fields:?}"
        );
        // A 'sizes' over the limit: 'y' is not read (its bad element is not reported).
        let fields =
            fail_fields(parse::<V1Fit>(json!({"sizes": [30_000_000], "y": ["x"]})).unwrap_err());
        assert!(fields["sizes[0]"].contains("between 1 and"), "{fields:?}");
        assert!(!fields.contains_key("y"), "{fields:?}");
        // 'ds' after 'sizes': stopped at the first timestamp too many.
        let body = br#"{"sizes": [3], "y": [1, 2, 3], "ds": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]}"#;
        let fields = fail_fields(V1Fit::from_json(body).unwrap_err());
        assert!(
            fields["ds"].contains("more than 3 timestamps"),
            "{fields:?}"
        );
        // 'ds' (or 'y') before 'sizes' is read whole, then counted.
        let body = br#"{"ds": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"], "y": [1, 2, 3, 4], "sizes": [3]}"#;
        let fields = fail_fields(V1Fit::from_json(body).unwrap_err());
        assert!(
            fields["ds"].contains("has 4 timestamps but 'sizes' add up to 3"),
            "{fields:?}"
        );
        assert!(
            fields["y"].contains("has 4 values but 'sizes' add up to 3"),
            "{fields:?}"
        );
        // In the long form the rows are counted by 'unique_id'.
        let body = br#"{"unique_id": ["a", "a", "a", "a"], "ds": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06"], "y": [1, 2, 3, 4]}"#;
        let fields = fail_fields(V1Fit::from_json(body).unwrap_err());
        assert!(
            fields["ds"].contains("more than 4 timestamps but 'unique_id' has 4 rows"),
            "{fields:?}"
        );
    }

    #[test]
    fn the_order_of_the_keys_does_not_change_the_fit() {
        let orders: [&[u8]; 3] = [
            br#"{"sizes": [3, 4], "ids": ["a", "b"], "y": [1, 2, 3, 4, 5, 6, 7], "ds": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05"]}"#,
            br#"{"y": [1, 2, 3, 4, 5, 6, 7], "ds": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05"], "sizes": [3, 4], "ids": ["a", "b"]}"#,
            br#"{"ids": ["a", "b"], "y": [1, 2, 3, 4, 5, 6, 7], "sizes": [3, 4], "ds": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05"]}"#,
        ];
        let fits: Vec<String> = orders
            .iter()
            .map(|body| format!("{:?}", V1Fit::from_json(body).unwrap().0))
            .collect();
        assert!(fits.iter().all(|f| *f == fits[0]), "{fits:#?}");
        let V1Fit(fit) = V1Fit::from_json(orders[1]).unwrap();
        assert_eq!(fit.series[1].id, "b");
        assert_eq!(fit.series[1].values.values()[..2], [4.0, 5.0]);
        assert!(fit.series[1].values.values()[2].is_nan());
        // A seed fit with its timestamps first, and a series with its
        // values after its timestamps.
        let SeedFit(seed) = SeedFit::from_json(
            br#"{"ds": ["2024-01-01", "2024-01-03", "2024-01-04"], "data": [1, 2, 3]}"#,
        )
        .unwrap();
        assert_eq!(seed.series[0].values.len(), 4);
        let fields = fail_fields(
            V1Fit::from_json(br#"{"series": [{"ds": ["2024-01-01", "2024-01-02"], "values": [1, 2, 3], "id": "a"}]}"#)
                .unwrap_err(),
        );
        assert!(
            fields["series[0].ds"].contains("has 2 timestamps but there are 3 values"),
            "{fields:?}"
        );
    }

    #[test]
    fn cut_gives_each_series_its_rows() {
        let column: Vec<f64> = (0..10).map(f64::from).collect();
        let runs = cut(column.clone(), &[3, 0, 7], None);
        assert_eq!(
            runs,
            vec![
                vec![0.0, 1.0, 2.0],
                vec![],
                (3..10).map(f64::from).collect()
            ]
        );
        let of_row = [1u32, 0, 1, 1, 0, 2, 2, 2, 0, 1];
        let groups = cut(column, &[3, 4, 3], Some(&of_row));
        assert_eq!(
            groups,
            vec![
                vec![1.0, 4.0, 8.0],
                vec![0.0, 2.0, 3.0, 9.0],
                vec![5.0, 6.0, 7.0]
            ]
        );
    }

    #[test]
    fn column_messages_name_the_rows_of_ds() {
        let fields = fail_fields(
            parse::<V1Fit>(json!({
                "unique_id": ["a", "b", "a", "b", "a", "b"],
                "ds": ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03", "2024-01-02"],
                "y": [1, 10, 2, 20, 3, 30]
            }))
            .unwrap_err(),
        );
        assert!(fields["ds"].contains("series 'b': ds[5]"), "{fields:?}");
        let fields = fail_fields(
            parse::<V1Fit>(json!({
                "sizes": [3, 3],
                "ds": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01", "2024-01-03", "2024-01-02"],
                "y": [1, 2, 3, 4, 5, 6]
            }))
            .unwrap_err(),
        );
        assert!(fields["ds"].contains("series '1': ds[5]"), "{fields:?}");
        // Gaps in the timestamps are missing values (NaN inside).
        let V1Fit(fit) = parse(json!({
            "sizes": [3], "y": [1, null, 3],
            "ds": ["2024-01-01", "2024-01-02", "2024-01-04"]
        }))
        .unwrap();
        assert_eq!(fit.series[0].values.len(), 4);
        assert_eq!(fit.series[0].values.n_missing(), 2);
    }

    #[test]
    fn forecast_limits() {
        assert!(parse::<SeedForecast>(json!({"num_steps": 0})).is_err());
        assert!(parse::<SeedForecast>(json!({"num_steps": MAX_HORIZON + 1})).is_err());
        assert!(parse::<SeedForecast>(json!({"num_steps": 1.5})).is_err());
        assert_eq!(
            parse::<SeedForecast>(json!({"num_steps": 7}))
                .unwrap()
                .0
                .get(),
            7
        );
        let fields = fail_fields(
            parse::<V1Forecast>(json!({"horizon": 3, "level": [100, "x"]})).unwrap_err(),
        );
        assert!(
            fields.contains_key("level[0]") && fields.contains_key("level[1]"),
            "{fields:?}"
        );
        let fields = fail_fields(
            parse::<V1Forecast>(json!({"horizon": 3, "level": [80, 95, 80.0]})).unwrap_err(),
        );
        assert!(fields["level[2]"].contains("more than once"), "{fields:?}");
    }
}
