//! Admission control: what a request may cost, decided before any work
//! starts.
//!
//! - **Fits** take a slot for as long as their fit runs, including the part
//!   that goes on after the client has hung up (the slot travels with the
//!   detached registration task). With every slot taken a fit is refused at
//!   once (503 + `Retry-After`): the fit queue is bounded by the number of
//!   slots, and abandoned fits count against it until they settle.
//! - **Forecasts** take a slot while they run; all taken: 503 + `Retry-After`.
//! - **Request bodies** are buffered whole before they are parsed; their
//!   bytes in memory at once are bounded by a budget (a body reserves its
//!   `Content-Length`, or the body limit when it has none). A body that does
//!   not fit the budget now: 503 + `Retry-After`.
//! - **Forecast answers**: horizon × series × (1 + 2 × levels) numbers at most
//!   [`AdmissionConfig::max_forecast_values`]; more is a 422 before the
//!   forecast is sent to a worker. The forecasts a backtest answers with
//!   (horizon × windows × series × (2 + 2 × levels): actual, mean, bounds)
//!   have the same cap.

use crate::jsend::ApiError;
use axum::http::StatusCode;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default cap on the numbers of one forecast answer: about 40 MB of JSON.
pub const DEFAULT_MAX_FORECAST_VALUES: usize = 2_000_000;
/// Default fits admitted at once (running or queued for a worker).
pub const DEFAULT_MAX_FITS: usize = 64;
/// Default forecasts admitted at once.
pub const DEFAULT_MAX_FORECASTS: usize = 256;
/// Default bytes of request bodies buffered at once: four bodies of the
/// default limit.
pub const DEFAULT_BODY_BUDGET: usize = 4 * crate::DEFAULT_BODY_LIMIT;
/// Seconds a refused client is told to wait.
pub const RETRY_AFTER_SECS: u64 = 2;
/// The body budget is counted in units of this many bytes (semaphores count in u32).
const BUDGET_UNIT: usize = 1024;

/// The limits of [`Admission`].
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    pub max_fits: usize,
    pub max_forecasts: usize,
    pub body_budget: usize,
    pub max_forecast_values: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            max_fits: DEFAULT_MAX_FITS,
            max_forecasts: DEFAULT_MAX_FORECASTS,
            body_budget: DEFAULT_BODY_BUDGET,
            max_forecast_values: DEFAULT_MAX_FORECAST_VALUES,
        }
    }
}

/// The slots of one gateway process.
#[derive(Debug)]
pub struct Admission {
    config: AdmissionConfig,
    fits: Arc<Semaphore>,
    forecasts: Arc<Semaphore>,
    body_bytes: Arc<Semaphore>,
}

/// A slot held while a request (or its detached fit) runs.
pub type Slot = OwnedSemaphorePermit;

