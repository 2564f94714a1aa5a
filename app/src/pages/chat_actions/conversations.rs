//! The chat page's conversation actions: the start after hydration (session token, resume of
//! this tab's answer in flight, the list), showing and loading conversations, New chat and Delete.

use super::Chat;
use crate::chat::{Conversation, ConversationId, ConversationList, Role};
use crate::client::http::{delete, ensure_session, get_json_with};
use crate::pages::chat_browser as browser;
use crate::pages::chat_state::{ChatTracker, PendingJob, ThreadMessage};
use crate::pages::chat_view::{chat_href, encode_query_value};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::params::ParamsMap;

/// The conversation named by the URL's `c` parameter.
pub(in crate::pages) fn wanted_conversation(query: &ParamsMap) -> Option<ConversationId> {
    query
        .get("c")
        .filter(|c| !c.trim().is_empty())
        .map(ConversationId)
}

/// `/api/conversations/{id}`.
pub(super) fn conversation_path(id: &ConversationId) -> String {
    format!("/api/conversations/{}", encode_query_value(&id.0))
}

impl Chat {
    /// After hydration: the conversation named by the URL, the session token (for browsers
    /// without the cookie), a resume of this tab's answer in flight, and the conversation list.
    pub(in crate::pages) fn start(self) {
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
    pub(in crate::pages) fn show(self, wanted: Option<ConversationId>) {
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
    pub(super) fn load_conversation(self, id: ConversationId) {
        self.thread_loading.set(true);
        spawn_local(async move {
            let result = get_json_with(&conversation_path(&id), Conversation::from_json).await;
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
    pub(super) async fn refresh_list(self) {
        match get_json_with("/api/conversations", ConversationList::from_json).await {
            Ok(list) => {
                self.conversations.try_set(list.conversations);
                self.list_problem.try_set(None);
            }
            Err(e) => {
                self.list_problem.try_set(Some(e));
            }
        }
    }

    /// New chat: an empty thread; the conversation is created by its first message.
    pub(in crate::pages) fn new_chat(self) {
        self.shown.set(None);
        self.thread.set(Vec::new());
        self.problem.set(None);
        self.go(&chat_href(None, self.max_tokens), false);
        self.focus_input();
    }

    /// Deletes the shown conversation (not while its answer is being written).
    pub(in crate::pages) fn delete_shown(self) {
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
}
