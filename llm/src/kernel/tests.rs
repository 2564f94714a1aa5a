//! Kernel tests: every SIMD path against the scalar reference (exact integer lane sums,
//! bit-identical outputs), the reference against plain f64 math, and everything against candle's
//! own `QMatMul` on the same bytes.
//!
//! Concurrency: each test builds its own rayon pools where it needs threads.

use super::testutil::{random_weights, Rng};
use super::*;
use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{Device, Module, Tensor};

/// Random activations with a spread of magnitudes, some exact zeros and an all-zero row block.
fn random_acts(rng: &mut Rng, m: usize, k: usize) -> Vec<f32> {
    let mut x: Vec<f32> = (0..m * k)
        .map(|_| rng.normal() * if rng.below(10) == 0 { 20.0 } else { 1.0 })
        .collect();
    for v in x.iter_mut().step_by(17) {
        *v = 0.0;
    }
    if m * k >= 64 {
        x[32..64].fill(0.0);
    }
    x
}

/// The scalar reference for every output of `acts * w^T`.
fn reference_out(w: &Q8Weights, acts: &QuantizedActs) -> Vec<f32> {
    let mut out = Vec::with_capacity(acts.m * w.n);
    for i in 0..acts.m {
        for c in 0..w.n {
            out.push(reference::dot_row(w, c, acts.row_qs(i), acts.row_scales(i)));
        }
    }
    out
}

fn assert_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {i}: {g} vs {w}");
    }
}

#[test]
fn simd_lane_sums_are_exact() {
    let mut rng = Rng::new(1);
    let mut cases: Vec<(Vec<u8>, Vec<i8>)> = Vec::new();
    for _ in 0..500 {
        let mut blk = vec![0u8; Q8_0_BYTES];
        blk.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
        let a: Vec<i8> = (0..32)
            .map(|_| (rng.below(255) as i32 - 127) as i8)
            .collect();
        cases.push((blk, a));
    }
    // Extremes: -128 weights against +-127 activations (maddubs' worst case).
    let mut blk = vec![0x80u8; Q8_0_BYTES];
    blk[0] = 0;
    blk[1] = 0x3c;
    cases.push((blk.clone(), vec![127; 32]));
    cases.push((blk, vec![-127; 32]));
    for level in Level::available() {
        #[cfg(target_arch = "x86_64")]
        let isa = match level {
            Level::Vnni => x86::Isa::Vnni,
            Level::Avx2 => x86::Isa::Avx2,
            Level::Scalar => continue,
        };
        #[cfg(not(target_arch = "x86_64"))]
        continue;
        for (blk, a) in &cases {
            let want: Vec<i32> = (0..8)
                .map(|j| {
                    (4 * j..4 * j + 4)
                        .map(|t| i32::from(blk[2 + t] as i8) * i32::from(a[t]))
                        .sum()
                })
                .collect();
            #[cfg(target_arch = "x86_64")]
            assert_eq!(x86::lane_sums(isa, blk, a).to_vec(), want, "{level:?}");
        }
        // 8-row tiles (Q8K mode): one exact block sum per row.
        for chunk in cases.chunks_exact(8) {
            // Q8K rows need 256 inputs: the case block first, then copies of it.
            let raw: Vec<u8> = chunk.iter().flat_map(|(blk, _)| blk.repeat(8)).collect();
            let w = Q8Weights::with_mode(8, 256, raw, ActMode::Q8K).unwrap();
            for (_, a) in chunk {
                let want: Vec<i32> = (0..8)
                    .map(|r| {
                        let (_, q) = w.block(r, 0);
                        q.iter()
                            .zip(a)
                            .map(|(&x, &y)| i32::from(x) * i32::from(y))
                            .sum()
                    })
                    .collect();
                #[cfg(target_arch = "x86_64")]
                assert_eq!(
                    x86::tile_sums(isa, &w.data[..272], a).to_vec(),
                    want,
                    "{level:?} tiles"
                );
            }
        }
    }
}

#[test]
fn tiles_keep_every_block() {
    let mut rng = Rng::new(9);
    let (n, k) = (16, 512);
    let raw = random_weights(&mut rng, n, k);
    let tiled = Q8Weights::with_mode(n, k, raw.raw_rows(), ActMode::Q8K).unwrap();
    for r in 0..n {
        for b in 0..k / 32 {
            assert_eq!(raw.block(r, b), tiled.block(r, b), "row {r} block {b}");
        }
    }
    let (mut x, mut y) = (vec![0f32; k], vec![0f32; k]);
    raw.dequantize_row(5, &mut x);
    tiled.dequantize_row(5, &mut y);
    assert_eq!(x, y);
    assert!(Q8Weights::with_mode(12, k, vec![0; 12 * 16 * 34], ActMode::Q8K).is_none());
}

#[test]
fn every_level_matches_reference_bit_for_bit() {
    let mut rng = Rng::new(2);
    let shapes = [
        (1, 32),
        (3, 64),
        (7, 96),
        (33, 288),
        (40, 576),
        (17, 512),
        (48, 256),
        (24, 768),
        (9, 1536),
    ];
    let mut acts = QuantizedActs::new();
    for &(n, k) in &shapes {
        let raw = random_weights(&mut rng, n, k);
        for m in 1..=17 {
            let x = random_acts(&mut rng, m, k);
            for mode in [ActMode::Q8_0, ActMode::Q8K] {
                let Some(w) = Q8Weights::with_mode(n, k, raw.raw_rows(), mode) else {
                    continue;
                };
                acts.quantize(&x, m, k, mode);
                let want = reference_out(&w, &acts);
                for level in Level::available() {
                    let mut out = vec![f32::NAN; m * n];
                    matmul_with(level, &w, &acts, &mut out);
                    assert_bits(
                        &out,
                        &want,
                        &format!("{level:?} {mode:?} m={m} n={n} k={k}"),
                    );
                }
            }
        }
    }
}

