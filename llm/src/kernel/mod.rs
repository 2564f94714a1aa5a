//! The Q8_0 matrix-times-matrix CPU kernel: `out[m x n] = acts[m x k] * W[n x k]^T` with `W`
//! Q8_0-quantized (34-byte blocks of an f16 scale and 32 signed bytes) and the activations
//! quantized to 8 bits, so that a batch of `m` token rows costs far less than `m` passes: each
//! weight block is loaded once and applied to every activation row while it sits in registers.
//!
//! Owns: [`Q8Weights`] (a weight matrix, its rows interleaved into small tiles at load time so
//! the kernel streams one contiguous region), activation quantization ([`QuantizedActs`],
//! bit-identical to candle's), [`matmul`], which splits the output columns into chunks and runs
//! them on the *current* rayon pool (the caller's `ThreadPool::install` decides which threads do
//! the work), and the f32 dot products of attention ([`dot`]).
//!
//! Results equal candle 0.11.1's `QMatMul::forward` on the same CPU bit for bit (the activation
//! mode follows candle's own dispatch, see [`ActMode::candle_for`]); the tests check that against
//! candle and the SIMD paths against the scalar [`mod@reference`].
//!
//! This is the only module of the crate allowed `unsafe`: SIMD intrinsics (in `x86*` and `dot`)
//! and the disjoint column writes of [`matmul`]. Every unsafe block has a `// SAFETY:` comment
//! and is covered by a test against the safe reference.
//!
//! Concurrency: [`matmul`] borrows the weights and activations shared and the output exclusively;
//! its tasks write disjoint column ranges of the output.
#![allow(unsafe_code)]

pub mod dot;
mod matrix;
pub mod quantize;
pub mod reference;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use matrix::Q8Weights;
pub use quantize::{ActMode, QuantizedActs, Q8_0_BYTES, QK8_0, QK_K};
use rayon::prelude::*;

/// The instruction set the kernel runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// AVX512-VNNI (`vpdpbusd` on 256-bit vectors).
    Vnni,
    /// AVX2 + FMA (`vpmaddubsw`/`vpmaddwd`).
    Avx2,
    /// Portable scalar code.
    Scalar,
}

impl Level {
    /// The best level this CPU supports (detected once). `TURNSTILE_KERNEL=scalar|avx2|vnni`
    /// lowers it (never above what the CPU has).
    pub fn detect() -> Level {
        use std::sync::OnceLock;
        static LEVEL: OnceLock<Level> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            let best = Self::available()
                .into_iter()
                .next()
                .unwrap_or(Level::Scalar);
            match std::env::var("TURNSTILE_KERNEL").as_deref() {
                Ok("scalar") => Level::Scalar,
                Ok("avx2") if best != Level::Scalar => Level::Avx2,
                _ => best,
            }
        })
    }

    /// Every level this CPU can run, best first.
    pub fn available() -> Vec<Level> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma") && has!("f16c");
            if avx2 && has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512vnni")
            {
                v.push(Level::Vnni);
            }
            if avx2 {
                v.push(Level::Avx2);
            }
        }
        v.push(Level::Scalar);
        v
    }
}

/// `out = acts * w^T`: `out` is `acts.rows() x w.rows()`, row-major. Runs on the current rayon
/// pool at the detected [`Level`].
///
/// # Panics
/// If `acts.cols() != w.cols()`, `acts.mode() != w.mode()` or
/// `out.len() != acts.rows() * w.rows()`.
pub fn matmul(w: &Q8Weights, acts: &QuantizedActs, out: &mut [f32]) {
    matmul_with(Level::detect(), w, acts, out)
}

/// [`matmul`] at a given level (tests and benchmarks compare them).
///
/// # Panics
/// As [`matmul`], and if `level` is not in [`Level::available`].
pub fn matmul_with(level: Level, w: &Q8Weights, acts: &QuantizedActs, out: &mut [f32]) {
    assert_eq!(out.len(), acts.m * w.n, "output size");
    matmul_into_with(level, w, acts, out, w.n, 0)
}

