//! Local engine tests on the embedded model (`scripts/model.sh` puts it in `data/models`).

use super::*;
use crate::device::CpuBackend;

/// The embedded model's path; fails (never skips) when setup has not run.
pub(crate) fn embedded_path() -> PathBuf {
    let data = std::env::var("TURNSTILE_DATA_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../data").to_owned());
    let path = PathBuf::from(data).join("models/SmolLM2-135M-Instruct.Q8_0.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/model.sh (make test does)",
        path.display()
    );
    path
}

/// The embedded model's GGUF metadata.
pub(crate) fn embedded_content() -> gguf_file::Content {
    let mut f = std::fs::File::open(embedded_path()).unwrap();
    gguf_file::Content::read(&mut f).unwrap()
}

fn load() -> LocalModel {
    let loader = LocalLoader {
        path: embedded_path(),
        device: DeviceHost::new(Box::new(CpuBackend), Duration::from_secs(60)),
    };
    loader.load(&|_| {}, &CancellationToken::new()).unwrap()
}

fn ask(text: &str) -> Vec<ChatTurn> {
    vec![ChatTurn {
        role: Role::User,
        content: text.into(),
    }]
}

fn greedy(max_tokens: u32) -> SamplingParams {
    SamplingParams {
        max_tokens,
        temperature: 0.0,
        ..SamplingParams::default()
    }
}

#[test]
fn a_greedy_answer_is_deterministic_and_its_pieces_are_its_text() {
    let model = load();
    let mut pieces = vec![];
    let g = model
        .generate(
            &ask("What is the capital of France?"),
            &greedy(12),
            &CancellationToken::new(),
            &mut |p| pieces.push(p.to_owned()),
        )
        .unwrap();
    assert!(!g.text.is_empty());
    assert_eq!(pieces.concat(), g.text);
    assert!(g.prompt_tokens > 10 && g.completion_tokens > 0 && g.completion_tokens <= 12);
    let again = model
        .generate(
            &ask("What is the capital of France?"),
            &greedy(12),
            &CancellationToken::new(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(again.text, g.text, "a fresh KV cache per generation");
    let sampled = SamplingParams {
        max_tokens: 12,
        seed: 42,
        temperature: 0.8,
        ..SamplingParams::default()
    };
    let a = model
        .generate(
            &ask("Tell me a story."),
            &sampled,
            &CancellationToken::new(),
            &mut |_| {},
        )
        .unwrap();
    let b = model
        .generate(
            &ask("Tell me a story."),
            &sampled,
            &CancellationToken::new(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(a.text, b.text, "same seed, same answer");
}

#[test]
fn cancel_stops_within_a_token() {
    let model = load();
    let cancel = CancellationToken::new();
    let mut n = 0;
    let result = model.generate(
        &ask("Count to one hundred."),
        &greedy(200),
        &cancel,
        &mut |_| {
            n += 1;
            if n == 3 {
                cancel.cancel();
            }
        },
    );
    assert!(matches!(result, Err(GenerateError::Cancelled)));
    assert_eq!(n, 3, "no piece after the cancel");
}

#[test]
fn stop_sequences_are_never_emitted() {
    let model = load();
    let free = model
        .generate(
            &ask("List three fruits."),
            &greedy(30),
            &CancellationToken::new(),
            &mut |_| {},
        )
        .unwrap();
    // Stop on a piece of the free answer's middle: the answer must end right before it.
    let chars: Vec<char> = free.text.chars().collect();
    assert!(chars.len() > 6, "{:?}", free.text);
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let params = SamplingParams {
        stop: vec![stop.clone()],
        ..greedy(30)
    };
    let mut pieces = String::new();
    let g = model
        .generate(
            &ask("List three fruits."),
            &params,
            &CancellationToken::new(),
            &mut |p| pieces.push_str(p),
        )
        .unwrap();
    assert!(!g.text.contains(&stop), "{:?} stops at {stop:?}", g.text);
    assert_eq!(pieces, g.text);
    assert!(free.text.starts_with(&g.text));
    assert_eq!(g.finish_reason, FinishReason::Stop);
}

#[test]
fn a_missing_or_foreign_file_is_a_clear_error() {
    let device = DeviceHost::new(Box::new(CpuBackend), Duration::from_secs(60));
    let loader = LocalLoader {
        path: "/nonexistent/model.gguf".into(),
        device: device.clone(),
    };
    let Err(e) = loader.load(&|_| {}, &CancellationToken::new()) else {
        panic!("loaded a missing file")
    };
    assert!(e.contains("missing"), "{e}");
    let not_gguf = std::env::temp_dir().join(format!("not-a-model-{}.gguf", std::process::id()));
    std::fs::write(&not_gguf, b"hello").unwrap();
    let loader = LocalLoader {
        path: not_gguf.clone(),
        device,
    };
    let Err(e) = loader.load(&|_| {}, &CancellationToken::new()) else {
        panic!("loaded garbage")
    };
    assert!(e.contains("not a GGUF"), "{e}");
    let _ = std::fs::remove_file(not_gguf);
}
