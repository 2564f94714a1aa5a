//! The native CPU path's weights: read from a GGUF through candle's reader (`QTensor`), kept as
//! Q8_0 blocks ([`Q8Weights`], rows interleaved into the kernel's tiles), norms as f32. The
//! embeddings are one Q8_0 matrix whose rows are dequantized on lookup; a tied LM head uses it
//! directly (no second copy).
//!
//! Projections that read the same activations are stacked into one matrix when candle would
//! quantize their activations the same way (q/k/v, gate/up), so one kernel pass and one
//! activation quantization serve all of them.
//!
//! Concurrency: immutable after loading; shared by every forward.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::kernel::{matmul_into, ActMode, Q8Weights, QuantizedActs};
use candle_core::quantized::{gguf_file::Content, GgmlDType, QTensor};
use candle_core::Device;
use std::io::{Read, Seek};

/// One or more Q8_0 matrices applied to the same activations, outputs side by side.
pub(crate) struct Proj {
    /// The matrices (one when they could be stacked).
    parts: Vec<Q8Weights>,
    /// Total output width (sum of the parts' rows).
    width: usize,
}

impl Proj {
    /// Builds the matrices from raw GGUF blocks `(rows, k, bytes)`, stacked into one when
    /// candle quantizes their activations the same way.
    fn new(parts: Vec<(usize, usize, Vec<u8>)>) -> Result<Self> {
        let width = parts.iter().map(|p| p.0).sum();
        let (n0, k) = (parts[0].0, parts[0].1);
        let mode = ActMode::candle_for(n0, k);
        let same = parts
            .iter()
            .all(|p| p.1 == k && ActMode::candle_for(p.0, k) == mode);
        let built: Option<Vec<Q8Weights>> = if same && parts.len() > 1 {
            let raw = parts.into_iter().flat_map(|p| p.2).collect();
            Q8Weights::with_mode(width, k, raw, mode).map(|w| vec![w])
        } else {
            parts
                .into_iter()
                .map(|(n, k, raw)| Q8Weights::from_raw(n, k, raw))
                .collect()
        };
        let parts = built.ok_or_else(|| Error::Tensor {
            name: "projection".into(),
            reason: "block data does not match the shape".into(),
        })?;
        Ok(Self { parts, width })
    }

    /// Output width.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// `out (m x width) = x (m x k) * W^T`, quantizing `x` once per activation mode into
    /// `acts` (index 0: Q8_0, 1: Q8K).
    pub(crate) fn forward(
        &self,
        x: &[f32],
        m: usize,
        acts: &mut [QuantizedActs; 2],
        out: &mut [f32],
    ) {
        let k = self.parts[0].cols();
        let mut done = [false; 2];
        let mut col = 0;
        for w in &self.parts {
            let slot = match w.mode() {
                ActMode::Q8_0 => 0,
                ActMode::Q8K => 1,
            };
            if !done[slot] {
                acts[slot].quantize(x, m, k, w.mode());
                done[slot] = true;
            }
            matmul_into(w, &acts[slot], out, self.width, col);
            col += w.rows();
        }
    }
}

/// One transformer block.
pub(crate) struct Layer {
    /// RMS-norm weight before attention.
    pub(crate) attn_norm: Vec<f32>,
    /// q, k and v projections (outputs `hidden | kv_dim | kv_dim`).
    pub(crate) qkv: Proj,
    /// Attention output projection.
    pub(crate) wo: Proj,
    /// RMS-norm weight before the feed-forward.
    pub(crate) ffn_norm: Vec<f32>,
    /// gate and up projections (outputs `ffn | ffn`).
    pub(crate) gate_up: Proj,
    /// down projection.
    pub(crate) down: Proj,
}

/// Every weight of the model for the native path.
pub(crate) struct NativeWeights {
    /// Token embeddings (`vocab x hidden`); rows are dequantized on lookup.
    pub(crate) embed: Q8Weights,
    /// The blocks.
    pub(crate) layers: Vec<Layer>,
    /// Final RMS-norm weight.
    pub(crate) out_norm: Vec<f32>,
    /// The LM head `output.weight`; `None` when tied to the embeddings (SmolLM2), which then
    /// serve as the head without a second copy.
    pub(crate) head: Option<Proj>,
}

/// Checks that 2-D weight `name` exists, is Q8_0 and has shape `(n, k)`.
pub(crate) fn check_q8(content: &Content, name: &str, n: usize, k: usize) -> Result<()> {
    let err = |reason: String| Error::Tensor {
        name: name.into(),
        reason,
    };
    let info = content
        .tensor_infos
        .get(name)
        .ok_or_else(|| err("missing".into()))?;
    if info.ggml_dtype != GgmlDType::Q8_0 {
        return Err(err(format!(
            "dtype {:?}: the CPU path runs Q8_0 weights only (re-quantize the model to Q8_0, e.g. \
             with scripts/model.sh)",
            info.ggml_dtype
        )));
    }
    if info.shape.dims() != [n, k] {
        return Err(err(format!(
            "shape {:?}, expected [{n}, {k}]",
            info.shape.dims()
        )));
    }
    Ok(())
}

