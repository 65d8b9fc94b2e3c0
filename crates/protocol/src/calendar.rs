//! Calendars of time series: the pandas frequency aliases (`30min`, `h`, `D`,
//! `W-MON`, `MS`, `ME`, `QS`, `QE`, `YS`, `YE`, ...), ISO 8601 timestamps, and
//! the grid a series' timestamps lie on.
//!
//! The engine knows no dates; this module turns timestamps into positions on a
//! regular grid (gaps included), infers the grid's frequency, proposes the
//! season lengths a frequency usually carries and steps past the last
//! observation to label forecasts.

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// The longest season a frequency proposes as a candidate.
pub const MAX_SEASON: usize = 10_000;

/// The unit of a [`Freq`]; anchored units say where in the period a
/// timestamp falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FreqUnit {
    Minute,
    Hour,
    Day,
    /// Weeks whose timestamps fall on this weekday (`W` is `W-SUN`).
    Week(Weekday),
    MonthStart,
    MonthEnd,
    /// Quarters starting in January, April, July and October.
    QuarterStart,
    /// Quarters ending in March, June, September and December.
    QuarterEnd,
    YearStart,
    YearEnd,
}

/// A regular frequency: `n` times a unit (`30min` is 30 minutes, `2MS` every
/// other month start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Freq {
    n: u32,
    unit: FreqUnit,
}

/// Why a frequency alias was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unknown frequency '{0}': use a pandas alias such as 30min, h, D, W, W-MON, MS, ME, QS, QE, YS or YE, optionally with a multiple such as 15min or 2h"
)]
pub struct BadFreq(pub String);

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{0}' is not an ISO 8601 date or date-time (e.g. 2024-01-31, 2024-01-31T13:30:00, 2024-01-31T13:30:00Z)")]
pub struct BadTimestamp(pub String);

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("MON", Weekday::Mon),
    ("TUE", Weekday::Tue),
    ("WED", Weekday::Wed),
    ("THU", Weekday::Thu),
    ("FRI", Weekday::Fri),
    ("SAT", Weekday::Sat),
    ("SUN", Weekday::Sun),
];

impl Freq {
    pub fn new(n: u32, unit: FreqUnit) -> Option<Self> {
        (n > 0).then_some(Self { n, unit })
    }

    pub fn n(&self) -> u32 {
        self.n
    }

    pub fn unit(&self) -> FreqUnit {
        self.unit
    }

    /// Parse a pandas alias: an optional positive multiple, then the unit.
    pub fn parse(s: &str) -> Result<Self, BadFreq> {
        let bad = || BadFreq(s.to_string());
        let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
        let n = if digits == 0 {
            1
        } else {
            s[..digits].parse::<u32>().map_err(|_| bad())?
        };
        let unit = match &s[digits..] {
            "min" | "T" => FreqUnit::Minute,
            "h" | "H" => FreqUnit::Hour,
            "D" => FreqUnit::Day,
            "W" => FreqUnit::Week(Weekday::Sun),
            "MS" => FreqUnit::MonthStart,
            "M" | "ME" => FreqUnit::MonthEnd,
            "QS" | "QS-JAN" => FreqUnit::QuarterStart,
            "Q" | "QE" | "Q-DEC" | "QE-DEC" => FreqUnit::QuarterEnd,
            "YS" | "AS" | "YS-JAN" => FreqUnit::YearStart,
            "Y" | "YE" | "A" | "Y-DEC" | "YE-DEC" | "A-DEC" => FreqUnit::YearEnd,
            other => match other.strip_prefix("W-") {
                Some(day) => WEEKDAYS
                    .iter()
                    .find(|(name, _)| *name == day)
                    .map(|(_, wd)| FreqUnit::Week(*wd))
                    .ok_or_else(bad)?,
                None => return Err(bad()),
            },
        };
        Self::new(n, unit).ok_or_else(bad)
    }

    /// The length of one step when it is fixed (not for month-based units).
    fn fixed_step(&self) -> Option<Duration> {
        let n = i64::from(self.n);
        match self.unit {
            FreqUnit::Minute => Some(Duration::minutes(n)),
            FreqUnit::Hour => Some(Duration::hours(n)),
            FreqUnit::Day => Some(Duration::days(n)),
            FreqUnit::Week(_) => Some(Duration::weeks(n)),
            _ => None,
        }
    }

    /// Months per step for month-based units.
    fn months(&self) -> Option<i64> {
        let per = match self.unit {
            FreqUnit::MonthStart | FreqUnit::MonthEnd => 1,
            FreqUnit::QuarterStart | FreqUnit::QuarterEnd => 3,
            FreqUnit::YearStart | FreqUnit::YearEnd => 12,
            _ => return None,
        };
        Some(per * i64::from(self.n))
    }

