//! Objectives for one ARMA model of the differenced series: the conditional
//! sum of squares (CSS, cheap, used during the order search) and the exact
//! Gaussian likelihood from a Kalman filter on the Harvey state-space form
//! (used to refine the chosen model). Both fill a residual vector so that the
//! same least-squares optimiser serves them; all buffers live in [`Work`] so
//! the inner loops do not allocate.

use super::poly::{expand_ar, expand_ma, ma_roots_outside, roots_outside};

/// Orders of one candidate: ARMA(p, q)(P, Q)[m] on the differenced series,
/// with or without a mean (the drift when the series was differenced once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Order {
    pub p: usize,
    pub q: usize,
    pub sp: usize,
    pub sq: usize,
    pub constant: bool,
}

impl Order {
    /// Number of estimated coefficients (σ² not included).
    pub fn npar(&self) -> usize {
        self.p + self.q + self.sp + self.sq + usize::from(self.constant)
    }
}

/// The coefficients of a model, split by role.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Coefs<'a> {
    pub ar: &'a [f64],
    pub ma: &'a [f64],
    pub sar: &'a [f64],
    pub sma: &'a [f64],
    pub mean: f64,
}

impl<'a> Coefs<'a> {
    /// Splits a parameter vector laid out as φ, θ, Φ, Θ, [μ].
    pub fn split(order: &Order, beta: &'a [f64]) -> Self {
        let (ar, rest) = beta.split_at(order.p);
        let (ma, rest) = rest.split_at(order.q);
        let (sar, rest) = rest.split_at(order.sp);
        let (sma, rest) = rest.split_at(order.sq);
        let mean = if order.constant { rest[0] } else { 0.0 };
        Self {
            ar,
            ma,
            sar,
            sma,
            mean,
        }
    }

    /// Stationary and invertible, with every root of the expanded polynomials
    /// outside the circle of radius `radius` (seasonal factors checked in B^m).
    pub fn admissible(&self, m: usize, radius: f64) -> bool {
        let sradius = radius.powi(m.max(1) as i32);
        roots_outside(self.ar, radius)
            && roots_outside(self.sar, sradius)
            && ma_roots_outside(self.ma, radius)
            && ma_roots_outside(self.sma, sradius)
    }
}

/// Reusable buffers of one evaluation.
#[derive(Debug, Default)]
pub(crate) struct Lane {
    a: Vec<f64>,
    b: Vec<f64>,
    b_nz: Vec<(usize, f64)>,
    e: Vec<f64>,
    pub kf: Kalman,
}

/// Reusable buffers: one lane for single evaluations and more for the
/// batches of [`css_residuals_many`] and [`exact_residuals_many`].
#[derive(Debug, Default)]
pub(crate) struct Work {
    pub one: Lane,
    lanes: Vec<Lane>,
}

impl Work {
    /// At least `count` batch lanes.
    fn lanes(&mut self, count: usize) -> &mut [Lane] {
        if self.lanes.len() < count {
            self.lanes.resize_with(count, Lane::default);
        }
        &mut self.lanes[..count]
    }
}

/// Expands the coefficients into `lane.a` / `lane.b` (full AR and MA
/// polynomials) and returns the mean; `None` if they are inadmissible.
fn expand_admissible(m: usize, order: &Order, beta: &[f64], lane: &mut Lane) -> Option<f64> {
    let c = Coefs::split(order, beta);
    if !c.admissible(m, 1.0) || !c.mean.is_finite() {
        return None;
    }
    expand_ar(c.ar, c.sar, m, &mut lane.a);
    expand_ma(c.ma, c.sma, m, &mut lane.b);
    Some(c.mean)
}

/// Conditional sum of squares: residuals `e_t` for t ≥ p + P·m (earlier ones
/// are taken as zero), written to `out[t − p − P·m]`. False if inadmissible.
pub(crate) fn css_residuals(
    w: &[f64],
    m: usize,
    order: &Order,
    beta: &[f64],
    work: &mut Work,
    out: &mut [f64],
) -> bool {
    let lane = &mut work.one;
    let Some(start) = css_prepare(w, m, order, beta, lane, out) else {
        return false;
    };
    if !lane.b_nz.is_empty() {
        for j in 0..out.len() {
            ma_step(lane, out, start, j);
        }
    }
    out.iter().all(|v| v.is_finite())
}

