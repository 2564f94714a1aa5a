//! Causal attention of one query head over its sequence's cached keys and values.
//!
//! The arithmetic mirrors what candle's `quantized_llama` computes for the same call (a chunk of
//! `n_tok` tokens starting at position `start`): `softmax(q k^T / sqrt(d) + mask) v` where the
//! two products go through the `gemm` crate. Which gemm kernel runs depends on the shape, and
//! each sums in its own order, so [`DotOrder::for_call`] picks the order the same way:
//! - `n_tok * kv_len <= 256`: gemm's horizontal kernel, 8 FMA lanes (`d mod 8`) reduced as
//!   `((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7))`;
//! - one token, longer: gemm's row-major gemv, eight 8-lane FMA accumulators over 64-value
//!   strides, added as a tree, then the lanes summed one by one;
//! - otherwise (prefill): the packed microkernel, one FMA chain in `d` order.
//!
//! The softmax runs over the chunk's full key length with masked entries at `-inf` (so exactly
//! zero after `exp`), summed with candle's 32-lane `vec_sum`; `p v` is one FMA chain per output
//! value in position order (gemm's column-major gemv and microkernel agree on it), except for
//! key lengths up to 2 where gemm's `gevv` adds unfused products. Grouped-query
//! attention indexes the key/value head directly (never copies it).
//!
//! Concurrency: pure functions over borrowed slices; the forward runs one call per (sequence,
//! head) task.

use crate::kernel::dot::{dot_lanes8_scalar, dot_lanes8_x4};

/// How a `q . k` dot product is summed (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DotOrder {
    /// Eight FMA lanes, then candle-gemm's horizontal reduction.
    Lanes8,
    /// gemm's row-major gemv: 8 x 8 lanes per 64 values, tree, then lane by lane.
    Gemv,
    /// One FMA chain in index order.
    Chain,
}

impl DotOrder {
    /// The order gemm uses for `(n_tok x d) . (d x kv_len)`.
    pub(crate) fn for_call(n_tok: usize, kv_len: usize) -> Self {
        if n_tok * kv_len <= 256 {
            DotOrder::Lanes8
        } else if n_tok == 1 {
            DotOrder::Gemv
        } else {
            DotOrder::Chain
        }
    }

    /// `scores[l] = (q . k_l) * scale + 0.0` (candle's affine op) for the first `visible` keys,
    /// summed in this order.
    fn scores(self, q: &[f32], keys: &[f32], visible: usize, scale: f32, scores: &mut Vec<f32>) {
        let hd = q.len();
        let keys = keys.chunks_exact(hd).take(visible);
        match self {
            DotOrder::Lanes8 => {
                // Four keys at a time: four independent FMA chains.
                let ks: Vec<&[f32]> = keys.collect();
                for group in ks.chunks(4) {
                    if let Ok(&g) = <&[&[f32]; 4]>::try_from(group) {
                        scores.extend(dot_lanes8_x4(q, g).map(|d| d * scale + 0.0));
                    } else {
                        scores.extend(group.iter().map(|k| dot_lanes8_scalar(q, k) * scale + 0.0));
                    }
                }
            }
            DotOrder::Gemv => scores.extend(keys.map(|k| dot_gemv(q, k) * scale + 0.0)),
            DotOrder::Chain => {
                // Eight keys at a time: eight independent FMA chains instead of one.
                let ks: Vec<&[f32]> = keys.collect();
                for group in ks.chunks(8) {
                    let mut acc = [0f32; 8];
                    if let Ok(g) = <&[&[f32]; 8]>::try_from(group) {
                        for (d, &qd) in q.iter().enumerate() {
                            for (a, k) in acc.iter_mut().zip(g) {
                                *a = qd.mul_add(k[d], *a);
                            }
                        }
                    } else {
                        for (a, k) in acc.iter_mut().zip(group) {
                            *a = q.iter().zip(*k).fold(0f32, |s, (&x, &y)| x.mul_add(y, s));
                        }
                    }
                    scores.extend(acc[..group.len()].iter().map(|&a| a * scale + 0.0));
                }
            }
        }
    }
}

