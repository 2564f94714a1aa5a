//! x86_64 SIMD kernels: Q8_0 weights times quantized activations, many activation rows per
//! weight load.
//!
//! Two instruction sets, chosen at run time by the caller ([`Isa`]):
//! - AVX512-VNNI (256-bit `vpdpbusd`, 32 registers with AVX512VL);
//! - AVX2: ggml's sign trick, `maddubs(|w|, sign(a, w))` then `madd` with ones.
//!
//! Two weight layouts (see [`super::matrix`]): 4-row tiles for Q8_0-mode activations (tiles in
//! `x86_rows`), 8-row tiles for Q8K-mode activations (tiles in `x86_tiles`). Both produce
//! candle's exact integer sums and then candle's float operations in candle's order (see
//! [`mod@super::reference`]), so results are bit-identical to the scalar reference and to candle.
//! This file holds the column loops that walk a task's output columns tile by tile and the
//! shared load helpers.
//!
//! Concurrency: pure functions; each call writes only the output slices it is given.

use super::matrix::{Layout, ROWS4_BLOCK_BYTES, TILE_BLOCK_BYTES};
use super::quantize::{QuantizedActs, QK8_0};
use super::Q8Weights;
use std::arch::x86_64::*;

#[path = "x86_rows.rs"]
mod rows;
#[path = "x86_tiles.rs"]
mod tiles;

/// Weight rows that stay hot in L2 while every activation tile passes over them.
const N_SUB: usize = 64;
/// Activation rows per L1-resident tile.
const M_TILE: usize = 16;

/// Which instruction set a tile uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Isa {
    /// AVX512-VNNI + AVX512VL/BW + AVX2/FMA/F16C.
    Vnni,
    /// AVX2 + FMA + F16C.
    Avx2,
}

/// One activation row as a tile sees it: quantized values, scales, 32-value block sums, and
/// the values offset to unsigned.
pub(crate) type ActRow<'a> = (&'a [i8], &'a [f32], &'a [i32], &'a [u8]);

/// Output columns `cols` (weight rows) for every activation row, into `out_rows[i]` (the slice of
/// row `i` covering `cols`).
///
/// # Safety
/// The CPU must support `isa`'s features (checked by the caller with `is_x86_feature_detected!`).
pub(crate) unsafe fn matmul_cols(
    isa: Isa,
    w: &Q8Weights,
    acts: &QuantizedActs,
    cols: std::ops::Range<usize>,
    out_rows: &mut [&mut [f32]],
) {
    assert_eq!(acts.k, w.k);
    assert!(cols.end <= w.n && out_rows.len() == acts.m);
    assert!(out_rows.iter().all(|r| r.len() == cols.len()));
    match (w.layout, isa) {
        // SAFETY: the caller guarantees the CPU features of `isa` (AVX512-VNNI here).
        (Layout::Rows4, Isa::Vnni) => unsafe { rows_cols_vnni(w, acts, cols, out_rows) },
        // SAFETY: the caller guarantees the CPU features of `isa` (AVX2 here).
        (Layout::Rows4, Isa::Avx2) => unsafe { rows_cols_avx2(w, acts, cols, out_rows) },
        // SAFETY: the caller guarantees the CPU features of `isa` (AVX512-VNNI here).
        (Layout::Tiles8, Isa::Vnni) => unsafe { tiles_cols_vnni(w, acts, cols, out_rows) },
        // SAFETY: the caller guarantees the CPU features of `isa` (AVX2 here).
        (Layout::Tiles8, Isa::Avx2) => unsafe { tiles_cols_avx2(w, acts, cols, out_rows) },
    }
}

/// Every activation row of `acts`, sliced once per task.
fn all_rows(acts: &QuantizedActs) -> Vec<ActRow<'_>> {
    (0..acts.m)
        .map(|i| {
            (
                acts.row_qs(i),
                acts.row_scales(i),
                acts.row_bsums(i),
                acts.row_qu(i),
            )
        })
        .collect()
}

/// The activation rows `i..i+MR`.
#[inline(always)]
fn act_rows<'a, const MR: usize>(rows: &[ActRow<'a>], i: usize) -> [ActRow<'a>; MR] {
    std::array::from_fn(|d| rows[i + d])
}

/// Copies the first `ncols` results of a tile for activation rows `i..` into the output rows
/// at column `c` (relative to the task's first column).
#[inline(always)]
fn put<const MR: usize, const NR: usize>(
    res: &[[f32; NR]; MR],
    out: &mut [&mut [f32]],
    i: usize,
    c: usize,
    ncols: usize,
) {
    for (d, r) in res.iter().enumerate() {
        out[i + d][c..c + ncols].copy_from_slice(&r[..ncols]);
    }
}

/// Runs `$tile::<MR>` for the `mr` (1..=4) activation rows at `$i`; the tile reads the
/// activations from `$acts` and writes its results into `$out` at column `$c`.
macro_rules! run_tile {
    ($tile:ident, $mr:expr, $acts:expr, $i:expr, $out:expr, $c:expr, ($($arg:expr),*)) => {
        match $mr {
            4 => $tile::<4>($($arg,)* $acts, $i, $out, $c),
            3 => $tile::<3>($($arg,)* $acts, $i, $out, $c),
            2 => $tile::<2>($($arg,)* $acts, $i, $out, $c),
            _ => $tile::<1>($($arg,)* $acts, $i, $out, $c),
        }
    };
}

