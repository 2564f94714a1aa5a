//! Q8K-mode register tiles over 8-row weight tiles: `MR` activation rows x 8 weight rows.
//!
//! Per 32-value block, eight multiply-adds of the tile's 4-value groups against 4 broadcast
//! activations give the exact block sum of all 8 rows in one vector (lane = row); that sum goes
//! into one FMA per row with scale `wd * ad`, in block order, exactly as candle's repacked
//! `q8_0_tile2`. Weights are stored `w + 128`: VNNI multiplies them (unsigned) with the signed
//! activations and subtracts `128 * sum(a)`; AVX2 flips them back and uses the sign trick.
//!
//! Concurrency: pure functions.

use super::{act_rows, put, ActRow, TILE_BLOCK_BYTES};
#[cfg(test)]
use super::{load32, Isa};
use crate::kernel::quantize::{QK8_0, QK_K};
use std::arch::x86_64::*;

/// The 8 f32 scales of a tile block starting at `off`.
#[target_feature(enable = "avx2,f16c")]
fn scales(tile: &[u8], off: usize) -> __m256 {
    assert!(off + 16 <= tile.len());
    // SAFETY: 16 bytes at `off` are inside `tile` (checked above); unaligned load.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(tile.as_ptr().add(off) as *const __m128i) })
}

/// Four activation bytes at `p` broadcast to every 32-bit lane.
///
/// # Safety
/// `p..p + 4` must be readable.
#[inline(always)]
unsafe fn bcast4p(p: *const i8) -> __m256i {
    // SAFETY: the caller guarantees 4 readable bytes; unaligned read. AVX is implied by every
    // caller's target features.
    unsafe { _mm256_set1_epi32(std::ptr::read_unaligned(p as *const i32)) }
}

/// VNNI: one weight group (8 rows x 4 values, stored `w + 128`) times 4 broadcast activations,
/// added to `s`: `sum((w + 128) * a)` per row; the caller starts `s` at `-128 * sum(a)`.
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
fn group_vnni(s: __m256i, wg: __m256i, _wabs: __m256i, a4: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(s, wg, a4)
}

/// VNNI needs no per-group weight preparation.
#[target_feature(enable = "avx2")]
fn prep_vnni(wg: __m256i) -> (__m256i, __m256i) {
    (wg, wg)
}

/// VNNI start value: cancels the `+128` of the weights.
#[target_feature(enable = "avx2")]
fn init_vnni(bsum: i32) -> __m256i {
    _mm256_set1_epi32(-128 * bsum)
}

/// AVX2: the weights back to signed, and their magnitudes, once per group.
#[target_feature(enable = "avx2")]
fn prep_avx2(wg: __m256i) -> (__m256i, __m256i) {
    let w = _mm256_xor_si256(wg, _mm256_set1_epi8(-128));
    (w, _mm256_sign_epi8(w, w))
}

/// AVX2: the sign trick, `madd(maddubs(|w|, sign(a, w)), 1)`, added to `s`.
#[target_feature(enable = "avx2")]
fn group_avx2(s: __m256i, w: __m256i, wabs: __m256i, a4: __m256i) -> __m256i {
    let p = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(a4, w));
    _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_set1_epi16(1), p))
}

/// AVX2 start value: nothing to cancel.
#[target_feature(enable = "avx2")]
fn init_avx2(_bsum: i32) -> __m256i {
    _mm256_setzero_si256()
}

