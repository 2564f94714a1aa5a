//! [`Q8Weights`]: a Q8_0 weight matrix, stored in the layout its activation mode computes fastest
//! with. Both layouts keep Q8_0's 34 bytes per 32 weights (an f16 scale and 32 signed bytes); they
//! only interleave rows so that the kernel streams one contiguous region and finds the scales of
//! several rows in one load.
//!
//! - Q8_0-mode matrices (candle's generic path) need, per block, the eight 4-value lane sums of
//!   every (activation, weight) pair; they are stored as tiles of 4 rows: per tile and block,
//!   the 4 f16 scales (8 bytes) then the 4 rows' 32 quants (128 bytes). A trailing partial tile
//!   is padded with zero rows.
//! - Q8K-mode matrices (candle's repacked path) need one integer sum per block; they are stored
//!   as tiles of 8 rows so one `vpdpbusd` with 4 broadcast activations produces those sums for 8
//!   rows at once: per tile and block, the 8 f16 scales (16 bytes), then for each 4-value group
//!   the 8 rows' 4 bytes, offset to unsigned (`w + 128`, 256 bytes).
//!
//! Concurrency: immutable after construction; shared by every kernel call.

use super::quantize::{ActMode, Q8_0_BYTES, QK8_0};
use half::f16;

/// Bytes of one 4-row tile block: 4 scales then 4 rows of 32 quants.
pub(crate) const ROWS4_BLOCK_BYTES: usize = 4 * Q8_0_BYTES;
/// Bytes of one 8-row tile block: 8 scales then 8 groups x 8 rows x 4 bytes.
pub(crate) const TILE_BLOCK_BYTES: usize = 8 * Q8_0_BYTES;

/// The byte layout of a [`Q8Weights`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// 4-row tiles (Q8_0 mode), see the module docs.
    Rows4,
    /// 8-row tiles (Q8K mode), see the module docs.
    Tiles8,
}

/// A weight matrix of `n` rows (outputs) by `k` columns (inputs), Q8_0-quantized.
#[derive(Clone)]
pub struct Q8Weights {
    /// Output rows.
    pub(crate) n: usize,
    /// Inputs per row (a multiple of 32).
    pub(crate) k: usize,
    /// How activations must be quantized for this matrix (candle's choice for its shape).
    pub(crate) mode: ActMode,
    /// How `data` is laid out (follows `mode`).
    pub(crate) layout: Layout,
    /// The blocks in `layout` (`n` rounded up to whole tiles, 34 bytes per block).
    pub(crate) data: Vec<u8>,
}

impl std::fmt::Debug for Q8Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Q8Weights({} x {}, {:?})", self.n, self.k, self.mode)
    }
}

impl Q8Weights {
    /// Takes raw GGUF Q8_0 blocks (`n` rows of `k / 32` blocks), with the activation mode candle
    /// uses for this shape ([`ActMode::candle_for`]); `None` if `k` is not a multiple of 32 or
    /// the length is not `n * k / 32 * 34`.
    pub fn from_raw(n: usize, k: usize, data: Vec<u8>) -> Option<Self> {
        Self::with_mode(n, k, data, ActMode::candle_for(n, k))
    }

    /// Takes raw GGUF blocks for activations quantized in `mode`; `None` on a size mismatch,
    /// when `k` is not a multiple of the mode's block length, or for Q8K with `n % 8 != 0`.
    pub fn with_mode(n: usize, k: usize, data: Vec<u8>, mode: ActMode) -> Option<Self> {
        let kb = k / QK8_0;
        let ok = k.is_multiple_of(mode.block_len()) && data.len() == n * kb * Q8_0_BYTES;
        let (layout, data) = match mode {
            _ if !ok => return None,
            ActMode::Q8_0 => (Layout::Rows4, pack_rows4(&data, n, kb)),
            ActMode::Q8K if n.is_multiple_of(8) => (Layout::Tiles8, pack_tiles8(&data, n, kb)),
            ActMode::Q8K => return None,
        };
        Some(Self {
            n,
            k,
            mode,
            layout,
            data,
        })
    }

    /// Stacks matrices with the same `k` and mode into one (their rows one after the other):
    /// one pass of the kernel then computes all of them (q/k/v, gate/up).
    pub fn concat(parts: &[&Q8Weights]) -> Option<Self> {
        let first = parts.first()?;
        if parts.iter().any(|p| p.k != first.k || p.mode != first.mode) {
            return None;
        }
        let raw: Vec<u8> = parts.iter().flat_map(|p| p.raw_rows()).collect();
        Self::with_mode(parts.iter().map(|p| p.n).sum(), first.k, raw, first.mode)
    }

