//! The chat page's handling of its socket: the server's messages (acceptance and the answer's
//! end), drops, reconnecting with a pause and a `resume` when the socket opens again.

use super::Chat;
use crate::client::http::sleep_ms;
use crate::client::ws::{Connection, SocketEvent};
use crate::pages::chat_browser as browser;
use crate::pages::chat_state::{AnswerPhase, Applied, ChatTracker};
use crate::pages::chat_view::chat_href;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Reconnection attempts after a drop before the answer is given up.
pub const MAX_RECONNECTS: u32 = 6;

/// The pause before reconnection attempt `attempt` (1, 2, …): 250 ms, doubling, at most 4 s.
pub fn reconnect_delay_ms(attempt: u32) -> u32 {
    250u32
        .saturating_mul(1 << attempt.saturating_sub(1).min(8))
        .min(4000)
}

impl Chat {
    /// Everything the socket reports.
    pub(in crate::pages) fn on_socket(self, event: SocketEvent) {
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
    pub(in crate::pages) fn on_open(self) {
        if let Some(Some(msg)) = self.tracker.try_update(ChatTracker::resume_after_reconnect) {
            self.send_or_drop(msg);
        }
    }
}
