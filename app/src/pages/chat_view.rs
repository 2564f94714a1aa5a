//! The chat page's presentation: the words it shows for each state of the answer in flight (the
//! queue/loading banner, the polite announcements), the streaming cursor, the page's URLs, and
//! the markup of one thread message and of the conversation list. Everything here is pure or
//! renders only what it is given; the page ([`super::chat`]) owns the state and the I/O.
//!
//! Assistant messages are markdown rendered by [`crate::markdown::render`] (in the browser loaded
//! on demand, see [`super::chat_markdown`]), which escapes every raw HTML construct and drops
//! unsafe URLs, so its output may be set with `inner_html`.
//! Concurrency: none (runs on the browser's single-threaded event loop, or in the server render).

use crate::chat::{ConversationId, ConversationSummary, MessageStatus, Role};
use crate::pages::chat_markdown::{Markdown, Render};
use crate::pages::chat_state::{AnswerPhase, ChatTracker, ThreadMessage};
use crate::pages::format;
use leptos::prelude::*;

/// The blinking cursor at the end of a streaming answer (static markup, never from the model).
pub const CURSOR_HTML: &str = r#"<span class="chat-cursor" aria-hidden="true"></span>"#;

/// Most tokens a `max_tokens` URL parameter may ask for (the server applies its own cap too).
pub const MAX_TOKENS_LIMIT: u32 = 4096;

/// The banner above the composer while the answer cannot stream yet: its place in the queue,
/// the model loading, or a connection being restored. `None` when there is nothing to wait for.
pub fn banner_text(tracker: &ChatTracker) -> Option<String> {
    if tracker.is_reconnecting() {
        return Some("Connection lost · reconnecting…".into());
    }
    let text = match tracker.phase() {
        AnswerPhase::Sending => "Sending…".into(),
        AnswerPhase::Resuming => "Picking up your answer…".into(),
        AnswerPhase::Waiting { position, eta_ms } => format!(
            "Position {position} · about {} s",
            format::eta_seconds(*eta_ms)
        ),
        AnswerPhase::Loading { progress: Some(p) } => format!("Loading model… {}%", percent(*p)),
        AnswerPhase::Loading { progress: None } => "Loading model…".into(),
        _ => return None,
    };
    Some(if tracker.is_stopping() {
        format!("{text} · stopping…")
    } else {
        text
    })
}

/// A fraction as a whole percentage, clamped to 0–100.
fn percent(fraction: f32) -> u32 {
    (fraction.clamp(0.0, 1.0) * 100.0).round() as u32
}

/// What the polite live region says: the queue position while waiting, the model loading, the
/// start of the answer and how it ended; never the tokens themselves (that would be chatty).
pub fn live_text(tracker: &ChatTracker) -> String {
    match tracker.phase() {
        AnswerPhase::Idle | AnswerPhase::Sending | AnswerPhase::Resuming => String::new(),
        AnswerPhase::Waiting { position, .. } => format!("Position {position} in the queue"),
        AnswerPhase::Loading { .. } => "Loading the model".into(),
        AnswerPhase::Streaming => "The answer has started".into(),
        AnswerPhase::Done { .. } => "The answer is complete".into(),
        AnswerPhase::Stopped => "The answer was stopped".into(),
        // Failures are announced by the error's own `role="alert"`.
        AnswerPhase::Failed { .. } | AnswerPhase::Gone => String::new(),
    }
}

/// `html` with the [`CURSOR_HTML`] placed right after the last text, inside the closing tags that
/// end the document (so it sits at the end of the last paragraph, list item or code line rather
/// than on a line of its own).
pub fn with_cursor(html: &str) -> String {
    let mut end = html.trim_end().len();
    // Step back over the trailing closing tags (and the newlines between them).
    loop {
        let head = html[..end].trim_end();
        match head.strip_suffix('>') {
            Some(rest) => match rest.rfind('<') {
                Some(open) if rest[open..].starts_with("</") => end = open,
                _ => break,
            },
            None => {
                end = head.len();
                break;
            }
        }
    }
    let mut out = String::with_capacity(html.len() + CURSOR_HTML.len());
    out.push_str(&html[..end]);
    out.push_str(CURSOR_HTML);
    out.push_str(&html[end..]);
    out
}

/// The page's URL for a conversation (`/chat?c=<id>`), or for a new one (`/chat`), keeping a
/// `max_tokens` limit given in the URL.
///
/// Inside the widget (`/embed/chat`) the links stay on the embed route.
pub fn chat_href(conversation: Option<&ConversationId>, max_tokens: Option<u32>) -> String {
    let base = if crate::pages::chat_browser::embedded() {
        "/embed/chat"
    } else {
        "/chat"
    };
    let mut params = Vec::new();
    if let Some(id) = conversation {
        params.push(format!("c={}", encode_query_value(&id.0)));
    }
    if let Some(n) = max_tokens {
        params.push(format!("max_tokens={n}"));
    }
    if params.is_empty() {
        base.into()
    } else {
        format!("{base}?{}", params.join("&"))
    }
}