    /// The matrix in GGUF's row layout.
    pub fn raw_rows(&self) -> Vec<u8> {
        let kb = self.k / QK8_0;
        let mut out = Vec::with_capacity(self.n * kb * Q8_0_BYTES);
        for r in 0..self.n {
            for b in 0..kb {
                let (d, q) = self.block_bits(r, b);
                out.extend_from_slice(&d.to_le_bytes());
                out.extend(q.iter().map(|&v| v as u8));
            }
        }
        out
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Inputs per row.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// The activation mode [`super::matmul`] expects.
    pub fn mode(&self) -> ActMode {
        self.mode
    }

    /// Block `b` of row `r`: its scale (as f32) and 32 quantized values.
    pub fn block(&self, r: usize, b: usize) -> (f32, [i8; QK8_0]) {
        let (d, q) = self.block_bits(r, b);
        (f16::from_bits(d).to_f32(), q)
    }

    /// Block `b` of row `r` with its scale as f16 bits.
    fn block_bits(&self, r: usize, b: usize) -> (u16, [i8; QK8_0]) {
        let kb = self.k / QK8_0;
        match self.layout {
            Layout::Rows4 => {
                let (t, rr) = (r / 4, r % 4);
                let tb = &self.data[(t * kb + b) * ROWS4_BLOCK_BYTES..][..ROWS4_BLOCK_BYTES];
                let d = u16::from_le_bytes([tb[2 * rr], tb[2 * rr + 1]]);
                (d, std::array::from_fn(|j| tb[8 + 32 * rr + j] as i8))
            }
            Layout::Tiles8 => {
                let (t, rr) = (r / 8, r % 8);
                let tb = &self.data[(t * kb + b) * TILE_BLOCK_BYTES..][..TILE_BLOCK_BYTES];
                let d = u16::from_le_bytes([tb[2 * rr], tb[2 * rr + 1]]);
                let q =
                    std::array::from_fn(|j| (tb[16 + ((j / 4) * 8 + rr) * 4 + j % 4] ^ 0x80) as i8);
                (d, q)
            }
        }
    }

    /// Row `r` dequantized into `out` (`k` values): `q * d`, as candle's `to_float`.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        for (b, o) in out.chunks_exact_mut(QK8_0).enumerate() {
            let (d, q) = self.block(r, b);
            for (o, q) in o.iter_mut().zip(q) {
                *o = f32::from(q) * d;
            }
        }
    }
}

/// GGUF rows to 4-row tiles (see the module docs), zero rows padding the last tile.
fn pack_rows4(raw: &[u8], n: usize, kb: usize) -> Vec<u8> {
    let mut out = vec![0u8; n.div_ceil(4) * kb * ROWS4_BLOCK_BYTES];
    for r in 0..n {
        let (t, rr) = (r / 4, r % 4);
        for b in 0..kb {
            let blk = &raw[(r * kb + b) * Q8_0_BYTES..][..Q8_0_BYTES];
            let tb = &mut out[(t * kb + b) * ROWS4_BLOCK_BYTES..][..ROWS4_BLOCK_BYTES];
            tb[2 * rr..2 * rr + 2].copy_from_slice(&blk[..2]);
            tb[8 + 32 * rr..8 + 32 * (rr + 1)].copy_from_slice(&blk[2..]);
        }
    }
    out
}

/// GGUF rows to 8-row tiles (see the module docs).
fn pack_tiles8(raw: &[u8], n: usize, kb: usize) -> Vec<u8> {
    let mut out = vec![0u8; raw.len()];
    for t in 0..n / 8 {
        for b in 0..kb {
            let tb = &mut out[(t * kb + b) * TILE_BLOCK_BYTES..(t * kb + b + 1) * TILE_BLOCK_BYTES];
            for r in 0..8 {
                let blk = &raw[((8 * t + r) * kb + b) * Q8_0_BYTES..][..Q8_0_BYTES];
                tb[2 * r..2 * r + 2].copy_from_slice(&blk[..2]);
                for g in 0..8 {
                    for j in 0..4 {
                        tb[16 + (g * 8 + r) * 4 + j] = blk[2 + 4 * g + j] ^ 0x80;
                    }
                }
            }
        }
    }
    out
}