/// Generates a tile function for one instruction set: per block, each weight group is loaded
/// once and applied to every activation row (four accumulators per row shorten the dependency
/// chain; the sums are integers, so any order is exact).
macro_rules! tile_fn {
    ($name:ident, $features:literal, $prep:ident, $group:ident, $init:ident) => {
        #[target_feature(enable = $features)]
        pub(super) fn $name<const MR: usize>(
            tile: &[u8],
            kb: usize,
            acts: &[ActRow<'_>],
            i0: usize,
            out: &mut [&mut [f32]],
            c: usize,
        ) {
            let a = act_rows::<MR>(acts, i0);
            assert_eq!(tile.len(), kb * TILE_BLOCK_BYTES);
            assert!(a.iter().all(|r| r.0.len() == kb * QK8_0 && r.2.len() == kb));
            let tp = tile.as_ptr();
            let ap: [*const i8; MR] = std::array::from_fn(|i| a[i].0.as_ptr());
            let mut acc = [_mm256_setzero_ps(); MR];
            for b in 0..kb {
                let off = b * TILE_BLOCK_BYTES;
                let wd = scales(tile, off);
                let z = _mm256_setzero_si256();
                let mut s: [[__m256i; 4]; MR] =
                    std::array::from_fn(|i| [$init(a[i].2[b]), z, z, z]);
                for g in 0..8 {
                    // SAFETY: `off + 16 + 32 * g + 32 <= (b + 1) * 272 <= tile.len()` (asserted).
                    let wg =
                        unsafe { _mm256_loadu_si256(tp.add(off + 16 + 32 * g) as *const __m256i) };
                    let (w, wabs) = $prep(wg);
                    for i in 0..MR {
                        // SAFETY: `b * 32 + 4 * g + 4 <= kb * 32`, the row's length (asserted).
                        let a4 = unsafe { bcast4p(ap[i].add(b * QK8_0 + 4 * g)) };
                        s[i][g % 4] = $group(s[i][g % 4], w, wabs, a4);
                    }
                }
                for i in 0..MR {
                    let t = _mm256_add_epi32(
                        _mm256_add_epi32(s[i][0], s[i][1]),
                        _mm256_add_epi32(s[i][2], s[i][3]),
                    );
                    let f = _mm256_cvtepi32_ps(t);
                    let d = _mm256_mul_ps(wd, _mm256_set1_ps(a[i].1[b * QK8_0 / QK_K]));
                    acc[i] = _mm256_fmadd_ps(f, d, acc[i]);
                }
            }
            let mut res = [[0f32; 8]; MR];
            for (o, v) in res.iter_mut().zip(acc) {
                // SAFETY: `o` is 8 f32 = 32 bytes, the size of the unaligned store.
                unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) };
            }
            put(&res, out, i0, c, 8);
        }
    };
}

tile_fn!(
    tiles_vnni,
    "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni",
    prep_vnni,
    group_vnni,
    init_vnni
);
tile_fn!(
    tiles_avx2,
    "avx2,fma,f16c",
    prep_avx2,
    group_avx2,
    init_avx2
);

/// The 8 rows' block sums of one tile block against 32 activations at `isa` (tests).
#[cfg(test)]
pub(super) fn tile_sums(isa: Isa, tile_block: &[u8], a: &[i8]) -> [i32; 8] {
    let bsum: i32 = a.iter().map(|&v| i32::from(v)).sum();
    assert!(tile_block.len() >= TILE_BLOCK_BYTES && a.len() >= QK8_0);
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    fn vnni(t: &[u8], a: &[i8], bsum: i32) -> __m256i {
        let mut s = init_vnni(bsum);
        for g in 0..8 {
            let (w, wabs) = prep_vnni(load32(t, 16 + 32 * g));
            // SAFETY: `4 * g + 4 <= 32 <= a.len()` (asserted by the caller).
            s = group_vnni(s, w, wabs, unsafe { bcast4p(a.as_ptr().add(4 * g)) });
        }
        s
    }
    #[target_feature(enable = "avx2")]
    fn avx2(t: &[u8], a: &[i8], bsum: i32) -> __m256i {
        let mut s = init_avx2(bsum);
        for g in 0..8 {
            let (w, wabs) = prep_avx2(load32(t, 16 + 32 * g));
            // SAFETY: `4 * g + 4 <= 32 <= a.len()` (asserted by the caller).
            s = group_avx2(s, w, wabs, unsafe { bcast4p(a.as_ptr().add(4 * g)) });
        }
        s
    }
    // SAFETY: the tests only ask for an `isa` the CPU reported (see `Level::available`).
    let v = unsafe {
        match isa {
            Isa::Vnni => vnni(tile_block, a, bsum),
            Isa::Avx2 => avx2(tile_block, a, bsum),
        }
    };
    let mut out = [0i32; 8];
    // SAFETY: `out` is 8 i32 = 32 bytes, the size of the unaligned store.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, v) };
    out
}