/// Generates the column loop over 4-row tiles (Q8_0 mode): sub-ranges of `N_SUB` weight rows,
/// tiles of `M_TILE` activation rows, then each weight tile against those rows.
macro_rules! rows_cols_fn {
    ($name:ident, $features:literal, $entry:ident) => {
        #[target_feature(enable = $features)]
        fn $name(
            w: &Q8Weights,
            acts: &QuantizedActs,
            cols: std::ops::Range<usize>,
            out: &mut [&mut [f32]],
        ) {
            let (m, kb) = (acts.m, acts.k / QK8_0);
            assert!(cols.start.is_multiple_of(4));
            let tb = kb * ROWS4_BLOCK_BYTES;
            let rows = all_rows(acts);
            let c0 = cols.start;
            let mut ns = cols.start;
            while ns < cols.end {
                let ne = cols.end.min(ns + N_SUB);
                let mut mt = 0;
                while mt < m {
                    let me = m.min(mt + M_TILE);
                    for c in (ns..ne).step_by(4) {
                        let tile = &w.data[c / 4 * tb..(c / 4 + 1) * tb];
                        $entry(tile, kb, &rows, mt..me, out, c - c0, (ne - c).min(4));
                    }
                    mt = me;
                }
                ns = ne;
            }
        }
    };
}

/// Generates the column loop over 8-row tiles (Q8K mode).
macro_rules! tiles_cols_fn {
    ($name:ident, $features:literal, $tile:ident) => {
        #[target_feature(enable = $features)]
        fn $name(
            w: &Q8Weights,
            acts: &QuantizedActs,
            cols: std::ops::Range<usize>,
            out: &mut [&mut [f32]],
        ) {
            let (m, kb) = (acts.m, acts.k / QK8_0);
            assert!(cols.start.is_multiple_of(8) && cols.end.is_multiple_of(8));
            let tb = kb * TILE_BLOCK_BYTES;
            let rows = all_rows(acts);
            let c0 = cols.start;
            let mut ns = cols.start;
            while ns < cols.end {
                let ne = cols.end.min(ns + N_SUB);
                let mut mt = 0;
                while mt < m {
                    let me = m.min(mt + M_TILE);
                    for c in (ns..ne).step_by(8) {
                        let tile = &w.data[c / 8 * tb..(c / 8 + 1) * tb];
                        let mut i = mt;
                        while i < me {
                            let mr = (me - i).min(4);
                            run_tile!($tile, mr, &rows, i, out, c - c0, (tile, kb));
                            i += mr;
                        }
                    }
                    mt = me;
                }
                ns = ne;
            }
        }
    };
}

use rows::{rows_entry_avx2, rows_entry_vnni};
use tiles::{tiles_avx2, tiles_vnni};

rows_cols_fn!(
    rows_cols_vnni,
    "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni",
    rows_entry_vnni
);
rows_cols_fn!(rows_cols_avx2, "avx2,fma,f16c", rows_entry_avx2);
tiles_cols_fn!(
    tiles_cols_vnni,
    "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni",
    tiles_vnni
);
tiles_cols_fn!(tiles_cols_avx2, "avx2,fma,f16c", tiles_avx2);

/// Loads 32 bytes at `off` of `s` (tests).
#[cfg(test)]
#[inline(always)]
fn load32<T>(s: &[T], off: usize) -> __m256i {
    assert!(
        (off + 32) * std::mem::size_of::<T>() <= std::mem::size_of_val(s)
            && std::mem::size_of::<T>() == 1
    );
    // SAFETY: `T` is one byte wide and `off + 32 <= s.len()` was just checked, so the 32-byte
    // unaligned read stays inside `s`; AVX is implied by every caller's target features.
    unsafe { _mm256_loadu_si256(s.as_ptr().add(off) as *const __m256i) }
}

/// candle's `hsum_float_8`, instruction for instruction.
#[target_feature(enable = "avx2,fma")]
fn hsum_float_8(x: __m256) -> f32 {
    let res = _mm256_extractf128_ps::<1>(x);
    let res = _mm_add_ps(res, _mm256_castps256_ps128(x));
    let res = _mm_add_ps(res, _mm_movehl_ps(res, res));
    let res = _mm_add_ss(res, _mm_movehdup_ps(res));
    _mm_cvtss_f32(res)
}

/// Lane sums of one block pair (weight block bytes, 32 activations) as the Q8_0-mode tiles
/// compute them before any float: exposed for the tests.
#[cfg(test)]
pub(crate) fn lane_sums(isa: Isa, wblk: &[u8], a: &[i8]) -> [i32; 8] {
    rows::lane_sums(isa, wblk, a)
}

/// Block sums of one 8-row tile block against 32 activations as the Q8K tiles compute them:
/// exposed for the tests.
#[cfg(test)]
pub(crate) fn tile_sums(isa: Isa, tile_block: &[u8], a: &[i8]) -> [i32; 8] {
    tiles::tile_sums(isa, tile_block, a)
}
