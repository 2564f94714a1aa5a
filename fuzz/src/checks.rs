//! The properties the fuzz targets check, one function per target. Each panics (so libFuzzer
//! records a crash) when a property fails; nothing here returns an error.
//!
//! This file is shared: the fuzz crate compiles it as `turnstile_fuzz::checks`, and
//! `server/tests/fuzz_regressions.rs` includes it with `#[path]`, so the committed seed corpora
//! and every minimised crash are replayed by `cargo test` through exactly the same checks. It may
//! use only what both see: `app` (the wire types, no features), `turnstile_calc`, `serde_json`,
//! `candle_core`; never the server, so fuzzing builds neither it nor Leptos.

use app::error_code::ErrorCode;
use app::protocol::{CalcJob, ClientMessage, Job, Op, Undecodable};
use app::tensor::{element_count, TensorInput, MAX_DIMS};
use std::time::Duration;
use turnstile_calc::{self as calc, CalcError, CalcLimits};

// ---------------------------------------------------------------------------------------------
// client_message
// ---------------------------------------------------------------------------------------------

/// A client WebSocket frame: `ClientMessage::decode` never panics; what it accepts re-encodes to JSON that
/// decodes to the same message; what it refuses is `bad_message` (no `client_ref`) or, for a
/// `submit`, `invalid_input`; and anything `serde_json::from_str::<ClientMessage>` accepts,
/// `decode` accepts too, as the same message.
///
/// One known exception (docs/reliability.md, finding 1): a chat job's `temperature` or `top_p`
/// beyond f32's range (`1e39`) decodes as an infinity, which JSON writes as `null`; chat
/// validation refuses such a job as `invalid_input`, so those two fields are compared only
/// when finite.
pub fn client_message(text: &str) {
    let decoded = ClientMessage::decode(text);
    match &decoded {
        Ok(msg) => {
            let msg = finite_only(msg);
            let once = serde_json::to_string(&msg).expect("a decoded message serializes");
            let again = ClientMessage::decode(&once).unwrap_or_else(|e| {
                panic!("{text:?} decodes, but its re-encoding {once} does not: {e:?}")
            });
            let twice =
                serde_json::to_string(&finite_only(&again)).expect("a decoded message serializes");
            assert_eq!(once, twice, "re-encoding {text:?} is not stable");
        }
        Err(Undecodable {
            code,
            client_ref,
            message,
        }) => {
            assert!(
                matches!(code, ErrorCode::BadMessage | ErrorCode::InvalidInput),
                "decode refused {text:?} with {code:?}"
            );
            assert!(!message.is_empty(), "an empty error message for {text:?}");
            if *code == ErrorCode::BadMessage {
                assert!(
                    client_ref.is_none(),
                    "bad_message with a client_ref for {text:?}"
                );
            }
        }
    }
    if let Ok(direct) = serde_json::from_str::<ClientMessage>(text) {
        let via = decoded.as_ref().unwrap_or_else(|e| {
            panic!(
                "serde_json::from_str accepts {text:?} but ClientMessage::decode refuses it: {e:?}"
            )
        });
        assert_eq!(
            serde_json::to_string(&direct).expect("serializes"),
            serde_json::to_string(via).expect("serializes"),
            "from_str and decode disagree on {text:?}"
        );
    }
}

/// `msg` with a chat job's non-finite `temperature` and `top_p` left out (see above). JSON has no
/// NaN, so a non-finite value from `decode` is always an infinity.
fn finite_only(original: &ClientMessage) -> ClientMessage {
    let mut msg = original.clone();
    if let ClientMessage::Submit {
        job: Job::Chat(chat),
        ..
    } = &mut msg
    {
        for value in [&mut chat.temperature, &mut chat.top_p] {
            if value.is_some_and(|v| !v.is_finite()) {
                assert!(
                    value.is_some_and(f32::is_infinite),
                    "a NaN decoded: {original:?}"
                );
                *value = None;
            }
        }
    }
    msg
}

// ---------------------------------------------------------------------------------------------
// calc_input
// ---------------------------------------------------------------------------------------------

/// The caps the calculator is checked against: the server's defaults (`--max-elements`,
/// `--max-op-cost`, no test mode), and tight ones in test mode with a very short `sleep`.
pub const LIMITS: [CalcLimits; 2] = [
    CalcLimits {
        max_elements: 1 << 20,
        max_op_cost: 1 << 32,
        test_mode: false,
        max_sleep: Duration::from_secs(30),
    },
    CalcLimits {
        max_elements: 256,
        max_op_cost: 1 << 14,
        test_mode: true,
        max_sleep: Duration::from_micros(200),
    },
];

/// Jobs this cheap (validated cost in flops) are also executed on the CPU.
pub const EXECUTE_MAX_COST: u64 = 1 << 14;

