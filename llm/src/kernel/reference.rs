//! The portable scalar kernel: the fallback on CPUs without AVX2 and the reference the SIMD
//! paths are tested against.
//!
//! It follows candle's arithmetic exactly, so the SIMD paths (which must equal it bit for bit)
//! equal candle too:
//! - Q8_0 activations (`avx::vec_dot_q8_0_q8_0`): eight f32 lanes, lane `j` of block `b` is the
//!   exact integer sum of products `4j..4j+4`, accumulated as `fma(wd * ad, lane, acc)` block by
//!   block; the lanes are summed as `((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7))` (`hsum_float_8`).
//! - Q8K activations (`repack_x86::q8_0_tile2`): one accumulator per output, `fma(sum32,
//!   wd * ad, acc)` per 32-value weight block in order.
//!
//! Concurrency: pure functions over borrowed data.

use super::quantize::{ActMode, QuantizedActs, QK8_0, QK_K};
use super::Q8Weights;

/// Dot product of weight row `r` with one activation row, as candle computes it for the
/// activation mode of `w`.
pub fn dot_row(w: &Q8Weights, r: usize, a_qs: &[i8], a_scales: &[f32]) -> f32 {
    let kb = w.cols() / QK8_0;
    match w.mode() {
        ActMode::Q8_0 => {
            let mut lanes = [0f32; 8];
            for b in 0..kb {
                let (wd, wq) = w.block(r, b);
                let aq = &a_qs[b * QK8_0..(b + 1) * QK8_0];
                let d = wd * a_scales[b];
                for (j, lane) in lanes.iter_mut().enumerate() {
                    let s: i32 = (4 * j..4 * j + 4)
                        .map(|t| i32::from(wq[t]) * i32::from(aq[t]))
                        .sum();
                    *lane = d.mul_add(s as f32, *lane);
                }
            }
            hsum8(&lanes)
        }
        ActMode::Q8K => {
            let mut acc = 0f32;
            for b in 0..kb {
                let (wd, wq) = w.block(r, b);
                let aq = &a_qs[b * QK8_0..(b + 1) * QK8_0];
                let s: i32 = wq
                    .iter()
                    .zip(aq)
                    .map(|(&x, &y)| i32::from(x) * i32::from(y))
                    .sum();
                acc = (s as f32).mul_add(wd * a_scales[b * QK8_0 / QK_K], acc);
            }
            acc
        }
    }
}

/// candle's `hsum_float_8` order.
#[inline(always)]
pub(crate) fn hsum8(l: &[f32; 8]) -> f32 {
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// Output columns `cols` of every activation row into `out_rows[i]`, all scalar.
pub(crate) fn matmul_cols(
    w: &Q8Weights,
    acts: &QuantizedActs,
    cols: std::ops::Range<usize>,
    out_rows: &mut [&mut [f32]],
) {
    for (i, out) in out_rows.iter_mut().enumerate() {
        let (aq, ad) = (acts.row_qs(i), acts.row_scales(i));
        for (o, c) in out.iter_mut().zip(cols.clone()) {
            *o = dot_row(w, c, aq, ad);
        }
    }
}
