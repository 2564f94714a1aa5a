//! Decode speed of a GGUF chat model on this machine's CPU: loads the model with Turnstile's own
//! engine (`LocalLoader`, `LocalModel::generate`), answers a fixed prompt greedily a few times,
//! and prints the prompt size, time to first token and decode tokens per second (medians).
//!
//! ```sh
//! cargo run --release -p server --example decode -- \
//!     --model data/models/SmolLM2-135M-Instruct.Q4_1.gguf --tokens 128 [--runs 5]
//! ```
//!
//! A bare path and token count (`decode FILE 128`) work too. One thread; the model is loaded
//! once and shared by the runs, each with a fresh KV cache.
#![allow(clippy::print_stdout)]

use app::chat::{ChatTurn, Role};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use turnstile_server::device::{CpuBackend, DeviceHost};
use turnstile_server::model::local::LocalLoader;
use turnstile_server::model::manager::Loader;
use turnstile_server::model::sampling::SamplingParams;

/// What to measure.
struct Args {
    /// The GGUF file.
    model: String,
    /// Tokens to generate per run.
    tokens: u32,
    /// Runs to take the median of.
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        model: "data/models/SmolLM2-135M-Instruct.Q8_0.gguf".into(),
        tokens: 128,
        runs: 5,
    };
    let mut it = std::env::args().skip(1);
    let mut positional = 0;
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--model" => a.model = value(),
            "--tokens" => a.tokens = value().parse().expect("--tokens takes a number"),
            "--runs" => a.runs = value().parse().expect("--runs takes a number"),
            _ if positional == 0 => (a.model, positional) = (arg.clone(), 1),
            _ => a.tokens = arg.parse().expect("the token count is a number"),
        }
    }
    assert!(
        a.runs > 0 && a.tokens > 1,
        "need at least one run of two tokens"
    );
    a
}

fn median(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

fn main() {
    let Args {
        model: path,
        tokens,
        runs,
    } = args();
    let loader = LocalLoader {
        path: path.clone().into(),
        device: DeviceHost::new(Box::new(CpuBackend), Duration::from_secs(60)),
        faults: None,
    };
    let t = Instant::now();
    let model = loader
        .load(&|_| {}, &CancellationToken::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let load = t.elapsed();
    let messages = [ChatTurn {
        role: Role::User,
        content: "Write a long essay about the history of computing.".into(),
    }];
    // Greedy and no repeat penalty: the same tokens every run, and nothing stops it early
    // (checked below), so every run decodes exactly `tokens` tokens.
    let params = SamplingParams {
        max_tokens: tokens,
        temperature: 0.0,
        repeat_penalty: 1.0,
        ..SamplingParams::default()
    };
    let (mut speeds, mut ttfts, mut last) = (vec![], vec![], None);
    for _ in 0..runs {
        let g = model
            .generate(&messages, &params, &CancellationToken::new(), &mut |_| {})
            .unwrap_or_else(|e| panic!("generation failed: {e}"));
        speeds.push(f64::from(g.completion_tokens - 1) / g.decode_time.as_secs_f64());
        ttfts.push(g.time_to_first_token.as_secs_f64() * 1e3);
        last = Some(g);
    }
    let g = last.expect("at least one run");
    let (slow, speed, fast) = median(speeds);
    let (_, ttft, _) = median(ttfts);
    println!("model:       {path} ({})", model.name());
    println!("load:        {:.0} ms", load.as_secs_f64() * 1e3);
    println!("prompt:      {} tokens", g.prompt_tokens);
    println!(
        "generated:   {} tokens ({:?})",
        g.completion_tokens, g.finish_reason
    );
    println!("first token: {ttft:.1} ms (median of {runs})");
    println!("decode:      {speed:.1} tokens/s (median of {runs}; min {slow:.1}, max {fast:.1})");
    if g.completion_tokens < tokens {
        println!("note: the answer ended early; decode figures cover fewer tokens");
    }
}