/// Reads 2-D weight `name`, Q8_0 of shape `(n, k)`, as `(n, k, raw GGUF blocks)`.
pub(crate) fn read_q8_raw<R: Read + Seek>(
    content: &Content,
    reader: &mut R,
    name: &str,
    n: usize,
    k: usize,
) -> Result<(usize, usize, Vec<u8>)> {
    check_q8(content, name, n, k)?;
    let q: QTensor = content.tensor(reader, name, &Device::Cpu)?;
    Ok((n, k, q.data()?.into_owned()))
}

/// Reads 2-D weight `name` (Q8_0, shape `(n, k)`) ready for the kernel.
pub(crate) fn read_q8<R: Read + Seek>(
    content: &Content,
    reader: &mut R,
    name: &str,
    n: usize,
    k: usize,
) -> Result<Q8Weights> {
    let (n, k, raw) = read_q8_raw(content, reader, name, n, k)?;
    Q8Weights::from_raw(n, k, raw).ok_or_else(|| Error::Tensor {
        name: name.into(),
        reason: "block data does not match the shape".into(),
    })
}

/// Reads 1-D weight `name` (F32 or F16) as `len` f32 values.
pub(crate) fn read_vec<R: Read + Seek>(
    content: &Content,
    reader: &mut R,
    name: &str,
    len: usize,
) -> Result<Vec<f32>> {
    let err = |reason: String| Error::Tensor {
        name: name.into(),
        reason,
    };
    let info = content
        .tensor_infos
        .get(name)
        .ok_or_else(|| err("missing".into()))?;
    if !matches!(info.ggml_dtype, GgmlDType::F32 | GgmlDType::F16) {
        return Err(err(format!(
            "dtype {:?}, expected F32 or F16",
            info.ggml_dtype
        )));
    }
    if info.shape.dims() != [len] {
        return Err(err(format!(
            "shape {:?}, expected [{len}]",
            info.shape.dims()
        )));
    }
    let t = content
        .tensor(reader, name, &Device::Cpu)?
        .dequantize(&Device::Cpu)?;
    Ok(t.to_vec1::<f32>()?)
}

impl NativeWeights {
    /// Loads every weight named as in llama.cpp's GGUF convention.
    pub(crate) fn load<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        cfg: &Config,
    ) -> Result<Self> {
        let (h, kv, ffn) = (cfg.hidden, cfg.kv_dim(), cfg.ffn);
        let embed = read_q8(content, reader, "token_embd.weight", cfg.vocab, h)?;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for l in 0..cfg.n_layer {
            let name = |s: &str| format!("blk.{l}.{s}.weight");
            let mut q8 = |s: &str, n, k| read_q8_raw(content, reader, &name(s), n, k);
            let qkv = Proj::new(vec![
                q8("attn_q", h, h)?,
                q8("attn_k", kv, h)?,
                q8("attn_v", kv, h)?,
            ])?;
            let wo = Proj::new(vec![q8("attn_output", h, h)?])?;
            let gate_up = Proj::new(vec![q8("ffn_gate", ffn, h)?, q8("ffn_up", ffn, h)?])?;
            let down = Proj::new(vec![q8("ffn_down", h, ffn)?])?;
            layers.push(Layer {
                attn_norm: read_vec(content, reader, &name("attn_norm"), h)?,
                qkv,
                wo,
                ffn_norm: read_vec(content, reader, &name("ffn_norm"), h)?,
                gate_up,
                down,
            });
        }
        let head = if content.tensor_infos.contains_key("output.weight") {
            Some(Proj::new(vec![read_q8_raw(
                content,
                reader,
                "output.weight",
                cfg.vocab,
                h,
            )?])?)
        } else {
            None
        };
        Ok(Self {
            embed,
            layers,
            out_norm: read_vec(content, reader, "output_norm.weight", h)?,
            head,
        })
    }

    /// Logits for `m` normed rows `x` into `out` (`m x vocab`).
    pub(crate) fn head_forward(
        &self,
        x: &[f32],
        m: usize,
        acts: &mut [QuantizedActs; 2],
        out: &mut [f32],
    ) {
        match &self.head {
            Some(p) => p.forward(x, m, acts, out),
            None => {
                let w = &self.embed;
                acts[0].quantize(x, m, w.cols(), w.mode());
                matmul_into(w, &acts[0], out, w.rows(), 0);
            }
        }
    }
}