/// [`css_residuals`] at several points: `xs` holds them one after another,
/// `rs` their residual vectors one after another, `ok[i]` is what
/// [`css_residuals`] returns for point i (whose residuals are exactly its).
/// The MA recursions of the points run in lockstep: each step of one is a
/// chain of dependent operations, and interleaving independent chains lets
/// the processor overlap them (the forward-difference Jacobian evaluates one
/// point per coefficient).
pub(crate) fn css_residuals_many(
    w: &[f64],
    m: usize,
    order: &Order,
    xs: &[f64],
    work: &mut Work,
    rs: &mut [f64],
    ok: &mut [bool],
) {
    let count = ok.len();
    let npar = order.npar();
    if count == 0 || npar == 0 || xs.len() != npar * count || !rs.len().is_multiple_of(count) {
        ok.iter_mut().for_each(|v| *v = false);
        return;
    }
    let nres = rs.len() / count;
    let mut active: Vec<(&mut Lane, &mut [f64], usize)> = Vec::with_capacity(count);
    for (((lane, out), x), good) in work
        .lanes(count)
        .iter_mut()
        .zip(rs.chunks_mut(nres.max(1)))
        .zip(xs.chunks(npar))
        .zip(ok.iter_mut())
    {
        match css_prepare(w, m, order, x, lane, out) {
            Some(start) => {
                *good = true;
                if !lane.b_nz.is_empty() {
                    active.push((lane, out, start));
                }
            }
            None => *good = false,
        }
    }
    for j in 0..nres {
        for (lane, out, start) in active.iter_mut() {
            ma_step(lane, out, *start, j);
        }
    }
    for (out, good) in rs.chunks(nres.max(1)).zip(ok.iter_mut()) {
        *good = *good && out.iter().all(|v| v.is_finite());
    }
}

/// Everything of [`css_residuals`] but the MA recursion: `out` gets
/// `z_t − Σ a_k z_{t−k}` (z = w − μ), `lane.e` z with zeros before the first
/// residual and `lane.b_nz` the nonzero MA coefficients. Returns the index of
/// the first residual; `None` when inadmissible or `out` has the wrong length.
///
/// e_t = z_t − Σ a_k z_{t−k} − Σ b_k e_{t−k}, the terms subtracted in the
/// order of k. The AR terms do not depend on e: they are subtracted here, for
/// all t at once (a loop per lag, which the compiler vectorises), and
/// [`ma_step`] subtracts the rest: the same operations in the same order per
/// t as one loop over t.
fn css_prepare(
    w: &[f64],
    m: usize,
    order: &Order,
    beta: &[f64],
    lane: &mut Lane,
    out: &mut [f64],
) -> Option<usize> {
    let mean = expand_admissible(m, order, beta, lane)?;
    let start = lane.a.len();
    let n = w.len();
    if out.len() != n.saturating_sub(start) {
        return None;
    }
    lane.e.clear();
    lane.e.extend(w.iter().map(|v| v - mean));
    lane.b_nz.clear();
    if start >= n {
        return Some(start);
    }
    let e = &mut lane.e[..n];
    out.copy_from_slice(&e[start..]);
    for (i, &a) in lane.a.iter().enumerate() {
        if a != 0.0 {
            let k = i + 1;
            subtract_scaled(out, &e[start - k..n - k], a);
        }
    }
    // Residuals before the first one are zero.
    e[..start].fill(0.0);
    lane.b_nz.extend(
        lane.b
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0.0)
            .map(|(i, v)| (i + 1, *v)),
    );
    Some(start)
}

/// `out −= a · x`, element by element. A function of its own so that the
/// compiler knows the two slices apart and vectorises the loop.
#[inline(never)]
fn subtract_scaled(out: &mut [f64], x: &[f64], a: f64) {
    for (o, v) in out.iter_mut().zip(x) {
        *o -= a * v;
    }
}

/// Residual `j` (time `start + j`) of a prepared lane: subtracts the MA terms
/// from `out[j]` and records it in `lane.e`. `lane.b_nz` is not empty.
#[inline(always)]
fn ma_step(lane: &mut Lane, out: &mut [f64], start: usize, j: usize) {
    let b_nz = &lane.b_nz[..];
    let e = &mut lane.e[..];
    let longest = b_nz[b_nz.len() - 1].0;
    let t = start + j;
    let mut v = out[j];
    if t >= longest {
        for &(k, b) in b_nz {
            v -= b * e[t - k];
        }
    } else {
        for &(k, b) in b_nz {
            if k <= t {
                v -= b * e[t - k];
            }
        }
    }
    e[t] = v;
    out[j] = v;
}

/// Number of CSS residuals for this order (zero if the series is too short).
pub(crate) fn css_len(n: usize, m: usize, order: &Order) -> usize {
    n.saturating_sub(order.p + order.sp * m)
}

/// Exact likelihood residuals: innovations scaled so that their sum of squares
/// is `(Π F_t)^{1/n} Σ v_t²/F_t`, which the concentrated Gaussian likelihood
/// minimises. False if inadmissible.
pub(crate) fn exact_residuals(
    w: &[f64],
    m: usize,
    order: &Order,
    beta: &[f64],
    work: &mut Work,
    out: &mut [f64],
) -> bool {
    let lane = &mut work.one;
    let Some(mean) = expand_admissible(m, order, beta, lane) else {
        return false;
    };
    let Some(run) = lane.kf.run(w, mean, &lane.a, &lane.b, Some(&mut *out)) else {
        return false;
    };
    scale_exact(w.len(), &run, out)
}

