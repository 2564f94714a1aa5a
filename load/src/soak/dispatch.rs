//! The client-side protocol checks: each server message applied to the current job (its seq, its
//! result, its end) or checked against the client's past jobs and outstanding submissions.

use super::client::Client;
use super::plan::{result_matches, Kind};
use super::track::{Outcome, Step, Track};
use super::violations::Violation;
use app::error_code::ErrorCode;
use app::protocol::{JobId, ServerMessage};

/// A server message's `type`.
fn kind_of(msg: &ServerMessage) -> &'static str {
    match msg {
        ServerMessage::Accepted { .. } => "accepted",
        ServerMessage::Position { .. } => "position",
        ServerMessage::Started { .. } => "started",
        ServerMessage::Loading { .. } => "loading",
        ServerMessage::Token { .. } => "token",
        ServerMessage::Result { .. } => "result",
        ServerMessage::Done { .. } => "done",
        ServerMessage::Error { .. } => "error",
        ServerMessage::Pong { .. } => "pong",
    }
}

impl Client {
    /// Applies one server message: to the current job (`track`), or checked against the
    /// client's past jobs.
    pub(super) fn dispatch(&mut self, track: Option<&mut Track>, msg: ServerMessage) -> Step {
        let Some(id) = msg.job_id().cloned() else {
            return self.untagged(track, msg);
        };
        let track = match track {
            Some(t) if t.id.as_ref() == Some(&id) => t,
            Some(t) if t.id.is_none() && !self.past.contains(&id) => match &msg {
                ServerMessage::Accepted {
                    client_ref,
                    seq,
                    conversation_id,
                    ..
                } if *client_ref == t.client_ref => {
                    t.id = Some(id);
                    t.events += 1;
                    t.last_kind = "accepted";
                    if *seq != 0 {
                        self.tally.violations.add(
                            Violation::SeqGap,
                            &format!("accepted carries seq {seq}, not 0"),
                        );
                    }
                    t.next_seq = Some(seq + 1);
                    t.last_seq = Some(*seq);
                    t.conversation = conversation_id.clone();
                    return Step::Go;
                }
                _ => return self.not_current(&id, &msg),
            },
            _ => return self.not_current(&id, &msg),
        };
        // A message about the current job: its seq first.
        match (msg.seq(), track.next_seq) {
            (Some(seq), Some(expect)) => {
                if let Some(r) = track.replay.as_mut() {
                    r.first.get_or_insert(seq);
                    if seq != expect {
                        r.anomalies += 1;
                    }
                }
                if seq != expect {
                    self.tally.violations.add(
                        Violation::SeqGap,
                        &format!("job {id}: seq {seq} where {expect} was due ({msg:?})"),
                    );
                }
                track.next_seq = Some(seq + 1);
                track.last_seq = Some(track.last_seq.map_or(seq, |l| l.max(seq)));
            }
            (None, _) => {
                // Only the refusal of a resume carries a job id and no seq.
                if let (Some(r), ServerMessage::Error { code, message, .. }) =
                    (track.replay.as_mut(), &msg)
                {
                    if r.first.is_none() {
                        r.problem = Some("resume_refused");
                        self.tally.errors.add(&format!("resume: {code}"), message);
                        return Step::Ended(Outcome::Lost);
                    }
                }
                self.tally.violations.add(
                    Violation::SeqGap,
                    &format!("job {id}: a message without seq: {msg:?}"),
                );
            }
            (Some(seq), None) => self.tally.violations.add(
                Violation::SeqGap,
                &format!("job {id}: seq {seq} before the job was followed"),
            ),
        }
        track.events += 1;
        track.last_kind = kind_of(&msg);
        match msg {
            ServerMessage::Started { .. } => {
                track.started = true;
                Step::Go
            }
            ServerMessage::Result { output, cached, .. } => {
                track.results += 1;
                track.cached = cached;
                match &track.expected {
                    None => self.tally.violations.add(
                        Violation::WrongResult,
                        &format!("job {id}: a tensor result for a chat"),
                    ),
                    Some(_) if track.results > 1 => self.tally.violations.add(
                        Violation::WrongResult,
                        &format!("job {id}: a second result"),
                    ),
                    Some(expected) if !result_matches(&output, expected) => {
                        self.tally.violations.add(
                            Violation::WrongResult,
                            &format!("job {id}: {output:?} where {expected:?} was due"),
                        )
                    }
                    Some(_) => {}
                }
                Step::Go
            }
            ServerMessage::Token { text, .. } => {
                track.token_messages += 1;
                if track.kind != Kind::Chat {
                    self.tally.violations.add(
                        Violation::WrongResult,
                        &format!("job {id}: chat tokens for a calculator job"),
                    );
                }
                track.text.push_str(&text);
                Step::Go
            }
            ServerMessage::Done { usage, .. } => {
                track.ended = true;
                if track.kind != Kind::Chat && track.results == 0 {
                    self.tally.violations.add(
                        Violation::WrongResult,
                        &format!("job {id}: done without a result"),
                    );
                }
                track.tokens = usage.map_or(0, |u| u64::from(u.completion_tokens));
                Step::Ended(Outcome::Completed {
                    cached: track.cached,
                })
            }
            ServerMessage::Error { code, message, .. } => {
                track.ended = true;
                if code == ErrorCode::Cancelled && track.cancel_sent {
                    Step::Ended(Outcome::Cancelled)
                } else {
                    self.tally.errors.add(code.as_str(), &message);
                    Step::Ended(Outcome::Failed(code.as_str().into()))
                }
            }
            _ => Step::Go,
        }
    }

    /// A message with a job id that is not the current job's.
    fn not_current(&mut self, id: &JobId, msg: &ServerMessage) -> Step {
        if let ServerMessage::Error { code, message, .. } = msg {
            if self.probing.as_ref() == Some(id) {
                self.probing = None;
                if *code == ErrorCode::NotFound {
                    self.tally.churn.calc_resume_refused += 1;
                } else {
                    self.tally.errors.add("calc_resume_not_refused", message);
                }
                return Step::Go;
            }
        }
        if !self.past.contains(id) {
            self.tally.violations.add(
                Violation::ForeignEvent,
                &format!("a message about job {id}, which this client did not submit: {msg:?}"),
            );
        } else if msg.is_terminal() {
            self.tally.violations.add(
                Violation::DuplicateTerminal,
                &format!("job {id} had ended (or was dropped): {msg:?}"),
            );
        } else {
            self.tally.violations.add(
                Violation::StrayEvent,
                &format!("job {id} is no longer followed here: {msg:?}"),
            );
        }
        Step::Go
    }

    /// A message without a job id: a refusal of the current submission, a pong, or an error.
    fn untagged(&mut self, track: Option<&mut Track>, msg: ServerMessage) -> Step {
        match msg {
            ServerMessage::Pong { .. } => Step::Go,
            ServerMessage::Error {
                client_ref: Some(r),
                code,
                message,
                retry_after_ms,
                ..
            } => match track {
                Some(t) if t.id.is_none() && r == t.client_ref => {
                    Step::Refused(code, retry_after_ms, message)
                }
                _ => {
                    self.tally.violations.add(
                        Violation::ForeignEvent,
                        &format!(
                            "a refusal of submission {r}, which is not outstanding: {message}"
                        ),
                    );
                    Step::Go
                }
            },
            // Answers to control messages are taken by their fence; anything else is unexpected.
            other => {
                self.unexpected(&other);
                Step::Go
            }
        }
    }
}