/// A calculator job as JSON, in both wire forms: the HTTP body (`CalcJob`, no `kind`) and the
/// WebSocket's `Job` (`"kind":"calc"`). Decoding never panics; see [`calc_job`] for the rest.
pub fn calc_json(text: &str) {
    if let Ok(job) = serde_json::from_str::<CalcJob>(text) {
        calc_job(&job);
    }
    if let Ok(Job::Calc(job)) = serde_json::from_str::<Job>(text) {
        calc_job(&job);
    }
}

/// One decoded job: `validate` never panics and refuses only with `invalid_input`; what it accepts
/// fits the caps it was given; and a small accepted job `execute`s on the CPU without panicking,
/// successfully, to exactly the shape `validate` promised (a cancelled token gives `Cancelled`).
pub fn calc_job(job: &CalcJob) {
    for tensor in [&job.a, &job.b].into_iter().flatten() {
        assert!(
            tensor.shape().len() <= MAX_DIMS,
            "an operand of over {MAX_DIMS} dimensions decoded: {job:?}"
        );
        if let TensorInput::Literal(t) = tensor {
            assert_eq!(
                t.data.len(),
                element_count(&t.shape),
                "a literal that does not fill its shape decoded: {job:?}"
            );
        }
    }
    let mut executed = false;
    for limits in &LIMITS {
        match calc::validate(job, limits) {
            Ok((shape, cost)) => {
                let n = element_count(&shape);
                assert!(
                    n <= limits.max_elements,
                    "accepted a result of {n} elements: {job:?}"
                );
                assert!(
                    cost <= limits.max_op_cost,
                    "accepted a cost of {cost}: {job:?}"
                );
                if job.op == Op::Sleep {
                    assert!(
                        limits.test_mode,
                        "sleep accepted outside test mode: {job:?}"
                    );
                    assert!(shape.is_empty());
                }
                if !executed && cost <= EXECUTE_MAX_COST && sleep_is_short(job) {
                    executed = true;
                    execute_checked(job, &shape);
                }
            }
            Err(CalcError::InvalidInput(message)) => {
                assert!(!message.is_empty(), "an empty refusal for {job:?}");
            }
            Err(e) => panic!("validate refused {job:?} with {e:?}, not invalid_input"),
        }
    }
}

/// A `sleep` runs only if it is at most a millisecond (so fuzzing stays fast).
fn sleep_is_short(job: &CalcJob) -> bool {
    job.op != Op::Sleep || job.sleep_duration().unwrap_or_default() <= Duration::from_millis(1)
}

fn execute_checked(job: &CalcJob, shape: &[usize]) {
    let device = candle_core::Device::Cpu;
    let out = calc::execute(job, &device, || false)
        .unwrap_or_else(|e| panic!("validated job failed on the CPU with {e:?}: {job:?}"));
    assert_eq!(
        out.shape, shape,
        "the result's shape is not the validated one: {job:?}"
    );
    assert_eq!(
        out.data.len(),
        element_count(shape),
        "the result does not fill its shape: {job:?}"
    );
    assert!(
        matches!(
            calc::execute(job, &device, || true),
            Err(CalcError::Cancelled)
        ),
        "a cancelled job ran: {job:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// markdown
// ---------------------------------------------------------------------------------------------

/// Model output rendered as Markdown: `render` never panics, and its HTML holds only markup the
/// module writes itself (see `app/src/markdown.rs`): every tag is from pulldown-cmark's small
/// vocabulary for the enabled syntax, with only the attributes that syntax and the module write —
/// links as `<a href=SAFE rel="nofollow noopener noreferrer" target="_blank">` (plus an escaped
/// `title` and `class="image-link"` for images), `class="language-…"` on code from safe
/// characters, `start` on lists, `text-align` on table cells. So no `<script>`, `<iframe>`,
/// `<object>`, `<embed>`, `<style>`, `<img>`, no `on…=` handler, no `style` from the input, and
/// no `href` whose scheme, as a browser reads it, is anything but http, https or mailto.
/// Links are never nested and every `<a>` is closed.
pub fn markdown(input: &str) {
    let html = app::markdown::render(input);
    check_html(&html).unwrap_or_else(|why| panic!("{why}\ninput: {input:?}\noutput: {html:?}"));
}

/// The tags the renderer may write (pulldown-cmark with tables and strikethrough, no raw HTML).
const TAGS: [&str; 25] = [
    "p",
    "em",
    "strong",
    "del",
    "code",
    "pre",
    "a",
    "ul",
    "ol",
    "li",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "br",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
];

/// Checks rendered HTML against the promise above; says what is wrong.
pub fn check_html(html: &str) -> Result<(), String> {
    let lower = html.to_ascii_lowercase();
    for raw in [
        "<script", "<iframe", "<object", "<embed", "<style", "<img", "<svg", "<math",
    ] {
        if lower.contains(raw) {
            return Err(format!("raw {raw} in the output"));
        }
    }
    let mut anchors = 0usize;
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').ok_or("a '<' that starts no tag")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if !TAGS.contains(&name) {
                return Err(format!("closing tag </{name}>"));
            }
            if name == "a" {
                anchors = anchors.checked_sub(1).ok_or("</a> without <a>")?;
            }
            continue;
        }
        let (name, attrs) = parse_tag(tag)?;
        if !TAGS.contains(&name) {
            return Err(format!("tag <{name}>"));
        }
        for (attr, value) in &attrs {
            let attr_lower = attr.to_ascii_lowercase();
            if attr_lower.starts_with("on") {
                return Err(format!("event handler {attr} on <{name}>"));
            }
            let ok = match (name, attr.as_str()) {
                ("a", "href") => {
                    if !scheme_allowed(value) {
                        return Err(format!("href {value:?} (a script URL?)"));
                    }
                    true
                }
                ("a", "rel") => value == "nofollow noopener noreferrer",
                ("a", "target") => value == "_blank",
                ("a", "title") => true,
                ("a", "class") => value == "image-link",
                ("code", "class") => value.strip_prefix("language-").is_some_and(|l| {
                    !l.is_empty()
                        && l.chars().count() <= 32
                        && l.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.' | '#')
                        })
                }),
                ("ol", "start") => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
                ("th" | "td", "style") => matches!(
                    value.as_str(),
                    "text-align: left" | "text-align: center" | "text-align: right"
                ),
                _ => false,
            };
            if !ok {
                return Err(format!("attribute {attr}={value:?} on <{name}>"));
            }
        }
        if name == "a" {
            for needed in ["href", "rel", "target"] {
                if !attrs.iter().any(|(a, _)| a == needed) {
                    return Err(format!("<a> without {needed}"));
                }
            }
            if anchors > 0 {
                return Err("a link inside a link".into());
            }
            anchors += 1;
        }
    }
    if anchors != 0 {
        return Err("an <a> left open".into());
    }
    Ok(())
}

