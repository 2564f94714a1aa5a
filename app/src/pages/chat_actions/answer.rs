//! The chat page's actions on answers: Send and Regenerate (which ask for one), Stop (which
//! cancels the one in flight) and Copy (which puts one on the clipboard).

use super::Chat;
use crate::chat::{ChatJob, Role};
use crate::client::http::sleep_ms;
use crate::pages::chat_browser as browser;
use crate::pages::chat_state::{ChatTracker, ThreadMessage};
use crate::protocol::{ClientMessage, Job};
use leptos::prelude::*;
use leptos::task::spawn_local;

impl Chat {
    fn next_ref(self) -> String {
        self.submissions.update_value(|n| *n += 1);
        format!("c{}", self.submissions.get_value())
    }

    /// Sends the composer's message (Send, or Enter in the composer).
    pub(in crate::pages) fn send_message(self) {
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
    pub(in crate::pages) fn regenerate(self) {
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
    pub(in crate::pages) fn stop(self) {
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

    /// Copy: the answer's markdown to the clipboard; "Copied" for two seconds when it worked.
    pub(in crate::pages) fn copy(self, index: usize, text: &str) {
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
}
