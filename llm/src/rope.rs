//! Rotary position embeddings, llama's interleaved variant (candle's `rope_i`): pairs
//! `(x[2i], x[2i+1])` rotate by `pos * theta_i`, `theta_i = 1 / base^(2i / head_dim)`.
//!
//! The cos/sin tables are computed once per model, in f32, exactly as candle's
//! `precomput_freqs_cis` does, so every position rotates bit-identically to candle.
//!
//! Concurrency: [`Rope`] is immutable after construction and shared by every forward.

/// cos/sin tables for every position of the context.
#[derive(Clone, Debug)]
pub struct Rope {
    /// Values per head (the tables hold `head_dim / 2` entries per position).
    head_dim: usize,
    /// `cos(pos * theta_i)`, `positions x head_dim / 2`.
    cos: Vec<f32>,
    /// `sin(pos * theta_i)`, same layout.
    sin: Vec<f32>,
}

impl Rope {
    /// Tables for positions `0..positions`.
    pub fn new(head_dim: usize, theta: f32, positions: usize) -> Self {
        let half = head_dim / 2;
        let freqs: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1f32 / theta.powf(i as f32 / head_dim as f32))
            .collect();
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            for &f in &freqs {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Self { head_dim, cos, sin }
    }

    /// Positions covered.
    pub fn positions(&self) -> usize {
        self.cos.len() / (self.head_dim / 2)
    }

    /// Rotates every head in `x` (a row of `heads * head_dim` values) to position `pos`.
    pub fn apply(&self, x: &mut [f32], pos: usize) {
        let half = self.head_dim / 2;
        let (cos, sin) = (
            &self.cos[pos * half..(pos + 1) * half],
            &self.sin[pos * half..(pos + 1) * half],
        );
        for head in x.chunks_exact_mut(self.head_dim) {
            for ((pair, &c), &s) in head.chunks_exact_mut(2).zip(cos).zip(sin) {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * c - x1 * s;
                pair[1] = x0 * s + x1 * c;
            }
        }
    }

    /// The cos table as a `positions x head_dim / 2` row-major slice (the device path uploads
    /// it).
    pub fn cos_table(&self) -> &[f32] {
        &self.cos
    }

    /// The sin table, same layout.
    pub fn sin_table(&self) -> &[f32] {
        &self.sin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// Against the textbook formula in f64 (loose) and candle's `rope_i` (exact).
    #[test]
    fn rotates_like_the_formula_and_candle() {
        let (hd, heads) = (64, 3);
        let rope = Rope::new(hd, 10000.0, 300);
        let x: Vec<f32> = (0..heads * hd)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        for pos in [0usize, 1, 2, 17, 255, 299] {
            let mut y = x.clone();
            rope.apply(&mut y, pos);
            for h in 0..heads {
                for i in 0..hd / 2 {
                    let th = pos as f64 / 10000f64.powf((2 * i) as f64 / hd as f64);
                    let (a, b) = (
                        f64::from(x[h * hd + 2 * i]),
                        f64::from(x[h * hd + 2 * i + 1]),
                    );
                    let want0 = a * th.cos() - b * th.sin();
                    let want1 = a * th.sin() + b * th.cos();
                    assert!(
                        (f64::from(y[h * hd + 2 * i]) - want0).abs() < 2e-3,
                        "pos {pos}"
                    );
                    assert!(
                        (f64::from(y[h * hd + 2 * i + 1]) - want1).abs() < 2e-3,
                        "pos {pos}"
                    );
                }
            }
            // candle: xs (1, heads, 1, hd), cos/sin rows of this position.
            let dev = Device::Cpu;
            let xs = Tensor::from_vec(x.clone(), (1, heads, 1, hd), &dev).unwrap();
            let c = Tensor::from_vec(
                rope.cos[pos * hd / 2..(pos + 1) * hd / 2].to_vec(),
                (1, hd / 2),
                &dev,
            )
            .unwrap();
            let s = Tensor::from_vec(
                rope.sin[pos * hd / 2..(pos + 1) * hd / 2].to_vec(),
                (1, hd / 2),
                &dev,
            )
            .unwrap();
            let want: Vec<f32> = candle_nn::rotary_emb::rope_i(&xs, &c, &s)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(y, want, "pos {pos} vs candle");
        }
    }

    /// The tables equal candle's construction (arange * theta via matmul, then cos/sin).
    #[test]
    fn tables_match_candle_construction() {
        let (hd, n) = (64, 100);
        let rope = Rope::new(hd, 10000.0, n);
        let dev = Device::Cpu;
        let theta: Vec<f32> = (0..hd)
            .step_by(2)
            .map(|i| 1f32 / 10000f32.powf(i as f32 / hd as f32))
            .collect();
        let theta = Tensor::new(theta.as_slice(), &dev).unwrap();
        let idx = Tensor::arange(0, n as u32, &dev)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .reshape((n, 1))
            .unwrap()
            .matmul(&theta.reshape((1, hd / 2)).unwrap())
            .unwrap();
        let cos: Vec<f32> = idx.cos().unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let sin: Vec<f32> = idx.sin().unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(rope.cos, cos);
        assert_eq!(rope.sin, sin);
        assert_eq!(rope.positions(), n);
    }
}