/// A tag's attributes, in order: (name, value with its entities decoded).
type Attributes = Vec<(String, String)>;

/// `name attr="value" …` (an optional trailing `/` for `<hr />` and `<br />`), with each value's
/// entities decoded. Every value must be double-quoted and may hold only the five entities the
/// writers produce (`&amp;` `&lt;` `&gt;` `&quot;` `&#39;`), so what is checked is what a browser
/// reads.
fn parse_tag(tag: &str) -> Result<(&str, Attributes), String> {
    let tag = tag.strip_suffix(" /").unwrap_or(tag);
    let name_end = tag.find(' ').unwrap_or(tag.len());
    let (name, mut rest) = tag.split_at(name_end);
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("odd tag <{tag}>"));
    }
    let mut attrs = Vec::new();
    loop {
        rest = match rest.strip_prefix(' ') {
            Some(r) => r,
            None if rest.is_empty() => break,
            None => return Err(format!("odd attributes in <{tag}>")),
        };
        let eq = rest
            .find("=\"")
            .ok_or_else(|| format!("an unquoted attribute in <{tag}>"))?;
        let attr = &rest[..eq];
        if attr.is_empty() || !attr.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("odd attribute name {attr:?} in <{tag}>"));
        }
        let value_start = eq + 2;
        let close = rest[value_start..]
            .find('"')
            .ok_or_else(|| format!("an unclosed attribute in <{tag}>"))?;
        let raw = &rest[value_start..value_start + close];
        attrs.push((attr.to_owned(), decode_entities(raw)?));
        rest = &rest[value_start + close + 1..];
    }
    Ok((name, attrs))
}

fn decode_entities(raw: &str) -> Result<String, String> {
    if raw.contains(['<', '>', '\'']) {
        return Err(format!(
            "an unescaped character in the attribute value {raw:?}"
        ));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let (entity, c) = [
            ("&amp;", '&'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&quot;", '"'),
            ("&#39;", '\''),
        ]
        .into_iter()
        .find(|(e, _)| rest.starts_with(e))
        .ok_or_else(|| {
            format!("an unexpected entity or bare '&' in the attribute value {raw:?}")
        })?;
        out.push(c);
        rest = &rest[entity.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether a URL's scheme, read as the WHATWG URL parser does (leading and trailing C0 controls
/// and spaces stripped, tabs and newlines removed anywhere, a scheme being a letter then letters,
/// digits, `+`, `-` or `.` before a `:`, case-insensitive), is absent or http, https or mailto.
/// Independent of `app::markdown::is_safe_url` on purpose.
pub fn scheme_allowed(url: &str) -> bool {
    let cleaned: String = url
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let lower = cleaned.to_ascii_lowercase();
    if lower.starts_with("javascript:")
        || lower.starts_with("vbscript:")
        || lower.starts_with("data:")
    {
        return false;
    }
    let mut chars = cleaned.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() => {}
        _ => return true,
    }
    for (i, c) in chars {
        if c == ':' {
            return matches!(lower[..i].as_ref(), "http" | "https" | "mailto");
        }
        if !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
            return true;
        }
    }
    true
}