/// gemm's `mixed_gemv_rowmajor` with 8-wide vectors.
#[inline]
fn dot_gemv(a: &[f32], b: &[f32]) -> f32 {
    let k = a.len();
    let (k64, k8) = (k / 64 * 64, k / 8 * 8);
    let mut acc = [[0f32; 8]; 8];
    for base in (0..k64).step_by(64) {
        for (u, lanes) in acc.iter_mut().enumerate() {
            for (j, l) in lanes.iter_mut().enumerate() {
                let i = base + 8 * u + j;
                *l = a[i].mul_add(b[i], *l);
            }
        }
    }
    let add = |x: [f32; 8], y: [f32; 8]| -> [f32; 8] { std::array::from_fn(|j| x[j] + y[j]) };
    let a01 = add(acc[0], acc[1]);
    let a23 = add(acc[2], acc[3]);
    let a45 = add(acc[4], acc[5]);
    let a67 = add(acc[6], acc[7]);
    let mut v = add(add(a01, a23), add(a45, a67));
    for base in (k64..k8).step_by(8) {
        for (j, l) in v.iter_mut().enumerate() {
            *l = a[base + j].mul_add(b[base + j], *l);
        }
    }
    let mut s = v[0];
    for &x in &v[1..] {
        s += x;
    }
    for i in k8..k {
        s = a[i].mul_add(b[i], s);
    }
    s
}

/// candle's AVX `vec_sum`: four 8-lane accumulators over 32-value strides, reduced, then the
/// tail added one by one.
pub(crate) fn vec_sum(x: &[f32]) -> f32 {
    let np = x.len() / 32 * 32;
    let mut acc = [[0f32; 8]; 4];
    for base in (0..np).step_by(32) {
        for (u, lanes) in acc.iter_mut().enumerate() {
            for (j, l) in lanes.iter_mut().enumerate() {
                *l += x[base + 8 * u + j];
            }
        }
    }
    let a: [f32; 8] = std::array::from_fn(|j| (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]));
    let t0: [f32; 4] = std::array::from_fn(|j| a[j] + a[j + 4]);
    let mut s = (t0[0] + t0[1]) + (t0[2] + t0[3]);
    for &v in &x[np..] {
        s += v;
    }
    s
}

/// One query head of one token: `out = softmax(q . k_l * scale | l < visible, -inf beyond) . v`.
///
/// `keys`/`values` hold at least `visible` positions of `head_dim` values; the scores row is
/// `row_len` long (the chunk's key length, `>= visible`) as in candle's masked computation.
/// `scores` is scratch (resized here).
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    visible: usize,
    row_len: usize,
    order: DotOrder,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let hd = q.len();
    debug_assert!(visible >= 1 && visible <= row_len);
    scores.clear();
    order.scores(q, keys, visible, scale, scores);
    scores.resize(row_len, f32::NEG_INFINITY);
    // The maximum does not depend on the order (eight lanes vectorize).
    let mut lanes = [f32::NEG_INFINITY; 8];
    for c in scores.chunks(8) {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = l.max(v);
        }
    }
    let max = lanes.iter().fold(scores[0], |m, &v| m.max(v));
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
    }
    let sum = vec_sum(scores);
    for s in scores.iter_mut() {
        *s /= sum;
    }
    if row_len <= 2 {
        // gemm's `gevv` (inner dimension <= 2): products added without fusing.
        for (d, o) in out.iter_mut().enumerate() {
            *o = scores[0] * values[d];
            if visible == 2 {
                *o += scores[1] * values[hd + d];
            }
        }
        return;
    }
    weighted_sum(&scores[..visible], values, out);
}

/// `out = sum_l p[l] * v_l`, one FMA chain per output value in position order; 64 outputs at a
/// time are kept in registers across the positions.
fn weighted_sum(p: &[f32], values: &[f32], out: &mut [f32]) {
    let hd = out.len();
    let mut o0 = 0;
    while o0 + 64 <= hd {
        let mut acc = [0f32; 64];
        for (&pl, v) in p.iter().zip(values.chunks_exact(hd)) {
            let v: &[f32; 64] = v[o0..o0 + 64].try_into().expect("64 values");
            for j in 0..64 {
                acc[j] = v[j].mul_add(pl, acc[j]);
            }
        }
        out[o0..o0 + 64].copy_from_slice(&acc);
        o0 += 64;
    }
    if o0 < hd {
        let rest = &mut out[o0..];
        rest.fill(0.0);
        for (&pl, v) in p.iter().zip(values.chunks_exact(hd)) {
            for (o, &x) in rest.iter_mut().zip(&v[o0..]) {
                *o = x.mul_add(pl, *o);
            }
        }
    }
}

#[cfg(test)]
#[path = "attention_tests.rs"]
mod tests;
