//! Baseline models: naive, seasonal naive, drift, mean and simple exponential
//! smoothing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Naive {
    pub last: f64,
}

impl Naive {
    pub fn fit(y: &[f64]) -> Self {
        Self {
            last: y.last().copied().unwrap_or(0.0),
        }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        vec![self.last; h]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeasonalNaive {
    pub last_season: Vec<f64>,
}

impl SeasonalNaive {
    pub fn fit(y: &[f64], m: usize) -> Self {
        let m = m.clamp(1, y.len().max(1));
        Self {
            last_season: y[y.len().saturating_sub(m)..].to_vec(),
        }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        if self.last_season.is_empty() {
            return vec![0.0; h];
        }
        (0..h)
            .map(|i| self.last_season[i % self.last_season.len()])
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub last: f64,
    pub slope: f64,
}

impl Drift {
    pub fn fit(y: &[f64]) -> Self {
        let n = y.len();
        let last = y.last().copied().unwrap_or(0.0);
        let slope = if n > 1 {
            (last - y[0]) / (n - 1) as f64
        } else {
            0.0
        };
        Self { last, slope }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        (1..=h).map(|i| self.last + self.slope * i as f64).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mean {
    pub mean: f64,
}

impl Mean {
    pub fn fit(y: &[f64]) -> Self {
        Self {
            mean: y.iter().sum::<f64>() / y.len().max(1) as f64,
        }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        vec![self.mean; h]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ses {
    pub alpha: f64,
    pub level: f64,
}

impl Ses {
    /// Chooses alpha on a grid by in-sample one-step squared error.
    pub fn fit(y: &[f64]) -> Self {
        let run = |alpha: f64| {
            let mut level = y[0];
            let mut sse = 0.0;
            for &v in &y[1..] {
                let e = v - level;
                sse += e * e;
                level += alpha * e;
            }
            (sse, level)
        };
        let (alpha, (_, level)) = (1..=99)
            .map(|i| i as f64 / 100.0)
            .map(|a| (a, run(a)))
            .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
            .unwrap_or((0.5, (0.0, y[0])));
        Self { alpha, level }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        vec![self.level; h]
    }
}
