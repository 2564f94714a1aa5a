//! Q8_0-mode register tiles over 4-row weight tiles: `MR` activation rows x the tile's 4 weight
//! rows, full `k`.
//!
//! Per 32-value block, each (activation, weight) pair yields eight exact 4-product lane sums
//! (`vpdpbusd` on VNNI, `maddubs`+`madd` on AVX2) that go, as f32, into their own FMA lane with
//! the block scale `wd * ad`, exactly as candle's `vec_dot_q8_0_q8_0`; lanes are summed at the
//! end with candle's `hsum_float_8`. Per block, the tile's 4 weight scales come in one load, and
//! the scale products take one 4-wide multiply per activation row; the FMAs read them back as
//! broadcast memory operands.
//!
//! VNNI: activations come offset to unsigned (`a + 128`, made once by the quantizer) and the
//! offset is removed by starting each lane at `-128 * sum(w)`, computed once per weight block
//! and shared by every activation row; the lanes are converted to f32 by the exact
//! `1.5 * 2^23` trick (folded into that start value) instead of `cvtdq2ps`.
//!
//! Concurrency: pure functions.

use super::{act_rows, hsum_float_8, put, ActRow, ROWS4_BLOCK_BYTES};
#[cfg(test)]
use super::{load32, Isa};
use crate::kernel::quantize::QK8_0;
use std::arch::x86_64::*;

/// Generates the register tile for one instruction set: `$prep_w(wq)` is computed once per
/// weight block, `$prep_a(a)` once per activation block, `$lanes(wq, a, prep)` gives a pair's
/// eight lane sums and `$to_f32` turns them into floats.
macro_rules! rows_tile {
    ($name:ident, $features:literal, $src:tt, $prep_w:ident, $prep_a:ident, $lanes:ident, $to_f32:ident) => {
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        fn $name<const MR: usize>(
            tile: &[u8],
            kb: usize,
            a: [ActRow<'_>; MR],
            out: &mut [&mut [f32]],
            i0: usize,
            c: usize,
            ncols: usize,
        ) {
            assert!(tile.len() == kb * ROWS4_BLOCK_BYTES && MR <= 4);
            assert!(a
                .iter()
                .all(|r| r.$src.len() == kb * QK8_0 && r.1.len() == kb));
            let tp = tile.as_ptr();
            let ap: [*const u8; MR] = std::array::from_fn(|i| a[i].$src.as_ptr() as *const u8);
            let adp: [*const f32; MR] = std::array::from_fn(|i| a[i].1.as_ptr());
            let mut acc = [[_mm256_setzero_ps(); 4]; MR];
            // Scale products `wd(j) * ad(i)` at `dd[b % 2][4 * i + j]`, computed one block ahead
            // so the FMAs read them (as broadcast operands) long after they were stored.
            let mut dd = [[0f32; 16]; 2];
            let products = |b: usize, dst: &mut [f32; 16]| {
                // SAFETY: `b < kb`: the block's 8 scale bytes at `b * 136` are inside `tile`
                // and `b` indexes every activation scale row (asserted); `dst` holds 4 rows of 4.
                unsafe {
                    let wdv = _mm_cvtph_ps(_mm_loadl_epi64(
                        tp.add(b * ROWS4_BLOCK_BYTES) as *const __m128i
                    ));
                    for (i, p) in adp.iter().enumerate() {
                        _mm_storeu_ps(
                            dst.as_mut_ptr().add(4 * i),
                            _mm_mul_ps(wdv, _mm_set1_ps(*p.add(b))),
                        );
                    }
                }
            };
            if kb > 0 {
                products(0, &mut dd[0]);
            }
            for b in 0..kb {
                let base = b * ROWS4_BLOCK_BYTES;
                // SAFETY: the block's quants `base + 8..base + 136` are inside `tile` (b < kb and
                // `tile.len() == kb * 136`, asserted): 4 rows of 32 at `base + 8 + 32 * j`.
                let wq: [__m256i; 4] = std::array::from_fn(|j| unsafe {
                    _mm256_loadu_si256(tp.add(base + 8 + 32 * j) as *const __m256i)
                });
                let wp: [__m256i; 4] = std::array::from_fn(|j| $prep_w(wq[j]));
                if b + 1 < kb {
                    products(b + 1, &mut dd[(b + 1) % 2]);
                }
                // Keep the products in memory (otherwise they are shuffled out of registers).
                std::hint::black_box(&mut dd);
                let d = &dd[b % 2];
                for i in 0..MR {
                    // SAFETY: activation rows hold `kb * 32` values (asserted above).
                    let av = $prep_a(unsafe {
                        _mm256_loadu_si256(ap[i].add(b * QK8_0) as *const __m256i)
                    });
                    for j in 0..4 {
                        let lanes = $to_f32($lanes(wq[j], av, wp[j]));
                        let dv = _mm256_set1_ps(d[4 * i + j]);
                        acc[i][j] = _mm256_fmadd_ps(dv, lanes, acc[i][j]);
                    }
                }
            }
            let res: [[f32; 4]; MR] =
                std::array::from_fn(|i| std::array::from_fn(|j| hsum_float_8(acc[i][j])));
            put(&res, out, i0, c, ncols);
        }
    };
}

/// Float bits of 1.5 * 2^23: `as_f32(MAGIC + v) - 1.5 * 2^23 == v` exactly for |v| < 2^22,
/// which turns integer lanes into floats with an integer add folded into the start value and
/// one float subtract.
const MAGIC: i32 = 0x4B40_0000;
/// 1.5 * 2^23.
const MAGIC_F: f32 = 12_582_912.0;

/// VNNI: `MAGIC - 128 * (sum of each 4 weights)`, the start value that cancels the activation
/// offset (and prepares the float conversion).
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
fn vnni_neg(wq: __m256i) -> __m256i {
    let zero = _mm256_setzero_si256();
    _mm256_sub_epi32(
        _mm256_set1_epi32(MAGIC),
        _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(-128), wq),
    )
}