impl Admission {
    pub fn new(config: AdmissionConfig) -> Self {
        let units = budget_units(&config);
        Self {
            fits: Arc::new(Semaphore::new(config.max_fits.max(1))),
            forecasts: Arc::new(Semaphore::new(config.max_forecasts.max(1))),
            body_bytes: Arc::new(Semaphore::new(units)),
            config,
        }
    }

    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    /// A fit slot, or a 503 when every slot is taken.
    pub fn fit(&self) -> Result<Slot, ApiError> {
        self.fits.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("horizon_admission_refused_total", "what" => "fit").increment(1);
            busy(format!(
                "{} fits are already running or queued; retry later",
                self.config.max_fits
            ))
        })
    }

    /// A forecast slot, or a 503 when every slot is taken.
    pub fn forecast(&self) -> Result<Slot, ApiError> {
        self.forecasts.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("horizon_admission_refused_total", "what" => "forecast").increment(1);
            busy(format!(
                "{} forecasts are already running; retry later",
                self.config.max_forecasts
            ))
        })
    }

    /// Room for a body of `bytes` bytes in the body budget, or a 503.
    pub fn body(&self, bytes: usize) -> Result<Slot, ApiError> {
        let units = bytes.div_ceil(BUDGET_UNIT).max(1);
        // A body larger than the whole budget takes all of it (it could
        // never be admitted otherwise).
        let units = units.min(budget_units(&self.config));
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        self.body_bytes
            .clone()
            .try_acquire_many_owned(units)
            .map_err(|_| {
                metrics::counter!("horizon_admission_refused_total", "what" => "body").increment(1);
                busy(
                    "too many large request bodies are being read at once; retry later".to_string(),
                )
            })
    }

    /// Refuses a forecast whose answer would hold more numbers than the cap.
    pub fn forecast_size(
        &self,
        horizon: usize,
        n_series: usize,
        n_levels: usize,
    ) -> Result<(), ApiError> {
        let per_step = 1 + 2 * n_levels;
        let values = horizon.saturating_mul(n_series).saturating_mul(per_step);
        let max = self.config.max_forecast_values;
        if values <= max {
            return Ok(());
        }
        // The longest horizon that fits, so the client knows what to ask.
        let fits = max / n_series.max(1).saturating_mul(per_step).max(1);
        Err(ApiError::fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "horizon",
            format!(
                "the answer would hold {values} numbers (horizon {horizon} × {n_series} series × \
                 {per_step} per step), over the limit of {max}; ask for fewer steps (at most \
                 {fits} here), fewer levels or fewer series"
            ),
        ))
    }

    /// Refuses a backtest whose answer would hold more forecast numbers than
    /// the cap; `field` names the option that asked for them.
    pub fn backtest_size(
        &self,
        horizon: usize,
        n_windows: usize,
        n_series: usize,
        n_levels: usize,
        field: &str,
    ) -> Result<(), ApiError> {
        let per_step = 2 + 2 * n_levels;
        let values = horizon
            .saturating_mul(n_windows)
            .saturating_mul(n_series)
            .saturating_mul(per_step);
        let max = self.config.max_forecast_values;
        if values <= max {
            return Ok(());
        }
        Err(ApiError::fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            field,
            format!(
                "the answer's forecasts would hold {values} numbers (horizon {horizon} × \
                 {n_windows} windows × {n_series} series × {per_step} per step: actual, mean and \
                 bounds), over the limit of {max}; ask for fewer windows, steps, levels or series"
            ),
        ))
    }
}

/// The body budget in units of [`BUDGET_UNIT`] bytes, rounded up.
fn budget_units(config: &AdmissionConfig) -> usize {
    config
        .body_budget
        .div_ceil(BUDGET_UNIT)
        .clamp(1, Semaphore::MAX_PERMITS)
}

/// A 503; [`crate::server`] adds `Retry-After` to every 503 it sends.
fn busy(message: String) -> ApiError {
    ApiError::error(StatusCode::SERVICE_UNAVAILABLE, message)
        .with_data(json!({ "retry_after_seconds": RETRY_AFTER_SECS }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_fits: usize, body_budget: usize) -> Admission {
        Admission::new(AdmissionConfig {
            max_fits,
            max_forecasts: 1,
            body_budget,
            max_forecast_values: 1000,
        })
    }

    #[test]
    fn slots_are_bounded_and_come_back() {
        let a = admission(2, 4096);
        let one = a.fit().unwrap();
        let _two = a.fit().unwrap();
        assert!(a.fit().is_err());
        drop(one);
        assert!(a.fit().is_ok());
    }

    #[test]
    fn the_body_budget_counts_bytes() {
        let a = admission(1, 4096);
        let big = a.body(3000).unwrap();
        assert!(a.body(2000).is_err());
        let small = a.body(1000).unwrap();
        drop((big, small));
        // A body over the whole budget takes all of it, so it is not refused for ever.
        assert!(a.body(1 << 30).is_ok());
        // Also when the budget is not a whole number of units.
        let odd = admission(1, 2000);
        let whole = odd.body(2630).unwrap();
        assert!(odd.body(1).is_err());
        drop(whole);
        assert!(odd.body(1).is_ok());
    }

    #[test]
    fn forecast_size_counts_steps_series_and_levels() {
        let a = admission(1, 4096);
        assert!(a.forecast_size(100, 2, 2).is_ok()); // 100 × 2 × 5 = 1000
        let err = a.forecast_size(101, 2, 2).unwrap_err();
        assert!(format!("{err:?}").contains("at most 100"), "{err:?}");
        assert!(a.forecast_size(usize::MAX, usize::MAX, 20).is_err());
        // A backtest's forecasts: 10 × 5 windows × 2 series × (2 + 2 × 4) = 1000.
        assert!(a.backtest_size(10, 5, 2, 4, "include_forecasts").is_ok());
        let err = a
            .backtest_size(10, 6, 2, 4, "include_forecasts")
            .unwrap_err();
        assert!(format!("{err:?}").contains("include_forecasts"), "{err:?}");
        assert!(a
            .backtest_size(usize::MAX, usize::MAX, 2, 20, "n_windows")
            .is_err());
    }
}
