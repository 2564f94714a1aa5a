//! The device-generic forward: the same batched step as [`crate::native`], written with candle
//! tensor ops so it runs wherever candle does (CUDA with `--features cuda`; also the CPU, which
//! the tests use to check it against the native path).
//!
//! Projections are `QMatMul`s on the device; every chunk's K/V rows are written into its
//! preallocated per-layer cache tensors with `slice_set`; attention runs per chunk on `narrow`ed
//! views of its cache. The attention ops are candle `quantized_llama`'s own, `repeat_kv` copies
//! included, so on the CPU the path is bit-identical to candle (and to the native path); on a GPU
//! the copies cost one pass over the chunk's keys and values per layer. Embedding rows are
//! dequantized on the host and uploaded.
//!
//! Concurrency: `forward` takes `&self` and holds no lock; each chunk's cache tensors are written
//! only through the `&mut` the chunk holds.

use crate::cache::Store;
use crate::config::Config;
use crate::error::Result;
use crate::kernel::Q8Weights;
use crate::model::Chunk;
use crate::rope::Rope;
use crate::weights::{check_q8, read_q8, read_vec};
use candle_core::quantized::{gguf_file::Content, QMatMul};
use candle_core::{DType, Device, Module, Tensor};
use std::io::{Read, Seek};

/// One block's weights on the device.
struct TensorLayer {
    /// RMS-norm weight before attention.
    attn_norm: Tensor,
    /// Query projection.
    wq: QMatMul,
    /// Key projection.
    wk: QMatMul,
    /// Value projection.
    wv: QMatMul,
    /// Attention output projection.
    wo: QMatMul,
    /// RMS-norm weight before the feed-forward.
    ffn_norm: Tensor,
    /// Gate projection.
    w1: QMatMul,
    /// Down projection.
    w2: QMatMul,
    /// Up projection.
    w3: QMatMul,
}

/// The model for the tensor path.
pub(crate) struct TensorModel {
    /// Where every tensor lives.
    device: Device,
    /// Host copy of the embeddings for row lookup.
    embed: Q8Weights,
    /// The blocks.
    layers: Vec<TensorLayer>,
    /// Final RMS-norm weight.
    out_norm: Tensor,
    /// LM head (`output.weight` or the tied embeddings).
    head: QMatMul,
    /// RoPE cos table, `context x head_dim / 2`.
    cos: Tensor,
    /// RoPE sin table.
    sin: Tensor,
}