/// [`exact_residuals`] at several points, laid out as for
/// [`css_residuals_many`]; the Kalman filters run in lockstep.
pub(crate) fn exact_residuals_many(
    w: &[f64],
    m: usize,
    order: &Order,
    xs: &[f64],
    work: &mut Work,
    rs: &mut [f64],
    ok: &mut [bool],
) {
    let count = ok.len();
    let npar = order.npar();
    let n = w.len();
    if count == 0 || npar == 0 || xs.len() != npar * count || rs.len() != n * count {
        ok.iter_mut().for_each(|v| *v = false);
        return;
    }
    let mut active: Vec<(&mut Kalman, Stepper, f64, &mut [f64], &mut bool)> =
        Vec::with_capacity(count);
    for (((lane, out), x), good) in work
        .lanes(count)
        .iter_mut()
        .zip(rs.chunks_mut(n.max(1)))
        .zip(xs.chunks(npar))
        .zip(ok.iter_mut())
    {
        *good = false;
        let Some(mean) = expand_admissible(m, order, x, lane) else {
            continue;
        };
        if let Some(stepper) = lane.kf.start(&lane.a, &lane.b) {
            *good = true;
            active.push((&mut lane.kf, stepper, mean, out, good));
        }
    }
    for (t, wt) in w.iter().enumerate() {
        for (kf, stepper, mean, out, good) in active.iter_mut() {
            if **good {
                match kf.step::<true>(stepper, wt - *mean) {
                    Some(z) => out[t] = z,
                    None => **good = false,
                }
            }
        }
    }
    for (kf, stepper, _, out, good) in active {
        *good = *good
            && match kf.finish(&stepper) {
                Some(run) => scale_exact(n, &run, out),
                None => false,
            };
    }
}

/// Scales the standardised innovations of a run of `n` steps into the exact
/// likelihood residuals; false if any is not finite.
fn scale_exact(n: usize, run: &KalmanRun, out: &mut [f64]) -> bool {
    if n == 0 {
        return true;
    }
    let scale = (0.5 * run.sum_log_f / n as f64).exp();
    for v in out.iter_mut() {
        *v *= scale;
    }
    out.iter().all(|v| v.is_finite())
}

/// Result of one Kalman pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KalmanRun {
    /// Σ ln F_t (F_t: innovation variance relative to σ²).
    pub sum_log_f: f64,
    /// Σ v_t² / F_t.
    pub ssq: f64,
}

impl KalmanRun {
    /// −2 log-likelihood with σ² concentrated out, for `n` observations.
    pub fn minus_two_loglik(&self, n: usize) -> f64 {
        let nf = n as f64;
        let s2 = (self.ssq / nf).max(1e-300);
        nf * ((2.0 * std::f64::consts::PI * s2).ln() + 1.0) + self.sum_log_f
    }
}

/// The scalars of a [`Kalman::run`] in progress.
#[derive(Debug, Clone, Copy)]
struct Stepper {
    f: f64,
    mm: f64,
    steady: bool,
    sum_log_f: f64,
    ssq: f64,
    ln_f: f64,
    sqrt_f: f64,
}

/// Kalman filter for the ARMA part in Harvey's form: state dimension
/// r = max(p*, q* + 1), transition with the AR coefficients in the first
/// column and ones on the superdiagonal, disturbance loading (1, b_1..b_{r−1}).
#[derive(Debug, Default)]
pub(crate) struct Kalman {
    r: usize,
    ta: Vec<f64>,
    rv: Vec<f64>,
    /// Full covariance and a scratch matrix, only for the dense test oracle.
    #[cfg(test)]
    p: Vec<f64>,
    #[cfg(test)]
    m1: Vec<f64>,
    m2: Vec<f64>,
    m3: Vec<f64>,
    k: Vec<f64>,
    psi: Vec<f64>,
    gamma: Vec<f64>,
    lin: Vec<f64>,
    a_nz: Vec<usize>,
    b_nz: Vec<usize>,
    /// Predicted state for the time point after the last observation.
    pub state: Vec<f64>,
}

impl Kalman {
    fn setup(&mut self, a: &[f64], b: &[f64]) {
        let r = a.len().max(b.len() + 1);
        self.r = r;
        self.ta.clear();
        self.ta.resize(r, 0.0);
        self.ta[..a.len()].copy_from_slice(a);
        self.rv.clear();
        self.rv.resize(r, 0.0);
        self.rv[0] = 1.0;
        self.rv[1..=b.len()].copy_from_slice(b);
        for v in [&mut self.m2, &mut self.m3] {
            v.clear();
            v.resize(r, 0.0);
        }
        self.k.clear();
        self.k.resize(r, 0.0);
        self.psi.clear();
        self.psi.resize(r, 0.0);
        self.gamma.clear();
        self.gamma.resize(r + 1, 0.0);
        self.a_nz.clear();
        self.a_nz.extend((1..=r).filter(|&k| self.ta[k - 1] != 0.0));
        self.b_nz.clear();
        self.b_nz.extend((0..r).filter(|&k| self.rv[k] != 0.0));
        self.state.clear();
        self.state.resize(r, 0.0);
    }