#[test]
fn reference_is_the_dequantized_product() {
    let mut rng = Rng::new(3);
    let (m, n, k) = (5, 24, 512);
    let raw = random_weights(&mut rng, n, k);
    let x = random_acts(&mut rng, m, k);
    let mut acts = QuantizedActs::new();
    let mut wrow = vec![0f32; k];
    for mode in [ActMode::Q8_0, ActMode::Q8K] {
        let w = Q8Weights::with_mode(n, k, raw.raw_rows(), mode).unwrap();
        acts.quantize(&x, m, k, mode);
        let got = reference_out(&w, &acts);
        for c in 0..n {
            w.dequantize_row(c, &mut wrow);
            for i in 0..m {
                let bl = mode.block_len();
                let exact: f64 = (0..k)
                    .map(|t| {
                        let a =
                            f64::from(acts.qs[i * k + t]) * f64::from(acts.row_scales(i)[t / bl]);
                        a * f64::from(wrow[t])
                    })
                    .sum();
                let g = f64::from(got[i * n + c]);
                assert!(
                    (g - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                    "{mode:?} {g} vs {exact}"
                );
            }
        }
    }
}

#[test]
fn thread_count_does_not_change_results() {
    let mut rng = Rng::new(4);
    let (n, k) = (1000, 576);
    let w = random_weights(&mut rng, n, k);
    assert_eq!(w.mode(), ActMode::Q8_0);
    let mut acts = QuantizedActs::new();
    for m in [1, 3, 8, 16] {
        let x = random_acts(&mut rng, m, k);
        acts.quantize(&x, m, k, ActMode::Q8_0);
        let want = reference_out(&w, &acts);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![0f32; m * n];
            pool.install(|| matmul(&w, &acts, &mut out));
            assert_bits(&out, &want, &format!("{threads} threads m={m}"));
        }
    }
}

#[test]
fn matches_candle_qmatmul_bit_for_bit() {
    let mut rng = Rng::new(5);
    // The model's shapes (small n for the head), plus odd ones; (64, 1536) and (576, 1536) take
    // candle's repacked Q8K path on VNNI CPUs, the rest its generic Q8_0 path.
    let shapes = [
        (576, 576),
        (192, 576),
        (64, 1536),
        (576, 1536),
        (50, 96),
        (16, 256),
        (3, 32),
    ];
    let mut acts = QuantizedActs::new();
    for &(n, k) in &shapes {
        let raw = random_weights(&mut rng, n, k).raw_rows();
        let w = Q8Weights::from_raw(n, k, raw.clone()).unwrap();
        let q = qtensor_from_ggml(GgmlDType::Q8_0, &raw, vec![n, k], &Device::Cpu).unwrap();
        let qmm = QMatMul::from_qtensor(q).unwrap();
        for m in [1, 2, 3, 4, 5, 8, 16, 17] {
            let x = random_acts(&mut rng, m, k);
            let xt = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap();
            let want: Vec<f32> = qmm
                .forward(&xt)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            acts.quantize(&x, m, k, w.mode());
            let mut out = vec![0f32; m * n];
            matmul(&w, &acts, &mut out);
            assert_bits(&out, &want, &format!("candle m={m} n={n} k={k}"));
        }
    }
}

#[test]
fn concat_and_dequantize() {
    let mut rng = Rng::new(6);
    let a = random_weights(&mut rng, 3, 64);
    let b = random_weights(&mut rng, 5, 64);
    let c = Q8Weights::concat(&[&a, &b]).unwrap();
    assert_eq!((c.rows(), c.cols()), (8, 64));
    assert_eq!(c.raw_rows(), [a.raw_rows(), b.raw_rows()].concat());
    let (mut r1, mut r2) = (vec![0f32; 64], vec![0f32; 64]);
    b.dequantize_row(2, &mut r1);
    c.dequantize_row(5, &mut r2);
    assert_eq!(r1, r2);
    assert!(Q8Weights::concat(&[&a, &random_weights(&mut rng, 1, 32)]).is_none());
    assert!(Q8Weights::from_raw(2, 33, vec![0; 68]).is_none());
}

#[test]
fn strided_output_leaves_other_columns_alone() {
    let mut rng = Rng::new(8);
    let (m, k) = (5, 64);
    let a = random_weights(&mut rng, 7, k);
    let b = random_weights(&mut rng, 3, k);
    let x = random_acts(&mut rng, m, k);
    let mut acts = QuantizedActs::new();
    acts.quantize(&x, m, k, ActMode::Q8_0);
    let ldo = 12;
    let mut out = vec![-7.0f32; m * ldo];
    matmul_into(&a, &acts, &mut out, ldo, 0);
    matmul_into(&b, &acts, &mut out, ldo, 8);
    let (ra, rb) = (reference_out(&a, &acts), reference_out(&b, &acts));
    for i in 0..m {
        assert_bits(&out[i * ldo..i * ldo + 7], &ra[i * 7..(i + 1) * 7], "a");
        assert_eq!(out[i * ldo + 7], -7.0);
        assert_bits(
            &out[i * ldo + 8..i * ldo + 11],
            &rb[i * 3..(i + 1) * 3],
            "b",
        );
        assert_eq!(out[i * ldo + 11], -7.0);
    }
}