/// [`matmul`] into columns `col0..col0 + w.rows()` of an output whose rows are `ldo` apart
/// (several projections of the same activations written side by side).
///
/// # Panics
/// If the shapes disagree or the output is too small.
pub fn matmul_into(w: &Q8Weights, acts: &QuantizedActs, out: &mut [f32], ldo: usize, col0: usize) {
    matmul_into_with(Level::detect(), w, acts, out, ldo, col0)
}

/// [`matmul_into`] at a given level.
fn matmul_into_with(
    level: Level,
    w: &Q8Weights,
    acts: &QuantizedActs,
    out: &mut [f32],
    ldo: usize,
    col0: usize,
) {
    assert_eq!(acts.k, w.k, "activation width vs weight columns");
    assert_eq!(acts.mode, w.mode, "activations quantized in another mode");
    let (m, n) = (acts.m, w.n);
    assert!(
        col0 + n <= ldo,
        "columns {col0}+{n} exceed the row stride {ldo}"
    );
    assert!(
        m == 0 || out.len() >= (m - 1) * ldo + col0 + n,
        "output size"
    );
    assert!(
        Level::available().contains(&level),
        "{level:?} not supported here"
    );
    if m == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let chunk = column_chunk(n, m, w.k, threads);
    let n_chunks = n.div_ceil(chunk);
    let out_ptr = OutPtr(out.as_mut_ptr());
    let run = |c: usize| {
        let cols = c * chunk..n.min((c + 1) * chunk);
        // SAFETY: row `i`'s columns `col0 + cols` lie at `i * ldo + col0 + cols`, inside `out`
        // (asserted above: `col0 + n <= ldo` and `out.len() >= (m - 1) * ldo + col0 + n`), which
        // stays exclusively borrowed for this whole call. Chunk `c` owns columns `cols` of every
        // row and chunks are disjoint, so these slices never overlap another task's, and rows
        // never overlap each other because `col0 + n <= ldo`.
        let mut rows: Vec<&mut [f32]> = (0..m)
            .map(|i| unsafe {
                std::slice::from_raw_parts_mut(out_ptr.at(i * ldo + col0 + cols.start), cols.len())
            })
            .collect();
        run_cols(level, w, acts, cols, &mut rows);
    };
    if n_chunks == 1 || threads == 1 {
        (0..n_chunks).for_each(run);
    } else {
        (0..n_chunks).into_par_iter().for_each(run);
    }
}

/// A raw output pointer shared by the column tasks.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the tasks that share it write disjoint elements (see `matmul_with`).
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer `i` elements in (the caller keeps `i` in bounds).
    fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

/// Columns per task: about four tasks per thread, a multiple of 16 (whole register tiles and
/// 8-row weight tiles); one task when the work (`n * m * k` multiply-adds) is too small to be
/// worth a hand-off between threads (a few microseconds).
fn column_chunk(n: usize, m: usize, k: usize, threads: usize) -> usize {
    if threads <= 1 || n * m * k < 1 << 16 {
        return n;
    }
    n.div_ceil(threads * 4).next_multiple_of(16).max(16)
}

/// One task's columns at `level`.
fn run_cols(
    level: Level,
    w: &Q8Weights,
    acts: &QuantizedActs,
    cols: std::ops::Range<usize>,
    rows: &mut [&mut [f32]],
) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `matmul_into_with` asserted `level` is in `Level::available()`, which checked
        // the CPU features with `is_x86_feature_detected!`.
        Level::Vnni => unsafe { x86::matmul_cols(x86::Isa::Vnni, w, acts, cols, rows) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { x86::matmul_cols(x86::Isa::Avx2, w, acts, cols, rows) },
        _ => reference::matmul_cols(w, acts, cols, rows),
    }
}