    /// Stationary state covariance (σ² = 1) into `p`, from the ARMA
    /// autocovariances: state element i is Σ_s a_{i+s} z_{t−s} (s ≥ 1) plus
    /// Σ_s b_{i+s} e_{t−s} (s ≥ 0, b_0 = 1), so its covariances follow from
    /// γ, the ψ weights and the (sparse) coefficients in O(r² · nonzeros).
    /// ψ weights (0..r), γ (0..=r) and the MA-side terms rhs_k (in m3[0..r]).
    fn autocovariances(&mut self, p: usize) -> bool {
        let r = self.r;
        // ψ weights 0..r−1.
        for j in 0..r {
            let mut v = if j == 0 { 1.0 } else { self.rv[j] };
            for k in 1..=j.min(p) {
                v += self.ta[k - 1] * self.psi[j - k];
            }
            self.psi[j] = v;
        }
        // rhs_k = Σ_{j ≥ k} b_j ψ_{j−k} (with b_0 = 1); lives in m3[0..r].
        for k in 0..r {
            let mut s = 0.0;
            for &j in &self.b_nz {
                if j >= k {
                    s += self.rv[j] * self.psi[j - k];
                }
            }
            self.m3[k] = s;
        }
        // γ(0..=p) from the Yule–Walker-type system, then the recursion.
        let np = p + 1;
        self.lin.clear();
        self.lin.resize(np * (np + 1), 0.0);
        for k in 0..np {
            let row = &mut self.lin[k * (np + 1)..(k + 1) * (np + 1)];
            row[k] += 1.0;
            for (l, cell) in row.iter_mut().enumerate().take(np) {
                if k + l >= 1 && k + l <= p {
                    *cell -= self.ta[k + l - 1];
                }
                if l > 0 && k > l {
                    *cell -= self.ta[k - l - 1];
                }
            }
            row[np] = if k < r { self.m3[k] } else { 0.0 };
        }
        if !solve_dense(&mut self.lin, np) {
            return false;
        }
        for k in 0..=r {
            self.gamma[k] = if k <= p {
                self.lin[k * (np + 1) + np]
            } else {
                let mut v = if k < r { self.m3[k] } else { 0.0 };
                for j in 1..=p {
                    v += self.ta[j - 1] * self.gamma[k - j];
                }
                v
            };
        }
        if self.gamma[0].is_nan()
            || self.gamma[0] <= 0.0
            || self.gamma.iter().any(|v| !v.is_finite())
        {
            return false;
        }
        true
    }

    /// First column of the stationary covariance, P[i][0] = Cov(α_i, z_t),
    /// into `k`: all the Chandrasekhar recursions need. O(r · nonzeros²).
    fn initial_column(&mut self, p: usize) -> bool {
        if !self.autocovariances(p) {
            return false;
        }
        let r = self.r;
        // C_i(s) = Σ_{k ≥ i+s} b_k ψ_{k−i−s}; G_0(s) = Σ_k a_k γ(|s − k|).
        let c_at = |kf: &Kalman, i: usize, s: usize| -> f64 {
            let mut c = 0.0;
            for &k in &kf.b_nz {
                if k >= i + s {
                    c += kf.rv[k] * kf.psi[k - i - s];
                }
            }
            c
        };
        for i in 0..r {
            let mut v = 0.0;
            for &k in &self.a_nz {
                if k > i {
                    let s = k - i;
                    let mut g = 0.0;
                    for &k2 in &self.a_nz {
                        g += self.ta[k2 - 1] * self.gamma[s.abs_diff(k2)];
                    }
                    v += self.ta[k - 1] * (g + c_at(self, 0, s));
                }
                v += self.ta[k - 1] * c_at(self, i, k);
            }
            for &k in &self.b_nz {
                if k >= i {
                    v += self.rv[k] * self.rv[k - i];
                }
            }
            self.k[i] = v;
        }
        self.k.iter().all(|v| v.is_finite())
    }

