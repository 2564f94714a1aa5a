//! The client's control messages: resuming a chat after a drop, probing that a dropped calculator
//! job cannot be resumed, and the fence of pings that tells whether a `cancel` or `resume` was
//! taken or refused.

use super::client::{retry_pause, Client};
use super::track::{Control, Replay, Step, Track};
use crate::client::Recv;
use app::error_code::ErrorCode;
use app::protocol::{ClientMessage, JobId, ServerMessage};
use tokio::time::Instant;

impl Client {
    /// Reconnects and resumes the current chat from the last seq seen (events that arrive
    /// meanwhile are applied to `track`, its end included).
    pub(super) async fn resume(&mut self, track: &mut Track) -> bool {
        let (Some(id), Some(last_seq)) = (track.id.clone(), track.last_seq) else {
            return false;
        };
        track.dropped_after = track.last_kind;
        let mut replay = Replay {
            last_seq,
            first: None,
            anomalies: 0,
            problem: None,
        };
        for _ in 0..3 {
            if !self.connect(self.shared.hard_deadline).await {
                break;
            }
            track.next_seq = Some(last_seq + 1);
            track.replay = Some(replay.clone());
            let msg = ClientMessage::Resume {
                job_id: id.clone(),
                last_seq: Some(last_seq),
            };
            match self.control(&msg, Some(track)).await {
                Control::Taken => return true,
                Control::Answered(other) => {
                    self.unexpected(&other);
                    return true;
                }
                // The connection failed again (or the run is over): try once more.
                Control::Unknown if self.ws.is_none() && track.outcome.is_none() => {}
                Control::Unknown => return true,
            }
        }
        replay.problem = Some("reconnect_failed");
        track.replay = Some(replay);
        false
    }

    /// Sends a `resume` for a dropped calculator job and checks that it is refused.
    pub(super) async fn probe(&mut self, id: &JobId) {
        if !self.connect(self.shared.submit_until).await {
            return;
        }
        self.tally.churn.calc_resume_probes += 1;
        self.probing = Some(id.clone());
        let msg = ClientMessage::Resume {
            job_id: id.clone(),
            last_seq: None,
        };
        match self.control(&msg, None).await {
            Control::Answered(other) => self.unexpected(&other),
            Control::Taken | Control::Unknown => {}
        }
        // `dispatch` clears `probing` when the refusal arrives, before the fence's pong.
        if self.probing.take().is_some() && self.ws.is_some() {
            self.tally.errors.add(
                "calc_resume_not_refused",
                &format!("the resume of dropped calculator job {id} was not refused"),
            );
        }
    }

    /// Sends a control message (`cancel`, `resume`) and learns its fate through a fence: it is
    /// sent again, after the server's hint, while the server answers it `rate_limited`. Events
    /// arriving meanwhile are applied to `track` (an ending is left in `track.outcome`).
    pub(super) async fn control(
        &mut self,
        msg: &ClientMessage,
        mut track: Option<&mut Track>,
    ) -> Control {
        let until = self.shared.hard_deadline;
        loop {
            if !self.send(msg).await {
                return Control::Unknown;
            }
            match self.fence(track.as_deref_mut(), until).await {
                None => return Control::Unknown,
                Some(None) => return Control::Taken,
                Some(Some(ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    retry_after_ms,
                    ..
                })) => {
                    *self.tally.refused.entry("rate_limited".into()).or_default() += 1;
                    let pause = retry_pause(retry_after_ms);
                    tokio::time::sleep_until((Instant::now() + pause).min(until)).await;
                    if Instant::now() >= until {
                        return Control::Unknown;
                    }
                }
                Some(Some(reply)) => return Control::Answered(reply),
            }
        }
    }

    /// Pings until the server answers the latest ping, applying other messages on the way, so
    /// that the immediate answers to everything sent before have arrived. Every message gets at
    /// most one immediate answer, in order, and a ping always gets one (`pong`, or an untagged
    /// `rate_limited`, after which another ping follows); so of the untagged errors before the
    /// last pong, all but one per unanswered ping belong to the message sent before the first
    /// ping. Returns that message's answer (`Some(None)`: none), or `None` when the connection
    /// failed or `until` came first.
    pub(super) async fn fence(
        &mut self,
        mut track: Option<&mut Track>,
        until: Instant,
    ) -> Option<Option<ServerMessage>> {
        let first = self.nonce + 1;
        let mut latest = self.ping().await?;
        let (mut pings, mut pongs) = (1u64, 0u64);
        let mut replies: Vec<ServerMessage> = Vec::new();
        let mut next_ping: Option<Instant> = None;
        loop {
            let wait = next_ping.map_or(until, |t| t.min(until));
            let ws = self.ws.as_mut()?;
            match ws.recv(wait).await {
                Recv::TimedOut => {
                    if Instant::now() >= until {
                        return None;
                    }
                    next_ping = None;
                    latest = self.ping().await?;
                    pings += 1;
                }
                Recv::Failed(f) if f.kind == "undecodable_message" => {
                    self.tally.errors.add(f.kind, &f.detail);
                }
                Recv::Failed(f) => {
                    self.tally.errors.add(f.kind, &f.detail);
                    self.ws = None;
                    return None;
                }
                Recv::Message(ServerMessage::Pong { nonce: Some(n) }) if n >= first => {
                    pongs += 1;
                    if n == latest {
                        break;
                    }
                }
                Recv::Message(ServerMessage::Pong { .. }) => {}
                Recv::Message(
                    reply @ ServerMessage::Error {
                        job_id: None,
                        client_ref: None,
                        ..
                    },
                ) => {
                    if let ServerMessage::Error {
                        code: ErrorCode::RateLimited,
                        retry_after_ms,
                        ..
                    } = &reply
                    {
                        // Perhaps the latest ping's answer: another ping follows, after the hint.
                        next_ping.get_or_insert(Instant::now() + retry_pause(*retry_after_ms));
                    }
                    replies.push(reply);
                }
                Recv::Message(msg) => {
                    let step = self.dispatch(track.as_deref_mut(), msg);
                    if let (Step::Ended(outcome), Some(t)) = (step, track.as_deref_mut()) {
                        t.outcome = Some(outcome);
                    }
                }
            }
        }
        let limited_pings = (pings - pongs) as usize;
        match replies.len().checked_sub(limited_pings) {
            Some(0) => Some(None),
            Some(1) => Some(Some(replies.swap_remove(0))),
            _ => {
                self.tally.errors.add(
                    "unexplained_replies",
                    &format!(
                        "{} untagged errors for {pings} pings of which {pongs} answered: {replies:?}",
                        replies.len()
                    ),
                );
                Some(None)
            }
        }
    }

    /// Sends the next ping; its nonce, or `None` when the connection failed.
    async fn ping(&mut self) -> Option<u64> {
        self.nonce += 1;
        let nonce = self.nonce;
        self.send(&ClientMessage::Ping { nonce: Some(nonce) })
            .await
            .then_some(nonce)
    }

    /// Counts an untagged error nobody expected.
    pub(super) fn unexpected(&mut self, msg: &ServerMessage) {
        match msg {
            ServerMessage::Error { code, message, .. } => {
                self.tally.errors.add(code.as_str(), message)
            }
            other => self
                .tally
                .errors
                .add("unexpected_message", &format!("{other:?}")),
        }
    }
}
