//! Recording how a job ended: its outcome in the counts and latencies, and for a resumed chat
//! whether the replay was exact (the answer assembled across the drop against the stored one).

use super::client::Client;
use super::counts::ReplayRecord;
use super::plan::Kind;
use super::track::{Outcome, Replay, Track};
use crate::report;
use crate::stats;
use app::chat::{Conversation, ConversationId, Role};
use std::time::Duration;
use tokio::time::Instant;

impl Client {
    /// Records how the job ended.
    pub(super) async fn finish(&mut self, track: Track, outcome: Outcome) {
        let now = Instant::now();
        if outcome != Outcome::NotRun {
            self.tally.last_end = Some(now);
        }
        let c = &mut self.tally.counts;
        let chat = track.kind == Kind::Chat;
        match &outcome {
            Outcome::Completed { cached } => {
                c.completed += 1;
                if *cached {
                    c.cached += 1;
                } else {
                    let h = if chat {
                        &mut self.tally.chat_latency
                    } else {
                        &mut self.tally.calc_latency
                    };
                    report::record(h, now.duration_since(track.sent));
                }
                if chat {
                    self.tally.chats.completed += 1;
                    self.tally.chats.completion_tokens += track.tokens;
                }
            }
            Outcome::Cancelled => {
                c.cancelled += 1;
                if chat {
                    self.tally.chats.cancelled += 1;
                }
            }
            Outcome::Dropped => c.dropped_by_disconnect += 1,
            Outcome::Failed(_) => c.failed += 1,
            Outcome::Lost => c.lost += 1,
            Outcome::Unfinished => c.unfinished += 1,
            Outcome::GaveUp => c.gave_up += 1,
            Outcome::NotRun => c.not_run += 1,
        }
        if let Some(id) = &track.id {
            self.past.insert(id.clone());
        }
        if let Some(replay) = &track.replay {
            self.tally.chats.resumed += 1;
            let problem = self.replay_problem(&track, replay, &outcome).await;
            self.tally.chats.replays.push(ReplayRecord {
                job_id: track.id.as_ref().map_or_else(String::new, |i| i.0.clone()),
                last_seq: replay.last_seq,
                dropped_after: track.dropped_after.to_owned(),
                first_seq_after: replay.first,
                tokens_text: track.text.clone(),
                exact: problem.is_none(),
                problem: problem.map(str::to_owned),
            });
            match problem {
                None => self.tally.chats.replays_exact += 1,
                Some(why) => {
                    self.tally.chats.replays_inexact += 1;
                    let id = track.id.as_ref().map_or("?", |i| i.0.as_str());
                    self.tally.chats.replay_problems.add(
                        why,
                        &format!("job {id} resumed after seq {}", replay.last_seq),
                    );
                }
            }
        }
    }

    /// Why a resumed chat's replay was not exact, or `None` when it was.
    async fn replay_problem(
        &mut self,
        track: &Track,
        replay: &Replay,
        outcome: &Outcome,
    ) -> Option<&'static str> {
        if let Some(problem) = replay.problem {
            return Some(problem);
        }
        if !matches!(
            outcome,
            Outcome::Completed { .. } | Outcome::Cancelled | Outcome::Failed(_)
        ) {
            return Some("no_terminal_after_resume");
        }
        if replay.first != Some(replay.last_seq + 1) {
            return Some("replay_not_at_last_seq_plus_one");
        }
        if replay.anomalies > 0 {
            return Some("seq_gap_after_resume");
        }
        // The answer pieced together across the drop must be the one the server stored.
        let Some(conversation) = &track.conversation else {
            return Some("no_conversation_id");
        };
        match self.stored_answer(conversation).await {
            Err(e) => {
                self.tally.errors.add("conversation_read_failed", &e);
                Some("stored_answer_unreadable")
            }
            Ok(stored) if stored.as_deref().unwrap_or_default() != track.text => {
                Some("assembled_answer_differs_from_stored")
            }
            Ok(_) => None,
        }
    }

    /// The assistant's answer stored in `conversation` (`None` when there is none, as for a chat
    /// cancelled before its first token).
    async fn stored_answer(&self, conversation: &ConversationId) -> Result<Option<String>, String> {
        let url = format!(
            "http://{}/api/conversations/{conversation}",
            self.shared.addr
        );
        let until = Instant::now() + stats::STATS_TIMEOUT;
        let response = loop {
            let response = self
                .shared
                .http
                .get(&url)
                .header("x-turnstile-session", &self.session)
                .timeout(stats::STATS_TIMEOUT)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            // The server's rate limit counts this read too: wait and ask again.
            if response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS
                || Instant::now() >= until
            {
                break response;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if !response.status().is_success() {
            return Err(format!("GET {url}: status {}", response.status()));
        }
        let c = response
            .json::<Conversation>()
            .await
            .map_err(|e| format!("GET {url}: undecodable body: {e}"))?;
        Ok(c.messages
            .into_iter()
            .rev()
            .find(|m| m.role == Role::Assistant)
            .map(|m| m.content))
    }
}