    /// Whether a step is at least a day (timestamps may then be plain dates).
    pub fn is_daily_or_coarser(&self) -> bool {
        !matches!(self.unit, FreqUnit::Minute | FreqUnit::Hour)
    }

    /// Whether `t` falls where this frequency's anchor puts timestamps.
    pub fn is_anchored(&self, t: &NaiveDateTime) -> bool {
        let d = t.date();
        let month_end = d.succ_opt().is_none_or(|next| next.month() != d.month());
        match self.unit {
            FreqUnit::Minute | FreqUnit::Hour | FreqUnit::Day => true,
            FreqUnit::Week(wd) => d.weekday() == wd,
            FreqUnit::MonthStart => d.day() == 1,
            FreqUnit::MonthEnd => month_end,
            FreqUnit::QuarterStart => d.day() == 1 && d.month() % 3 == 1,
            FreqUnit::QuarterEnd => month_end && d.month().is_multiple_of(3),
            FreqUnit::YearStart => d.day() == 1 && d.month() == 1,
            FreqUnit::YearEnd => month_end && d.month() == 12,
        }
    }

    /// `t` moved `steps` steps forward (backward when negative); `None`
    /// outside the calendar's range.
    pub fn step(&self, t: &NaiveDateTime, steps: i64) -> Option<NaiveDateTime> {
        if let Some(step) = self.fixed_step() {
            let by = step.checked_mul(i32::try_from(steps).ok()?)?;
            return t.checked_add_signed(by);
        }
        let months = self.months()?.checked_mul(steps)?;
        let d = t.date();
        let index = i64::from(d.year()) * 12 + i64::from(d.month0()) + months;
        let year = i32::try_from(index.div_euclid(12)).ok()?;
        let month0 = u32::try_from(index.rem_euclid(12)).ok()?;
        let first = NaiveDate::from_ymd_opt(year, month0 + 1, 1)?;
        let date = match self.unit {
            FreqUnit::MonthStart | FreqUnit::QuarterStart | FreqUnit::YearStart => first,
            _ => last_of_month(first)?,
        };
        Some(date.and_time(t.time()))
    }

    /// How many steps from `from` to `to`, if `to` lies exactly on this
    /// frequency's grid through `from`.
    pub fn steps_between(&self, from: &NaiveDateTime, to: &NaiveDateTime) -> Option<i64> {
        if let Some(step) = self.fixed_step() {
            let diff = (*to - *from).num_seconds();
            let step = step.num_seconds();
            return (diff % step == 0).then_some(diff / step);
        }
        let months = self.months()?;
        let index = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
        let diff = index(to.date()) - index(from.date());
        if diff % months != 0 {
            return None;
        }
        let steps = diff / months;
        (self.step(from, steps)? == *to).then_some(steps)
    }

    /// Season lengths this frequency usually carries, shortest first: a day
    /// and a week of sub-daily data, a week and a year of daily data, a year
    /// of weekly, monthly and quarterly data. Only whole numbers of steps of
    /// at least 2 and at most [`MAX_SEASON`].
    pub fn season_candidates(&self) -> Vec<usize> {
        let n = self.n as usize;
        let per = |cycle: usize| cycle.is_multiple_of(n).then(|| cycle / n);
        let cycles: Vec<Option<usize>> = match self.unit {
            FreqUnit::Minute => vec![per(60 * 24), per(60 * 24 * 7)],
            FreqUnit::Hour => vec![per(24), per(24 * 7)],
            FreqUnit::Day => vec![per(7), (n == 1).then_some(365)],
            FreqUnit::Week(_) => vec![(n == 1).then_some(52)],
            FreqUnit::MonthStart | FreqUnit::MonthEnd => vec![per(12)],
            FreqUnit::QuarterStart | FreqUnit::QuarterEnd => vec![per(4)],
            FreqUnit::YearStart | FreqUnit::YearEnd => vec![],
        };
        cycles
            .into_iter()
            .flatten()
            .filter(|&m| (2..=MAX_SEASON).contains(&m))
            .collect()
    }

