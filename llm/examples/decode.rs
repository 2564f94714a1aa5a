//! Batched decoding speed: B sequences prefilled together, then decoded together greedily.
//!
//! ```sh
//! cargo run --release -p turnstile-llm --example decode -- --model FILE --batch 1,2,4,8,16 \
//!     --prompt-tokens 40 --tokens 128 [--threads N] [--runs 3] [--candle]
//! ```
//! For each batch size: prefill time (all B prompts in one step), mean decode step time,
//! aggregate and per-sequence decode tokens/s (best of `--runs`). Everything runs inside a rayon
//! pool of N threads (default 1). `--candle` also times candle's `quantized_llama::ModelWeights`
//! decoding one sequence the same way (candle's pool set to N threads too).
#![allow(clippy::print_stdout)]

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use std::path::PathBuf;
use std::time::Instant;
use turnstile_llm::{Chunk, LlamaModel};

struct Args {
    model: PathBuf,
    batches: Vec<usize>,
    prompt: usize,
    tokens: usize,
    threads: usize,
    runs: usize,
    candle: bool,
}

fn parse() -> Args {
    let mut a = Args {
        model: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../data/models/SmolLM2-135M-Instruct.Q8_0.gguf"),
        batches: vec![1],
        prompt: 40,
        tokens: 128,
        threads: 1,
        runs: 3,
        candle: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = PathBuf::from(val()),
            "--batch" => {
                a.batches = val()
                    .split(',')
                    .map(|v| v.parse().expect("batch size"))
                    .collect()
            }
            "--prompt-tokens" => a.prompt = val().parse().expect("--prompt-tokens N"),
            "--tokens" => a.tokens = val().parse().expect("--tokens N"),
            "--threads" => a.threads = val().parse().expect("--threads N"),
            "--runs" => a.runs = val().parse().expect("--runs N"),
            "--candle" => a.candle = true,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// A deterministic prompt of `len` ids for sequence `seq` (ChatML start, then varied ids).
fn prompt(seq: usize, len: usize, vocab: usize) -> Vec<u32> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64 ^ (seq as u64 + 1);
    let mut p = vec![1u32];
    while p.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p.push(3 + (s % (vocab as u64 - 3)) as u32);
    }
    p
}

fn main() {
    let args = parse();
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", args.threads.to_string());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .expect("pool");
    let mut file = std::fs::File::open(&args.model)
        .unwrap_or_else(|e| panic!("{}: {e}", args.model.display()));
    let content = gguf_file::Content::read(&mut file).expect("GGUF");
    let t0 = Instant::now();
    let model = LlamaModel::from_gguf(&content, &mut file, &Device::Cpu).expect("load");
    let vocab = model.config().vocab;
    println!(
        "model loaded in {:.2} s; {} threads, kernel {:?}, prompt {} tokens, {} decode steps, best of {}",
        t0.elapsed().as_secs_f64(),
        args.threads,
        turnstile_llm::kernel::Level::detect(),
        args.prompt,
        args.tokens,
        args.runs
    );
    println!(
        "{:>5} {:>12} {:>14} {:>14} {:>14}",
        "B", "prefill ms", "step ms", "agg tok/s", "per-seq tok/s"
    );
    pool.install(|| {
        for &b in &args.batches {
            let (mut best_prefill, mut best_decode) = (f64::MAX, f64::MAX);
            for _ in 0..args.runs {
                let (p, d) = run(&model, b, &args, vocab);
                best_prefill = best_prefill.min(p);
                best_decode = best_decode.min(d);
            }
            let step = best_decode / args.tokens as f64;
            println!(
                "{:>5} {:>12.1} {:>14.2} {:>14.1} {:>14.1}",
                b,
                best_prefill * 1e3,
                step * 1e3,
                b as f64 / step,
                1.0 / step
            );
        }
    });
    if args.candle {
        let mut best = f64::MAX;
        for _ in 0..args.runs {
            best = best.min(candle_decode(&args, vocab));
        }
        let step = best / args.tokens as f64;
        println!(
            "candle ModelWeights, B=1: step {:.2} ms, {:.1} tok/s",
            step * 1e3,
            1.0 / step
        );
    }
}

/// One measurement: (prefill seconds, decode seconds for all steps).
fn run(model: &LlamaModel, b: usize, args: &Args, vocab: usize) -> (f64, f64) {
    let prompts: Vec<Vec<u32>> = (0..b).map(|s| prompt(s, args.prompt, vocab)).collect();
    let mut caches: Vec<_> = (0..b)
        .map(|_| model.new_cache(args.prompt + args.tokens).expect("cache"))
        .collect();
    let t = Instant::now();
    let mut batch: Vec<Chunk> = prompts
        .iter()
        .zip(caches.iter_mut())
        .map(|(p, cache)| Chunk {
            tokens: p,
            cache,
            want_logits: true,
        })
        .collect();
    let logits = model.forward(&mut batch).expect("prefill");
    let prefill = t.elapsed().as_secs_f64();
    let mut next: Vec<[u32; 1]> = (0..b).map(|i| [logits.argmax(i)]).collect();
    let t = Instant::now();
    for _ in 0..args.tokens {
        let mut batch: Vec<Chunk> = next
            .iter()
            .zip(caches.iter_mut())
            .map(|(tok, cache)| Chunk {
                tokens: tok,
                cache,
                want_logits: true,
            })
            .collect();
        let logits = model.forward(&mut batch).expect("decode");
        for (i, n) in next.iter_mut().enumerate() {
            n[0] = logits.argmax(i);
        }
    }
    (prefill, t.elapsed().as_secs_f64())
}

/// candle's ModelWeights decoding one sequence: seconds for all decode steps.
fn candle_decode(args: &Args, vocab: usize) -> f64 {
    let mut file = std::fs::File::open(&args.model).expect("model");
    let content = gguf_file::Content::read(&mut file).expect("GGUF");
    let mut m = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
        content,
        &mut file,
        &Device::Cpu,
    )
    .expect("candle model");
    let dev = Device::Cpu;
    let p = prompt(0, args.prompt, vocab);
    let logits = m
        .forward(
            &Tensor::new(p.as_slice(), &dev)
                .unwrap()
                .unsqueeze(0)
                .unwrap(),
            0,
        )
        .unwrap();
    let mut tok = logits
        .squeeze(0)
        .unwrap()
        .argmax(0)
        .unwrap()
        .to_scalar::<u32>()
        .unwrap();
    let t = Instant::now();
    for i in 0..args.tokens {
        let input = Tensor::new(&[tok], &dev).unwrap().unsqueeze(0).unwrap();
        let logits = m.forward(&input, args.prompt + i).unwrap();
        tok = logits
            .squeeze(0)
            .unwrap()
            .argmax(0)
            .unwrap()
            .to_scalar::<u32>()
            .unwrap();
    }
    t.elapsed().as_secs_f64()
}
