//! Local engine tests on the embedded model (`scripts/model.sh` puts it in `data/models`).

use super::*;
use crate::device::CpuBackend;
use app::chat::FinishReason;

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
        faults: None,
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
fn cancel_from_another_thread_returns_within_a_token() {
    let model = load();
    let cancel = CancellationToken::new();
    let (first_piece, wait) = std::sync::mpsc::channel::<()>();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            wait.recv().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            cancel.cancel();
            Instant::now()
        })
    };
    let mut after_cancel = 0;
    let result = model.generate(
        &ask("Count to one hundred."),
        &greedy(400),
        &cancel,
        &mut |_| {
            let _ = first_piece.send(());
            if cancel.is_cancelled() {
                after_cancel += 1;
            }
        },
    );
    let returned = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    assert!(
        matches!(result, Err(GenerateError::Cancelled)),
        "{result:?}"
    );
    assert!(after_cancel <= 1, "{after_cancel} pieces after the cancel");
    let late = returned.duration_since(cancelled_at);
    assert!(
        late < Duration::from_secs(2),
        "returned {late:?} after the cancel"
    );
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
        faults: None,
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
        faults: None,
    };
    let Err(e) = loader.load(&|_| {}, &CancellationToken::new()) else {
        panic!("loaded garbage")
    };
    assert!(e.contains("not a GGUF"), "{e}");
    let _ = std::fs::remove_file(not_gguf);
}

#[test]
fn a_cancelled_or_foreign_architecture_load_fails_clearly() {
    let device = DeviceHost::new(Box::new(CpuBackend), Duration::from_secs(60));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let loader = LocalLoader {
        path: embedded_path(),
        device: device.clone(),
        faults: None,
    };
    let Err(e) = loader.load(&|_| {}, &cancel) else {
        panic!("a cancelled load succeeded")
    };
    assert!(e.contains("cancelled"), "{e}");
    let qwen = std::env::temp_dir().join(format!("qwen-{}.gguf", std::process::id()));
    let arch = gguf_file::Value::String("qwen2".into());
    let mut f = std::fs::File::create(&qwen).unwrap();
    gguf_file::write(&mut f, &[("general.architecture", &arch)], &[]).unwrap();
    drop(f);
    let loader = LocalLoader {
        path: qwen.clone(),
        device,
        faults: None,
    };
    let Err(e) = loader.load(&|_| {}, &CancellationToken::new()) else {
        panic!("loaded a qwen2 file")
    };
    let _ = std::fs::remove_file(qwen);
    assert_eq!(e, "unsupported architecture qwen2: only llama is supported");
}

#[test]
fn the_loaded_model_describes_itself_and_is_shareable() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let mut fractions = vec![];
    let progress = std::sync::Mutex::new(&mut fractions);
    let loader = LocalLoader {
        path: embedded_path(),
        device: DeviceHost::new(Box::new(CpuBackend), Duration::from_secs(60)),
        faults: None,
    };
    let model = loader
        .load(
            &|f| progress.lock().unwrap().push(f),
            &CancellationToken::new(),
        )
        .unwrap();
    shareable(&model);
    assert_eq!(fractions.last(), Some(&1.0));
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{fractions:?}");
    assert_eq!(model.name(), "SmolLM2-135M-Instruct.Q8_0");
    assert!(model.memory_bytes() > 100_000_000);
    assert!(model.eos_tokens().contains(&2), "{:?}", model.eos_tokens());
    assert_eq!(model.context_length(), 8192, "the file's own context");
}

fn turn(role: Role, content: String) -> ChatTurn {
    ChatTurn { role, content }
}

#[test]
fn old_history_is_trimmed_to_leave_room_for_the_answer() {
    let model = load();
    let long = |tag: &str| format!("{tag} {}", "lorem ipsum dolor ".repeat(120));
    let history = vec![
        turn(Role::System, "Be brief.".into()),
        turn(Role::User, long("FIRST")),
        turn(Role::Assistant, long("SECOND")),
        turn(Role::User, long("THIRD")),
        turn(Role::Assistant, long("FOURTH")),
        turn(Role::User, "LAST question?".into()),
    ];
    let text = |ids: &[u32]| model.tokenizer.decode(ids, false).unwrap();
    // Everything fits with a small answer.
    let all = model.prompt(&history, 16).unwrap();
    assert!(text(&all).contains("FIRST"));
    // Room for all but about two long messages: the oldest exchange goes, the answer fits.
    let n = model.tokenizer.encode(long("X"), false).unwrap().len();
    assert!((100..900).contains(&n), "{n} tokens per long message");
    let room = model.context_length() - 2 * n - 200;
    let ids = model.prompt(&history, room).unwrap();
    let shown = text(&ids);
    assert!(ids.len() + room <= model.context_length());
    assert!(
        shown.starts_with("<|im_start|>system\nBe brief.<|im_end|>"),
        "{shown:.80}"
    );
    assert!(!shown.contains("FIRST") && !shown.contains("SECOND"));
    assert!(shown.contains("<|im_start|>user\nTHIRD") && shown.contains("LAST question?"));
    // Room for more than the context: the last message alone, the answer cut by the context.
    let ids = model.prompt(&history, 10_000).unwrap();
    let shown = text(&ids);
    assert!(!shown.contains("THIRD") && shown.contains("LAST question?"));
    // Even the last message alone is too long: an error, not a panic.
    let huge = vec![turn(Role::User, "hello ".repeat(10_000))];
    let err = model
        .generate(&huge, &greedy(8), &CancellationToken::new(), &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(err, GenerateError::PromptTooLong { needed, context: 8192 } if needed > 8192),
        "{err:?}"
    );
}

#[test]
fn max_tokens_ends_with_length() {
    let model = load();
    let g = model
        .generate(
            &ask("Write a long poem about the sea."),
            &greedy(5),
            &CancellationToken::new(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(g.completion_tokens, 5);
    assert_eq!(g.finish_reason, FinishReason::Length);
}