impl TensorModel {
    /// Loads every weight onto `device`.
    pub(crate) fn load<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        cfg: &Config,
        rope: &Rope,
        device: &Device,
    ) -> Result<Self> {
        let (h, kv, ffn) = (cfg.hidden, cfg.kv_dim(), cfg.ffn);
        let embed = read_q8(content, reader, "token_embd.weight", cfg.vocab, h)?;
        let mut qmm = |name: &str, n: usize, k: usize| -> Result<QMatMul> {
            // Same checks (Q8_0, shape) as the native path, then the device copy.
            check_q8(content, name, n, k)?;
            Ok(QMatMul::from_qtensor(
                content.tensor(reader, name, device)?,
            )?)
        };
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for l in 0..cfg.n_layer {
            let name = |s: &str| format!("blk.{l}.{s}.weight");
            layers.push(TensorLayer {
                attn_norm: Tensor::zeros(1, DType::F32, device)?,
                wq: qmm(&name("attn_q"), h, h)?,
                wk: qmm(&name("attn_k"), kv, h)?,
                wv: qmm(&name("attn_v"), kv, h)?,
                wo: qmm(&name("attn_output"), h, h)?,
                ffn_norm: Tensor::zeros(1, DType::F32, device)?,
                w1: qmm(&name("ffn_gate"), ffn, h)?,
                w2: qmm(&name("ffn_down"), h, ffn)?,
                w3: qmm(&name("ffn_up"), ffn, h)?,
            });
        }
        let head_name = if content.tensor_infos.contains_key("output.weight") {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        let head = qmm(head_name, cfg.vocab, h)?;
        let vec = |reader: &mut R, name: &str| -> Result<Tensor> {
            Ok(Tensor::from_vec(
                read_vec(content, reader, name, h)?,
                h,
                device,
            )?)
        };
        for (l, layer) in layers.iter_mut().enumerate() {
            layer.attn_norm = vec(reader, &format!("blk.{l}.attn_norm.weight"))?;
            layer.ffn_norm = vec(reader, &format!("blk.{l}.ffn_norm.weight"))?;
        }
        let half = cfg.head_dim / 2;
        let positions = rope.positions();
        Ok(Self {
            device: device.clone(),
            embed,
            layers,
            out_norm: vec(reader, "output_norm.weight")?,
            head,
            cos: Tensor::from_slice(rope.cos_table(), (positions, half), device)?,
            sin: Tensor::from_slice(rope.sin_table(), (positions, half), device)?,
        })
    }

    /// The device the weights live on.
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    /// Zeroed per-layer K and V tensors for `capacity` tokens.
    pub(crate) fn new_cache(&self, cfg: &Config, capacity: usize) -> Result<Store> {
        let shape = (1, cfg.n_kv_head, capacity, cfg.head_dim);
        let mut k = Vec::with_capacity(cfg.n_layer);
        let mut v = Vec::with_capacity(cfg.n_layer);
        for _ in 0..cfg.n_layer {
            k.push(Tensor::zeros(shape, DType::F32, &self.device)?);
            v.push(Tensor::zeros(shape, DType::F32, &self.device)?);
        }
        Ok(Store::Device(crate::cache::DeviceKv { k, v }))
    }

    /// Runs a validated batch (device caches with room) and returns `rows x vocab` logits.
    pub(crate) fn forward(&self, cfg: &Config, batch: &mut [Chunk<'_>]) -> Result<Vec<f32>> {
        let dev = &self.device;
        let (hid, hd) = (cfg.hidden, cfg.head_dim);
        let (nh, nkv, group) = (cfg.n_head, cfg.n_kv_head, cfg.group());
        let t: usize = batch.iter().map(|c| c.tokens.len()).sum();
        let mut emb = vec![0f32; t * hid];
        let tokens = batch.iter().flat_map(|c| c.tokens.iter());
        for (row, &tok) in emb.chunks_exact_mut(hid).zip(tokens) {
            self.embed.dequantize_row(tok as usize, row);
        }
        let mut x = Tensor::from_vec(emb, (t, hid), dev)?;
        let positions: Vec<u32> = batch
            .iter()
            .flat_map(|c| (c.cache.len..c.cache.len + c.tokens.len()).map(|p| p as u32))
            .collect();
        let positions = Tensor::from_vec(positions, t, dev)?;
        let (cos, sin) = (
            self.cos.index_select(&positions, 0)?,
            self.sin.index_select(&positions, 0)?,
        );
        let scale = 1.0 / (hd as f64).sqrt();
        for (l, layer) in self.layers.iter().enumerate() {
            let xn = candle_nn::ops::rms_norm(&x, &layer.attn_norm, cfg.eps)?;
            let heads = |y: Tensor, n: usize| -> Result<Tensor> {
                Ok(y.reshape((1, t, n, hd))?.transpose(1, 2)?.contiguous()?)
            };
            let q = candle_nn::rotary_emb::rope_i(&heads(layer.wq.forward(&xn)?, nh)?, &cos, &sin)?;
            let k =
                candle_nn::rotary_emb::rope_i(&heads(layer.wk.forward(&xn)?, nkv)?, &cos, &sin)?;
            let v = heads(layer.wv.forward(&xn)?, nkv)?;
            let mut outs = Vec::with_capacity(batch.len());
            let mut row0 = 0;
            for c in batch.iter_mut() {
                let (n, start) = (c.tokens.len(), c.cache.len);
                let Store::Device(kv) = &mut c.cache.store else {
                    unreachable!("validated: device cache")
                };
                kv.k[l].slice_set(&k.narrow(2, row0, n)?.contiguous()?, 2, start)?;
                kv.v[l].slice_set(&v.narrow(2, row0, n)?.contiguous()?, 2, start)?;
                let len = start + n;
                // candle's `repeat_kv` (the same copies, so the same gemm shapes and sums).
                let repeat = |t: &Tensor| -> Result<Tensor> {
                    let t = t.narrow(2, 0, len)?.contiguous()?;
                    Ok(Tensor::cat(&vec![&t; group], 2)?.reshape((1, nh, len, hd))?)
                };
                let (keys, values) = (repeat(&kv.k[l])?, repeat(&kv.v[l])?);
                let qc = q.narrow(2, row0, n)?.contiguous()?;
                let mut att = (qc.matmul(&keys.t()?)? * scale)?;
                if n > 1 {
                    let mask: Vec<f32> = (0..n)
                        .flat_map(|i| {
                            (0..len).map(move |j| {
                                if j > start + i {
                                    f32::NEG_INFINITY
                                } else {
                                    0.0
                                }
                            })
                        })
                        .collect();
                    att = att.broadcast_add(&Tensor::from_vec(mask, (n, len), dev)?)?;
                }
                let att = candle_nn::ops::softmax_last_dim(&att)?;
                let y = att.matmul(&values)?;
                outs.push(y.transpose(1, 2)?.reshape((n, hid))?);
                row0 += n;
            }
            let y = Tensor::cat(&outs, 0)?;
            x = (layer.wo.forward(&y)? + &x)?;
            let xn = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, cfg.eps)?;
            let gate = candle_nn::ops::silu(&layer.w1.forward(&xn)?)?;
            let ff = layer.w2.forward(&(gate * layer.w3.forward(&xn)?)?)?;
            x = (ff + &x)?;
        }
        let mut rows = Vec::new();
        let mut row0 = 0u32;
        for c in batch.iter_mut() {
            let n = c.tokens.len() as u32;
            if c.want_logits {
                rows.push(row0 + n - 1);
            }
            row0 += n;
            c.cache.len += n as usize;
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let n_rows = rows.len();
        let idx = Tensor::from_vec(rows, n_rows, dev)?;
        let xl = candle_nn::ops::rms_norm(&x.index_select(&idx, 0)?, &self.out_norm, cfg.eps)?;
        let logits = self.head.forward(&xl)?.to_dtype(DType::F32)?;
        Ok(logits
            .flatten_all()?
            .to_device(&Device::Cpu)?
            .to_vec1::<f32>()?)
    }
}
