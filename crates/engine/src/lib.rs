//! Horizon's forecasting engine.
//!
//! Pure, synchronous Rust: no I/O, no async, no knowledge of HTTP, queues or
//! databases. The flow follows augurs: configure a [`ModelSpec`], [`ModelSpec::fit`]
//! it to a [`SeriesData`] and get a [`FittedModel`], then ask the fitted model
//! for a [`Forecast`]. A [`FittedModel`] is plain serde state, so a store can keep
//! it and any worker can forecast from it later without refitting.

pub mod intervals;
mod method;
mod model;
pub mod models;
pub mod optim;
pub mod seasonal;
mod series;

pub use method::{Method, UnknownMethod};
pub use model::{FitError, FittedModel, Forecast, Interval, ModelSpec, FORMAT_VERSION};
pub use series::{Horizon, Level, SeriesData, SeriesError, MAX_HORIZON, MAX_SERIES_LEN};