/// Percent-encodes everything but unreserved characters, for a query value or a path segment.
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `max_tokens` URL parameter, when it is a whole number from 1 to [`MAX_TOKENS_LIMIT`]
/// (anything else is ignored and the server's default applies).
pub fn parse_max_tokens(value: Option<&str>) -> Option<u32> {
    value
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| (1..=MAX_TOKENS_LIMIT).contains(n))
}

/// Whether a key press in the composer sends: Enter without Shift, outside an input method's
/// composition (Shift+Enter inserts a newline).
pub fn is_send_key(key: &str, shift: bool, composing: bool) -> bool {
    key == "Enter" && !shift && !composing
}

/// The badge for a message that did not complete.
pub fn status_label(status: MessageStatus) -> Option<&'static str> {
    match status {
        MessageStatus::Complete => None,
        MessageStatus::Stopped => Some("Stopped"),
        MessageStatus::Failed => Some("Failed"),
    }
}

/// The wire name of a status, for `data-status`.
pub fn status_name(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Complete => "complete",
        MessageStatus::Stopped => "stopped",
        MessageStatus::Failed => "failed",
    }
}

/// One message of the thread, assistant messages' Markdown rendered by `render`. Assistant
/// messages get Copy, and the last one Regenerate when `regenerate` is given.
pub fn message_view(
    message: ThreadMessage,
    render: Render,
    copied: Signal<bool>,
    on_copy: impl Fn() + 'static,
    regenerate: Option<Box<dyn Fn()>>,
) -> AnyView {
    let status = status_name(message.status);
    let badge = status_label(message.status).map(|label| {
        view! { <span class="badge warn chat-msg-status" data-testid="chat-status">{label}</span> }
    });
    match message.role {
        Role::User | Role::System => view! {
            <article class="chat-msg chat-msg-user" data-testid="chat-message" data-role=message.role.as_str() data-status=status aria-label="You said">
                <div class="chat-msg-body chat-plain">{message.content}</div>
            </article>
        }
        .into_any(),
        Role::Assistant => {
            let html = render(&message.content);
            view! {
                <article class="chat-msg chat-msg-assistant" data-testid="chat-message" data-role="assistant" data-status=status aria-label="The model answered">
                    <div class="chat-msg-body md" inner_html=html></div>
                    <div class="chat-msg-foot">
                        {badge}
                        <button
                            type="button"
                            class="button small"
                            data-testid="chat-copy"
                            aria-label="Copy this answer"
                            on:click=move |_| on_copy()
                        >
                            {move || if copied.get() { "Copied" } else { "Copy" }}
                        </button>
                        {regenerate.map(|regenerate| view! {
                            <button
                                type="button"
                                class="button small"
                                data-testid="chat-regenerate"
                                aria-label="Regenerate this answer"
                                on:click=move |_| regenerate()
                            >
                                "Regenerate"
                            </button>
                        })}
                    </div>
                </article>
            }
            .into_any()
        }
    }
}

/// The answer in flight: its markdown so far with the blinking cursor at its end (only the cursor
/// while the renderer is still on its way).
pub fn answer_view(text: Signal<String>, md: Markdown) -> AnyView {
    view! {
        <article class="chat-msg chat-msg-assistant chat-answer" data-testid="chat-answer" aria-busy="true" aria-label="The model is answering">
            <div class="chat-msg-body md" inner_html=move || with_cursor(&text.with(|t| md.html(t)))></div>
        </article>
    }
    .into_any()
}

