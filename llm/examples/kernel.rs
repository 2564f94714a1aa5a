//! Times our Q8_0 kernel against candle's `QMatMul::forward` on the CPU for the SmolLM2-135M
//! projection shapes at several batch sizes.
//!
//! ```sh
//! cargo run --release -p turnstile-llm --example kernel -- [--threads N] [--batch 1,2,4,8,16]
//! ```
//! Both run with N threads: ours in a rayon pool of N, candle's barrier pool through
//! `CANDLE_NUM_THREADS` (set here before candle starts it). Weights are random Q8_0 blocks; the
//! timings include quantizing the activations (candle's forward does too). Each figure is the
//! best mean over 2 ms rounds within 0.3 s (robust to other processes on the machine).
#![allow(clippy::print_stdout)]

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{Device, Module, Tensor};
use std::time::{Duration, Instant};
use turnstile_llm::kernel::{matmul, Q8Weights, QuantizedActs};

fn main() {
    let mut threads = 1usize;
    let mut batches = vec![1usize, 2, 4, 8, 16];
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--threads N")
            }
            "--batch" => {
                batches = args
                    .next()
                    .expect("--batch LIST")
                    .split(',')
                    .map(|v| v.parse().expect("batch size"))
                    .collect()
            }
            "--only" => only = args.next(),
            other => panic!("unknown argument {other}"),
        }
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    println!(
        "threads {threads}, kernel level {:?}; us per call (ratio to batch 1)",
        turnstile_llm::kernel::Level::detect()
    );
    println!(
        "{:>12} {:>5} {:>12} {:>8} {:>12} {:>8} {:>8}",
        "n x k", "m", "ours us", "ours x", "candle us", "cand x", "speedup"
    );
    let shapes = [
        (576, 576),
        (192, 576),
        (1536, 576),
        (576, 1536),
        (49152, 576),
    ];
    let mut seed = 0x1234_5678_9abc_def1u64;
    for &(n, k) in &shapes {
        if only.as_ref().is_some_and(|o| *o != format!("{n}x{k}")) {
            continue;
        }
        let raw = random_weights(&mut seed, n, k);
        let q = qtensor_from_ggml(GgmlDType::Q8_0, &raw, vec![n, k], &Device::Cpu).expect("q");
        let w = Q8Weights::from_raw(n, k, raw).expect("sizes");
        let qmm = QMatMul::from_qtensor(q).expect("qmatmul");
        let (mut ours1, mut cand1) = (0f64, 0f64);
        for &m in &batches {
            let x: Vec<f32> = (0..m * k).map(|_| uniform(&mut seed) * 2.0 - 1.0).collect();
            let xt = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).expect("x");
            let mode = w.mode();
            let mut acts = QuantizedActs::new();
            let mut out = vec![0f32; m * n];
            let ours = pool.install(|| {
                time(|| {
                    acts.quantize(&x, m, k, mode);
                    matmul(&w, &acts, &mut out);
                })
            });
            let cand = time(|| {
                let y = qmm.forward(&xt).expect("forward");
                std::hint::black_box(y);
            });
            if m == batches[0] {
                (ours1, cand1) = (ours, cand);
            }
            println!(
                "{:>12} {:>5} {:>12.1} {:>8.2} {:>12.1} {:>8.2} {:>8.2}",
                format!("{n}x{k}"),
                m,
                ours,
                ours / ours1,
                cand,
                cand / cand1,
                cand / ours
            );
        }
    }
}

/// Microseconds per call: the best mean over rounds of a few calls each, for at least 0.3 s
/// (the best round is the one least disturbed by other processes).
fn time(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    let mut best = f64::MAX;
    while start.elapsed() < Duration::from_millis(300) {
        let t = Instant::now();
        let mut calls = 0u32;
        while calls < 3 || t.elapsed() < Duration::from_millis(2) {
            f();
            calls += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / f64::from(calls));
    }
    best
}

/// xorshift64* in [0, 1).
fn uniform(s: &mut u64) -> f32 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
}

/// Random raw Q8_0 blocks (scales 0.001..0.05, quantized values -127..127).
fn random_weights(s: &mut u64, n: usize, k: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(n * k / 32 * 34);
    for _ in 0..n * k / 32 {
        let d = half::f16::from_f32(0.001 + uniform(s) * 0.05);
        data.extend_from_slice(&d.to_le_bytes());
        data.extend((0..32).map(|_| ((uniform(s) * 254.0) as i32 - 127) as i8 as u8));
    }
    data
}
