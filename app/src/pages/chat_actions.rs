//! The chat page's controller: the `Chat` state (signals, the connection, the router's
//! navigate) and everything the page does with it: the start after hydration (session token,
//! conversation list, resume of this tab's answer in flight), showing and loading conversations,
//! Send, Regenerate, Stop, New chat, Delete and Copy, the socket's events, and reconnecting with a
//! `resume` after a drop. The view ([`super::chat`]) only reads its signals and calls these.
//!
//! Concurrency: single-threaded (the browser's event loop). Socket events, timers and fetches
//! each run as their own task and meet only through the signals; every access after an `await`
//! uses the `try_` forms, so a task that outlives the page does nothing.

use crate::chat::{
    ChatJob, Conversation, ConversationId, ConversationList, ConversationSummary, Role,
};
use crate::client::http::{delete, ensure_session, get_json, sleep_ms};
use crate::client::ws::{Connection, SocketEvent};
use crate::pages::chat_browser as browser;
use crate::pages::chat_state::{AnswerPhase, Applied, ChatTracker, PendingJob, ThreadMessage};
use crate::pages::chat_view::{chat_href, encode_query_value};
use crate::protocol::{ClientMessage, Job};
use leptos::html::Textarea;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::params::ParamsMap;
use leptos_router::NavigateOptions;

/// Reconnection attempts after a drop before the answer is given up.
pub const MAX_RECONNECTS: u32 = 6;

/// The pause before reconnection attempt `attempt` (1, 2, …): 250 ms, doubling, at most 4 s.
pub fn reconnect_delay_ms(attempt: u32) -> u32 {
    250u32
        .saturating_mul(1 << attempt.saturating_sub(1).min(8))
        .min(4000)
}

/// The conversation named by the URL's `c` parameter.
pub(super) fn wanted_conversation(query: &ParamsMap) -> Option<ConversationId> {
    query
        .get("c")
        .filter(|c| !c.trim().is_empty())
        .map(ConversationId)
}

