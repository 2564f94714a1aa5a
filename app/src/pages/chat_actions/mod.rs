//! The chat page's controller: the `Chat` state (signals, the connection, the router's
//! navigate) and everything the page does with it: the start after hydration (session token,
//! conversation list, resume of this tab's answer in flight), showing and loading conversations,
//! Send, Regenerate, Stop, New chat, Delete and Copy, the socket's events, and reconnecting with a
//! `resume` after a drop. The view ([`super::chat`]) only reads its signals and calls these.
//!
//! Concurrency: single-threaded (the browser's event loop). Socket events, timers and fetches
//! each run as their own task and meet only through the signals; every access after an `await`
//! uses the `try_` forms, so a task that outlives the page does nothing.
//!
//! This file holds the state and the plumbing every action uses (sending, navigating); the
//! actions live by kind in `conversations` (start, show, load, New chat, Delete), `answer` (Send,
//! Regenerate, Stop, Copy) and `socket` (the socket's events and reconnecting).

mod answer;
mod conversations;
mod socket;

#[cfg(test)]
mod tests;

pub(super) use conversations::wanted_conversation;
pub use socket::{reconnect_delay_ms, MAX_RECONNECTS};

use crate::chat::{ConversationId, ConversationSummary};
use crate::client::ws::{Connection, SocketEvent};
use crate::pages::chat_state::{ChatTracker, ThreadMessage};
use crate::protocol::ClientMessage;
use leptos::html::Textarea;
use leptos::prelude::*;
use leptos_router::NavigateOptions;

/// The router's navigate function, boxed so it can be stored.
pub(super) type Navigate = Box<dyn Fn(&str, NavigateOptions)>;

/// The page's state and its one connection; `Copy`, so every handler can hold it.
#[derive(Clone, Copy)]
pub(super) struct Chat {
    /// The answer in flight (or the last one).
    pub(super) tracker: RwSignal<ChatTracker>,
    /// The session's conversations, most recent first.
    pub(super) conversations: RwSignal<Vec<ConversationSummary>>,
    /// Why the list could not be fetched, if it could not.
    pub(super) list_problem: RwSignal<Option<String>>,
    /// The conversation on screen (`None`: a new one, not yet created).
    pub(super) shown: RwSignal<Option<ConversationId>>,
    /// The shown conversation's finished messages.
    pub(super) thread: RwSignal<Vec<ThreadMessage>>,
    /// The shown conversation is being fetched.
    pub(super) thread_loading: RwSignal<bool>,
    /// A failure of the page's own requests (loading, deleting), for people.
    pub(super) problem: RwSignal<Option<String>>,
    /// The composer's text.
    pub(super) draft: RwSignal<String>,
    /// The thread index whose answer was just copied, for a moment.
    pub(super) copied: RwSignal<Option<usize>>,
    /// The composer, to give it focus.
    pub(super) input: NodeRef<Textarea>,
    /// The WebSocket (set once, right after the state is made).
    pub(super) connection: StoredValue<Option<Connection>, LocalStorage>,
    /// The router's navigate (to keep the URL in step with the shown conversation).
    pub(super) navigate: StoredValue<Option<Navigate>, LocalStorage>,
    /// Submissions so far, for `client_ref`s.
    pub(super) submissions: StoredValue<u64>,
    /// Reconnection attempts since the last message from the server.
    pub(super) reconnects: StoredValue<u32>,
    /// A `max_tokens` given in the page's URL, sent with every message.
    pub(super) max_tokens: Option<u32>,
}

impl Chat {
    /// Sends `msg` over the page's socket, opening it if needed.
    pub(super) fn send(self, msg: ClientMessage) -> Result<(), String> {
        self.connection
            .try_with_value(|c| c.as_ref().map(|c| c.send(&msg)))
            .flatten()
            .unwrap_or_else(|| Err("the page is closed".into()))
    }

    /// Sends `msg`; a failure to even queue it is handled like a dropped socket.
    pub(super) fn send_or_drop(self, msg: ClientMessage) {
        if let Err(e) = self.send(msg) {
            self.on_socket(SocketEvent::Closed(e));
        }
    }

    /// Moves the browser to `href` (a page of this chat) without a reload.
    pub(super) fn go(self, href: &str, replace: bool) {
        let options = NavigateOptions {
            replace,
            scroll: false,
            ..Default::default()
        };
        self.navigate.try_with_value(|n| {
            if let Some(navigate) = n {
                navigate(href, options);
            }
        });
    }

    /// Whether `conversation` is the one on screen.
    pub(super) fn is_here(self, conversation: Option<&ConversationId>) -> bool {
        self.shown
            .try_with_untracked(|s| s.as_ref() == conversation)
            .unwrap_or(false)
    }

    pub(super) fn focus_input(self) {
        if let Some(input) = self.input.get_untracked() {
            let _ = input.focus();
        }
    }
}

impl Chat {
    /// The page's state, showing `initial` (from the URL), with its connection (nothing is opened
    /// yet) reporting back to it.
    pub(super) fn new(
        initial: Option<ConversationId>,
        max_tokens: Option<u32>,
        navigate: Navigate,
    ) -> Chat {
        let chat = Chat {
            tracker: RwSignal::new(ChatTracker::default()),
            conversations: RwSignal::new(Vec::new()),
            list_problem: RwSignal::new(None),
            thread_loading: RwSignal::new(initial.is_some()),
            shown: RwSignal::new(initial),
            thread: RwSignal::new(Vec::new()),
            problem: RwSignal::new(None),
            draft: RwSignal::new(String::new()),
            copied: RwSignal::new(None),
            input: NodeRef::new(),
            connection: StoredValue::new_local(None),
            navigate: StoredValue::new_local(Some(navigate)),
            submissions: StoredValue::new(0),
            reconnects: StoredValue::new(0),
            max_tokens,
        };
        let connection = Connection::new(move |event| chat.on_socket(event));
        connection.on_open(move || chat.on_open());
        chat.connection.set_value(Some(connection));
        chat
    }
}
