//! A continuous-batching scheduler for the tests: sequences join at given steps, prefill their
//! prompts in chunks, then decode greedily, all through one batched forward per step.
//!
//! Concurrency: single-threaded.

use turnstile_llm::{Chunk, LlamaModel, SeqCache};

/// One sequence being decoded.
pub struct Seq {
    /// Prompt tokens.
    pub prompt: Vec<u32>,
    /// Its cache.
    pub cache: SeqCache,
    /// Prompt tokens already fed.
    pub fed: usize,
    /// Tokens to generate.
    pub generate: usize,
    /// Generated tokens.
    pub out: Vec<u32>,
    /// The logits row each generated token came from.
    pub rows: Vec<Vec<f32>>,
    /// The step at which the sequence joins the batch.
    pub join: usize,
}

impl Seq {
    /// A sequence that joins at step `join` with a fresh cache for its prompt and output.
    pub fn new(model: &LlamaModel, prompt: Vec<u32>, generate: usize, join: usize) -> Self {
        let cache = model.new_cache(prompt.len() + generate).expect("cache");
        Self {
            prompt,
            cache,
            fed: 0,
            generate,
            out: Vec::new(),
            rows: Vec::new(),
            join,
        }
    }
}

/// Runs every sequence to its `generate` tokens, `chunk` prompt tokens per step at most;
/// returns the batch sizes (rows) seen.
pub fn run(model: &LlamaModel, seqs: &mut [Seq], chunk: usize) -> Vec<usize> {
    let mut step = 0;
    let mut rows_seen = Vec::new();
    loop {
        let mut batch = Vec::new();
        let mut who = Vec::new();
        for (i, s) in seqs.iter_mut().enumerate() {
            if s.join > step || s.out.len() == s.generate {
                continue;
            }
            let (tokens, want) = if s.fed < s.prompt.len() {
                let end = s.prompt.len().min(s.fed + chunk);
                (&s.prompt[s.fed..end], end == s.prompt.len())
            } else {
                (&s.out[s.out.len() - 1..], true)
            };
            who.push((i, tokens.len(), want));
            batch.push(Chunk {
                tokens,
                cache: &mut s.cache,
                want_logits: want,
            });
        }
        if batch.is_empty() {
            if seqs.iter().all(|s| s.out.len() == s.generate) {
                return rows_seen;
            }
            step += 1;
            continue;
        }
        rows_seen.push(batch.iter().map(|c| c.tokens.len()).sum());
        let logits = model.forward(&mut batch).expect("forward");
        drop(batch);
        let mut r = 0;
        for (i, n, want) in who {
            let s = &mut seqs[i];
            if s.fed < s.prompt.len() {
                s.fed += n;
            }
            if want {
                s.out.push(logits.argmax(r));
                s.rows.push(logits.row(r).to_vec());
                r += 1;
            }
        }
        assert_eq!(r, logits.rows());
        step += 1;
    }
}
