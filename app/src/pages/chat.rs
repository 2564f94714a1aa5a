//! The chat page (`/chat`, `/chat?c=<conversation id>`): the conversation list, the thread, the
//! answer streaming in with its queue/loading banner, and the composer with Send, Stop,
//! Regenerate and Copy.
//!
//! The page's state lives in `Chat` (see [`super::chat_actions`]): signals for the thread, the
//! list and one [`ChatTracker`] for the answer in flight, and one lazily opened connection to
//! `/ws`; this module lays it out. The selected conversation is in the URL, so a reload keeps it:
//! after hydration the page asks for its session token, fetches the list and the selected
//! conversation, and, when this tab has an answer in flight saved in `sessionStorage`, sends
//! `resume` without `last_seq` and shows the answer from its start. When the socket drops without
//! a reload, it is reopened (with growing pauses, a few times) and the answer resumed from the
//! last `seq` seen. The server renders the empty state and the composer (already "Loading the
//! conversation…" when the URL names one); all state starts identical on both sides, and the
//! browser does the fetching.
//!
//! Concurrency: single-threaded (the browser's event loop). Socket events, timers and fetches
//! each run as their own task and meet only through the signals.

use crate::chat::Role;
use crate::pages::chat_actions::{wanted_conversation, Chat};
use crate::pages::chat_browser as browser;
use crate::pages::chat_markdown::Markdown;
use crate::pages::chat_state::ChatTracker;
use crate::pages::chat_view::{
    answer_view, banner_text, conversation_list, is_send_key, live_text, message_view,
    parse_max_tokens,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

/// The chat page as a lazily loaded route: in the browser its code is a separate wasm chunk,
/// fetched when `/chat` or `/embed/chat` is first shown (see `scripts/build.sh`), and its Markdown
/// renderer one more, fetched when there is something to render (see
/// [`super::chat_markdown`]); the server renders it in place as any other page.
pub struct ChatRoute;

#[leptos_router::lazy_route]
impl leptos_router::LazyRoute for ChatRoute {
    fn data() -> Self {
        ChatRoute
    }

    fn view(_this: Self) -> AnyView {
        crate::page_is_live();
        view! { <ChatPage/> }.into_any()
    }
}

/// The chat.
#[component]
pub fn ChatPage() -> impl IntoView {
    let query = use_query_map();
    let max_tokens = parse_max_tokens(query.with_untracked(|q| q.get("max_tokens")).as_deref());
    // The URL is the same on both sides, so the server can already say what is being loaded.
    let initial = wanted_conversation(&query.get_untracked());
    let chat = Chat::new(initial, max_tokens, Box::new(use_navigate()));

    // The URL names the conversation to show; effects run in the browser only.
    Effect::new(move |_| chat.show(query.with(wanted_conversation)));
    Effect::new(move |_| chat.start());
    // Keep the newest text in view while the reader is at the end of the page.
    Effect::new(move |_| {
        chat.tracker.with(|t| t.text().len());
        chat.thread.with(Vec::len);
        browser::follow_the_end();
    });

    let tracker = chat.tracker;
    let shown = chat.shown;
    let thread = chat.thread;
    let answer_here = Memo::new(move |_| {
        tracker.with(|t| t.is_active() && shown.with(|s| s.as_ref() == t.conversation_id()))
    });
    // In the browser the Markdown renderer is fetched once there is something to render: a
    // conversation shown (while its messages are fetched) or an answer on its way. Until it is
    // here the thread still says it is loading.
    let md = Markdown::new();
    Effect::new(move |_| {
        if shown.with(Option::is_some) || tracker.with(ChatTracker::is_active) {
            md.load();
        }
    });
    let waiting_for_renderer =
        Memo::new(move |_| !thread.with(Vec::is_empty) && md.renderer().is_none());
    let active = Memo::new(move |_| tracker.with(ChatTracker::is_active));
    let can_stop = Memo::new(move |_| tracker.with(ChatTracker::can_stop));
    let answer_text = Memo::new(move |_| tracker.with(|t| t.text().to_string()));
    let banner = Memo::new(move |_| {
        if answer_here.get() {
            tracker.with(banner_text)
        } else {
            None
        }
    });
    let live = Memo::new(move |_| tracker.with(live_text));
    let failure = Memo::new(move |_| {
        tracker.with(|t| {
            let here = shown.with(|s| s.as_ref() == t.conversation_id());
            t.failure()
                .filter(|_| here)
                .map(|(code, message)| (code.to_string(), message.to_string()))
        })
    });
    let can_send = Memo::new(move |_| {
        !chat.draft.with(|d| d.trim().is_empty()) && !active.get() && !chat.thread_loading.get()
    });
    // After a failure with no answer at all, the last message is the person's: offer to answer it.
    let can_answer_again = Memo::new(move |_| {
        !active.get()
            && shown.with(Option::is_some)
            && thread.with(|t| t.last().is_some_and(|m| m.role == Role::User))
    });
    let title = Memo::new(move |_| {
        shown.with(|s| match s {
            None => "New conversation".to_string(),
            Some(id) => chat
                .conversations
                .with(|list| list.iter().find(|c| &c.id == id).map(|c| c.title.clone()))
                .unwrap_or_else(|| "Conversation".into()),
        })
    });

    let thread_view = move || {
        let Some(render) = md.renderer() else {
            return Vec::new();
        };
        let messages = thread.get();
        let last = messages.len().saturating_sub(1);
        let can_regenerate = !active.get() && shown.with(Option::is_some);
        messages
            .into_iter()
            .enumerate()
            .map(|(i, message)| {
                let regenerate: Option<Box<dyn Fn()>> =
                    (i == last && message.role == Role::Assistant && can_regenerate)
                        .then(|| Box::new(move || chat.regenerate()) as Box<dyn Fn()>);
                let content = message.content.clone();
                let copied = Signal::derive(move || chat.copied.get() == Some(i));
                message_view(
                    message,
                    render,
                    copied,
                    move || chat.copy(i, &content),
                    regenerate,
                )
            })
            .collect_view()
    };

    let empty_state = move || {
        let empty =
            (thread.with(Vec::is_empty) || waiting_for_renderer.get()) && !answer_here.get();
        empty.then(|| {
            if chat.thread_loading.get() || waiting_for_renderer.get() {
                view! { <p class="chat-empty" data-testid="chat-empty">"Loading the conversation…"</p> }
                    .into_any()
            } else {
                view! {
                    <div class="chat-empty" data-testid="chat-empty">
                        <p class="chat-empty-title">"Ask the model anything."</p>
                        <p class="hint">
                            "Your message waits in the same queue as everyone's jobs; you see your place "
                            "in it, then the answer as it is written. Conversations are kept for this browser."
                        </p>
                    </div>
                }
                .into_any()
            }
        })
    };

    let error_view = move || {
        let failure = failure.get();
        let problem = chat.problem.get();
        if failure.is_none() && problem.is_none() {
            return None;
        }
        Some(view! {
            <div class="error chat-error" data-testid="chat-error" role="alert">
                {failure.map(|(code, message)| {
                    view! {
                        <p>
                            <code class="error-code">{code}</code>
                            " "
                            <span class="error-message">{message}</span>
                        </p>
                    }
                })}
                {problem.map(|p| view! { <p class="error-message">{p}</p> })}
                <Show when=move || can_answer_again.get()>
                    <button
                        type="button"
                        class="button small"
                        data-testid="chat-regenerate"
                        on:click=move |_| chat.regenerate()
                    >
                        "Answer again"
                    </button>
                </Show>
            </div>
        })
    };

    view! {
        <Title text="Chat · Turnstile"/>
        <div class="page chat">
            <h1 class="visually-hidden">"Chat"</h1>
            <div class="chat-layout">
                <nav class="chat-sidebar card" aria-labelledby="chat-list-heading">
                    <div class="chat-sidebar-head">
                        <h2 id="chat-list-heading">"Conversations"</h2>
                        <button
                            type="button"
                            class="button small"
                            data-testid="chat-new"
                            on:click=move |_| chat.new_chat()
                        >
                            "New chat"
                        </button>
                    </div>
                    {conversation_list(chat.conversations.into(), shown.into(), max_tokens)}
                    <Show when=move || chat.conversations.with(Vec::is_empty)>
                        <p class="hint chat-list-empty">"Your conversations appear here."</p>
                    </Show>
                    {move || chat.list_problem.get().map(|p| view! { <p class="problem">{p}</p> })}
                </nav>
                <section class="chat-main" aria-labelledby="chat-thread-heading">
                    <div class="chat-thread-head">
                        <h2 id="chat-thread-heading">{move || title.get()}</h2>
                        <Show when=move || shown.with(Option::is_some) && !answer_here.get()>
                            <button
                                type="button"
                                class="button small"
                                data-testid="chat-delete"
                                aria-label="Delete this conversation"
                                on:click=move |_| chat.delete_shown()
                            >
                                "Delete"
                            </button>
                        </Show>
                    </div>
                    <div class="chat-thread" data-testid="chat-thread">
                        {empty_state}
                        {thread_view}
                        {move || answer_here.get().then(|| answer_view(answer_text.into(), md))}
                    </div>
                    <div class="chat-dock">
                        {move || banner.get().map(|text| view! {
                            <p class="chat-banner" data-testid="chat-banner">{text}</p>
                        })}
                        {error_view}
                        <form
                            class="chat-composer"
                            on:submit=move |ev| {
                                ev.prevent_default();
                                chat.send_message();
                            }
                        >
                            <label for="chat-input" class="chat-composer-label">"Message"</label>
                            <textarea
                                id="chat-input"
                                name="message"
                                rows="3"
                                data-testid="chat-input"
                                placeholder="Ask something…"
                                aria-describedby="chat-input-hint"
                                node_ref=chat.input
                                prop:value=move || chat.draft.get()
                                on:input=move |ev| chat.draft.set(event_target_value(&ev))
                                on:keydown=move |ev| {
                                    if is_send_key(&ev.key(), ev.shift_key(), ev.is_composing()) {
                                        ev.prevent_default();
                                        chat.send_message();
                                    }
                                }
                            ></textarea>
                            <div class="chat-composer-row">
                                <small id="chat-input-hint" class="hint">
                                    "Enter sends · Shift+Enter starts a new line"
                                </small>
                                <div class="chat-composer-actions">
                                    <Show when=move || answer_here.get()>
                                        <button
                                            type="button"
                                            class="button"
                                            data-testid="chat-stop"
                                            disabled=move || !can_stop.get()
                                            on:click=move |_| chat.stop()
                                        >
                                            "Stop"
                                        </button>
                                    </Show>
                                    <button
                                        type="submit"
                                        class="button primary"
                                        data-testid="chat-send"
                                        disabled=move || !can_send.get()
                                    >
                                        "Send"
                                    </button>
                                </div>
                            </div>
                        </form>
                    </div>
                    <p class="visually-hidden" aria-live="polite" data-testid="chat-live">
                        {move || live.get()}
                    </p>
                </section>
            </div>
        </div>
    }
    .into_any()
}

/// The server's render (only built with `ssr`, as in `cargo test -p app -p server`).
#[cfg(all(test, feature = "ssr"))]
mod ssr_tests {
    use leptos::prelude::*;
    use leptos_router::components::Router;
    use leptos_router::location::RequestUrl;

    fn render(url: &str) -> String {
        let owner = Owner::new();
        owner.set();
        provide_context(RequestUrl::new(url));
        leptos_meta::provide_meta_context();
        view! { <Router><super::ChatPage/></Router> }.to_html()
    }

    #[test]
    fn the_server_render_has_the_composer_and_an_empty_state() {
        let html = render("/chat");
        for needle in [
            r#"data-testid="chat-input""#,
            r#"<label for="chat-input""#,
            r#"data-testid="chat-send" disabled"#,
            r#"data-testid="chat-new""#,
            r#"data-testid="chat-conversations""#,
            r#"data-testid="chat-empty""#,
            "Ask the model anything.",
            r#"aria-live="polite""#,
        ] {
            assert!(html.contains(needle), "{needle} missing from {html}");
        }
        assert!(!html.contains("chat-answer") && !html.contains("chat-banner"));
    }

    #[test]
    fn a_conversation_in_the_url_renders_as_loading() {
        let html = render("/chat?c=abc123");
        assert!(html.contains("Loading the conversation…"), "{html}");
        assert!(!html.contains("Ask the model anything."), "{html}");
    }
}
