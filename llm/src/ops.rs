//! Row-wise float ops of the native forward, in candle's exact arithmetic: RMS norm
//! (`candle_nn::ops::rms_norm`) and the SwiGLU gate (`silu(gate) * up`).
//!
//! Concurrency: pure functions over borrowed slices.

/// `out = x / sqrt(mean(x^2) + eps) * weight` for one row, summing squares in index order.
pub(crate) fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let sum2 = x.iter().map(|&v| v * v).sum::<f32>();
    let m = (sum2 / x.len() as f32 + eps).sqrt();
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = v / m * w;
    }
}

/// [`rms_norm`] over every `width`-wide row of `x`.
pub(crate) fn rms_norm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let width = weight.len();
    for (xr, or) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        rms_norm(xr, weight, eps, or);
    }
}

/// candle's `silu`: `v / (1 + exp(-v))`.
#[inline]
pub(crate) fn silu(v: f32) -> f32 {
    v / (1.0 + (-v).exp())
}

/// `out[r][i] = silu(gu[r][i]) * gu[r][ffn + i]` for rows of `gate | up` (`2 * ffn` wide).
pub(crate) fn swiglu_rows(gu: &[f32], ffn: usize, out: &mut [f32]) {
    for (row, o) in gu.chunks_exact(2 * ffn).zip(out.chunks_exact_mut(ffn)) {
        let (gate, up) = row.split_at(ffn);
        for ((o, &g), &u) in o.iter_mut().zip(gate).zip(up) {
            *o = silu(g) * u;
        }
    }
}

/// `x += y`, element by element (candle adds the block output to the residual: `y + x`, the
/// same value since float addition commutes).
pub(crate) fn add_into(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn rms_norm_matches_candle() {
        let dev = Device::Cpu;
        let (rows, width) = (40usize, 576usize);
        let x: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 37.0)
            .collect();
        let w: Vec<f32> = (0..width).map(|i| 0.5 + (i % 13) as f32 / 10.0).collect();
        let mut out = vec![0f32; rows * width];
        rms_norm_rows(&x, &w, 1e-5, &mut out);
        // candle switches to a parallel loop above 32 rows; both must match.
        for n in [1usize, 8, rows] {
            let xt = Tensor::from_vec(x[..n * width].to_vec(), (n, width), &dev).unwrap();
            let wt = Tensor::from_vec(w.clone(), width, &dev).unwrap();
            let want: Vec<f32> = candle_nn::ops::rms_norm(&xt, &wt, 1e-5)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(&out[..n * width], &want[..], "{n} rows");
        }
    }

    #[test]
    fn swiglu_matches_candle() {
        let dev = Device::Cpu;
        let ffn = 64;
        let gu: Vec<f32> = (0..3 * 2 * ffn)
            .map(|i| ((i * 31 % 97) as f32 - 48.0) / 9.0)
            .collect();
        let mut out = vec![0f32; 3 * ffn];
        swiglu_rows(&gu, ffn, &mut out);
        let t = Tensor::from_vec(gu, (3, 2 * ffn), &dev).unwrap();
        let (g, u) = (t.narrow(1, 0, ffn).unwrap(), t.narrow(1, ffn, ffn).unwrap());
        let want: Vec<f32> = (candle_nn::ops::silu(&g).unwrap() * u)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(out, want);
        let mut x = vec![1.0f32, 2.0];
        add_into(&mut x, &[0.5, -2.0]);
        assert_eq!(x, [1.5, 0.0]);
    }
}
