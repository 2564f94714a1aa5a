//! Attention tests: against a naive f64 formula (loose) and against candle's own op sequence
//! from `quantized_llama::forward_attn` (bit for bit).
//!
//! Concurrency: single-threaded tests.

use super::*;
use crate::kernel::testutil::Rng;
use candle_core::{Device, Tensor, D};

/// Naive causal softmax attention in f64.
fn naive(q: &[f32], keys: &[f32], values: &[f32], visible: usize, hd: usize) -> Vec<f64> {
    let scale = 1.0 / (hd as f64).sqrt();
    let s: Vec<f64> = (0..visible)
        .map(|l| {
            (0..hd)
                .map(|d| f64::from(q[d]) * f64::from(keys[l * hd + d]))
                .sum::<f64>()
                * scale
        })
        .collect();
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
    let z: f64 = e.iter().sum();
    (0..hd)
        .map(|d| {
            (0..visible)
                .map(|l| e[l] / z * f64::from(values[l * hd + d]))
                .sum()
        })
        .collect()
}

#[test]
fn matches_naive_attention() {
    let mut rng = Rng::new(11);
    let hd = 64;
    let mut scores = Vec::new();
    for visible in [1usize, 2, 7, 9, 33, 100, 300] {
        let q: Vec<f32> = (0..hd).map(|_| rng.normal()).collect();
        let keys: Vec<f32> = (0..visible * hd).map(|_| rng.normal()).collect();
        let values: Vec<f32> = (0..visible * hd).map(|_| rng.normal()).collect();
        let want = naive(&q, &keys, &values, visible, hd);
        for order in [DotOrder::Lanes8, DotOrder::Gemv, DotOrder::Chain] {
            let mut out = vec![0f32; hd];
            attend(
                &q,
                &keys,
                &values,
                visible,
                visible + 3,
                order,
                0.125,
                &mut scores,
                &mut out,
            );
            for (o, w) in out.iter().zip(&want) {
                assert!(
                    (f64::from(*o) - w).abs() < 1e-4,
                    "{order:?} visible {visible}: {o} vs {w}"
                );
            }
        }
    }
}

#[test]
fn vec_sum_adds_everything() {
    for n in [0usize, 1, 31, 32, 33, 64, 100] {
        let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
        assert_eq!(vec_sum(&x), (n * n.saturating_sub(1) / 2) as f32);
    }
}

/// candle's attention for a chunk of `t` tokens at `start`, GQA by `repeat_kv`:
/// returns `(1, heads, t, hd)` flattened.
fn candle_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    t: usize,
    start: usize,
    group: usize,
) -> Vec<f32> {
    let dev = Device::Cpu;
    let (b, kvh, l, hd) = k.dims4().unwrap();
    let rep = |x: &Tensor| {
        Tensor::cat(&vec![x; group], 2)
            .unwrap()
            .reshape((b, kvh * group, l, hd))
            .unwrap()
    };
    let (k, v) = (rep(k), rep(v));
    let att = (q.matmul(&k.t().unwrap()).unwrap() / (hd as f64).sqrt()).unwrap();
    let att = if t == 1 {
        att
    } else {
        let mask = candle_transformers::utils::build_causal_mask(t, start, &dev).unwrap();
        let mask = mask.broadcast_as(att.shape()).unwrap();
        let ninf = Tensor::new(f32::NEG_INFINITY, &dev)
            .unwrap()
            .broadcast_as(att.shape())
            .unwrap();
        mask.where_cond(&ninf, &att).unwrap()
    };
    let att = candle_nn::ops::softmax_last_dim(&att).unwrap();
    assert_eq!(att.dim(D::Minus1).unwrap(), start + t);
    att.matmul(&v.contiguous().unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn matches_candle_bit_for_bit() {
    let mut rng = Rng::new(12);
    let (heads, kvh, hd) = (9usize, 3usize, 64usize);
    let group = heads / kvh;
    let dev = Device::Cpu;
    let mut scores = Vec::new();
    let mut report = Vec::new();
    let cases = [
        (1usize, 0usize),
        (1, 1),
        (1, 4),
        (1, 100),
        (1, 255),
        (1, 256),
        (1, 300),
        (5, 0),
        (16, 0),
        (17, 0),
        (40, 0),
        (63, 0),
        (7, 14),
        (7, 63),
        (3, 80),
        (2, 120),
        (2, 0),
        (1, 2),
    ];
    for &(t, start) in &cases {
        let l = start + t;
        let qv: Vec<f32> = (0..heads * t * hd).map(|_| rng.normal() * 2.0).collect();
        let kv: Vec<f32> = (0..kvh * l * hd).map(|_| rng.normal() * 2.0).collect();
        let vv: Vec<f32> = (0..kvh * l * hd).map(|_| rng.normal()).collect();
        let q = Tensor::from_vec(qv.clone(), (1, heads, t, hd), &dev).unwrap();
        let k = Tensor::from_vec(kv.clone(), (1, kvh, l, hd), &dev).unwrap();
        let v = Tensor::from_vec(vv.clone(), (1, kvh, l, hd), &dev).unwrap();
        let want = candle_attention(&q, &k, &v, t, start, group);
        let order = DotOrder::for_call(t, l);
        let mut mismatches = 0;
        for h in 0..heads {
            let g = h / group;
            let keys = &kv[g * l * hd..(g + 1) * l * hd];
            let values = &vv[g * l * hd..(g + 1) * l * hd];
            for i in 0..t {
                let qrow = &qv[(h * t + i) * hd..(h * t + i + 1) * hd];
                let mut out = vec![0f32; hd];
                attend(
                    qrow,
                    keys,
                    values,
                    start + i + 1,
                    l,
                    order,
                    0.125,
                    &mut scores,
                    &mut out,
                );
                let w = &want[(h * t + i) * hd..(h * t + i + 1) * hd];
                mismatches += out
                    .iter()
                    .zip(w)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
            }
        }
        if mismatches > 0 {
            report.push(format!(
                "t={t} start={start} order={order:?}: {mismatches} values differ"
            ));
        }
    }
    assert!(report.is_empty(), "{report:#?}");
}
