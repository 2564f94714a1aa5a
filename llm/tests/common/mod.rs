//! Shared test helpers: finding the model file, loading it, building ChatML-ish prompts from the
//! GGUF's own vocabulary, and greedy reference decoding with candle's `quantized_llama`.
//!
//! Concurrency: plain functions; each test loads its own model copies.
#![allow(dead_code)]

pub mod schedule;
pub mod tiny;

use candle_core::quantized::gguf_file::{self, Content};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use turnstile_llm::{ExecPath, LlamaModel};

/// The Q8_0 SmolLM2 file: `$TURNSTILE_DATA_DIR` or `<workspace>/data`, then `models/...`.
/// Panics (never skips) when it is missing.
pub fn model_path() -> PathBuf {
    let data = std::env::var_os("TURNSTILE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"));
    let path = data.join("models/SmolLM2-135M-Instruct.Q8_0.gguf");
    assert!(
        path.is_file(),
        "model file {} is missing: run scripts/model.sh (it downloads SmolLM2-135M-Instruct and \
         re-quantizes it to Q8_0), or point TURNSTILE_DATA_DIR at a data directory holding it",
        path.display()
    );
    path
}

/// The GGUF header and a reader positioned anywhere.
pub fn open() -> (Content, BufReader<File>) {
    let mut reader = BufReader::new(File::open(model_path()).expect("open model"));
    let content = gguf_file::Content::read(&mut reader).expect("read GGUF header");
    (content, reader)
}

/// Our model on the CPU with the given path.
pub fn load(path: ExecPath) -> LlamaModel {
    let (content, mut reader) = open();
    LlamaModel::from_gguf_with(&content, &mut reader, &Device::Cpu, path).expect("load model")
}

/// candle's reference model.
pub fn load_candle() -> ModelWeights {
    let (content, mut reader) = open();
    ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).expect("load candle model")
}

/// Token ids of exact vocabulary entries (byte-level BPE spelling: `Ġ` is a leading space,
/// `Ċ` a newline).
pub fn vocab_ids(words: &[&str]) -> Vec<u32> {
    let (content, _) = open();
    let tokens = content.metadata["tokenizer.ggml.tokens"]
        .to_vec()
        .expect("token list");
    words
        .iter()
        .map(|w| {
            tokens
                .iter()
                .position(|t| t.to_string().map(|s| s == w).unwrap_or(false))
                .unwrap_or_else(|| panic!("token {w:?} not in the vocabulary")) as u32
        })
        .collect()
}

/// A ChatML prompt of exactly `len` tokens: `<|im_start|>user\n <words> <|im_end|>\n
/// <|im_start|>assistant\n` (just `<|im_start|>user\n <words>` when shorter than 10), the words
/// taken from a fixed list starting at `offset`, cycling.
pub fn chat_prompt(len: usize, offset: usize) -> Vec<u32> {
    let frame = vocab_ids(&["user", "Ċ", "ass", "istant"]);
    let words = vocab_ids(&[
        "What",
        "Ġis",
        "Ġthe",
        "Ġcapital",
        "Ġof",
        "ĠFrance",
        "?",
        "ĠPlease",
        "Ġexplain",
        "Ġhow",
        "Ġplants",
        "Ġmake",
        "Ġfood",
        "Ġfrom",
        "Ġsunlight",
        "Ġand",
        "Ġwater",
        ".",
        "ĠWrite",
        "Ġa",
        "Ġshort",
        "Ġpoem",
        "Ġabout",
        "Ġthe",
        "Ġsea",
        ",",
        "Ġthen",
        "Ġsummarize",
        "Ġit",
        "Ġin",
        "Ġone",
        "Ġsentence",
        ".",
    ]);
    let (im_start, im_end) = (1u32, 2u32);
    let head = [im_start, frame[0], frame[1]];
    let tail = [im_end, frame[1], im_start, frame[2], frame[3], frame[1]];
    assert!(len >= head.len(), "prompt too short");
    // Too short for the assistant turn: the start of a user turn only.
    let tail: &[u32] = if len > head.len() + tail.len() {
        &tail
    } else {
        &[]
    };
    let body = len - head.len() - tail.len();
    let mut p = head.to_vec();
    p.extend((0..body).map(|i| words[(offset + i) % words.len()]));
    p.extend(tail);
    p
}

/// Greedy argmax, first index on ties (as `Logits::argmax`).
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best as u32
}

/// Top-1 minus top-2 logit.
pub fn margin(row: &[f32]) -> f32 {
    let b = argmax(row) as usize;
    let second = row
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != b)
        .map(|(_, &v)| v)
        .fold(f32::NEG_INFINITY, f32::max);
    row[b] - second
}

/// candle's greedy continuation of `prompt` alone: `n` tokens and the logits rows they came
/// from. The prompt goes in pieces of `chunk` tokens (`usize::MAX`: one forward), then one token
/// per forward.
pub fn candle_greedy(
    model: &mut ModelWeights,
    prompt: &[u32],
    n: usize,
    chunk: usize,
) -> (Vec<u32>, Vec<Vec<f32>>) {
    model.clear_kv_cache();
    let dev = Device::Cpu;
    let mut out = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    let mut pos = 0;
    let mut logits = None;
    while pos < prompt.len() {
        let end = prompt.len().min(pos.saturating_add(chunk));
        let input = Tensor::new(&prompt[pos..end], &dev)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        logits = Some(model.forward(&input, pos).unwrap());
        pos = end;
    }
    let mut logits = logits.expect("non-empty prompt");
    loop {
        let row: Vec<f32> = logits.squeeze(0).unwrap().to_vec1().unwrap();
        let tok = argmax(&row);
        out.push(tok);
        rows.push(row);
        if out.len() == n {
            return (out, rows);
        }
        let input = Tensor::new(&[tok], &dev).unwrap().unsqueeze(0).unwrap();
        logits = model.forward(&input, pos).unwrap();
        pos += 1;
    }
}
