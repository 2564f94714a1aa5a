//! The fuzz targets' checks (fuzz/src/checks.rs, included as is) replayed on every committed seed
//! of fuzz/corpus/<target>/ and on every input a fuzzing run has turned up, so `cargo test` keeps
//! them passing without cargo-fuzz or a nightly compiler. See docs/reliability.md, "Fuzzing".

#[path = "../../fuzz/src/checks.rs"]
mod checks;
mod common;

use app::error_code::ErrorCode;
use app::protocol::{ClientMessage, Job, ServerMessage};
use common::{submit, TestServer};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The committed seeds of one target. Inputs libFuzzer adds to a corpus (named by their SHA-1,
/// and ignored by git) are skipped, so a local fuzzing run does not slow this test down.
fn seeds(target: &str) -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            !(name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, text)
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 5,
        "expected a handful of seeds in {}",
        dir.display()
    );
    out
}

#[test]
fn client_message_seeds() {
    for (_path, text) in seeds("client_message") {
        checks::client_message(&text);
    }
}

#[test]
fn calc_input_seeds() {
    for (_path, text) in seeds("calc_input") {
        checks::calc_json(&text);
    }
}

#[test]
fn markdown_seeds() {
    for (_path, text) in seeds("markdown") {
        checks::markdown(&text);
    }
}

/// The seeds mean what their names say: each valid example decodes, each `invalid-*` one is
/// refused (the calculator's by `validate` or already by decoding), so the checks above are not
/// passing on inputs that never got past the first step.
#[test]
fn seeds_are_what_they_claim() {
    for (path, text) in seeds("client_message") {
        let invalid = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("invalid-");
        assert_eq!(
            ClientMessage::decode(&text).is_err(),
            invalid,
            "{}",
            path.display()
        );
    }
    for (path, text) in seeds("calc_input") {
        let invalid = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("invalid-");
        let accepted = serde_json::from_str::<app::protocol::CalcJob>(&text)
            .ok()
            .is_some_and(|job| {
                checks::LIMITS
                    .iter()
                    .any(|limits| turnstile_calc::validate(&job, limits).is_ok())
            });
        assert_eq!(accepted, !invalid, "{}", path.display());
    }
}

/// The markdown checker itself catches what it is there to catch (a checker that passes
/// everything would make the fuzz target useless).
#[test]
fn markdown_checker_rejects_executable_markup() {
    for bad in [
        "<p><script>alert(1)</script></p>",
        "<p><img src=\"x\" onerror=\"alert(1)\"></p>",
        "<p onclick=\"alert(1)\">x</p>",
        "<a href=\"javascript:alert(1)\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">x</a>",
        "<a href=\"&#106;avascript:x\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">x</a>",
        "<a href=\"java\tscript:alert(1)\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">x</a>",
        "<a href=\"data:text/html,x\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">x</a>",
        "<a href=\"/x\">no rel</a>",
        "<p><iframe src=\"//x\"></iframe></p>",
        "<p><style>*{}</style></p>",
        "<object data=\"x\">",
        "<embed src=\"x\">",
        "<td style=\"background:url(x)\">",
        "<code class=\"language-x&quot; onmouseover=&quot;alert(1)\">",
        "<a href=\"/a\" rel=\"nofollow noopener noreferrer\" target=\"_blank\"><a href=\"/b\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">",
        "<a href=\"/a\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">open",
    ] {
        assert!(checks::check_html(bad).is_err(), "passed: {bad}");
    }
    assert_eq!(
        checks::check_html(
            "<p><a href=\"https://x.example/?a=1&amp;b\" rel=\"nofollow noopener noreferrer\" \
             target=\"_blank\" title=\"t &quot;q&quot;\">x</a> &lt;script&gt;</p>\n<hr />\n\
             <table><thead><tr><th style=\"text-align: center\">a</th></tr></thead></table>\n\
             <ol start=\"3\">\n<li>x</li>\n</ol>\n<pre><code class=\"language-c++\">x</code></pre>"
        ),
        Ok(())
    );
    assert!(!checks::scheme_allowed("javascript:alert(1)"));
    assert!(!checks::scheme_allowed("\u{1} JAVASCRIPT:x"));
    assert!(checks::scheme_allowed("/relative:path"));
    assert!(checks::scheme_allowed("mailto:a@b.c"));
}

/// Finding 1 (docs/reliability.md): a chat job's `temperature` or `top_p` beyond f32's range
/// decodes as an infinity (serde's f32 is a cast from f64), so its re-encoding (`null`) is not
/// the message sent. Harmless because chat validation refuses every non-finite value: the job is
/// refused with `invalid_input` before anything is stored or queued.
#[tokio::test]
async fn out_of_range_chat_floats_are_refused() {
    let text = r#"{"type":"submit","client_ref":"c","job":{"kind":"chat","message":"hi","temperature":1e39}}"#;
    match ClientMessage::decode(text) {
        Ok(ClientMessage::Submit {
            job: Job::Chat(chat),
            ..
        }) => assert_eq!(chat.temperature, Some(f32::INFINITY)),
        // Refusing it at decoding would be fine too.
        Ok(other) => panic!("{other:?}"),
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidInput),
    }
    checks::client_message(text);

    let server = TestServer::start(&[]).await;
    let mut c = server.ws().await;
    for job in [
        json!({"kind":"chat","message":"hi","temperature":1e39}),
        json!({"kind":"chat","message":"hi","temperature":-1e39}),
        json!({"kind":"chat","message":"hi","top_p":1e39}),
        json!({"kind":"chat","message":"hi","top_p":-1e39}),
    ] {
        c.send_json(submit("x", job.clone())).await;
        match c.recv().await {
            ServerMessage::Error {
                code,
                client_ref: Some(r),
                ..
            } => assert_eq!((code, r.as_str()), (ErrorCode::InvalidInput, "x"), "{job}"),
            other => panic!("{job}: {other:?}"),
        }
    }
}