    /// The full matrix (test oracle for [`Self::initial_column`]).
    #[cfg(test)]
    fn initial_covariance(&mut self, p: usize) -> bool {
        if !self.autocovariances(p) {
            return false;
        }
        let r = self.r;
        self.p.clear();
        self.p.resize(r * r, 0.0);
        self.m1.clear();
        self.m2.clear();
        // G[j][s] = Σ_{s'} A_j(s') γ(|s − s'|), C[j][s] = Σ_{s' ≥ s} B_j(s') ψ_{s'−s},
        // for s in 0..=r (index s of A starts at 1).
        let w = r + 1;
        self.m1.resize(r * w, 0.0);
        self.m2.resize(r * w, 0.0);
        for j in 0..r {
            for s in 0..w {
                let mut g = 0.0;
                for &k in &self.a_nz {
                    if k > j {
                        let s2 = k - j;
                        g += self.ta[k - 1] * self.gamma[s.abs_diff(s2)];
                    }
                }
                self.m1[j * w + s] = g;
                let mut c = 0.0;
                for &k in &self.b_nz {
                    if k >= j && k - j >= s {
                        c += self.rv[k] * self.psi[k - j - s];
                    }
                }
                self.m2[j * w + s] = c;
            }
        }
        for i in 0..r {
            for j in 0..=i {
                let mut v = 0.0;
                for &k in &self.a_nz {
                    if k > i {
                        let s = k - i;
                        v += self.ta[k - 1] * (self.m1[j * w + s] + self.m2[j * w + s]);
                    }
                    if k > j {
                        let s = k - j;
                        v += self.ta[k - 1] * self.m2[i * w + s];
                    }
                }
                // Σ_s B_i(s) B_j(s): s = k − i over nonzero b_k, partner index s + j.
                for &k in &self.b_nz {
                    if k >= i && k - i + j < r {
                        v += self.rv[k] * self.rv[k - i + j];
                    }
                }
                self.p[i * r + j] = v;
                self.p[j * r + i] = v;
            }
        }
        self.m1.truncate(r * r);
        self.m2.truncate(r * r);
        self.p.iter().all(|v| v.is_finite())
    }

    /// Filters `w − mean` given expanded AR `a` and MA `b` coefficients.
    /// Writes the standardised innovations v_t/√F_t to `out` when given and
    /// leaves the next predicted state in `self.state`.
    ///
    /// Uses the Chandrasekhar recursions (Morf, Sidhu & Kailath 1974): with a
    /// stationary start, P_{t+1} − P_t has rank one, ΔP_t = M_t W_t W_tᵀ, so
    /// each step costs O(r) instead of the O(r²) of the covariance update.
    pub fn run(
        &mut self,
        w: &[f64],
        mean: f64,
        a: &[f64],
        b: &[f64],
        out: Option<&mut [f64]>,
    ) -> Option<KalmanRun> {
        let mut stepper = self.start(a, b)?;
        match out {
            Some(o) => {
                for (t, wt) in w.iter().enumerate() {
                    o[t] = self.step::<true>(&mut stepper, wt - mean)?;
                }
            }
            None => {
                for wt in w {
                    self.step::<false>(&mut stepper, wt - mean)?;
                }
            }
        }
        self.finish(&stepper)
    }

    /// The stationary start of [`Kalman::run`]; `None` when the model has
    /// no stationary covariance.
    fn start(&mut self, a: &[f64], b: &[f64]) -> Option<Stepper> {
        self.setup(a, b);
        if !self.initial_column(a.len()) {
            return None;
        }
        let r = self.r;
        // F_1 = P[0][0], K_1 = T P e_1 (unnormalised gain), W_1 = K_1, M_1 = −1/F_1.
        let f = self.k[0];
        if !(f > 0.0 && f.is_finite()) {
            return None;
        }
        for i in 0..r {
            let below = if i + 1 < r { self.k[i + 1] } else { 0.0 };
            self.k[i] = self.ta[i] * f + below;
        }
        // W lives in m2[0..r], T W in m3[0..r].
        self.m2[..r].copy_from_slice(&self.k);
        Some(Stepper {
            f,
            mm: -1.0 / f,
            steady: false,
            sum_log_f: 0.0,
            ssq: 0.0,
            // ln F and √F change only with F (not at all once steady).
            ln_f: f.ln(),
            sqrt_f: f.sqrt(),
        })
    }

    /// One step of [`Kalman::run`] on the observation `z` (= w_t − mean);
    /// returns the standardised innovation v_t/√F_t when `OUT` (else 0),
    /// `None` when the filter breaks down.
    #[inline(always)]
    fn step<const OUT: bool>(&mut self, s: &mut Stepper, z: f64) -> Option<f64> {
        let r = self.r;
        // Slices of the state length: the loops below need no bounds checks.
        let ta = &self.ta[..r];
        let gain = &mut self.k[..r];
        let state = &mut self.state[..r];
        let wv = &mut self.m2[..r];
        let tw = &mut self.m3[..r];
        let f = s.f;
        let v = z - state[0];
        s.sum_log_f += s.ln_f;
        s.ssq += v * v / f;
        let standardised = if OUT { v / s.sqrt_f } else { 0.0 };
        // a ← T a + K v / F
        let vf = v / f;
        let s0 = state[0];
        for i in 0..r - 1 {
            state[i] = ta[i] * s0 + state[i + 1] + gain[i] * vf;
        }
        state[r - 1] = ta[r - 1] * s0 + gain[r - 1] * vf;
        if s.steady {
            return Some(standardised);
        }
        // Chandrasekhar step.
        let zw = wv[0];
        let w0 = wv[0];
        for i in 0..r - 1 {
            tw[i] = ta[i] * w0 + wv[i + 1];
        }
        tw[r - 1] = ta[r - 1] * w0;
        let mm = s.mm;
        let f_next = f + mm * zw * zw;
        if !(f_next > 0.0 && f_next.is_finite()) {
            return None;
        }
        let c = mm * zw;
        for (k, x) in gain.iter_mut().zip(&*tw) {
            *k += c * x;
        }
        let g = zw / f_next;
        for ((wi, x), k) in wv.iter_mut().zip(&*tw).zip(&*gain) {
            *wi = x - k * g;
        }
        s.mm = mm + mm * mm * zw * zw / f;
        s.f = f_next;
        s.ln_f = f_next.ln();
        s.sqrt_f = f_next.sqrt();
        // Once ΔP = M W Wᵀ is negligible the gain is constant: the filter
        // reduces to the state update (a long series then costs O(n · r)).
        let wmax = wv.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        s.steady = s.mm.abs() * wmax * wmax < 1e-14 * s.f;
        Some(standardised)
    }

