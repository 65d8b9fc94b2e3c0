//! Helpers shared by the engine's unit tests.

/// Deterministic pseudo-random numbers for test series: a 64-bit linear
/// congruential generator (Knuth's MMIX constants), whose top 53 bits make
/// a uniform draw. The same seed always gives the same series.
pub(crate) struct Lcg(pub u64);

impl Lcg {
    /// The next draw, uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next draw, uniform in [−0.5, 0.5).
    pub fn centred(&mut self) -> f64 {
        self.uniform() - 0.5
    }

    /// `n` draws of [`Lcg::centred`] from `seed`.
    pub fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Lcg(seed);
        (0..n).map(|_| rng.centred()).collect()
    }
}
