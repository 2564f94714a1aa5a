//! Activation quantization: f32 rows to 8-bit blocks, bit for bit as candle 0.11.1 does it.
//!
//! candle quantizes the left-hand side of a Q8_0 matmul in one of two ways, chosen per weight
//! shape (see [`ActMode::candle_for`]): per 32 values with an f16 scale (`BlockQ8_0::from_float`,
//! ggml's `quantize_row_q8_0`) on its generic path, or per 256 values with an f32 scale
//! (`BlockQ8K::from_float`) on its repacked x86 VNNI path. Matching the choice keeps our matmul
//! results bit-identical to candle's, which is what makes greedy decoding reproduce candle's
//! tokens exactly.
//!
//! Concurrency: [`QuantizedActs`] is a plain owned buffer; quantizing needs `&mut`, the kernel
//! reads it through `&` from many threads at once.

use half::f16;

/// Values per Q8_0 block (weights and Q8_0 activations).
pub const QK8_0: usize = 32;
/// Values per Q8K activation block.
pub const QK_K: usize = 256;
/// Bytes per Q8_0 block in GGUF: an f16 scale then 32 signed bytes.
pub const Q8_0_BYTES: usize = 34;

/// How a row of activations is cut into quantization blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActMode {
    /// 32 values per block, scale `d = amax / 127` rounded to f16 (ggml `quantize_row_q8_0`).
    Q8_0,
    /// 256 values per block, scale `1 / (-127 / max)` kept in f32 (ggml `quantize_row_q8_K`).
    Q8K,
}

impl ActMode {
    /// Values covered by one activation scale.
    pub fn block_len(self) -> usize {
        match self {
            ActMode::Q8_0 => QK8_0,
            ActMode::Q8K => QK_K,
        }
    }

    /// The mode candle 0.11.1 uses on this CPU for a Q8_0 weight of `n` rows by `k` columns:
    /// its repacked kernels (`repack_x86::select`) take Q8_0 weights when `n % 16 == 0`,
    /// `k % 256 == 0` and the CPU has AVX512-VNNI or AVX-VNNI (and `MISTRALRS_FORCE_AVX2` is not
    /// `1`); those quantize activations to Q8K. Everything else goes through `k_quants::matmul`
    /// with Q8_0 activations.
    pub fn candle_for(n: usize, k: usize) -> ActMode {
        if n.is_multiple_of(16) && k.is_multiple_of(QK_K) && candle_uses_vnni() {
            ActMode::Q8K
        } else {
            ActMode::Q8_0
        }
    }
}