    /// Infer the frequency of sorted, distinct timestamps: the most common
    /// step (gaps allowed), named by the calendar anchor all of them share.
    pub fn infer(stamps: &[NaiveDateTime]) -> Result<Self, GridError> {
        if stamps.len() < 2 {
            return Err(GridError::TooFewToInfer);
        }
        check_order(stamps)?;
        let all_at = |f: &dyn Fn(&NaiveDateTime) -> bool| stamps.iter().all(f);
        let same_time = all_at(&|t| t.time() == stamps[0].time());
        // Month-based: every timestamp at a month start, or every one at a
        // month end, at one time of day.
        if same_time {
            let month_index = |t: &NaiveDateTime| i64::from(t.year()) * 12 + i64::from(t.month0());
            let month_diffs: Vec<i64> = stamps
                .windows(2)
                .map(|w| month_index(&w[1]) - month_index(&w[0]))
                .collect();
            let starts =
                Freq::new(1, FreqUnit::MonthStart).filter(|f| all_at(&|t| f.is_anchored(t)));
            let ends = Freq::new(1, FreqUnit::MonthEnd).filter(|f| all_at(&|t| f.is_anchored(t)));
            let month_anchor = starts.or(ends).map(|f| f.unit);
            // Every day of a short daily series may be a month end only
            // if the steps are months, so look at the step in months.
            if let (Some(anchor), Some(m)) = (month_anchor, most_common(&month_diffs)) {
                if m > 0 {
                    let start = anchor == FreqUnit::MonthStart;
                    let first_month = stamps[0].month();
                    let (unit, n) = if m % 12 == 0 && first_month == if start { 1 } else { 12 } {
                        (
                            if start {
                                FreqUnit::YearStart
                            } else {
                                FreqUnit::YearEnd
                            },
                            m / 12,
                        )
                    } else if m % 3 == 0 && first_month % 3 == if start { 1 } else { 0 } {
                        (
                            if start {
                                FreqUnit::QuarterStart
                            } else {
                                FreqUnit::QuarterEnd
                            },
                            m / 3,
                        )
                    } else {
                        (anchor, m)
                    };
                    let n = u32::try_from(n).map_err(|_| GridError::CannotInfer)?;
                    let freq = Freq::new(n, unit).ok_or(GridError::CannotInfer)?;
                    freq.positions(stamps)?;
                    return Ok(freq);
                }
            }
        }
        let diffs: Vec<i64> = stamps
            .windows(2)
            .map(|w| (w[1] - w[0]).num_seconds())
            .collect();
        let step = most_common(&diffs).ok_or(GridError::CannotInfer)?;
        let (n, unit) = if step % (7 * 86_400) == 0 {
            (step / (7 * 86_400), FreqUnit::Week(stamps[0].weekday()))
        } else if step % 86_400 == 0 {
            (step / 86_400, FreqUnit::Day)
        } else if step % 3_600 == 0 {
            (step / 3_600, FreqUnit::Hour)
        } else if step % 60 == 0 {
            (step / 60, FreqUnit::Minute)
        } else {
            return Err(GridError::CannotInfer);
        };
        let n = u32::try_from(n).map_err(|_| GridError::CannotInfer)?;
        let freq = Freq::new(n, unit).ok_or(GridError::CannotInfer)?;
        freq.positions(stamps)?;
        Ok(freq)
    }

    /// The grid position of each timestamp, counted in steps from the first;
    /// the timestamps must be sorted, distinct and all on this grid.
    pub fn positions(&self, stamps: &[NaiveDateTime]) -> Result<Vec<usize>, GridError> {
        check_order(stamps)?;
        let Some(first) = stamps.first() else {
            return Ok(Vec::new());
        };
        if !self.is_anchored(first) {
            return Err(GridError::OffGrid {
                index: 0,
                freq: *self,
            });
        }
        stamps
            .iter()
            .enumerate()
            .map(|(index, t)| {
                self.steps_between(first, t)
                    .and_then(|p| usize::try_from(p).ok())
                    .ok_or(GridError::OffGrid { index, freq: *self })
            })
            .collect()
    }
}

/// The value that occurs most often; the smallest among equals.
fn most_common(xs: &[i64]) -> Option<i64> {
    let mut sorted = xs.to_vec();
    sorted.sort_unstable();
    let mut best: Option<(i64, usize)> = None;
    for run in sorted.chunk_by(|a, b| a == b) {
        if best.is_none_or(|(_, count)| run.len() > count) {
            best = Some((run[0], run.len()));
        }
    }
    best.map(|(x, _)| x)
}

fn check_order(stamps: &[NaiveDateTime]) -> Result<(), GridError> {
    for (i, w) in stamps.windows(2).enumerate() {
        if w[1] == w[0] {
            return Err(GridError::Duplicate { index: i + 1 });
        }
        if w[1] < w[0] {
            return Err(GridError::Unsorted { index: i + 1 });
        }
    }
    Ok(())
}

fn last_of_month(first: NaiveDate) -> Option<NaiveDate> {
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
    };
    next.pred_opt()
}

/// Why timestamps do not make one regular grid. Indexes count from 0.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GridError {
    #[error("timestamp {index} repeats the one before it")]
    Duplicate { index: usize },
    #[error("timestamps must be sorted: timestamp {index} is earlier than the one before it")]
    Unsorted { index: usize },
    #[error(
        "timestamp {index} is not on the regular grid of step {freq} through the first timestamp"
    )]
    OffGrid { index: usize, freq: Freq },
    #[error("at least 2 timestamps are needed to infer a frequency; give 'freq'")]
    TooFewToInfer,
    #[error("cannot infer a frequency (steps must be whole minutes, or month, quarter or year starts or ends); give 'freq'")]
    CannotInfer,
}

