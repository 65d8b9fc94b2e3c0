//! Placeholder for the Theta family; being written.

use serde::{Deserialize, Serialize};

/// Which member of the Theta family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThetaVariant {
    /// Standard theta (theta = 2).
    Standard,
    /// Optimised theta.
    Optimized,
    /// Dynamic optimised theta.
    Dynamic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Theta {
    pub variant: ThetaVariant,
}

impl Theta {
    /// Fits the variant to `y` with season length `m` (1 = none).
    pub fn fit(_y: &[f64], _m: usize, _variant: ThetaVariant) -> Result<Self, String> {
        Err("not implemented yet".into())
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        vec![0.0; h]
    }

    pub fn describe(&self) -> String {
        format!("{:?}Theta", self.variant)
    }
}
