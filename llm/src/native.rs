//! The native CPU forward: every token row of every chunk goes through each layer together, the
//! projections through the Q8_0 [`crate::kernel`], attention per (sequence, head) in parallel.
//!
//! Working memory lives in [`Scratch`] buffers kept in a small pool behind a `Mutex`: a forward
//! pops one (or makes one), grows it to the batch's size, and pushes it back, so steady-state
//! decoding allocates almost nothing per step (the returned logits and a few index vectors),
//! and concurrent forwards on one model never wait for each other's buffers.
//!
//! Concurrency: `forward` takes `&self`; the pool lock is held only to pop/push a buffer. The
//! work runs on the caller's current rayon pool. Each chunk's cache is written (K/V rows) only
//! by this forward, through the `&mut` the chunk holds; attention tasks then read the caches
//! shared.

use crate::attention::{attend, DotOrder};
use crate::cache::{HostKv, Store};
use crate::config::Config;
use crate::kernel::QuantizedActs;
use crate::model::Chunk;
use crate::ops::{add_into, rms_norm_rows, swiglu_rows};
use crate::rope::Rope;
use crate::weights::NativeWeights;
use rayon::prelude::*;
use std::sync::Mutex;

/// Reusable buffers of one forward (sizes grow to the largest batch seen).
#[derive(Default)]
pub(crate) struct Scratch {
    /// Residual stream, `T x hidden`.
    x: Vec<f32>,
    /// Normed rows, `T x hidden`.
    xn: Vec<f32>,
    /// q | k | v rows, `T x (hidden + 2 kv_dim)`.
    qkv: Vec<f32>,
    /// Attention output per head, `n_head x T x head_dim` (one contiguous slice per task).
    heads: Vec<f32>,
    /// Attention output per row, `T x hidden` (heads side by side).
    att: Vec<f32>,
    /// A projection's output before it joins the residual, `T x hidden`.
    proj: Vec<f32>,
    /// gate | up rows, `T x 2 ffn`.
    gate_up: Vec<f32>,
    /// `silu(gate) * up`, `T x ffn`.
    hidden_ffn: Vec<f32>,
    /// Quantized activations, by mode (0: Q8_0, 1: Q8K).
    acts: [QuantizedActs; 2],
}

/// Where a chunk's rows sit in the batch.
#[derive(Clone, Copy)]
struct Span {
    /// First row of the chunk in the flattened batch.
    row0: usize,
    /// Tokens in the chunk.
    n: usize,
    /// Position of its first token (the cache length before the step).
    start: usize,
}

/// The native model: weights plus the scratch pool.
pub(crate) struct NativeModel {
    /// Q8_0 weights and f32 norms.
    pub(crate) weights: NativeWeights,
    /// Idle scratch buffers (one per concurrent forward at most).
    pool: Mutex<Vec<Scratch>>,
}