impl fmt::Display for Freq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.n != 1 {
            write!(f, "{}", self.n)?;
        }
        match self.unit {
            FreqUnit::Minute => f.write_str("min"),
            FreqUnit::Hour => f.write_str("h"),
            FreqUnit::Day => f.write_str("D"),
            FreqUnit::Week(wd) => {
                let name = WEEKDAYS
                    .iter()
                    .find(|(_, w)| *w == wd)
                    .map_or("SUN", |(name, _)| name);
                write!(f, "W-{name}")
            }
            FreqUnit::MonthStart => f.write_str("MS"),
            FreqUnit::MonthEnd => f.write_str("ME"),
            FreqUnit::QuarterStart => f.write_str("QS"),
            FreqUnit::QuarterEnd => f.write_str("QE"),
            FreqUnit::YearStart => f.write_str("YS"),
            FreqUnit::YearEnd => f.write_str("YE"),
        }
    }
}

impl FromStr for Freq {
    type Err = BadFreq;
    fn from_str(s: &str) -> Result<Self, BadFreq> {
        Self::parse(s)
    }
}

impl Serialize for Freq {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Freq {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An ISO 8601 date or date-time as a client wrote it: the wall-clock time,
/// its UTC offset if it had one, and whether it was a plain date (it is then
/// written back as one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    local: NaiveDateTime,
    offset: Option<FixedOffset>,
    date_only: bool,
}

impl Timestamp {
    pub fn parse(s: &str) -> Result<Self, BadTimestamp> {
        let bad = || BadTimestamp(s.to_string());
        let (date, time) = match s.find(['T', ' ']) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| bad())?;
        let Some(time) = time else {
            return Ok(Self {
                local: date.and_time(NaiveTime::MIN),
                offset: None,
                date_only: true,
            });
        };
        let (clock, offset) = split_offset(time).ok_or_else(bad)?;
        let clock = NaiveTime::parse_from_str(clock, "%H:%M:%S%.f")
            .or_else(|_| NaiveTime::parse_from_str(clock, "%H:%M"))
            .map_err(|_| bad())?;
        Ok(Self {
            local: date.and_time(clock),
            offset,
            date_only: false,
        })
    }

    /// The wall-clock time, in the timestamp's own offset.
    pub fn local(&self) -> NaiveDateTime {
        self.local
    }

    pub fn offset(&self) -> Option<FixedOffset> {
        self.offset
    }

    /// The timestamp in 16 bytes, for spooling rows to a file (see
    /// [`Timestamp::from_bytes`]): seconds of the wall-clock time since
    /// 1970, its nanoseconds (the top bit: a plain date) and the offset in
    /// seconds (`i32::MIN`: none), little-endian.
    pub fn to_bytes(&self) -> [u8; 16] {
        let utc = self.local.and_utc();
        let nanos = utc.timestamp_subsec_nanos() | if self.date_only { 1 << 31 } else { 0 };
        let offset = self.offset.map_or(i32::MIN, |o| o.local_minus_utc());
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&utc.timestamp().to_le_bytes());
        out[8..12].copy_from_slice(&nanos.to_le_bytes());
        out[12..].copy_from_slice(&offset.to_le_bytes());
        out
    }

    /// The timestamp [`Timestamp::to_bytes`] wrote; `None` for bytes it
    /// cannot have written.
    pub fn from_bytes(bytes: &[u8; 16]) -> Option<Self> {
        let seconds = i64::from_le_bytes(bytes[..8].try_into().ok()?);
        let nanos = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
        let offset = i32::from_le_bytes(bytes[12..].try_into().ok()?);
        let local = chrono::DateTime::from_timestamp(seconds, nanos & !(1 << 31))?.naive_utc();
        let offset = match offset {
            i32::MIN => None,
            seconds => Some(FixedOffset::east_opt(seconds)?),
        };
        Some(Self {
            local,
            offset,
            date_only: nanos & (1 << 31) != 0,
        })
    }

    /// This timestamp moved `steps` steps of `freq`, in the same offset.
    pub fn step(&self, freq: &Freq, steps: i64) -> Option<Self> {
        Some(Self {
            local: freq.step(&self.local, steps)?,
            offset: self.offset,
            date_only: self.date_only && freq.is_daily_or_coarser(),
        })
    }
}