/// VNNI: lanes (offset by `MAGIC`) to floats.
#[target_feature(enable = "avx2")]
fn vnni_f32(s: __m256i) -> __m256 {
    _mm256_sub_ps(_mm256_castsi256_ps(s), _mm256_set1_ps(MAGIC_F))
}

/// AVX2: lanes to floats.
#[target_feature(enable = "avx2")]
fn avx2_f32(s: __m256i) -> __m256 {
    _mm256_cvtepi32_ps(s)
}

/// Activations as loaded (VNNI reads the pre-offset `q + 128` copy, AVX2 the signed one).
#[target_feature(enable = "avx2")]
fn same(a: __m256i) -> __m256i {
    a
}

/// VNNI lane sums: `neg + sum((a + 128) * w)` = `MAGIC + sum(a * w)` per 4 values.
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
fn vnni_lanes(wq: __m256i, au: __m256i, neg: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(neg, au, wq)
}

/// AVX2: `|w|` (as unsigned bytes; -128 becomes 128).
#[target_feature(enable = "avx2")]
fn avx2_abs(wq: __m256i) -> __m256i {
    _mm256_sign_epi8(wq, wq)
}

/// AVX2 lane sums: `madd(maddubs(|w|, sign(a, w)), 1)`, candle's `mul_sum_i8_pairs_float`.
#[target_feature(enable = "avx2")]
fn avx2_lanes(wq: __m256i, a: __m256i, wabs: __m256i) -> __m256i {
    let sy = _mm256_sign_epi8(a, wq);
    _mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(wabs, sy))
}

rows_tile!(
    rows_vnni,
    "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni",
    3,
    vnni_neg,
    same,
    vnni_lanes,
    vnni_f32
);
rows_tile!(
    rows_avx2,
    "avx2,fma,f16c",
    0,
    avx2_abs,
    same,
    avx2_lanes,
    avx2_f32
);

/// Generates the entry point for one 4-row weight tile: the activation rows `rows` in register
/// tiles of up to 4; the first `ncols` (<= 4) outputs are stored at column `c`.
macro_rules! rows_entry {
    ($name:ident, $features:literal, $tile:ident) => {
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        pub(super) fn $name(
            tile: &[u8],
            kb: usize,
            acts: &[ActRow<'_>],
            rows: std::ops::Range<usize>,
            out: &mut [&mut [f32]],
            c: usize,
            ncols: usize,
        ) {
            let mut i = rows.start;
            while i < rows.end {
                let mr = (rows.end - i).min(4);
                match mr {
                    4 => $tile::<4>(tile, kb, act_rows::<4>(acts, i), out, i, c, ncols),
                    3 => $tile::<3>(tile, kb, act_rows::<3>(acts, i), out, i, c, ncols),
                    2 => $tile::<2>(tile, kb, act_rows::<2>(acts, i), out, i, c, ncols),
                    _ => $tile::<1>(tile, kb, act_rows::<1>(acts, i), out, i, c, ncols),
                }
                i += mr;
            }
        }
    };
}

rows_entry!(
    rows_entry_vnni,
    "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni",
    rows_vnni
);
rows_entry!(rows_entry_avx2, "avx2,fma,f16c", rows_avx2);

/// The eight lane sums of one (weight block, 32 activations) pair at `isa` (tests).
#[cfg(test)]
pub(super) fn lane_sums(isa: Isa, wblk: &[u8], a: &[i8]) -> [i32; 8] {
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    fn vnni(wblk: &[u8], a: &[i8]) -> __m256i {
        let wq = load32(wblk, 2);
        let au = _mm256_xor_si256(load32(a, 0), _mm256_set1_epi8(-128));
        let s = vnni_lanes(wq, au, vnni_neg(wq));
        _mm256_sub_epi32(s, _mm256_set1_epi32(MAGIC))
    }
    #[target_feature(enable = "avx2")]
    fn avx2(wblk: &[u8], a: &[i8]) -> __m256i {
        let wq = load32(wblk, 2);
        avx2_lanes(wq, load32(a, 0), avx2_abs(wq))
    }
    // SAFETY: the tests only ask for an `isa` the CPU reported (see `Level::available`).
    let v = unsafe {
        match isa {
            Isa::Vnni => vnni(wblk, a),
            Isa::Avx2 => avx2(wblk, a),
        }
    };
    let mut out = [0i32; 8];
    // SAFETY: `out` is 8 i32 = 32 bytes, the size of the unaligned store.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, v) };
    out
}
