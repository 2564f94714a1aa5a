//! Test helpers: a tiny deterministic PRNG and random Q8_0 weight matrices.
//!
//! Concurrency: plain values, used from one test thread at a time.

use super::{Q8Weights, Q8_0_BYTES, QK8_0};
use half::f16;

/// xorshift64*: deterministic, dependency-free randomness for tests.
pub(crate) struct Rng {
    /// The generator state (never zero).
    state: u64,
}

impl Rng {
    /// A generator from a seed.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Roughly standard normal (sum of uniforms).
    pub(crate) fn normal(&mut self) -> f32 {
        (0..4).map(|_| self.uniform()).sum::<f32>() * 1.732 - 3.464
    }

    /// Uniform integer in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A random `n x k` Q8_0 matrix: random scales, quantized values over the full i8 range
/// (-128 included, which GGUF files may hold).
pub(crate) fn random_weights(rng: &mut Rng, n: usize, k: usize) -> Q8Weights {
    let mut data = Vec::with_capacity(n * k / QK8_0 * Q8_0_BYTES);
    for _ in 0..n * k / QK8_0 {
        let d = f16::from_f32(0.001 + rng.uniform() * 0.05);
        data.extend_from_slice(&d.to_le_bytes());
        for _ in 0..QK8_0 {
            data.push(rng.next_u64() as u8);
        }
    }
    Q8Weights::with_mode(n, k, data, super::ActMode::Q8_0).expect("sizes")
}
