//! A client's view of its current job ([`Track`]) and the small types its handling passes around:
//! how a job ended, the misbehaviour planned for it, a resume's replay, and what a message, a
//! control message or a whole submission came to.

use super::plan::Kind;
use app::chat::ConversationId;
use app::error_code::ErrorCode;
use app::protocol::{JobId, ServerMessage};
use tokio::time::Instant;

/// How a job ended, from the client's side.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Outcome {
    /// `done`; whether the answer was cached.
    Completed { cached: bool },
    /// `error` `cancelled` after the client's cancel.
    Cancelled,
    /// The client dropped the connection of a calculator job.
    Dropped,
    /// Another error, by code.
    Failed(String),
    /// The connection failed under it.
    Lost,
    /// No terminal event by the end.
    Unfinished,
    /// Still refused when the submission time was up.
    GaveUp,
    /// Never sent.
    NotRun,
}

/// What a misbehaving client does to a job.
#[derive(Clone, Copy, Debug)]
pub(super) enum Action {
    /// Sends `cancel`.
    Cancel,
    /// Drops the connection (politely with a close frame, or not) and reconnects; for a
    /// calculator job, `probe` sends a `resume` that must be refused.
    Drop {
        /// Close frame first.
        polite: bool,
        /// Try to resume a calculator job.
        probe: bool,
    },
}

/// When to misbehave, in a job's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Moment {
    /// Once its `n`-th event has arrived (0 = `accepted`).
    Event(u32),
    /// Once it holds the device (`started`).
    Started,
    /// Once its `n`-th `token` has arrived (a chat in the middle of its answer).
    Token(u32),
}

/// A misbehaviour planned for one job: `action` at the `after` moment, if the job has not ended
/// by then (if it ends first, nothing is done).
#[derive(Clone, Copy, Debug)]
pub(super) struct Misbehave {
    /// When.
    pub(super) after: Moment,
    /// What to do.
    pub(super) action: Action,
}

impl Misbehave {
    /// Whether its moment has come for `track`.
    pub(super) fn due(&self, track: &Track) -> bool {
        match self.after {
            Moment::Event(n) => track.events > n,
            Moment::Started => track.started,
            Moment::Token(n) => track.token_messages >= n,
        }
    }
}

/// A resume in progress, for checking its replay.
#[derive(Clone, Debug)]
pub(super) struct Replay {
    /// The `last_seq` sent.
    pub(super) last_seq: u64,
    /// The first seq received after it.
    pub(super) first: Option<u64>,
    /// Seq anomalies after it.
    pub(super) anomalies: u32,
    /// Set when something else went wrong (reconnect, refusal).
    pub(super) problem: Option<&'static str>,
}

/// The client's view of its current job.
#[derive(Clone, Debug)]
pub(super) struct Track {
    /// What it is.
    pub(super) kind: Kind,
    /// The sum its result must be, for calculator jobs.
    pub(super) expected: Option<Vec<f32>>,
    /// The current submission's label.
    pub(super) client_ref: String,
    /// Sent at least once.
    pub(super) submitted: bool,
    /// Its id, once accepted.
    pub(super) id: Option<JobId>,
    /// When the accepted submission was sent.
    pub(super) sent: Instant,
    /// Its events received, all connections together.
    pub(super) events: u32,
    /// The seq the next message must carry on this connection.
    pub(super) next_seq: Option<u64>,
    /// The largest seq seen.
    pub(super) last_seq: Option<u64>,
    /// Its terminal event arrived.
    pub(super) ended: bool,
    /// Results received.
    pub(super) results: u32,
    /// The result came from the cache.
    pub(super) cached: bool,
    /// The client sent `cancel`.
    pub(super) cancel_sent: bool,
    /// The answer so far (chat).
    pub(super) text: String,
    /// Its conversation (chat).
    pub(super) conversation: Option<ConversationId>,
    /// The latest resume, if any.
    pub(super) replay: Option<Replay>,
    /// Completion tokens reported by `done`.
    pub(super) tokens: u64,
    /// How it ended, when that happened while a control message was being fenced.
    pub(super) outcome: Option<Outcome>,
    /// It has held the device (`started` arrived).
    pub(super) started: bool,
    /// `token` messages received.
    pub(super) token_messages: u32,
    /// The type of the last message received about it.
    pub(super) last_kind: &'static str,
    /// The type of the last message seen before the client dropped the connection.
    pub(super) dropped_after: &'static str,
}

impl Track {
    /// A job not yet sent.
    pub(super) fn new(kind: Kind, expected: Option<Vec<f32>>) -> Track {
        Track {
            kind,
            expected,
            client_ref: String::new(),
            submitted: false,
            id: None,
            sent: Instant::now(),
            events: 0,
            next_seq: None,
            last_seq: None,
            ended: false,
            results: 0,
            cached: false,
            cancel_sent: false,
            text: String::new(),
            conversation: None,
            replay: None,
            tokens: 0,
            outcome: None,
            started: false,
            token_messages: 0,
            last_kind: "",
            dropped_after: "",
        }
    }
}

/// What one message meant for the current job.
pub(super) enum Step {
    /// Nothing decisive; read on.
    Go,
    /// The submission was refused (no job id): the code and the server's retry hint.
    Refused(ErrorCode, Option<u64>, String),
    /// The job ended.
    Ended(Outcome),
}

/// What became of a control message (`cancel`, `resume`).
pub(super) enum Control {
    /// The server took it without an immediate answer.
    Taken,
    /// The server answered it at once with this untagged message (`not_found`: a late cancel).
    Answered(ServerMessage),
    /// Unknown: the connection failed, or the run's end came first.
    Unknown,
}

/// What following a submission gave.
pub(super) enum Follow {
    /// Refused: code, retry hint, message.
    Refused(ErrorCode, Option<u64>, String),
    /// Ended.
    Ended(Outcome),
}