/// `/api/conversations/{id}`.
fn conversation_path(id: &ConversationId) -> String {
    format!("/api/conversations/{}", encode_query_value(&id.0))
}

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
    fn send(self, msg: ClientMessage) -> Result<(), String> {
        self.connection
            .try_with_value(|c| c.as_ref().map(|c| c.send(&msg)))
            .flatten()
            .unwrap_or_else(|| Err("the page is closed".into()))
    }

    /// Sends `msg`; a failure to even queue it is handled like a dropped socket.
    fn send_or_drop(self, msg: ClientMessage) {
        if let Err(e) = self.send(msg) {
            self.on_socket(SocketEvent::Closed(e));
        }
    }

    /// Moves the browser to `href` (a page of this chat) without a reload.
    fn go(self, href: &str, replace: bool) {
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
    fn is_here(self, conversation: Option<&ConversationId>) -> bool {
        self.shown
            .try_with_untracked(|s| s.as_ref() == conversation)
            .unwrap_or(false)
    }

    fn focus_input(self) {
        if let Some(input) = self.input.get_untracked() {
            let _ = input.focus();
        }
    }

    /// After hydration: the conversation named by the URL, the session token (for browsers
    /// without the cookie), a resume of this tab's answer in flight, and the conversation list.
    pub(super) fn start(self) {
        if let Some(id) = self.shown.get_untracked() {
            self.load_conversation(id);
        }
        spawn_local(async move {
            if let Err(e) = ensure_session().await {
                leptos::logging::warn!("no session token ({e}); relying on the cookie");
            }
            if let Some(pending) = browser::load_pending() {
                self.resume(pending);
            }
            self.refresh_list().await;
        });
    }

    /// Follows this tab's answer in flight again after a reload, from its first event.
    fn resume(self, pending: PendingJob) {
        if self.tracker.with_untracked(ChatTracker::is_active) {
            return;
        }
        let conversation = pending.conversation_id.clone();
        let Some(msg) = self.tracker.try_update(|t| t.resuming(pending)) else {
            return;
        };
        if !self.is_here(Some(&conversation)) {
            self.go(&chat_href(Some(&conversation), self.max_tokens), true);
        }
        self.send_or_drop(msg);
    }

    /// Shows `wanted` (from the URL): fetches its messages unless it is already on screen.
    pub(super) fn show(self, wanted: Option<ConversationId>) {
        if self.shown.get_untracked() == wanted {
            return;
        }
        self.shown.set(wanted.clone());
        self.thread.set(Vec::new());
        self.problem.set(None);
        self.copied.set(None);
        if let Some(id) = wanted {
            self.load_conversation(id);
        }
    }

    /// Fetches a conversation's stored messages into the thread (if it is still on screen when
    /// they arrive).
    fn load_conversation(self, id: ConversationId) {
        self.thread_loading.set(true);
        spawn_local(async move {
            let result = get_json::<Conversation>(&conversation_path(&id)).await;
            if self.is_here(Some(&id)) {
                match result {
                    Ok(conversation) => {
                        let messages = conversation
                            .messages
                            .into_iter()
                            .filter(|m| m.role != Role::System)
                            .map(ThreadMessage::from)
                            .collect();
                        self.thread.try_set(messages);
                    }
                    Err(e) => {
                        self.problem
                            .try_set(Some(format!("Could not load this conversation: {e}")));
                    }
                }
            }
            self.thread_loading.try_set(false);
        });
    }

    /// Fetches the conversation list again.
    async fn refresh_list(self) {
        match get_json::<ConversationList>("/api/conversations").await {
            Ok(list) => {
                self.conversations.try_set(list.conversations);
                self.list_problem.try_set(None);
            }
            Err(e) => {
                self.list_problem.try_set(Some(e));
            }
        }
    }

    fn next_ref(self) -> String {
        self.submissions.update_value(|n| *n += 1);
        format!("c{}", self.submissions.get_value())
    }

    /// Sends the composer's message (Send, or Enter in the composer).
    pub(super) fn send_message(self) {
        let text = self.draft.get_untracked().trim().to_string();
        let busy = self.tracker.with_untracked(ChatTracker::is_active)
            || self.thread_loading.get_untracked();
        if text.is_empty() || busy {
            return;
        }
        let conversation = self.shown.get_untracked();
        self.problem.set(None);
        self.thread
            .update(|t| t.push(ThreadMessage::user(text.clone())));
        self.draft.set(String::new());
        self.focus_input();
        let client_ref = self.next_ref();
        self.tracker
            .update(|t| t.submitted(client_ref.clone(), conversation.clone(), false));
        self.send_or_drop(ClientMessage::Submit {
            client_ref,
            job: Job::Chat(ChatJob {
                conversation_id: conversation,
                message: text,
                max_tokens: self.max_tokens,
                ..Default::default()
            }),
        });
    }

    /// Answers the shown conversation's last message again, replacing the last answer.
    pub(super) fn regenerate(self) {
        let Some(conversation) = self.shown.get_untracked() else {
            return;
        };
        if self.tracker.with_untracked(ChatTracker::is_active) {
            return;
        }
        self.problem.set(None);
        self.thread.update(|t| {
            if t.last().is_some_and(|m| m.role == Role::Assistant) {
                t.pop();
            }
        });
        let client_ref = self.next_ref();
        self.tracker
            .update(|t| t.submitted(client_ref.clone(), Some(conversation.clone()), true));
        self.focus_input();
        self.send_or_drop(ClientMessage::Submit {
            client_ref,
            job: Job::Chat(ChatJob {
                conversation_id: Some(conversation),
                regenerate: true,
                max_tokens: self.max_tokens,
                ..Default::default()
            }),
        });
    }

    /// Stop: cancels the answer; what was written stays, marked stopped.
    pub(super) fn stop(self) {
        let Some(job_id) = self
            .tracker
            .with_untracked(|t| t.can_stop().then(|| t.job_id().cloned()).flatten())
        else {
            return;
        };
        self.tracker.update(ChatTracker::stop_requested);
        self.focus_input();
        self.send_or_drop(ClientMessage::Cancel { job_id });
    }

    /// New chat: an empty thread; the conversation is created by its first message.
    pub(super) fn new_chat(self) {
        self.shown.set(None);
        self.thread.set(Vec::new());
        self.problem.set(None);
        self.go(&chat_href(None, self.max_tokens), false);
        self.focus_input();
    }

    /// Deletes the shown conversation (not while its answer is being written).
    pub(super) fn delete_shown(self) {
        let Some(id) = self.shown.get_untracked() else {
            return;
        };
        let answering = self
            .tracker
            .with_untracked(|t| t.is_active() && t.conversation_id() == Some(&id));
        if answering {
            return;
        }
        spawn_local(async move {
            match delete(&conversation_path(&id)).await {
                Ok(()) => {
                    if self.is_here(Some(&id)) {
                        self.new_chat();
                    }
                    self.refresh_list().await;
                }
                Err(e) => {
                    self.problem
                        .try_set(Some(format!("Could not delete the conversation: {e}")));
                }
            }
        });
    }

    /// Copy: the answer's markdown to the clipboard; "Copied" for two seconds when it worked.
    pub(super) fn copy(self, index: usize, text: &str) {
        if browser::copy_to_clipboard(text) {
            self.copied.set(Some(index));
            spawn_local(async move {
                sleep_ms(2000).await;
                self.copied.try_update(|c| {
                    if *c == Some(index) {
                        *c = None;
                    }
                });
            });
        }
    }

    /// Everything the socket reports.
    pub(super) fn on_socket(self, event: SocketEvent) {
        match event {
            SocketEvent::Message(msg) => {
                let Some(applied) = self.tracker.try_maybe_update(|t| {
                    let applied = t.apply(msg);
                    (applied != Applied::Ignored, applied)
                }) else {
                    return;
                };
                if applied != Applied::Ignored {
                    self.reconnects.try_set_value(0);
                }
                match applied {
                    Applied::Accepted => self.accepted(),
                    Applied::Ended => self.finish(),
                    Applied::Ignored | Applied::Changed => {}
                }
            }
            SocketEvent::Closed(reason) => {
                let Some((reconnect, ended)) = self.tracker.try_update(|t| {
                    let was_active = t.is_active();
                    let reconnect = t.socket_closed(&reason);
                    (reconnect, was_active && !t.is_active())
                }) else {
                    return;
                };
                if reconnect {
                    self.schedule_reconnect(reason);
                } else if ended {
                    self.finish();
                }
            }
        }
    }

    /// `accepted`: keep the job for a reload; a new conversation gets its URL and list entry.
    fn accepted(self) {
        let Some((pending, resumed)) = self
            .tracker
            .try_with_untracked(|t| (t.pending(), t.is_resumed()))
        else {
            return;
        };
        let Some(pending) = pending else {
            return;
        };
        browser::save_pending(&pending);
        if !resumed && self.shown.get_untracked().is_none() {
            let id = pending.conversation_id;
            self.shown.set(Some(id.clone()));
            self.go(&chat_href(Some(&id), self.max_tokens), true);
            spawn_local(async move { self.refresh_list().await });
        }
    }

    /// The answer ended: it joins the thread (or, for a resumed answer, the stored conversation
    /// is fetched again), the saved job is forgotten and the list refreshed.
    fn finish(self) {
        browser::clear_pending();
        self.reconnects.try_set_value(0);
        let Some((conversation, last, reload)) = self.tracker.try_with_untracked(|t| {
            let last = t.final_message();
            let gone = t.phase() == &AnswerPhase::Gone;
            let reload = t.is_resumed() || gone || (t.is_regenerate() && last.is_none());
            (t.conversation_id().cloned(), last, reload)
        }) else {
            return;
        };
        if self.is_here(conversation.as_ref()) {
            if let Some(message) = last {
                self.thread.update(|t| t.push(message));
            }
            if let (true, Some(id)) = (reload, conversation) {
                self.load_conversation(id);
            }
        }
        spawn_local(async move { self.refresh_list().await });
    }

    /// After a drop: reopens the socket after a pause (the `resume` goes out when it opens), or
    /// gives the answer up after [`MAX_RECONNECTS`] attempts.
    fn schedule_reconnect(self, reason: String) {
        let attempt = self
            .reconnects
            .try_update_value(|n| {
                *n += 1;
                *n
            })
            .unwrap_or(u32::MAX);
        if attempt > MAX_RECONNECTS {
            self.give_up(&reason);
            return;
        }
        spawn_local(async move {
            sleep_ms(reconnect_delay_ms(attempt)).await;
            let outcome = self
                .connection
                .try_with_value(|c| c.as_ref().map(Connection::connect));
            if let Some(Some(Err(e))) = outcome {
                self.give_up(&e);
            }
        });
    }

    /// Reconnecting failed for good: the answer ends as far as it got (once).
    fn give_up(self, reason: &str) {
        let ended = self.tracker.try_update(|t| {
            let was_active = t.is_active();
            t.give_up(reason);
            was_active && !t.is_active()
        });
        if ended == Some(true) {
            self.finish();
        }
    }

    /// A socket opened: if the answer was cut off, resume it from the last event seen.
    pub(super) fn on_open(self) {
        if let Some(Some(msg)) = self.tracker.try_update(ChatTracker::resume_after_reconnect) {
            self.send_or_drop(msg);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_pauses_grow_and_stay_bounded() {
        let delays: Vec<u32> = (1..=MAX_RECONNECTS).map(reconnect_delay_ms).collect();
        assert_eq!(delays, vec![250, 500, 1000, 2000, 4000, 4000]);
        assert_eq!(reconnect_delay_ms(0), 250);
        assert_eq!(reconnect_delay_ms(u32::MAX), 4000);
    }

    #[test]
    fn conversation_paths_are_encoded() {
        assert_eq!(
            conversation_path(&ConversationId("abc123".into())),
            "/api/conversations/abc123"
        );
        assert_eq!(
            conversation_path(&ConversationId("../x".into())),
            "/api/conversations/..%2Fx"
        );
    }
}