/// Whether candle's x86 dispatch (`repack_x86::level`) lands on a VNNI level.
fn candle_uses_vnni() -> bool {
    use std::sync::OnceLock;
    static VNNI: OnceLock<bool> = OnceLock::new();
    *VNNI.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let force_avx2 = std::env::var("MISTRALRS_FORCE_AVX2").as_deref() == Ok("1");
            let force_vnni = std::env::var("MISTRALRS_FORCE_AVXVNNI").as_deref() == Ok("1");
            if force_avx2 {
                return false;
            }
            let avx512 = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vnni");
            let avxvnni = (force_vnni || std::arch::is_x86_feature_detected!("avxvnni"))
                && std::arch::is_x86_feature_detected!("avx2");
            avx512 || avxvnni
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// `m` rows of `k` activations quantized to signed bytes with one scale per block.
#[derive(Clone, Debug)]
pub struct QuantizedActs {
    /// Block layout of every row (32 or 256 values per scale).
    pub(crate) mode: ActMode,
    /// Number of rows.
    pub(crate) m: usize,
    /// Values per row (a multiple of the block length).
    pub(crate) k: usize,
    /// Quantized values, row-major `m x k`.
    pub(crate) qs: Vec<i8>,
    /// Scales, row-major `m x (k / block_len)`, as the f32 candle multiplies with (an f16
    /// widened to f32 in Q8_0 mode).
    pub(crate) scales: Vec<f32>,
    /// Sum of each 32 quantized values, `m x (k / 32)` (Q8K mode only, else empty): the
    /// correction for weights stored offset to unsigned (8-row tiles).
    pub(crate) bsums: Vec<i32>,
    /// The quantized values offset to unsigned (`q + 128`; Q8_0 mode only, else empty), for
    /// `vpdpbusd` against signed weights (computed once here instead of in every kernel tile).
    pub(crate) qu: Vec<u8>,
}

impl Default for QuantizedActs {
    fn default() -> Self {
        Self::new()
    }
}

impl QuantizedActs {
    /// An empty buffer; [`QuantizedActs::quantize`] sizes it (and reuses it after).
    pub fn new() -> Self {
        Self {
            mode: ActMode::Q8_0,
            m: 0,
            k: 0,
            qs: Vec::new(),
            scales: Vec::new(),
            bsums: Vec::new(),
            qu: Vec::new(),
        }
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.m
    }

    /// Values per row.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// The block layout.
    pub fn mode(&self) -> ActMode {
        self.mode
    }

    /// Quantizes `x` (`m` rows of `k`, row-major) in `mode`, reusing this buffer's memory.
    ///
    /// # Panics
    /// If `k` is not a multiple of the mode's block length or `x.len() != m * k`.
    pub fn quantize(&mut self, x: &[f32], m: usize, k: usize, mode: ActMode) {
        let bl = mode.block_len();
        assert!(k.is_multiple_of(bl), "k = {k} is not a multiple of {bl}");
        assert_eq!(x.len(), m * k, "activation length");
        self.mode = mode;
        self.m = m;
        self.k = k;
        self.qs.resize(m * k, 0);
        self.scales.resize(m * (k / bl), 0.0);
        let blocks = x.chunks_exact(bl).zip(self.qs.chunks_exact_mut(bl));
        for ((xs, qs), d) in blocks.zip(self.scales.iter_mut()) {
            *d = match mode {
                ActMode::Q8_0 => quantize_block_q8_0(xs, qs),
                ActMode::Q8K => quantize_block_q8k(xs, qs),
            };
        }
        // Each layout's kernel needs one of these: Q8_0 mode (4-row tiles) the unsigned copy,
        // Q8K mode (8-row tiles) the block sums.
        self.qu.clear();
        self.bsums.clear();
        match mode {
            ActMode::Q8_0 => self.qu.extend(self.qs.iter().map(|&q| q as u8 ^ 0x80)),
            ActMode::Q8K => {
                let sums = self
                    .qs
                    .chunks_exact(QK8_0)
                    .map(|q| q.iter().map(|&v| i32::from(v)).sum::<i32>());
                self.bsums.extend(sums)
            }
        }
    }

    /// Row `i`'s values offset to unsigned (empty in Q8K mode).
    pub(crate) fn row_qu(&self, i: usize) -> &[u8] {
        self.qu.get(i * self.k..(i + 1) * self.k).unwrap_or(&[])
    }

    /// Row `i`'s 32-value block sums (empty in Q8_0 mode).
    pub(crate) fn row_bsums(&self, i: usize) -> &[i32] {
        let per_row = self.k / QK8_0;
        self.bsums
            .get(i * per_row..(i + 1) * per_row)
            .unwrap_or(&[])
    }

    /// Row `i`'s quantized values.
    pub(crate) fn row_qs(&self, i: usize) -> &[i8] {
        &self.qs[i * self.k..(i + 1) * self.k]
    }

    /// Row `i`'s scales.
    pub(crate) fn row_scales(&self, i: usize) -> &[f32] {
        let per_row = self.k / self.mode.block_len();
        &self.scales[i * per_row..(i + 1) * per_row]
    }
}

/// One Q8_0 block as `BlockQ8_0::from_float`: `d = amax / 127`, `q = round(x * (1 / d))`.
/// Returns the scale as the f32 of its f16.
pub fn quantize_block_q8_0(xs: &[f32], qs: &mut [i8]) -> f32 {
    let xs: &[f32; QK8_0] = xs.try_into().expect("a 32-value block");
    let qs: &mut [i8; QK8_0] = qs.try_into().expect("a 32-value block");
    // The maximum does not depend on the order: eight lanes (which vectorize) give candle's
    // sequential result.
    let mut lanes = [0f32; 8];
    for c in xs.chunks_exact(8) {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = l.max(v.abs());
        }
    }
    let amax = lanes.iter().fold(0f32, |a, &v| a.max(v));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // |v * id| <= 127 (plus rounding), so going through i32 equals candle's saturating `as i8`
    // for every finite input, and vectorizes.
    for (q, &v) in qs.iter_mut().zip(xs) {
        *q = (v * id).round() as i32 as i8;
    }
    f16::from_f32(d).to_f32()
}