    /// The result of a run whose steps all succeeded.
    fn finish(&self, s: &Stepper) -> Option<KalmanRun> {
        (s.sum_log_f.is_finite() && s.ssq.is_finite() && self.state.iter().all(|v| v.is_finite()))
            .then_some(KalmanRun {
                sum_log_f: s.sum_log_f,
                ssq: s.ssq,
            })
    }

    /// The textbook filter with the full covariance update (test oracle).
    #[cfg(test)]
    pub fn run_dense(
        &mut self,
        w: &[f64],
        mean: f64,
        a: &[f64],
        b: &[f64],
        mut out: Option<&mut [f64]>,
    ) -> Option<KalmanRun> {
        self.setup(a, b);
        if !self.initial_covariance(a.len()) {
            return None;
        }
        let r = self.r;
        let mut sum_log_f = 0.0;
        let mut ssq = 0.0;
        let mut converged = false;
        for (t, wt) in w.iter().enumerate() {
            let z = wt - mean;
            let v = z - self.state[0];
            if converged {
                for (s, rv) in self.state.iter_mut().zip(&self.rv) {
                    *s += rv * v;
                }
                self.predict_state();
                ssq += v * v;
                if let Some(o) = out.as_deref_mut() {
                    o[t] = v;
                }
                continue;
            }
            let f = self.p[0];
            if !(f > 0.0 && f.is_finite()) {
                return None;
            }
            for i in 0..r {
                self.k[i] = self.p[i * r];
            }
            let vf = v / f;
            for (s, k) in self.state.iter_mut().zip(&self.k) {
                *s += k * vf;
            }
            // P ← P − k kᵀ / F
            for (row, ki) in self.p.chunks_exact_mut(r).zip(&self.k) {
                let c = ki / f;
                for (x, kj) in row.iter_mut().zip(&self.k) {
                    *x -= c * kj;
                }
            }
            self.predict_state();
            // P ← T P Tᵀ + R Rᵀ using the structure of T:
            // M = T P: M_i = a_i P_0 + P_{i+1};  (M Tᵀ)_{ij} = M_{i0} a_j + M_{i,j+1}.
            let (row0, _) = self.p.split_at(r);
            for i in 0..r {
                let ai = self.ta[i];
                let out = &mut self.m1[i * r..(i + 1) * r];
                if i + 1 < r {
                    let below = &self.p[(i + 1) * r..(i + 2) * r];
                    for ((o, x0), xb) in out.iter_mut().zip(row0).zip(below) {
                        *o = ai * x0 + xb;
                    }
                } else {
                    for (o, x0) in out.iter_mut().zip(row0) {
                        *o = ai * x0;
                    }
                }
            }
            let mut change = 0.0f64;
            for i in 0..r {
                let mrow = &self.m1[i * r..(i + 1) * r];
                let mi0 = mrow[0];
                let ri = self.rv[i];
                let out = &mut self.p[i * r..(i + 1) * r];
                for j in 0..r - 1 {
                    let tpt = mi0 * self.ta[j] + mrow[j + 1];
                    change = change.max(tpt.abs());
                    out[j] = tpt + ri * self.rv[j];
                }
                let tpt = mi0 * self.ta[r - 1];
                change = change.max(tpt.abs());
                out[r - 1] = tpt + ri * self.rv[r - 1];
            }
            converged = change < 1e-10;
            sum_log_f += f.ln();
            ssq += v * v / f;
            if let Some(o) = out.as_deref_mut() {
                o[t] = v / f.sqrt();
            }
        }
        (sum_log_f.is_finite() && ssq.is_finite()).then_some(KalmanRun { sum_log_f, ssq })
    }

