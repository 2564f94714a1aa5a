//! One client ([`Client`]) and what all the clients share: its main loop (each job submitted,
//! sent again while refused, followed to its end, misbehaved on when planned) and its connection
//! (opened again after drops, written to under the run's deadline, closed after a last ping).

use super::plan::{add_of, expected_sum, share, Kind};
use super::tally::Tally;
use super::track::{Action, Control, Follow, Misbehave, Moment, Outcome, Step, Track};
use super::violations::Violation;
use super::{SoakOptions, MAX_RETRY_PAUSE, REPLY_WAIT};
use crate::client::{Failure, Recv, WsClient};
use crate::jobs;
use app::chat::ChatJob;
use app::error_code::ErrorCode;
use app::protocol::{ClientMessage, JobId, ServerMessage};
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// What every client shares.
pub(super) struct Shared {
    /// The server's `host:port`.
    pub(super) addr: String,
    /// The options.
    pub(super) opts: SoakOptions,
    /// This run's nonce, in every distinct add.
    pub(super) nonce: f32,
    /// Bounds concurrent handshakes.
    pub(super) gate: Semaphore,
    /// For the stored-answer check of resumed chats.
    pub(super) http: reqwest::Client,
    /// No submission after this.
    pub(super) submit_until: Instant,
    /// No read after this.
    pub(super) hard_deadline: Instant,
}

/// The pause before sending again what the server refused, from its hint (100 ms without one),
/// clamped to 10 ms ..= [`MAX_RETRY_PAUSE`].
pub(super) fn retry_pause(retry_after_ms: Option<u64>) -> Duration {
    Duration::from_millis(retry_after_ms.unwrap_or(100))
        .clamp(Duration::from_millis(10), MAX_RETRY_PAUSE)
}

/// One client: its session, its connection (re-opened after drops) and its bookkeeping.
pub(super) struct Client {
    /// Its number.
    pub(super) id: usize,
    /// Its session, the same across reconnects.
    pub(super) session: String,
    /// It misbehaves.
    pub(super) churner: bool,
    /// It has run a chat already (the first one of a churner is always dropped and resumed).
    pub(super) had_chat: bool,
    /// Its random choices.
    pub(super) rng: StdRng,
    /// The connection, when open.
    pub(super) ws: Option<WsClient>,
    /// The last ping's nonce.
    pub(super) nonce: u64,
    /// A dropped calculator job whose `resume` must be refused (`not_found`) now.
    pub(super) probing: Option<JobId>,
    /// Its jobs that have ended or were dropped: any message about them is a violation.
    pub(super) past: HashSet<JobId>,
    /// Its figures.
    pub(super) tally: Tally,
    /// What all clients share.
    pub(super) shared: Arc<Shared>,
}

impl Client {
    /// Runs the client's jobs, then closes its connection.
    pub(super) async fn run(mut self, plan: Vec<Kind>) -> Tally {
        self.tally.counts.planned = plan.len() as u64;
        for (j, kind) in plan.iter().enumerate() {
            if Instant::now() >= self.shared.submit_until {
                self.tally.counts.not_run += (plan.len() - j) as u64;
                break;
            }
            self.run_job(j as u64, *kind).await;
        }
        self.close().await;
        self.tally
    }

    /// The misbehaviour planned for the next job of `kind`, if any.
    fn misbehaviour(&mut self, kind: Kind) -> Option<Misbehave> {
        if !self.churner {
            return None;
        }
        let polite = self.rng.random_bool(0.5);
        if kind == Kind::Chat {
            let first = !self.had_chat;
            self.had_chat = true;
            let drop = first || self.rng.random_bool(2.0 / 3.0);
            // Waiting, starting, or in the middle of its answer (the answer goes on while the
            // client is away, and the resume must replay what it missed). The first chat is
            // always dropped after its first token.
            let moments = [
                Moment::Token(1),
                Moment::Event(0),
                Moment::Started,
                Moment::Token(2),
            ];
            let pick = if first {
                0
            } else {
                self.rng.random_range(0..moments.len())
            };
            return Some(Misbehave {
                after: moments[pick],
                action: if drop {
                    Action::Drop {
                        polite,
                        probe: false,
                    }
                } else {
                    Action::Cancel
                },
            });
        }
        if !self.rng.random_bool(share(self.shared.opts.churn_jobs)) {
            return None;
        }
        let action = if self.rng.random_bool(0.5) {
            Action::Cancel
        } else {
            Action::Drop {
                polite,
                probe: self.rng.random_bool(0.5),
            }
        };
        Some(Misbehave {
            after: Moment::Event(self.rng.random_range(0..=1)),
            action,
        })
    }