/// The conversation list: links to `/chat?c=<id>`, the shown one marked current.
pub fn conversation_list(
    conversations: Signal<Vec<ConversationSummary>>,
    shown: Signal<Option<ConversationId>>,
    max_tokens: Option<u32>,
) -> AnyView {
    view! {
        <ul class="chat-conversations" data-testid="chat-conversations">
            {move || {
                conversations
                    .get()
                    .into_iter()
                    .map(|c| {
                        let href = chat_href(Some(&c.id), max_tokens);
                        let id = c.id.clone();
                        let current = move || shown.with(|s| s.as_ref() == Some(&id)).then_some("page");
                        let count = match c.message_count {
                            1 => "1 message".to_string(),
                            n => format!("{n} messages"),
                        };
                        view! {
                            <li>
                                <a class="chat-conversation" data-testid="chat-conversation" href=href aria-current=current>
                                    <span class="chat-conversation-title">{c.title}</span>
                                    <span class="chat-conversation-meta">{count}</span>
                                </a>
                            </li>
                        }
                    })
                    .collect_view()
            }}
        </ul>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{JobId, ServerMessage};

    fn waiting_tracker() -> ChatTracker {
        let mut t = ChatTracker::default();
        t.submitted("c1".into(), None, false);
        t.apply(ServerMessage::Accepted {
            client_ref: "c1".into(),
            job_id: JobId("j".into()),
            seq: 0,
            position: 3,
            queue_length: 3,
            eta_ms: 4200,
            conversation_id: None,
        });
        t
    }

    #[test]
    fn the_banner_shows_the_queue_then_the_load_then_nothing() {
        let mut t = ChatTracker::default();
        assert_eq!(banner_text(&t), None);
        t.submitted("c1".into(), None, false);
        assert_eq!(banner_text(&t).as_deref(), Some("Sending…"));
        let mut t = waiting_tracker();
        assert_eq!(banner_text(&t).as_deref(), Some("Position 3 · about 4.2 s"));
        t.stop_requested();
        assert_eq!(
            banner_text(&t).as_deref(),
            Some("Position 3 · about 4.2 s · stopping…")
        );
        let mut t = waiting_tracker();
        let job = JobId("j".into());
        t.apply(ServerMessage::Started {
            job_id: job.clone(),
            seq: 1,
            waited_ms: 5,
        });
        assert_eq!(banner_text(&t), None);
        t.apply(ServerMessage::Loading {
            job_id: job.clone(),
            seq: 2,
            progress: None,
        });
        assert_eq!(banner_text(&t).as_deref(), Some("Loading model…"));
        t.apply(ServerMessage::Loading {
            job_id: job.clone(),
            seq: 3,
            progress: Some(0.456),
        });
        assert_eq!(banner_text(&t).as_deref(), Some("Loading model… 46%"));
        t.apply(ServerMessage::Token {
            job_id: job.clone(),
            seq: 4,
            text: "Hi".into(),
        });
        assert_eq!(banner_text(&t), None);
        t.socket_closed("lost");
        assert_eq!(
            banner_text(&t).as_deref(),
            Some("Connection lost · reconnecting…")
        );
    }

    #[test]
    fn the_live_region_announces_phases_not_tokens() {
        let mut t = waiting_tracker();
        assert_eq!(live_text(&t), "Position 3 in the queue");
        let job = JobId("j".into());
        t.apply(ServerMessage::Started {
            job_id: job.clone(),
            seq: 1,
            waited_ms: 5,
        });
        assert_eq!(live_text(&t), "The answer has started");
        t.apply(ServerMessage::Token {
            job_id: job.clone(),
            seq: 2,
            text: "one".into(),
        });
        let after_one = live_text(&t);
        t.apply(ServerMessage::Token {
            job_id: job.clone(),
            seq: 3,
            text: " two".into(),
        });
        assert_eq!(live_text(&t), after_one);
        t.apply(ServerMessage::Done {
            job_id: job,
            seq: 4,
            usage: None,
        });
        assert_eq!(live_text(&t), "The answer is complete");
    }

    #[test]
    fn the_cursor_sits_after_the_last_text() {
        assert_eq!(with_cursor(""), CURSOR_HTML);
        assert_eq!(
            with_cursor("<p>Hello</p>\n"),
            format!("<p>Hello{CURSOR_HTML}</p>\n")
        );
        assert_eq!(
            with_cursor("<ul>\n<li>one</li>\n</ul>\n"),
            format!("<ul>\n<li>one{CURSOR_HTML}</li>\n</ul>\n")
        );
        assert_eq!(
            with_cursor("<pre><code class=\"language-rust\">fn x\n</code></pre>\n"),
            format!("<pre><code class=\"language-rust\">fn x{CURSOR_HTML}\n</code></pre>\n")
        );
        // After a void or opening tag, the cursor simply follows it.
        assert_eq!(with_cursor("<hr />\n"), format!("<hr />{CURSOR_HTML}\n"));
        let rendered = crate::markdown::render("Some **bold");
        assert!(with_cursor(&rendered).contains(&format!("bold{CURSOR_HTML}</p>")));
    }

    #[test]
    fn hrefs_keep_the_conversation_and_the_token_limit() {
        assert_eq!(chat_href(None, None), "/chat");
        let id = ConversationId("5d1e0c2b".into());
        assert_eq!(chat_href(Some(&id), None), "/chat?c=5d1e0c2b");
        assert_eq!(
            chat_href(Some(&id), Some(32)),
            "/chat?c=5d1e0c2b&max_tokens=32"
        );
        assert_eq!(chat_href(None, Some(8)), "/chat?max_tokens=8");
        let odd = ConversationId("a b&c=d".into());
        assert_eq!(chat_href(Some(&odd), None), "/chat?c=a%20b%26c%3Dd");
    }

    #[test]
    fn max_tokens_must_be_a_sensible_number() {
        assert_eq!(parse_max_tokens(Some("32")), Some(32));
        assert_eq!(parse_max_tokens(Some(" 7 ")), Some(7));
        for bad in [
            None,
            Some(""),
            Some("0"),
            Some("-1"),
            Some("many"),
            Some("99999"),
        ] {
            assert_eq!(parse_max_tokens(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn enter_sends_and_shift_enter_does_not() {
        assert!(is_send_key("Enter", false, false));
        assert!(!is_send_key("Enter", true, false));
        assert!(!is_send_key("Enter", false, true));
        assert!(!is_send_key("a", false, false));
    }

    #[test]
    fn only_unfinished_messages_get_a_badge() {
        assert_eq!(status_label(MessageStatus::Complete), None);
        assert_eq!(status_label(MessageStatus::Stopped), Some("Stopped"));
        assert_eq!(status_label(MessageStatus::Failed), Some("Failed"));
        assert_eq!(status_name(MessageStatus::Stopped), "stopped");
    }
}