    #[cfg(test)]
    fn predict_state(&mut self) {
        let r = self.r;
        let s0 = self.state[0];
        for i in 0..r - 1 {
            self.state[i] = self.ta[i] * s0 + self.state[i + 1];
        }
        self.state[r - 1] = self.ta[r - 1] * s0;
    }
}

/// Solves the n×n system stored row-wise with its right-hand side as the last
/// column (n × (n+1)) by Gaussian elimination with partial pivoting; the
/// solution replaces the last column.
fn solve_dense(a: &mut [f64], n: usize) -> bool {
    let w = n + 1;
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&x, &y| a[x * w + col].abs().total_cmp(&a[y * w + col].abs()))
            .unwrap_or(col);
        if a[piv * w + col].is_nan() || a[piv * w + col].abs() <= 1e-12 {
            return false;
        }
        if piv != col {
            for j in 0..w {
                a.swap(piv * w + j, col * w + j);
            }
        }
        let d = a[col * w + col];
        for row in col + 1..n {
            let f = a[row * w + col] / d;
            if f != 0.0 {
                for j in col..w {
                    a[row * w + j] -= f * a[col * w + j];
                }
            }
        }
    }
    for col in (0..n).rev() {
        let mut s = a[col * w + n];
        for j in col + 1..n {
            s -= a[col * w + j] * a[j * w + n];
        }
        a[col * w + n] = s / a[col * w + col];
    }
    (0..n).all(|i| a[i * w + n].is_finite())
}

