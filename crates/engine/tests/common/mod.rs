//! What the engine's integration tests share: deterministic pseudo-random
//! numbers (no dev-dependency needed).

#![allow(dead_code)] // each test file uses some of it

/// A 64-bit linear congruential generator (Knuth's MMIX constants).
pub struct Lcg(pub u64);

impl Lcg {
    fn step(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }

    /// Uniform in [0, 1).
    pub fn next(&mut self) -> f64 {
        self.step() as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-0.5, 0.5).
    pub fn centered(&mut self) -> f64 {
        self.next() - 0.5
    }

    /// Standard normal (Box–Muller on uniforms in (0, 1)).
    pub fn normal(&mut self) -> f64 {
        let mut open = || (self.step() as f64 + 0.5) / (1u64 << 53) as f64;
        let (u, v) = (open(), open());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}
