//! Future timestamps for forecast answers: each series fitted with
//! timestamps keeps its calendar (frequency and last timestamp) in the
//! version's fit summary; a forecast's steps are labelled from it.

use protocol::calendar::SeriesCalendar;
use protocol::FitSummary;
use std::collections::HashMap;

/// The calendars of a version's series, by series id, and the method the
/// version was fitted with (the forecast columns' name in table downloads).
#[derive(Debug, Default)]
pub struct Calendars(HashMap<String, SeriesCalendar>, Option<engine::Method>);

impl Calendars {
    /// The calendars in a fit summary (none when the series had no
    /// timestamps, or the summary is missing).
    pub fn of(summary: Option<&FitSummary>) -> Self {
        Self(
            summary
                .into_iter()
                .flat_map(|s| &s.series)
                .filter_map(|s| s.calendar.map(|c| (s.id.clone(), c)))
                .collect(),
            summary.map(|s| s.method),
        )
    }

    /// The method the version was fitted with, when its summary was read.
    pub fn method(&self) -> Option<engine::Method> {
        self.1
    }

    /// The timestamps of the `horizon` steps after series `id`'s last
    /// observation, as ISO 8601 text; `None` without a calendar.
    pub fn future(&self, id: &str, horizon: usize) -> Option<Vec<String>> {
        let calendar = self.0.get(id)?;
        Some(
            calendar
                .future(horizon)
                .iter()
                .map(ToString::to_string)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::calendar::{Freq, Timestamp};
    use protocol::{ModelName, SeriesFit};

    fn fit(id: &str, calendar: Option<SeriesCalendar>) -> SeriesFit {
        SeriesFit {
            id: id.to_string(),
            chosen: "Naive".to_string(),
            fallback: None,
            n_obs: 3,
            n_missing: 0,
            calendar,
        }
    }

    #[test]
    fn future_steps_follow_each_series_calendar() {
        let monthly = SeriesCalendar {
            freq: Freq::parse("MS").unwrap(),
            last: Timestamp::parse("2024-11-01").unwrap(),
        };
        let summary = FitSummary {
            model: ModelName::default_model(),
            version: 1,
            method: engine::Method::Naive,
            series: vec![fit("a", Some(monthly)), fit("b", None)],
        };
        let calendars = Calendars::of(Some(&summary));
        assert_eq!(
            calendars.future("a", 3).unwrap(),
            ["2024-12-01", "2025-01-01", "2025-02-01"]
        );
        assert_eq!(calendars.future("b", 3), None);
        assert_eq!(Calendars::of(None).future("a", 3), None);
    }
}
