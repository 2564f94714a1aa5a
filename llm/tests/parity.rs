//! Greedy parity with candle: four ChatML prompts (5, 17, 40 and 63 tokens), 48 generated tokens
//! each, stepped through our batched forward in three schedules — all together from the start,
//! prompts prefilled in chunks of 7 interleaved with the others' decoding, and sequences joining
//! while the others decode — must produce exactly the tokens candle's own
//! `quantized_llama::ModelWeights` produces for each sequence alone, fed the same way (the prompt
//! in one forward, or in the same chunks of 7). The tensor path, forced onto the CPU, must
//! produce them too.
//!
//! Needs the Q8_0 model file (see `common::model_path`); fails, never skips, without it.

mod common;

use common::schedule::{run, Seq};
use common::{candle_greedy, chat_prompt, load, load_candle, margin};
use turnstile_llm::{ExecPath, LlamaModel};

const PROMPTS: [usize; 4] = [5, 17, 40, 63];
const GENERATE: usize = 48;

fn seqs(model: &LlamaModel, joins: [usize; 4]) -> Vec<Seq> {
    PROMPTS
        .iter()
        .zip(joins)
        .enumerate()
        .map(|(i, (&len, join))| Seq::new(model, chat_prompt(len, 7 * i), GENERATE, join))
        .collect()
}

/// candle's tokens and logits rows for each prompt alone, the prompt fed in pieces of `chunk`.
fn reference(chunk: usize) -> Vec<(Vec<u32>, Vec<Vec<f32>>)> {
    let mut candle = load_candle();
    PROMPTS
        .iter()
        .enumerate()
        .map(|(i, &len)| candle_greedy(&mut candle, &chat_prompt(len, 7 * i), GENERATE, chunk))
        .collect()
}

/// Compares one schedule's sequences with the reference; returns a report line per mismatch
/// and prints the margins and logit differences.
fn compare(name: &str, seqs: &[Seq], reference: &[(Vec<u32>, Vec<Vec<f32>>)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (i, (s, (want, rows))) in seqs.iter().zip(reference).enumerate() {
        let same = s.out.iter().zip(want).take_while(|(a, b)| a == b).count();
        let max_diff = s.rows[..same]
            .iter()
            .zip(rows)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0f32, f32::max);
        let min_margin = rows.iter().map(|r| margin(r)).fold(f32::INFINITY, f32::min);
        eprintln!(
            "{name}: seq {i} (prompt {}): {same}/{GENERATE} tokens equal, max |logit diff| {max_diff:.3e} \
             over them, smallest candle top-1 margin {min_margin:.4}",
            s.prompt.len()
        );
        if same < GENERATE {
            bad.push(format!(
                "{name}: seq {i} diverges at token {same}: ours {} (margin {:.5}) vs candle {} \
                 (margin {:.5})",
                s.out[same],
                margin(&s.rows[same]),
                want[same],
                margin(&rows[same])
            ));
        }
    }
    bad
}

#[test]
fn batched_native_forward_reproduces_candle_greedy_tokens() {
    let one_shot = reference(usize::MAX);
    let chunked = reference(7);
    let model = load(ExecPath::Native);
    let mut bad = Vec::new();

    // (a) All four together from the start: whole prompts in one step, then batched decode.
    // Reference: candle with the prompt in one forward.
    let mut a = seqs(&model, [0; 4]);
    let sizes = run(&model, &mut a, usize::MAX);
    assert_eq!(sizes[0], PROMPTS.iter().sum::<usize>());
    bad.extend(compare("together", &a, &one_shot));

    // (b) Prompts in chunks of 7, interleaved with the others' decode steps. Reference: candle
    // with the prompt fed in the same chunks of 7, alone.
    let mut b = seqs(&model, [0; 4]);
    let sizes = run(&model, &mut b, 7);
    assert!(
        sizes.iter().any(|&r| r > 4 && r < 28),
        "mixed prefill/decode steps: {sizes:?}"
    );
    bad.extend(compare("chunked", &b, &chunked));

    // (c) Sequences joining while others decode, prompts in chunks of 7.
    let mut c = seqs(&model, [0, 3, 11, 20]);
    run(&model, &mut c, 7);
    bad.extend(compare("joining", &c, &chunked));

    // Not asserted: chunked prefill against candle's one-forward prefill. The two sum attention
    // in different orders (candle too, see the report), and this model amplifies that.
    for line in compare("chunked vs one-shot candle", &b, &one_shot) {
        eprintln!("(informational) {line}");
    }
    assert!(
        bad.is_empty(),
        "greedy tokens differ from candle:\n{}",
        bad.join("\n")
    );
}

#[test]
fn tensor_path_on_cpu_reproduces_the_same_tokens() {
    let chunked = reference(7);
    let model = load(ExecPath::Tensor);
    assert_eq!(model.path(), ExecPath::Tensor);
    let mut b = seqs(&model, [0, 0, 2, 5]);
    run(&model, &mut b, 7);
    let bad = compare("tensor path", &b, &chunked);
    assert!(
        bad.is_empty(),
        "tensor path tokens differ from candle:\n{}",
        bad.join("\n")
    );
    let native = load(ExecPath::Native);
    let mut n = seqs(&native, [0, 0, 2, 5]);
    run(&native, &mut n, 7);
    for (t, n) in b.iter().zip(&n) {
        assert_eq!(t.out, n.out, "tensor path vs native path");
    }
}