/// Split `13:30:00+02:00` / `13:30Z` into the clock and its offset.
fn split_offset(time: &str) -> Option<(&str, Option<FixedOffset>)> {
    if let Some(clock) = time.strip_suffix('Z').or_else(|| time.strip_suffix('z')) {
        return Some((clock, FixedOffset::east_opt(0)));
    }
    let Some(i) = time.rfind(['+', '-']) else {
        return Some((time, None));
    };
    let (clock, zone) = time.split_at(i);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if minutes >= 60 {
        return None;
    }
    // An offset of a day or more is no offset: refuse it, never drop it.
    let offset = FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))?;
    Some((clock, Some(offset)))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.date_only {
            return write!(f, "{}", self.local.format("%Y-%m-%d"));
        }
        write!(f, "{}", self.local.format("%Y-%m-%dT%H:%M:%S%.f"))?;
        match self.offset {
            Some(o) if o.local_minus_utc() == 0 => f.write_str("Z"),
            Some(o) => write!(f, "{o}"),
            None => Ok(()),
        }
    }
}

impl FromStr for Timestamp {
    type Err = BadTimestamp;
    fn from_str(s: &str) -> Result<Self, BadTimestamp> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Why a series' timestamps were refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CalendarError {
    #[error("timestamps mix time zones: timestamp 0 has {first}, timestamp {index} has {other}")]
    MixedZones {
        index: usize,
        first: String,
        other: String,
    },
    #[error(transparent)]
    Grid(#[from] GridError),
}

fn zone_name(offset: Option<FixedOffset>) -> String {
    offset.map_or_else(|| "no UTC offset".to_string(), |o| format!("offset {o}"))
}

/// Where a series lies on its calendar: its frequency and the timestamp of
/// its last position; enough to label the steps that follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeriesCalendar {
    #[schema(value_type = String, example = "h")]
    pub freq: Freq,
    #[schema(value_type = String, example = "2024-03-01T06:00:00Z")]
    pub last: Timestamp,
}

/// Where a series whose time axis is integers (`ds` of whole numbers, as
/// statsforecast allows) ends: its last position and its step; enough to
/// continue the axis past the last observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndexAxis {
    #[schema(example = 178)]
    pub last: i64,
    /// At least 1.
    #[schema(example = 2)]
    pub step: i64,
}

impl IndexAxis {
    /// The axis of `len` values from `first` on, `step` apart.
    pub fn from_first(first: i64, step: i64, len: usize) -> Self {
        let steps = i64::try_from(len.saturating_sub(1)).unwrap_or(i64::MAX);
        Self {
            last: first.saturating_add(step.saturating_mul(steps)),
            step,
        }
    }

    /// The axis after `k` more values.
    pub fn advanced(self, k: usize) -> Self {
        Self::from_first(self.last, self.step, k.saturating_add(1))
    }

    /// The position `k` steps after the last one (before it when `k` < 0).
    pub fn position(&self, k: i64) -> i64 {
        self.last.saturating_add(self.step.saturating_mul(k))
    }

    /// [`IndexAxis::position`], or `None` past the range of an `i64`.
    pub fn checked_position(&self, k: i64) -> Option<i64> {
        self.step
            .checked_mul(k)
            .and_then(|d| self.last.checked_add(d))
    }

    /// The positions of the `h` steps after the last observation.
    pub fn future(&self, h: usize) -> Vec<i64> {
        (1..=h).map(|k| self.advanced(k).last).collect()
    }
}

/// One point of a series' time axis, as answers write it: a timestamp, or
/// the integer position of a series fitted on integer `ds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Label {
    Time(Timestamp),
    Position(i64),
}

impl Label {
    /// The same point of the axis: timestamps by their wall-clock time (as a
    /// series' steps are counted) in the same UTC offset (a series never
    /// mixes time zones), positions exactly.
    pub fn same_as(&self, other: &Label) -> bool {
        match (self, other) {
            (Label::Time(a), Label::Time(b)) => a.local() == b.local() && a.offset() == b.offset(),
            (Label::Position(a), Label::Position(b)) => a == b,
            _ => false,
        }
    }
}

/// The label `k` steps after the last value of a series (before it when
/// `k` < 0): on its calendar, or else on its integer positions; `None`
/// when it has neither (or the step leaves the calendar's range).
pub fn label_after(
    calendar: Option<SeriesCalendar>,
    index: Option<IndexAxis>,
    k: i64,
) -> Option<Label> {
    match (calendar, index) {
        (Some(c), _) => c.last.step(&c.freq, k).map(Label::Time),
        (None, Some(axis)) => Some(Label::Position(axis.position(k))),
        (None, None) => None,
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Time(t) => t.fmt(f),
            Label::Position(p) => p.fmt(f),
        }
    }
}

/// A series' timestamps placed on one regular grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    pub calendar: SeriesCalendar,
    /// The grid position of each given timestamp (0 for the first).
    pub positions: Vec<usize>,
}