/// out = x · y (or x · yᵀ), r×r row-major (test oracle for the covariance).
#[cfg(test)]
fn matmul(x: &[f64], y: &[f64], out: &mut [f64], r: usize, transpose_y: bool) {
    for i in 0..r {
        for j in 0..r {
            let mut s = 0.0;
            for k in 0..r {
                let yv = if transpose_y {
                    y[j * r + k]
                } else {
                    y[k * r + j]
                };
                s += x[i * r + k] * yv;
            }
            out[i * r + j] = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::arima::poly::{expand_ar, expand_ma};

    /// Stationary covariance by doubling: P ← P + A P Aᵀ, A ← A².
    fn doubling(a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut kf = Kalman::default();
        kf.setup(a, b);
        let r = kf.r;
        let mut t = vec![0.0; r * r];
        let mut p = vec![0.0; r * r];
        for i in 0..r {
            t[i * r] = kf.ta[i];
            if i + 1 < r {
                t[i * r + i + 1] = 1.0;
            }
            for j in 0..r {
                p[i * r + j] = kf.rv[i] * kf.rv[j];
            }
        }
        let (mut m2, mut m3) = (vec![0.0; r * r], vec![0.0; r * r]);
        for _ in 0..40 {
            matmul(&t, &p, &mut m2, r, false);
            matmul(&m2, &t, &mut m3, r, true);
            p.iter_mut().zip(&m3).for_each(|(x, y)| *x += y);
            matmul(&t, &t, &mut m2, r, false);
            std::mem::swap(&mut t, &mut m2);
        }
        p
    }

    #[test]
    fn covariance_matches_doubling_for_seasonal_models() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (phi, sphi, theta, stheta, m) in [
            (vec![0.5, -0.2], vec![0.4], vec![0.3], vec![-0.5], 4),
            (vec![0.7], vec![], vec![0.3, 0.2], vec![], 1),
            (vec![], vec![0.6, 0.2], vec![], vec![0.4], 3),
            (vec![0.2, 0.1, 0.1], vec![], vec![], vec![], 1),
        ] {
            expand_ar(&phi, &sphi, m, &mut a);
            expand_ma(&theta, &stheta, m, &mut b);
            let want = doubling(&a, &b);
            let mut kf = Kalman::default();
            kf.setup(&a, &b);
            assert!(kf.initial_column(a.len()));
            let column = kf.k.clone();
            assert!(kf.initial_covariance(a.len()));
            for (i, c) in column.iter().enumerate() {
                let want = kf.p[i * kf.r];
                assert!(
                    (c - want).abs() < 1e-12 * (1.0 + want.abs()),
                    "column {i}: {c} vs {want}"
                );
            }
            for (g, w) in kf.p.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-9 * (1.0 + w.abs()),
                    "{g} vs {w} ({phi:?} {sphi:?} {theta:?} {stheta:?})"
                );
            }
        }
    }

    #[test]
    fn ar1_initial_variance_is_one_over_one_minus_phi_squared() {
        let mut kf = Kalman::default();
        kf.setup(&[0.6], &[]);
        assert!(kf.initial_covariance(1));
        assert!((kf.p[0] - 1.0 / (1.0 - 0.36)).abs() < 1e-10, "{}", kf.p[0]);
    }

    #[test]
    fn arma11_initial_variance() {
        // Var of ARMA(1,1): (1 + 2φθ + θ²) / (1 − φ²).
        let (phi, theta) = (0.5, 0.4);
        let mut kf = Kalman::default();
        kf.setup(&[phi], &[theta]);
        assert!(kf.initial_covariance(1));
        let want = (1.0 + 2.0 * phi * theta + theta * theta) / (1.0 - phi * phi);
        assert!((kf.p[0] - want).abs() < 1e-10, "{} vs {want}", kf.p[0]);
    }

    #[test]
    fn chandrasekhar_matches_the_dense_filter() {
        let w: Vec<f64> = (0..60)
            .map(|t| ((t * 7919) % 23) as f64 / 7.0 - 1.5)
            .collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (phi, sphi, theta, stheta, m) in [
            (vec![0.5, -0.2], vec![0.4], vec![0.3], vec![-0.5], 4),
            (vec![], vec![], vec![-0.8], vec![-0.6], 12),
            (vec![0.9], vec![], vec![], vec![], 1),
            (vec![], vec![0.6], vec![0.4, 0.2], vec![], 3),
        ] {
            expand_ar(&phi, &sphi, m, &mut a);
            expand_ma(&theta, &stheta, m, &mut b);
            let (mut o1, mut o2) = (vec![0.0; w.len()], vec![0.0; w.len()]);
            let mut k1 = Kalman::default();
            let r1 = k1.run(&w, 0.1, &a, &b, Some(&mut o1)).unwrap();
            let mut k2 = Kalman::default();
            let r2 = k2.run_dense(&w, 0.1, &a, &b, Some(&mut o2)).unwrap();
            assert!(
                (r1.ssq - r2.ssq).abs() < 1e-8 * r2.ssq,
                "{} {}",
                r1.ssq,
                r2.ssq
            );
            assert!(
                (r1.sum_log_f - r2.sum_log_f).abs() < 1e-8,
                "{} {}",
                r1.sum_log_f,
                r2.sum_log_f
            );
            for (x, y) in k1.state.iter().zip(&k2.state) {
                assert!((x - y).abs() < 1e-8, "{x} {y}");
            }
        }
    }

    #[test]
    fn batched_residuals_equal_single_ones_bit_for_bit() {
        let w: Vec<f64> = (0..90)
            .map(|t| ((t * 7919) % 23) as f64 / 7.0 - 1.5 + 0.3 * (t as f64 * 0.9).sin())
            .collect();
        let order = Order {
            p: 1,
            q: 2,
            sp: 1,
            sq: 1,
            constant: true,
        };
        // Ordinary points, zeros (no MA terms at all), and one inadmissible.
        let xs = [
            0.5, 0.3, -0.2, 0.4, -0.6, 0.1, //
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, //
            1.5, 0.3, -0.2, 0.4, -0.6, 0.1, //
            -0.3, 0.0, 0.25, 0.0, 0.5, -0.2,
        ];
        let count = xs.len() / order.npar();
        let mut work = Work::default();
        let nres = css_len(w.len(), 4, &order);
        let mut rs = vec![0.0; nres * count];
        let mut ok = vec![true; count];
        css_residuals_many(&w, 4, &order, &xs, &mut work, &mut rs, &mut ok);
        for (i, x) in xs.chunks(order.npar()).enumerate() {
            let mut r = vec![0.0; nres];
            let single = css_residuals(&w, 4, &order, x, &mut work, &mut r);
            assert_eq!(ok[i], single, "css point {i}");
            if single {
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&rs[i * nres..(i + 1) * nres]),
                    bits(&r),
                    "css point {i}"
                );
            }
        }
        assert_eq!(ok, [true, true, false, true]);
        let n = w.len();
        let mut rs = vec![0.0; n * count];
        exact_residuals_many(&w, 4, &order, &xs, &mut work, &mut rs, &mut ok);
        for (i, x) in xs.chunks(order.npar()).enumerate() {
            let mut r = vec![0.0; n];
            let single = exact_residuals(&w, 4, &order, x, &mut work, &mut r);
            assert_eq!(ok[i], single, "exact point {i}");
            if single {
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&rs[i * n..(i + 1) * n]), bits(&r), "exact point {i}");
            }
        }
        assert_eq!(ok, [true, true, false, true]);
    }

    #[test]
    fn exact_ar1_likelihood_matches_closed_form() {
        let w = [0.3, -0.2, 0.5, 0.1, 0.8, -0.4];
        let phi = 0.5;
        let mut kf = Kalman::default();
        let run = kf.run(&w, 0.0, &[phi], &[], None).unwrap();
        // Closed form: first obs variance 1/(1−φ²), then unit-variance innovations.
        let f0 = 1.0 / (1.0 - phi * phi);
        let ssq: f64 = w[0] * w[0] / f0
            + w.windows(2)
                .map(|p| (p[1] - phi * p[0]).powi(2))
                .sum::<f64>();
        assert!((run.ssq - ssq).abs() < 1e-12);
        assert!((run.sum_log_f - f0.ln()).abs() < 1e-12);
        assert!((kf.state[0] - phi * w[5]).abs() < 1e-12);
    }
}