impl NativeModel {
    /// Wraps loaded weights.
    pub(crate) fn new(weights: NativeWeights) -> Self {
        Self {
            weights,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Runs a validated batch (every cache is host storage with room for its chunk) and
    /// returns `rows x vocab` logits for the chunks that want them, in batch order.
    pub(crate) fn forward(&self, cfg: &Config, rope: &Rope, batch: &mut [Chunk<'_>]) -> Vec<f32> {
        let mut s = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        let logits = self.run(cfg, rope, batch, &mut s);
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        logits
    }

    fn run(&self, cfg: &Config, rope: &Rope, batch: &mut [Chunk<'_>], s: &mut Scratch) -> Vec<f32> {
        let w = &self.weights;
        let (hid, kvd, hd, ffn) = (cfg.hidden, cfg.kv_dim(), cfg.head_dim, cfg.ffn);
        let mut spans = Vec::with_capacity(batch.len());
        let mut t = 0;
        for c in batch.iter() {
            spans.push(Span {
                row0: t,
                n: c.tokens.len(),
                start: c.cache.len,
            });
            t += c.tokens.len();
        }
        s.x.resize(t * hid, 0.0);
        let tokens = batch.iter().flat_map(|c| c.tokens.iter());
        for (row, &tok) in s.x.chunks_exact_mut(hid).zip(tokens) {
            w.embed.dequantize_row(tok as usize, row);
        }
        s.xn.resize(t * hid, 0.0);
        s.att.resize(t * hid, 0.0);
        s.proj.resize(t * hid, 0.0);
        s.heads.resize(cfg.n_head * t * hd, 0.0);
        s.gate_up.resize(t * 2 * ffn, 0.0);
        s.hidden_ffn.resize(t * ffn, 0.0);
        for (l, layer) in w.layers.iter().enumerate() {
            rms_norm_rows(&s.x, &layer.attn_norm, cfg.eps, &mut s.xn);
            let qw = layer.qkv.width();
            s.qkv.resize(t * qw, 0.0);
            layer.qkv.forward(&s.xn, t, &mut s.acts, &mut s.qkv);
            for (c, sp) in batch.iter_mut().zip(&spans) {
                let Store::Host(kv) = &mut c.cache.store else {
                    unreachable!("validated: host cache")
                };
                let cap = c.cache.capacity;
                for i in 0..sp.n {
                    let pos = sp.start + i;
                    let row = &mut s.qkv[(sp.row0 + i) * qw..(sp.row0 + i + 1) * qw];
                    rope.apply(&mut row[..hid + kvd], pos);
                    for g in 0..cfg.n_kv_head {
                        let off = kv.offset(cap, l, g, pos);
                        let (ks, vs) = (hid + g * hd, hid + kvd + g * hd);
                        kv.k[off..off + hd].copy_from_slice(&row[ks..ks + hd]);
                        kv.v[off..off + hd].copy_from_slice(&row[vs..vs + hd]);
                    }
                }
            }
            attention(cfg, l, batch, &spans, &s.qkv, qw, t, &mut s.heads);
            for (r, row) in s.att.chunks_exact_mut(hid).enumerate() {
                for (h, dst) in row.chunks_exact_mut(hd).enumerate() {
                    dst.copy_from_slice(&s.heads[(h * t + r) * hd..(h * t + r + 1) * hd]);
                }
            }
            layer.wo.forward(&s.att, t, &mut s.acts, &mut s.proj);
            add_into(&mut s.x, &s.proj);
            rms_norm_rows(&s.x, &layer.ffn_norm, cfg.eps, &mut s.xn);
            layer.gate_up.forward(&s.xn, t, &mut s.acts, &mut s.gate_up);
            swiglu_rows(&s.gate_up, ffn, &mut s.hidden_ffn);
            layer
                .down
                .forward(&s.hidden_ffn, t, &mut s.acts, &mut s.proj);
            add_into(&mut s.x, &s.proj);
        }
        for (c, sp) in batch.iter_mut().zip(&spans) {
            c.cache.len += sp.n;
        }
        // The LM head only for the last row of each chunk that wants logits.
        let last_rows: Vec<usize> = batch
            .iter()
            .zip(&spans)
            .filter(|(c, _)| c.want_logits)
            .map(|(_, sp)| sp.row0 + sp.n - 1)
            .collect();
        let r = last_rows.len();
        let mut logits = vec![0f32; r * cfg.vocab];
        if r > 0 {
            for (dst, &row) in s.proj.chunks_exact_mut(hid).zip(&last_rows) {
                dst.copy_from_slice(&s.x[row * hid..(row + 1) * hid]);
            }
            rms_norm_rows(
                &s.proj[..r * hid],
                &w.out_norm,
                cfg.eps,
                &mut s.xn[..r * hid],
            );
            w.head_forward(&s.xn[..r * hid], r, &mut s.acts, &mut logits);
        }
        logits
    }
}

/// Attention for every (chunk, head) of layer `l`, in parallel; head `h`'s output for the
/// batch's rows lands in `heads[h * t * hd..]`.
#[allow(clippy::too_many_arguments)]
fn attention(
    cfg: &Config,
    l: usize,
    batch: &[Chunk<'_>],
    spans: &[Span],
    qkv: &[f32],
    qw: usize,
    t: usize,
    heads: &mut [f32],
) {
    let hd = cfg.head_dim;
    let scale = (1.0 / (hd as f64).sqrt()) as f32;
    let group = cfg.group();
    let mut tasks: Vec<(usize, usize, &mut [f32])> = Vec::with_capacity(cfg.n_head * spans.len());
    for (h, mut rest) in heads.chunks_exact_mut(t * hd).enumerate() {
        for (ci, sp) in spans.iter().enumerate() {
            let (mine, tail) = rest.split_at_mut(sp.n * hd);
            rest = tail;
            tasks.push((ci, h, mine));
        }
    }
    let caches: Vec<(&HostKv, usize)> = batch
        .iter()
        .map(|c| match &c.cache.store {
            Store::Host(kv) => (kv, c.cache.capacity),
            Store::Device(_) => unreachable!("validated: host cache"),
        })
        .collect();
    tasks
        .into_par_iter()
        .for_each_init(Vec::new, |scores, (ci, h, out)| {
            let sp = spans[ci];
            let (kv, cap) = caches[ci];
            let kv_len = sp.start + sp.n;
            let base = kv.offset(cap, l, h / group, 0);
            let keys = &kv.k[base..base + kv_len * hd];
            let values = &kv.v[base..base + kv_len * hd];
            let order = DotOrder::for_call(sp.n, kv_len);
            for (i, o) in out.chunks_exact_mut(hd).enumerate() {
                let r = sp.row0 + i;
                let q = &qkv[r * qw + h * hd..r * qw + (h + 1) * hd];
                attend(
                    q,
                    keys,
                    values,
                    sp.start + i + 1,
                    kv_len,
                    order,
                    scale,
                    scores,
                    o,
                );
            }
        });
}
