//! A tiny random llama written as an in-memory GGUF, so the forward can be checked against
//! candle without the real model file. Shapes are chosen so both of candle's activation modes
//! occur: hidden 256 and gate/up 320 wide take the Q8K (repacked) path, the down projection
//! (k = 320) and a 100-token head the Q8_0 path.
//!
//! Concurrency: plain functions.

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use std::io::Cursor;

/// Vocabulary size of the tiny model.
pub const VOCAB: usize = 100;
/// Context length of the tiny model.
pub const CONTEXT: usize = 64;

/// Deterministic normal-ish values.
fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            let mut acc = 0f32;
            for _ in 0..4 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                acc += (s >> 40) as f32 / (1u64 << 24) as f32;
            }
            (acc - 2.0) * 1.7 * scale
        })
        .collect()
}

/// A tensor quantized to `dtype`.
fn q(seed: u64, dims: &[usize], scale: f32, offset: f32, dtype: GgmlDType) -> QTensor {
    let n = dims.iter().product();
    let v: Vec<f32> = values(seed, n, scale)
        .into_iter()
        .map(|x| x + offset)
        .collect();
    let t = Tensor::from_vec(v, dims, &Device::Cpu).expect("tensor");
    QTensor::quantize(&t, dtype).expect("quantize")
}

/// The GGUF bytes: 2 layers, hidden 256, 4 heads of 64 (2 key/value heads), ffn 320, vocab 100.
/// `tied`: no `output.weight` (the head is the embeddings). `weight_dtype`: the 2-D weights'
/// type (Q8_0 normally).
pub fn gguf(tied: bool, weight_dtype: GgmlDType) -> Vec<u8> {
    let (h, kv, ffn, layers) = (256usize, 128usize, 320usize, 2usize);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut seed = 1;
    let mut add = |name: String, dims: &[usize], scale: f32, offset: f32, dtype: GgmlDType| {
        seed += 1;
        tensors.push((name, q(seed, dims, scale, offset, dtype)));
    };
    add(
        "token_embd.weight".into(),
        &[VOCAB, h],
        0.5,
        0.0,
        weight_dtype,
    );
    add("output_norm.weight".into(), &[h], 0.1, 1.0, GgmlDType::F32);
    if !tied {
        add("output.weight".into(), &[VOCAB, h], 0.08, 0.0, weight_dtype);
    }
    for l in 0..layers {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        add(n("attn_norm"), &[h], 0.1, 1.0, GgmlDType::F32);
        add(n("ffn_norm"), &[h], 0.1, 1.0, GgmlDType::F32);
        add(n("attn_q"), &[h, h], 0.08, 0.0, weight_dtype);
        add(n("attn_k"), &[kv, h], 0.08, 0.0, weight_dtype);
        add(n("attn_v"), &[kv, h], 0.08, 0.0, weight_dtype);
        add(n("attn_output"), &[h, h], 0.08, 0.0, weight_dtype);
        add(n("ffn_gate"), &[ffn, h], 0.08, 0.0, weight_dtype);
        add(n("ffn_up"), &[ffn, h], 0.08, 0.0, weight_dtype);
        add(n("ffn_down"), &[h, ffn], 0.08, 0.0, weight_dtype);
    }
    let md: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", Value::U32(layers as u32)),
        ("llama.embedding_length", Value::U32(h as u32)),
        ("llama.feed_forward_length", Value::U32(ffn as u32)),
        ("llama.attention.head_count", Value::U32(4)),
        ("llama.attention.head_count_kv", Value::U32(2)),
        ("llama.rope.dimension_count", Value::U32(64)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.context_length", Value::U32(CONTEXT as u32)),
    ];
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &md_refs, &t_refs).expect("write GGUF");
    out.into_inner()
}

/// The parsed header and a reader over `bytes`.
pub fn open(bytes: &[u8]) -> (gguf_file::Content, Cursor<&[u8]>) {
    let mut r = Cursor::new(bytes);
    let content = gguf_file::Content::read(&mut r).expect("read GGUF");
    (content, r)
}