impl Grid {
    /// Place timestamps on the grid of `freq`, or of the frequency inferred
    /// from them when `freq` is `None`.
    pub fn of(stamps: &[Timestamp], freq: Option<Freq>) -> Result<Self, CalendarError> {
        let Some(first) = stamps.first() else {
            return Err(GridError::TooFewToInfer.into());
        };
        if let Some((index, other)) = stamps
            .iter()
            .enumerate()
            .find(|(_, t)| t.offset != first.offset)
        {
            return Err(CalendarError::MixedZones {
                index,
                first: zone_name(first.offset),
                other: zone_name(other.offset),
            });
        }
        let local: Vec<NaiveDateTime> = stamps.iter().map(|t| t.local).collect();
        let freq = match freq {
            Some(f) => f,
            None => Freq::infer(&local)?,
        };
        let positions = freq.positions(&local)?;
        let last = stamps[stamps.len() - 1];
        Ok(Self {
            calendar: SeriesCalendar {
                freq,
                last: Timestamp {
                    date_only: stamps.iter().all(|t| t.date_only),
                    ..last
                },
            },
            positions,
        })
    }
}

impl SeriesCalendar {
    /// The last date there is on any calendar, for messages.
    pub fn last_date() -> impl std::fmt::Display {
        NaiveDate::MAX
    }

    /// The calendar of `len` values starting at `start`, one per step.
    pub fn from_start(start: Timestamp, freq: Freq, len: usize) -> Result<Self, GridError> {
        if !freq.is_anchored(&start.local) {
            return Err(GridError::OffGrid { index: 0, freq });
        }
        let steps = i64::try_from(len.saturating_sub(1)).map_err(|_| GridError::CannotInfer)?;
        let last = start.step(&freq, steps).ok_or(GridError::CannotInfer)?;
        Ok(Self { freq, last })
    }