    /// Runs one job to its end (sending it again after `rate_limited` and `queue_full`).
    async fn run_job(&mut self, j: u64, kind: Kind) {
        let calc = match kind {
            Kind::Add => Some(jobs::distinct_add(self.shared.nonce, self.id, j)),
            Kind::Same(k) => {
                let k = f32::from(k);
                Some(add_of([1.0, 2.0, 3.0, 4.0], [k, k, k, k]))
            }
            Kind::Chat => None,
        };
        let chat: Option<ChatJob> = (kind == Kind::Chat)
            .then(|| jobs::chat(&self.shared.opts.prompt, self.shared.opts.max_tokens));
        let mut track = Track::new(kind, calc.as_ref().and_then(expected_sum));
        let mut plan = self.misbehaviour(kind);
        let mut attempt = 0u32;
        let outcome = loop {
            let until = self.shared.submit_until;
            if Instant::now() >= until || !self.connect(until).await {
                break if track.submitted {
                    Outcome::GaveUp
                } else {
                    Outcome::NotRun
                };
            }
            track.client_ref = format!("{}.{j}.{attempt}", self.id);
            attempt += 1;
            let submit = match (&calc, &chat) {
                (Some(c), _) => jobs::submit_calc(track.client_ref.clone(), c.clone()),
                (None, Some(c)) => jobs::submit_chat(track.client_ref.clone(), c.clone()),
                (None, None) => break Outcome::NotRun,
            };
            if !self.send(&submit).await {
                // The connection failed; the next turn reconnects and sends it again.
                continue;
            }
            if !track.submitted {
                track.submitted = true;
                self.tally.counts.submitted += 1;
                if kind == Kind::Chat {
                    self.tally.chats.submitted += 1;
                }
            }
            track.sent = Instant::now();
            match self.follow(&mut track, &mut plan).await {
                Follow::Ended(outcome) => break outcome,
                Follow::Refused(code, retry_after, message) => {
                    if matches!(code, ErrorCode::RateLimited | ErrorCode::QueueFull) {
                        *self.tally.refused.entry(code.as_str().into()).or_default() += 1;
                        let pause = retry_pause(retry_after);
                        tokio::time::sleep_until((Instant::now() + pause).min(until)).await;
                        continue;
                    }
                    self.tally.errors.add(code.as_str(), &message);
                    break Outcome::Failed(code.as_str().into());
                }
            }
        };
        self.finish(track, outcome).await;
    }

