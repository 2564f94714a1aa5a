//! f32 dot products of attention (`q . k`) in the summation order of gemm's horizontal kernel,
//! which candle's `matmul` uses for short attention rows: eight FMA lanes (index `i` goes to
//! lane `i mod 8`), reduced as `((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7))`. Four keys are done at once
//! so their FMA chains overlap.
//!
//! An AVX2 path (runtime-detected) and the portable scalar reference it is tested against; both
//! give the same bits.
//!
//! Concurrency: pure functions.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// `a . b` in gemm's 8-lane order (scalar reference and fallback).
pub fn dot_lanes8_scalar(a: &[f32], b: &[f32]) -> f32 {
    let mut l = [0f32; 8];
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        l[i % 8] = x.mul_add(y, l[i % 8]);
    }
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// `a . b[u]` for four vectors of `a.len()` values, in gemm's 8-lane order.
///
/// # Panics
/// If some `b[u]` is shorter than `a`.
pub fn dot_lanes8_x4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    assert!(
        b.iter().all(|v| v.len() >= a.len()),
        "vectors shorter than the query"
    );
    #[cfg(target_arch = "x86_64")]
    if a.len().is_multiple_of(8)
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        // SAFETY: AVX2 and FMA were just detected; lengths were checked above.
        return unsafe { lanes8_x4_avx2(a, b) };
    }
    std::array::from_fn(|u| dot_lanes8_scalar(a, &b[u][..a.len()]))
}

/// AVX2 body of [`dot_lanes8_x4`] for lengths that are a multiple of 8.
///
/// # Safety
/// The CPU must have AVX2 and FMA; every `b[u]` must hold at least `a.len()` values and
/// `a.len() % 8 == 0`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lanes8_x4_avx2(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    let n = a.len();
    let mut acc = [_mm256_setzero_ps(); 4];
    for i in (0..n).step_by(8) {
        // SAFETY: `i + 8 <= n <= len` of `a` and of every `b[u]` (the caller's contract).
        unsafe {
            let x = _mm256_loadu_ps(a.as_ptr().add(i));
            for (acc, bu) in acc.iter_mut().zip(&b) {
                *acc = _mm256_fmadd_ps(x, _mm256_loadu_ps(bu.as_ptr().add(i)), *acc);
            }
        }
    }
    acc.map(|v| {
        let hi = _mm256_extractf128_ps::<1>(v);
        let x = _mm_add_ps(_mm256_castps256_ps128(v), hi);
        let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
        _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::testutil::Rng;

    #[test]
    fn simd_equals_scalar_reference() {
        let mut rng = Rng::new(21);
        for n in [8usize, 16, 64, 72, 128, 5, 63] {
            let a: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
            let bs: Vec<Vec<f32>> = (0..4)
                .map(|_| (0..n + 3).map(|_| rng.normal() * 3.0).collect())
                .collect();
            let got = dot_lanes8_x4(&a, [&bs[0], &bs[1], &bs[2], &bs[3]]);
            for u in 0..4 {
                let want = dot_lanes8_scalar(&a, &bs[u][..n]);
                assert_eq!(got[u].to_bits(), want.to_bits(), "n={n} u={u}");
                let exact: f64 = a
                    .iter()
                    .zip(&bs[u])
                    .map(|(&x, &y)| f64::from(x) * f64::from(y))
                    .sum();
                assert!((f64::from(want) - exact).abs() < 1e-4 * (1.0 + exact.abs()));
            }
        }
    }
}