    /// The timestamps of the `h` steps after the last observation.
    pub fn future(&self, h: usize) -> Vec<Timestamp> {
        (1..=h as i64)
            .map_while(|k| self.last.step(&self.freq, k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn locals(xs: &[&str]) -> Vec<NaiveDateTime> {
        xs.iter().map(|s| ts(s).local()).collect()
    }

    fn freq(s: &str) -> Freq {
        Freq::parse(s).unwrap()
    }

    #[test]
    fn an_integer_axis_continues_on_its_step() {
        let axis = IndexAxis::from_first(100, 2, 40);
        assert_eq!(axis, IndexAxis { last: 178, step: 2 });
        assert_eq!(axis.future(3), [180, 182, 184]);
        assert_eq!(axis.advanced(3), IndexAxis { last: 184, step: 2 });
        assert_eq!(axis.advanced(0), axis);
        assert_eq!(IndexAxis::from_first(7, 1, 1).last, 7);
        // Far ends saturate rather than wrap.
        assert_eq!(IndexAxis::from_first(i64::MAX - 1, 5, 3).last, i64::MAX);
        assert_eq!(axis.position(-39), 100);
        assert_eq!(axis.position(1), 180);
    }

    #[test]
    fn labels_are_timestamps_or_positions() {
        let axis = IndexAxis { last: 30, step: 10 };
        let cal = SeriesCalendar {
            freq: freq("MS"),
            last: ts("2024-03-01"),
        };
        assert_eq!(label_after(None, Some(axis), -2), Some(Label::Position(10)));
        let march = label_after(Some(cal), Some(axis), 0).unwrap();
        assert_eq!(march, Label::Time(ts("2024-03-01")));
        assert_eq!(label_after(None, None, 1), None);
        for (label, json) in [(march, r#""2024-03-01""#), (Label::Position(-7), "-7")] {
            assert_eq!(serde_json::to_string(&label).unwrap(), json);
            assert_eq!(serde_json::from_str::<Label>(json).unwrap(), label);
        }
        assert!(march.same_as(&Label::Time(ts("2024-03-01T00:00:00"))));
        assert!(!march.same_as(&Label::Position(30)));
        // The same wall clock in another offset is another instant.
        let utc = Label::Time(ts("2024-01-01T03:00:00Z"));
        assert!(utc.same_as(&Label::Time(ts("2024-01-01T03:00:00+00:00"))));
        assert!(!utc.same_as(&Label::Time(ts("2024-01-01T03:00:00+01:00"))));
        assert!(!utc.same_as(&Label::Time(ts("2024-01-01T03:00:00"))));
        assert_eq!(axis.checked_position(2), Some(50));
        assert_eq!(axis.checked_position(i64::MAX / 5), None);
    }

    #[test]
    fn offsets_of_a_day_or_more_are_refused() {
        for bad in ["2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00-25:00"] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        let t = ts("2024-01-01T00:00:00-23:59");
        assert_eq!(
            t.offset().map(|o| o.local_minus_utc()),
            Some(-(23 * 3600 + 59 * 60))
        );
    }

    #[test]
    fn aliases_parse_and_display_canonically() {
        for (alias, canonical) in [
            ("30min", "30min"),
            ("min", "min"),
            ("15T", "15min"),
            ("h", "h"),
            ("H", "h"),
            ("2h", "2h"),
            ("D", "D"),
            ("W", "W-SUN"),
            ("W-MON", "W-MON"),
            ("W-SAT", "W-SAT"),
            ("MS", "MS"),
            ("M", "ME"),
            ("ME", "ME"),
            ("QS", "QS"),
            ("Q", "QE"),
            ("QE", "QE"),
            ("YS", "YS"),
            ("Y", "YE"),
            ("YE", "YE"),
            ("A", "YE"),
        ] {
            assert_eq!(freq(alias).to_string(), canonical, "{alias}");
            assert_eq!(freq(canonical), freq(alias));
        }
        for bad in [
            "",
            "0D",
            "x",
            "W-XYZ",
            "30 min",
            "-1h",
            "99999999999min",
            "d",
        ] {
            assert!(Freq::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn season_candidates_follow_the_frequency() {
        let cases: [(&str, &[usize]); 14] = [
            ("30min", &[48, 336]),
            ("15min", &[96, 672]),
            ("min", &[1440]),
            ("7min", &[1440]),
            ("11min", &[]),
            ("h", &[24, 168]),
            ("2h", &[12, 84]),
            ("D", &[7, 365]),
            ("W", &[52]),
            ("MS", &[12]),
            ("ME", &[12]),
            ("QS", &[4]),
            ("Q", &[4]),
            ("YS", &[]),
        ];
        for (alias, want) in cases {
            assert_eq!(freq(alias).season_candidates(), want, "{alias}");
        }
    }

    #[test]
    fn timestamps_parse_and_display() {
        assert_eq!(ts("2024-02-29").to_string(), "2024-02-29");
        assert_eq!(ts("2024-02-29T13:30").to_string(), "2024-02-29T13:30:00");
        assert_eq!(ts("2024-02-29 13:30:15").to_string(), "2024-02-29T13:30:15");
        assert_eq!(
            ts("2024-02-29T13:30:00Z").to_string(),
            "2024-02-29T13:30:00Z"
        );
        assert_eq!(
            ts("2024-02-29T13:30:00+0530").to_string(),
            "2024-02-29T13:30:00+05:30"
        );
        assert_eq!(
            ts("2024-02-29T13:30:00-02:00").to_string(),
            "2024-02-29T13:30:00-02:00"
        );
        assert_eq!(
            ts("2024-02-29T13:30:00.5").to_string(),
            "2024-02-29T13:30:00.500"
        );
        for bad in [
            "",
            "2023-02-29",
            "2024-13-01",
            "yesterday",
            "2024-01-01T25:00",
            "2024-01-01T10:00+5",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn steps_respect_calendar_anchors() {
        let cases = [
            ("ME", "2024-01-31", 1, "2024-02-29"),
            ("ME", "2024-01-31", 13, "2025-02-28"),
            ("MS", "2024-11-01", 3, "2025-02-01"),
            ("QE", "2024-03-31", 1, "2024-06-30"),
            ("QS", "2024-10-01", 1, "2025-01-01"),
            ("YE", "2024-12-31", 2, "2026-12-31"),
            ("YS", "2024-01-01", -1, "2023-01-01"),
            ("W-MON", "2024-01-01", 2, "2024-01-15"),
            ("D", "2024-02-28", 2, "2024-03-01"),
            ("30min", "2024-01-01T23:30:00", 1, "2024-01-02T00:00:00"),
            ("h", "2024-01-01T23:00:00Z", 2, "2024-01-02T01:00:00Z"),
        ];
        for (alias, from, k, want) in cases {
            let got = ts(from).step(&freq(alias), k).unwrap();
            assert_eq!(got.to_string(), want, "{alias} {from} {k}");
        }
        // A date steps into a date-time when the step is shorter than a day.
        assert_eq!(
            ts("2024-01-01").step(&freq("h"), 1).unwrap().to_string(),
            "2024-01-01T01:00:00"
        );
    }

    #[test]
    fn frequencies_are_inferred() {
        let cases: [(&[&str], &str); 10] = [
            (&["2024-01-01", "2024-01-02", "2024-01-03"], "D"),
            (&["2024-01-01", "2024-01-08", "2024-01-22"], "W-MON"),
            (&["2024-01-31", "2024-02-29", "2024-03-31"], "ME"),
            (&["2024-01-01", "2024-02-01", "2024-04-01"], "MS"),
            (&["2024-01-01", "2024-04-01", "2024-07-01"], "QS"),
            (&["2024-03-31", "2024-06-30", "2024-09-30"], "QE"),
            (&["2022-01-01", "2023-01-01", "2024-01-01"], "YS"),
            (&["2022-12-31", "2023-12-31"], "YE"),
            (
                &["2024-01-01T00:00", "2024-01-01T00:30", "2024-01-01T01:00"],
                "30min",
            ),
            (
                &["2024-01-01T00:00", "2024-01-01T01:00", "2024-01-01T05:00"],
                "h",
            ),
        ];
        for (stamps, want) in cases {
            assert_eq!(
                Freq::infer(&locals(stamps)).unwrap().to_string(),
                want,
                "{stamps:?}"
            );
        }
        // Two consecutive month ends in a daily series are not months.
        let daily = locals(&["2024-01-30", "2024-01-31", "2024-02-01"]);
        assert_eq!(Freq::infer(&daily).unwrap(), freq("D"));
    }

    #[test]
    fn broken_grids_say_where() {
        let off = locals(&[
            "2024-01-01T00:00",
            "2024-01-01T01:00",
            "2024-01-01T02:00",
            "2024-01-01T02:30",
        ]);
        assert_eq!(
            Freq::infer(&off),
            Err(GridError::OffGrid {
                index: 3,
                freq: freq("h")
            })
        );
        let dup = locals(&["2024-01-01", "2024-01-02", "2024-01-02"]);
        assert_eq!(Freq::infer(&dup), Err(GridError::Duplicate { index: 2 }));
        let unsorted = locals(&["2024-01-01", "2024-01-03", "2024-01-02"]);
        assert_eq!(
            Freq::infer(&unsorted),
            Err(GridError::Unsorted { index: 2 })
        );
        assert_eq!(
            Freq::infer(&locals(&["2024-01-01"])),
            Err(GridError::TooFewToInfer)
        );
        let seconds = locals(&["2024-01-01T00:00:00", "2024-01-01T00:00:10"]);
        assert_eq!(Freq::infer(&seconds), Err(GridError::CannotInfer));
        // A given frequency the first timestamp is not anchored on.
        let grid = Grid::of(&[ts("2024-01-02"), ts("2024-02-02")], Some(freq("MS")));
        assert_eq!(
            grid,
            Err(CalendarError::Grid(GridError::OffGrid {
                index: 0,
                freq: freq("MS")
            }))
        );
    }

    #[test]
    fn grids_place_gaps_and_refuse_mixed_zones() {
        let stamps = [
            ts("2024-01-01T00:00Z"),
            ts("2024-01-01T01:00Z"),
            ts("2024-01-01T04:00Z"),
        ];
        let grid = Grid::of(&stamps, None).unwrap();
        assert_eq!(grid.positions, vec![0, 1, 4]);
        assert_eq!(grid.calendar.freq, freq("h"));
        let future: Vec<String> = grid
            .calendar
            .future(2)
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(future, ["2024-01-01T05:00:00Z", "2024-01-01T06:00:00Z"]);

        let mixed = [ts("2024-01-01T00:00+01:00"), ts("2024-01-01T01:00+02:00")];
        assert!(matches!(
            Grid::of(&mixed, None),
            Err(CalendarError::MixedZones { index: 1, .. })
        ));
        let naive_and_utc = [ts("2024-01-01T00:00"), ts("2024-01-01T01:00Z")];
        assert!(matches!(
            Grid::of(&naive_and_utc, None),
            Err(CalendarError::MixedZones { index: 1, .. })
        ));
    }

    #[test]
    fn calendars_from_a_start_and_serde_round_trip() {
        let cal = SeriesCalendar::from_start(ts("2024-01-31"), freq("M"), 3).unwrap();
        assert_eq!(cal.last.to_string(), "2024-03-31");
        let future: Vec<String> = cal.future(2).iter().map(|t| t.to_string()).collect();
        assert_eq!(future, ["2024-04-30", "2024-05-31"]);
        assert!(SeriesCalendar::from_start(ts("2024-01-15"), freq("MS"), 3).is_err());

        let json = serde_json::to_string(&cal).unwrap();
        assert_eq!(json, r#"{"freq":"ME","last":"2024-03-31"}"#);
        let back: SeriesCalendar = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cal);
        let bytes = postcard::to_allocvec(&cal).unwrap();
        assert_eq!(postcard::from_bytes::<SeriesCalendar>(&bytes).unwrap(), cal);
    }

    #[test]
    fn timestamps_round_trip_through_their_bytes() {
        for text in [
            "2024-01-31",
            "1700-03-01",
            "2024-01-31T13:30:00.25",
            "2024-01-31T13:30:00Z",
            "2024-01-31T13:30:00+05:30",
            "1969-12-31T23:59:59-08:00",
        ] {
            let t = Timestamp::parse(text).unwrap();
            let back = Timestamp::from_bytes(&t.to_bytes()).unwrap();
            assert_eq!(back, t, "{text}");
            assert_eq!(back.to_string(), t.to_string());
        }
        let mut bad = Timestamp::parse("2024-01-31T00:00:00+01:00")
            .unwrap()
            .to_bytes();
        bad[12..].copy_from_slice(&(100_000i32).to_le_bytes());
        assert_eq!(Timestamp::from_bytes(&bad), None);
    }
}
