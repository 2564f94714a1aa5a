//! Decode speed of a GGUF chat model on this machine's CPU: loads the model with Turnstile's own
//! engine, answers a fixed prompt greedily a few times, and prints the prompt size, time to first
//! token and decode tokens per second (median of the runs).
//!
//! `cargo run -p server --example decode -- data/models/SmolLM2-135M-Instruct.Q4_1.gguf 128`
#![allow(clippy::print_stdout)]

use app::chat::{ChatTurn, Role};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use turnstile_server::device::{CpuBackend, DeviceHost};
use turnstile_server::model::local::LocalLoader;
use turnstile_server::model::manager::Loader;
use turnstile_server::model::sampling::SamplingParams;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "data/models/SmolLM2-135M-Instruct.Q8_0.gguf".into());
    let tokens: u32 = args.next().and_then(|t| t.parse().ok()).unwrap_or(128);
    let runs = 5;
    let loader = LocalLoader {
        path: path.clone().into(),
        device: DeviceHost::new(Box::new(CpuBackend), Duration::from_secs(60)),
    };
    let t = std::time::Instant::now();
    let model = loader
        .load(&|_| {}, &CancellationToken::new())
        .expect("the model loads");
    let load = t.elapsed();
    let messages = [ChatTurn {
        role: Role::User,
        content: "Write a long essay about the history of computing.".into(),
    }];
    let params = SamplingParams {
        max_tokens: tokens,
        temperature: 0.0,
        repeat_penalty: 1.0,
        ..SamplingParams::default()
    };
    let mut speeds = vec![];
    let mut ttfts = vec![];
    let mut last = None;
    for _ in 0..runs {
        let g = model
            .generate(&messages, &params, &CancellationToken::new(), &mut |_| {})
            .expect("generation works");
        speeds.push(f64::from(g.completion_tokens - 1) / g.decode_time.as_secs_f64());
        ttfts.push(g.time_to_first_token.as_secs_f64() * 1e3);
        last = Some(g);
    }
    speeds.sort_by(f64::total_cmp);
    ttfts.sort_by(f64::total_cmp);
    let g = last.unwrap();
    println!(
        "{path}: load {:.0} ms, prompt {} tokens, generated {} tokens, first token {:.1} ms (median), decode {:.1} tokens/s (median of {runs}; min {:.1}, max {:.1})",
        load.as_secs_f64() * 1e3,
        g.prompt_tokens,
        g.completion_tokens,
        ttfts[runs / 2],
        speeds[runs / 2],
        speeds[0],
        speeds[runs - 1],
    );
}
