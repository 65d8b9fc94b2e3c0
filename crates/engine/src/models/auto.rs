//! `auto`: the default method, a combination of the model families.
//!
//! Every member family is fitted to the series; the forecast combines the
//! members that fitted (see [`Combine`]). When some members fail the rest are
//! still combined and the fit says so; when all fail the caller falls back to
//! a simpler model.

use super::{arima, baselines, ces, ets, theta, State};
use serde::{Deserialize, Serialize};

/// How member forecasts are combined, step by step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combine {
    /// Arithmetic mean.
    Mean,
    /// Median (mean of the two middle ones for an even count).
    Median,
    /// Weighted mean with the stored weights.
    Weighted,
}

/// The fitted combination: its members' fitted states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Combination {
    pub combine: Combine,
    pub members: Vec<State>,
    /// Weights of the members (used by [`Combine::Weighted`]); sum to 1.
    #[serde(default)]
    pub weights: Vec<f64>,
}

/// TEMPORARY tuning knobs (AUTO_TUNE="mask,power,topk,median").
fn knob(i: usize, default: f64) -> f64 {
    static K: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let k = K.get_or_init(|| {
        std::env::var("AUTO_TUNE")
            .ok()
            .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_default()
    });
    k.get(i)
        .copied()
        .filter(|v: &f64| v.is_finite())
        .unwrap_or(default)
}

type Fitter = fn(&[f64], usize) -> Result<State, String>;

/// Candidate members, by name.
const CANDIDATES: [(&str, Fitter); 10] = [
    ("ets", |y, m| ets::Ets::fit(y, m).map(State::Ets)),
    ("arima", |y, m| arima::Arima::fit(y, m).map(State::Arima)),
    ("dotm", |y, m| {
        theta::Theta::fit(y, m, theta::ThetaVariant::Dynamic).map(State::Theta)
    }),
    ("otm", |y, m| {
        theta::Theta::fit(y, m, theta::ThetaVariant::Optimized).map(State::Theta)
    }),
    ("stm", |y, m| {
        theta::Theta::fit(y, m, theta::ThetaVariant::Standard).map(State::Theta)
    }),
    ("ces", |y, m| ces::Ces::fit(y, m).map(State::Ces)),
    ("ses", |y, _| Ok(State::Ses(baselines::Ses::fit(y)))),
    ("drift", |y, _| Ok(State::Drift(baselines::Drift::fit(y)))),
    ("naive2", |y, m| Ok(State::Naive2(baselines::Naive2::fit(y, m)))),
    ("autotheta", |y, m| {
        theta::Theta::fit(y, m, theta::ThetaVariant::Auto).map(State::Theta)
    }),
];