/// One Q8K block as `BlockQ8K::from_float`: the value of largest magnitude (first one on ties)
/// maps to -127, `q = clamp(round(-127 / max * x))`, `d = 1 / (-127 / max)`.
pub fn quantize_block_q8k(xs: &[f32], qs: &mut [i8]) -> f32 {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in xs {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        qs.fill(0);
        return 0.0;
    }
    let iscale = -127f32 / max;
    for (q, &v) in qs.iter_mut().zip(xs) {
        *q = (iscale * v).round().clamp(-128.0, 127.0) as i32 as i8;
    }
    1.0 / iscale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::testutil::Rng;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    /// Our Q8_0 activation blocks equal candle's `BlockQ8_0::from_float` byte for byte
    /// (candle's `QTensor::quantize` to Q8_0 runs exactly that function).
    #[test]
    fn q8_0_matches_candle() {
        let mut rng = Rng::new(7);
        let k = 32 * 24;
        let mut x: Vec<f32> = (0..k).map(|_| rng.normal() * 3.0).collect();
        x[40..72].fill(0.0); // an all-zero block
        x[100] = 1e-30; // tiny values
        let mut acts = QuantizedActs::new();
        acts.quantize(&x, 1, k, ActMode::Q8_0);
        let t = Tensor::from_vec(x.clone(), (1, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, GgmlDType::Q8_0).unwrap();
        let bytes = q.data().unwrap();
        for b in 0..k / 32 {
            let blk = &bytes[b * 34..(b + 1) * 34];
            let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
            assert_eq!(d.to_bits(), acts.scales[b].to_bits(), "scale of block {b}");
            for j in 0..32 {
                assert_eq!(blk[2 + j] as i8, acts.qs[b * 32 + j], "block {b} value {j}");
            }
        }
    }

    /// Q8K blocks: first max wins, -127 at the max, zero blocks stay zero.
    #[test]
    fn q8k_rules() {
        let mut xs = vec![0.5f32; 256];
        xs[3] = -2.0;
        xs[9] = 2.0;
        let mut qs = vec![0i8; 256];
        let d = quantize_block_q8k(&xs, &mut qs);
        assert_eq!(qs[3], -127);
        assert_eq!(qs[9], 127);
        assert_eq!(d, 1.0 / (-127.0 / -2.0));
        let zero = [0f32; 256];
        assert_eq!(quantize_block_q8k(&zero, &mut qs), 0.0);
        assert!(qs.iter().all(|&q| q == 0));
    }

    #[test]
    fn modes_follow_candle_shapes() {
        assert_eq!(ActMode::candle_for(576, 576), ActMode::Q8_0);
        assert_eq!(ActMode::candle_for(100, 1536), ActMode::Q8_0);
        let down = ActMode::candle_for(576, 1536);
        assert_eq!(down == ActMode::Q8K, candle_uses_vnni());
    }
}
