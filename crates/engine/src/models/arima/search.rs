//! The stepwise order search of Hyndman & Khandakar (2008): start from a few
//! simple models, then repeatedly try the neighbours of the current best
//! (p, q, P, Q one up or down, alone or in pairs, and the constant switched)
//! and move to the first that lowers the AICc, until none does.

use super::likelihood::{
    css_len, css_residuals, css_residuals_many, exact_residuals, exact_residuals_many, Coefs,
    Order, Work,
};
use super::lm::{self, Residuals};
use super::poly::{expand_ar, expand_ma};
use rayon::prelude::*;

/// Roots closer to the unit circle than this make a model unusable (its
/// forecasts would be close to those of a differenced model, and the fit is
/// numerically fragile), as in Hyndman & Khandakar.
pub(crate) const ROOT_MARGIN: f64 = 1.01;
/// Most models fitted by one search (the forecast package's default).
const MAX_MODELS: usize = 94;
/// Levenberg–Marquardt iterations per fit.
const MAX_ITER: usize = 40;
/// Relative improvement of the sum of squares below which a fit stops: the
/// search only needs AICc to ~0.01, the final exact fit a little more.
const CSS_TOL: f64 = 1e-6;
const EXACT_TOL: f64 = 1e-8;

/// How candidates are estimated during the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Estimation {
    /// Conditional sum of squares only.
    Css,
    /// Conditional sum of squares, then the exact likelihood from there.
    CssMl,
}

/// One fitted candidate.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub order: Order,
    pub beta: Vec<f64>,
    /// AICc; infinite when the fit is unusable.
    pub ic: f64,
}

/// Bounds of the search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Space {
    pub max_p: usize,
    pub max_q: usize,
    pub max_sp: usize,
    pub max_sq: usize,
    /// A mean/drift may be included (d + D ≤ 1).
    pub allow_constant: bool,
    /// The mean is always included (d + D = 0: the data are centred, so a
    /// zero-mean model would be a mean fixed at the sample mean).
    pub force_constant: bool,
}

/// AICc from −2 log L with `k` coefficients (+1 for σ²) and `n` observations.
pub(crate) fn aicc(m2ll: f64, k: usize, n: usize) -> f64 {
    let kk = (k + 1) as f64;
    let nf = n as f64;
    if nf - kk - 1.0 <= 0.0 || !m2ll.is_finite() {
        return f64::INFINITY;
    }
    m2ll + 2.0 * kk + 2.0 * kk * (kk + 1.0) / (nf - kk - 1.0)
}

/// The residuals of one model of the differenced series `w`: conditional
/// (CSS) or exact-likelihood ones.
struct Objective<'a> {
    w: &'a [f64],
    m: usize,
    order: &'a Order,
    work: &'a mut Work,
    exact: bool,
}

impl Residuals for Objective<'_> {
    fn eval(&mut self, x: &[f64], r: &mut [f64]) -> bool {
        if self.exact {
            exact_residuals(self.w, self.m, self.order, x, self.work, r)
        } else {
            css_residuals(self.w, self.m, self.order, x, self.work, r)
        }
    }

    fn eval_many(&mut self, xs: &[f64], rs: &mut [f64], ok: &mut [bool]) {
        if self.exact {
            exact_residuals_many(self.w, self.m, self.order, xs, self.work, rs, ok);
        } else {
            css_residuals_many(self.w, self.m, self.order, xs, self.work, rs, ok);
        }
    }
}

/// Fits `order` to the differenced series `w` by CSS; `None` when impossible.
pub(crate) fn fit_css(w: &[f64], m: usize, order: &Order, work: &mut Work) -> Option<Candidate> {
    let k = order.npar();
    let nres = css_len(w.len(), m, order);
    if nres < k + 3 {
        return None;
    }
    let mut x0 = vec![0.0; k];
    if order.constant {
        x0[k - 1] = w.iter().sum::<f64>() / w.len() as f64;
    }
    let (beta, cost) = lm::minimize(
        Objective {
            w,
            m,
            order,
            work,
            exact: false,
        },
        &x0,
        nres,
        MAX_ITER,
        CSS_TOL,
    )?;
    let s2 = cost / nres as f64;
    if s2.is_nan() || s2 <= 0.0 {
        return None;
    }
    let nf = w.len() as f64;
    let m2ll = nf * ((2.0 * std::f64::consts::PI * s2).ln() + 1.0);
    let mut ic = aicc(m2ll, k, w.len());
    if !Coefs::split(order, &beta).admissible(m, ROOT_MARGIN) {
        ic = f64::INFINITY;
    }
    Some(Candidate {
        order: *order,
        beta,
        ic,
    })
}

/// Refines a candidate by the exact likelihood, starting from its coefficients.
pub(crate) fn fit_exact(
    w: &[f64],
    m: usize,
    start: &Candidate,
    work: &mut Work,
) -> Option<Candidate> {
    let order = start.order;
    let k = order.npar();
    let n = w.len();
    if n < k + 3 {
        return None;
    }
    let (beta, _) = lm::minimize(
        Objective {
            w,
            m,
            order: &order,
            work,
            exact: true,
        },
        &start.beta,
        n,
        MAX_ITER,
        EXACT_TOL,
    )?;
    let m2ll = exact_m2ll(w, m, &order, &beta, work)?;
    let mut ic = aicc(m2ll, k, n);
    if !Coefs::split(&order, &beta).admissible(m, ROOT_MARGIN) {
        ic = f64::INFINITY;
    }
    Some(Candidate { order, beta, ic })
}

