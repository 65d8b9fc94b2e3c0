//! Placeholder for the Arima family; being written.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arima {}

impl Arima {
    /// Fits the best model of the family to `y` with season length `m` (1 = none).
    pub fn fit(_y: &[f64], _m: usize) -> Result<Self, String> {
        Err("not implemented yet".into())
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        vec![0.0; h]
    }

    /// The chosen model, e.g. `ETS(M,Ad,M)`.
    pub fn describe(&self) -> String {
        "Arima".into()
    }
}