    /// Reads the current job's messages until it ends or is refused, misbehaving on the way if
    /// planned.
    async fn follow(&mut self, track: &mut Track, plan: &mut Option<Misbehave>) -> Follow {
        let hard = self.shared.hard_deadline;
        loop {
            if let Some(outcome) = track.outcome.take() {
                return Follow::Ended(outcome);
            }
            let Some(ws) = self.ws.as_mut() else {
                return Follow::Ended(Outcome::Lost);
            };
            match ws.recv(hard).await {
                Recv::TimedOut => {
                    let what = match &track.id {
                        Some(id) => format!("job {id} had no terminal event when the run ended"),
                        None => format!(
                            "submission {} was neither accepted nor refused when the run ended",
                            track.client_ref
                        ),
                    };
                    self.tally.violations.add(Violation::MissingTerminal, &what);
                    return Follow::Ended(Outcome::Unfinished);
                }
                Recv::Failed(f) if f.kind == "undecodable_message" => {
                    self.tally.errors.add(f.kind, &f.detail);
                    continue;
                }
                Recv::Failed(f) => {
                    self.tally.errors.add(f.kind, &f.detail);
                    self.ws = None;
                    // The connection broke under the job: a chat can still be followed.
                    if track.kind == Kind::Chat && track.last_seq.is_some() {
                        if self.resume(track).await {
                            continue;
                        }
                        return Follow::Ended(Outcome::Lost);
                    }
                    return Follow::Ended(Outcome::Lost);
                }
                Recv::Message(msg) => match self.dispatch(Some(track), msg) {
                    Step::Go => {}
                    Step::Refused(code, retry, message) => {
                        return Follow::Refused(code, retry, message)
                    }
                    Step::Ended(outcome) => return Follow::Ended(outcome),
                },
            }
            let due = plan.is_some_and(|m| m.due(track));
            if !due || track.ended {
                continue;
            }
            let Some(Misbehave { action, .. }) = plan.take() else {
                continue;
            };
            let Some(id) = track.id.clone() else {
                continue;
            };
            match action {
                Action::Cancel => {
                    self.tally.churn.cancels_sent += 1;
                    track.cancel_sent = true;
                    match self
                        .control(&ClientMessage::Cancel { job_id: id }, Some(track))
                        .await
                    {
                        Control::Taken | Control::Unknown => {}
                        Control::Answered(ServerMessage::Error {
                            code: ErrorCode::NotFound,
                            ..
                        }) => self.tally.churn.cancels_too_late += 1,
                        Control::Answered(other) => self.unexpected(&other),
                    }
                    // A failed connection is noticed by the next read.
                }
                Action::Drop { polite, probe } => {
                    self.tally.churn.disconnects += 1;
                    if let Some(ws) = self.ws.take() {
                        if polite {
                            ws.close().await;
                        } else {
                            drop(ws);
                        }
                    }
                    // A chat's answer goes on meanwhile: the resume must replay what was missed.
                    let most = if track.kind == Kind::Chat { 300 } else { 20 };
                    let pause = Duration::from_millis(self.rng.random_range(0..=most));
                    tokio::time::sleep(pause).await;
                    if track.kind == Kind::Chat {
                        if self.resume(track).await {
                            continue;
                        }
                        return Follow::Ended(Outcome::Lost);
                    }
                    self.past.insert(id.clone());
                    if probe {
                        self.probe(&id).await;
                    }
                    return Follow::Ended(Outcome::Dropped);
                }
            }
        }
    }

    /// Opens the connection if it is not open, retrying until `until`; whether it is open.
    pub(super) async fn connect(&mut self, until: Instant) -> bool {
        if self.ws.is_some() {
            return true;
        }
        let mut backoff = Duration::from_millis(50);
        while Instant::now() < until {
            let opened = {
                let Ok(_permit) = tokio::time::timeout_at(until, self.shared.gate.acquire()).await
                else {
                    break;
                };
                WsClient::connect(&self.shared.addr, &self.session, until).await
            };
            match opened {
                Ok(ws) => {
                    if self.tally.connected {
                        self.tally.churn.reconnects += 1;
                    }
                    self.tally.connected = true;
                    self.ws = Some(ws);
                    return true;
                }
                Err(f) => {
                    // 429: the server's rate or connection caps protect it; not a failure.
                    if f.kind == "connect_failed" && f.detail.contains("429") {
                        *self.tally.refused.entry("connect_429".into()).or_default() += 1;
                    } else {
                        self.tally.errors.add(f.kind, &f.detail);
                    }
                    tokio::time::sleep_until((Instant::now() + backoff).min(until)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        false
    }

    /// Sends `msg`, bounded by the run's end; on failure the connection is dropped and the
    /// failure counted.
    pub(super) async fn send(&mut self, msg: &ClientMessage) -> bool {
        let Some(ws) = self.ws.as_mut() else {
            return false;
        };
        let failure = match tokio::time::timeout_at(self.shared.hard_deadline, ws.send(msg)).await {
            Ok(Ok(())) => return true,
            Ok(Err(f)) => f,
            Err(_) => Failure::new("send_timeout", "the server did not take a message in time"),
        };
        self.tally.errors.add(failure.kind, &failure.detail);
        self.ws = None;
        false
    }

    /// A last `ping`, so that anything the server still had to say about past jobs arrives and
    /// is checked, then a polite close.
    async fn close(&mut self) {
        let until = (Instant::now() + 2 * REPLY_WAIT).min(self.shared.hard_deadline + REPLY_WAIT);
        if self.ws.is_some() {
            match self.fence(None, until).await {
                Some(None) => {}
                Some(Some(other)) => self.unexpected(&other),
                None if self.ws.is_some() => self
                    .tally
                    .errors
                    .add("final_ping_unanswered", "no pong before the run's end"),
                None => {}
            }
        }
        if let Some(ws) = self.ws.take() {
            ws.close().await;
        }
    }
}