impl Combination {
    /// Fits every member; `Ok((model, note))` where `note` lists the members
    /// that failed, `Err` when none fitted.
    pub fn fit(y: &[f64], m: usize) -> Result<(Self, Option<String>), String> {
        let mask = knob(0, 37.0) as u32;
        let mut members = Vec::new();
        let mut failed = Vec::new();
        for (i, (name, fitter)) in CANDIDATES.iter().enumerate() {
            if mask & (1 << i) == 0 {
                continue;
            }
            match fitter(y, m) {
                Ok(state) if state.forecast(1).iter().all(|v| v.is_finite()) => {
                    members.push(state)
                }
                Ok(_) => failed.push(format!("{name}: non-finite forecast")),
                Err(why) => failed.push(format!("{name}: {why}")),
            }
        }
        if members.is_empty() {
            return Err(format!("no member could be fitted ({})", failed.join("; ")));
        }
        let note = (!failed.is_empty()).then(|| {
            format!(
                "auto combined {} of {} members; failed: {}",
                members.len(),
                members.len() + failed.len(),
                failed.join("; ")
            )
        });
        let power = knob(1, 0.0);
        let topk = knob(2, 0.0) as usize;
        let median = knob(3, 0.0) > 0.5;
        let (combine, members, weights) = if power > 0.0 || topk > 0 {
            let errs: Vec<f64> = members.iter().map(|s| validation_mae(s, y, m)).collect();
            let mut idx: Vec<usize> = (0..members.len()).collect();
            idx.sort_by(|&a, &b| errs[a].total_cmp(&errs[b]));
            if topk > 0 {
                idx.truncate(topk.min(members.len()));
            }
            let best = errs[idx[0]].max(1e-300);
            let raw: Vec<f64> = idx
                .iter()
                .map(|&i| {
                    let r = (errs[i].max(1e-300) / best).powf(-power);
                    if r.is_finite() {
                        r
                    } else {
                        0.0
                    }
                })
                .collect();
            let total: f64 = raw.iter().sum();
            let chosen: Vec<State> = idx.iter().map(|&i| members[i].clone()).collect();
            if median {
                (Combine::Median, chosen, Vec::new())
            } else if total > 0.0 {
                (
                    Combine::Weighted,
                    chosen,
                    raw.iter().map(|w| w / total).collect(),
                )
            } else {
                (Combine::Mean, chosen, Vec::new())
            }
        } else if median {
            (Combine::Median, members, Vec::new())
        } else {
            (Combine::Mean, members, Vec::new())
        };
        Ok((
            Self {
                combine,
                members,
                weights,
            },
            note,
        ))
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        let paths: Vec<(f64, Vec<f64>)> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, s)| (self.weights.get(i).copied().unwrap_or(1.0), s.forecast(h)))
            .filter(|(_, f)| f.len() == h && f.iter().all(|v| v.is_finite()))
            .collect();
        if paths.is_empty() {
            return vec![0.0; h];
        }
        (0..h)
            .map(|i| {
                let mut vals: Vec<f64> = paths.iter().map(|p| p.1[i]).collect();
                let w: Vec<f64> = paths.iter().map(|p| p.0).collect();
                combine(self.combine, &mut vals, &w)
            })
            .collect()
    }

    pub fn describe(&self) -> String {
        let names: Vec<String> = self.members.iter().map(State::describe).collect();
        let how = match self.combine {
            Combine::Mean => "mean",
            Combine::Median => "median",
            Combine::Weighted => "weighted mean",
        };
        format!("{how} of [{}]", names.join(", "))
    }

    pub fn refilter(&self, y: &[f64]) -> Self {
        Self {
            combine: self.combine,
            members: self.members.iter().map(|s| s.refilter(y)).collect(),
            weights: self.weights.clone(),
        }
    }
}

/// Mean absolute rolling-origin error of `state` over the tail of `y`
/// (re-filtered, not re-fitted, at each origin).
fn validation_mae(state: &State, y: &[f64], m: usize) -> f64 {
    let n = y.len();
    let horizon = (3 * m / 2).clamp(6, 18).min(n / 3).max(1);
    let min_train = (n / 2).max(3);
    if n <= min_train + 1 {
        return 1.0;
    }
    let first = min_train.max(n.saturating_sub(2 * horizon));
    let mut sum = 0.0;
    let mut count = 0usize;
    for k in first..n {
        let steps = horizon.min(n - k);
        let f = state.refilter(&y[..k]).forecast(steps);
        for (j, fv) in f.iter().enumerate() {
            let e = (y[k + j] - fv).abs();
            if e.is_finite() {
                sum += e;
                count += 1;
            } else {
                return f64::INFINITY;
            }
        }
    }
    if count == 0 {
        1.0
    } else {
        sum / count as f64
    }
}

fn combine(how: Combine, vals: &mut [f64], weights: &[f64]) -> f64 {
    let n = vals.len();
    // Deviations from the first member: no overflow near f64::MAX.
    let base = vals[0];
    match how {
        Combine::Mean => base + vals.iter().map(|v| v - base).sum::<f64>() / n as f64,
        Combine::Weighted => {
            let total: f64 = weights.iter().sum();
            if total > 0.0 && total.is_finite() {
                base + vals
                    .iter()
                    .zip(weights)
                    .map(|(v, w)| (v - base) * w)
                    .sum::<f64>()
                    / total
            } else {
                base + vals.iter().map(|v| v - base).sum::<f64>() / n as f64
            }
        }
        Combine::Median => {
            vals.sort_by(f64::total_cmp);
            if n % 2 == 1 {
                vals[n / 2]
            } else {
                0.5 * vals[n / 2 - 1] + 0.5 * vals[n / 2]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combines_by_mean_and_median() {
        assert_eq!(combine(Combine::Mean, &mut [1.0, 2.0, 6.0], &[]), 3.0);
        assert_eq!(combine(Combine::Median, &mut [6.0, 1.0, 2.0], &[]), 2.0);
        assert_eq!(combine(Combine::Median, &mut [4.0, 1.0, 2.0, 8.0], &[]), 3.0);
        assert_eq!(
            combine(Combine::Weighted, &mut [1.0, 3.0], &[0.75, 0.25]),
            1.5
        );
    }
}
