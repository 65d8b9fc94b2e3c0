//! Horizon's forecasting engine.
//!
//! Pure, synchronous Rust: no I/O, no async, no knowledge of HTTP, queues or
//! databases. The flow follows augurs: configure a [`ModelSpec`], [`ModelSpec::fit`]
//! it to a [`SeriesData`] and get a [`FittedModel`], then ask the fitted model
//! for a [`Forecast`]. A [`FittedModel`] is plain serde state, so a store can keep
//! it and any worker can forecast from it later without refitting.
//!
//! Real data: a series may have gaps ([`SeriesData::with_gaps`]; models fit
//! the interpolated series, ETS skips missing observations, calibration
//! scores only observed values, and after gaps at the end the intervals
//! start as wide as that many steps further ahead); intermittent demand has
//! its own methods (Croston, SBA, TSB, ADIDA, IMAPA) and `auto` switches to
//! TSB on it; [`ModelSpec::nonnegative`] clips at zero (by default for
//! counts). Every series is fitted divided by a power of two near its mean
//! absolute value, so results are equivariant to its scale.
//!
//! Threads: a fit runs its independent pieces side by side on rayon's pool
//! (the pool of the calling thread, else the global one): `auto`'s candidates
//! and combination members, ARIMA's starting models, the calibration origins.
//! On a long series that cuts the wait for one fit almost in half on two
//! cores; the result is the same on any number of threads. Forecasting from a
//! fitted model never touches the pool, so it never waits behind fits.
//!
//! ```
//! use engine::{Horizon, Level, Method, ModelSpec, SeriesData};
//!
//! let y = SeriesData::parse((0..48).map(|t| 100.0 + t as f64 + [5.0, -3.0, 2.0, -4.0][t % 4]).collect())?;
//! let fitted = ModelSpec::new(Method::Auto, Some(4)).fit(&y)?;
//! let forecast = fitted.forecast(Horizon::parse(8)?, &[Level::parse(95.0)?]);
//! assert_eq!(forecast.mean.len(), 8);
//! let band = &forecast.intervals[0];
//! assert!(band.lower[0] <= forecast.mean[0] && forecast.mean[0] <= band.upper[0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backtest;
pub mod intervals;
mod method;
mod model;
pub mod models;
pub mod optim;
pub mod seasonal;
mod series;
#[cfg(test)]
mod test_support;

pub use method::{Method, UnknownMethod};
pub use model::{
    ExtendError, FitError, FittedModel, FittedModelV2, Forecast, Interval, ModelSpec,
    FORMAT_VERSION,
};
pub use series::{
    Horizon, Level, SeriesData, SeriesError, MAX_HORIZON, MAX_SERIES_LEN, MIN_TRAIN_LEN,
};