/// −2 log-likelihood (σ² concentrated) of a model by the Kalman filter.
pub(crate) fn exact_m2ll(
    w: &[f64],
    m: usize,
    order: &Order,
    beta: &[f64],
    work: &mut Work,
) -> Option<f64> {
    let c = Coefs::split(order, beta);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    expand_ar(c.ar, c.sar, m, &mut a);
    expand_ma(c.ma, c.sma, m, &mut b);
    let run = work.one.kf.run(w, c.mean, &a, &b, None)?;
    Some(run.minus_two_loglik(w.len()))
}

/// AICc of a fit, infinite when there is none.
fn ic_of(c: &Option<Candidate>) -> f64 {
    c.as_ref().map_or(f64::INFINITY, |c| c.ic)
}

/// Runs the stepwise search; returns every usable fitted model, best first.
pub(crate) fn stepwise(w: &[f64], m: usize, space: &Space, how: Estimation) -> Vec<Candidate> {
    let mut work = Work::default();
    let mut tried: Vec<(Order, Option<Candidate>)> = Vec::new();
    let seasonal = space.max_sp > 0 || space.max_sq > 0;
    let estimate = |o: &Order, work: &mut Work| {
        fit_css(w, m, o, work).and_then(|c| match how {
            Estimation::Css => Some(c),
            Estimation::CssMl => fit_exact(w, m, &c, work).or(Some(Candidate {
                ic: f64::INFINITY,
                ..c
            })),
        })
    };
    let within = |o: &Order| {
        o.p <= space.max_p && o.q <= space.max_q && o.sp <= space.max_sp && o.sq <= space.max_sq
    };
    let mut fit = |o: Order, tried: &mut Vec<(Order, Option<Candidate>)>| -> f64 {
        if let Some((_, c)) = tried.iter().find(|(t, _)| *t == o) {
            return ic_of(c);
        }
        if !within(&o) {
            return f64::INFINITY;
        }
        let c = estimate(&o, &mut work);
        let ic = ic_of(&c);
        tried.push((o, c));
        ic
    };
    let constant = space.allow_constant;
    let order = |p, q, sp, sq, constant| Order {
        p,
        q,
        sp,
        sq,
        constant,
    };
    let s = usize::from(seasonal);
    let mut best = order(
        2.min(space.max_p),
        2.min(space.max_q),
        space.max_sp.min(1),
        space.max_sq.min(1),
        constant,
    );
    let mut starts = vec![best, order(0, 0, 0, 0, constant)];
    if space.max_p > 0 || space.max_sp > 0 {
        starts.push(order(
            usize::from(space.max_p > 0),
            0,
            s.min(space.max_sp),
            0,
            constant,
        ));
    }
    if space.max_q > 0 || space.max_sq > 0 {
        starts.push(order(
            0,
            usize::from(space.max_q > 0),
            0,
            s.min(space.max_sq),
            constant,
        ));
    }
    if constant && !space.force_constant {
        starts.push(order(0, 0, 0, 0, false));
    }
    // The starting models are independent fits: on a long series they run
    // side by side, and are then taken in order as if one after another.
    let mut distinct: Vec<Order> = Vec::new();
    for o in starts {
        if within(&o) && !distinct.contains(&o) {
            distinct.push(o);
        }
    }
    let fitted: Vec<Option<Candidate>> = distinct
        .par_iter()
        .map_init(Work::default, |work, o| estimate(o, work))
        .collect();
    tried.extend(distinct.into_iter().zip(fitted));
    let mut best_ic = tried
        .iter()
        .find(|(o, _)| *o == best)
        .map_or(f64::INFINITY, |(_, c)| ic_of(c));
    for (o, c) in &tried {
        if ic_of(c) < best_ic {
            best_ic = ic_of(c);
            best = *o;
        }
    }
    let toggle = constant && !space.force_constant;
    loop {
        if tried.len() >= MAX_MODELS {
            break;
        }
        let b = best;
        let moves: [(isize, isize, isize, isize, bool); 17] = [
            (0, 0, -1, 0, false),
            (0, 0, 0, -1, false),
            (0, 0, 1, 0, false),
            (0, 0, 0, 1, false),
            (0, 0, -1, -1, false),
            (0, 0, -1, 1, false),
            (0, 0, 1, -1, false),
            (0, 0, 1, 1, false),
            (-1, 0, 0, 0, false),
            (0, -1, 0, 0, false),
            (1, 0, 0, 0, false),
            (0, 1, 0, 0, false),
            (-1, -1, 0, 0, false),
            (-1, 1, 0, 0, false),
            (1, -1, 0, 0, false),
            (1, 1, 0, 0, false),
            (0, 0, 0, 0, true),
        ];
        let mut improved = false;
        for (dp, dq, dsp, dsq, flip) in moves {
            if tried.len() >= MAX_MODELS {
                break;
            }
            let step = |v: usize, d: isize| v.checked_add_signed(d);
            let (Some(p), Some(q), Some(sp), Some(sq)) = (
                step(b.p, dp),
                step(b.q, dq),
                step(b.sp, dsp),
                step(b.sq, dsq),
            ) else {
                continue;
            };
            if flip && !toggle {
                continue;
            }
            if (dsp != 0 || dsq != 0) && !seasonal {
                continue;
            }
            let o = order(p, q, sp, sq, if flip { !b.constant } else { b.constant });
            if o == b {
                continue;
            }
            let ic = fit(o, &mut tried);
            if ic < best_ic {
                best_ic = ic;
                best = o;
                improved = true;
                break;
            }
        }
        if !improved {
            break;
        }
    }
    let mut out: Vec<Candidate> = tried
        .into_iter()
        .filter_map(|(_, c)| c)
        .filter(|c| c.ic.is_finite())
        .collect();
    out.sort_by(|a, b| a.ic.total_cmp(&b.ic));
    out
}
