//! The soak scenario: many WebSocket clients, each its own session (`/ws?session=<32 hex>`), run
//! a mix of jobs one after another until `jobs` have been run or `duration` has passed, while a
//! share of them misbehave, and every message they receive is checked against the protocol.
//!
//! **The jobs.** Mostly calculator jobs: 2x2 adds whose operands name the run, the client and the
//! job (so the server's result cache cannot answer them), plus a share (`cached_share`) of a few
//! identical adds that the cache may answer. A share (`chat_share`) are short chats (a new
//! conversation, `max_tokens` tokens). The jobs are dealt to the clients up front, `jobs / clients`
//! each; the chats are dealt round-robin starting with the churning clients, so that even a
//! handful of chats exercises the resume path. Each client has one job out at a time.
//!
//! **Churn.** A share `churn` of the clients misbehave at random moments (a calculator job on its
//! first or second event; a chat while it waits, once it starts, or after its first or second
//! token): on a share `churn_jobs` of their calculator jobs and on every chat they either
//! - drop the connection (a close frame or just the TCP connection, at random) and reconnect with
//!   the same session. A chat is then resumed (`resume` with the last seq the client saw) and must
//!   go on with exactly the events after it: its next message must carry `last_seq + 1`, the
//!   stream must have no gap up to exactly one terminal event, and the answer assembled from the
//!   tokens before and after the drop must be the one the server stored in the conversation. A
//!   calculator job is cancelled by the server when its connection closes; it counts as dropped
//!   (ended by the client's own action), and half the time the client checks that a `resume` of
//!   it is refused with `not_found`. A churning client's first chat is always dropped (after its
//!   first token) and resumed.
//! - or cancel the job (waiting or running) and must then see exactly one terminal event for it:
//!   `error` with `cancelled`, or `done` if it finished first (the server then answers the cancel
//!   with an untagged `not_found`, which is expected).
//!
//! **Checks, per job, on the client side** (each a [`Violations`] kind): exactly one terminal
//! event (`done`, or `error` with the job's id), never two (`duplicate_terminal`), none missing
//! when the run ends (`missing_terminal`); seq numbers 0, 1, 2, … without gaps on each connection,
//! continuing at `last_seq + 1` after a resume (`seq_gap`); no message about a job the client did
//! not submit (`foreign_event`), nor about one of its own jobs that this connection no longer
//! follows (`stray_event`); every result the exact sum of its own operands, one result per
//! calculator job and none for a chat (`wrong_result`).
//!
//! **Refusals.** `rate_limited` and `queue_full` are the server protecting itself: they are counted
//! by code and the job is sent again after `retry_after_ms` (at most 5 s); they are not failures.
//! A `cancel` or `resume` may be refused `rate_limited` too, with no id to say which message it
//! answers, so each is followed by pings until one is answered: every message gets at most one
//! immediate answer, in order, so the untagged errors before that pong tell whether the control
//! message was refused (it is then sent again) or taken. A WebSocket upgrade refused with 429 (the
//! server's rate or connection caps) is counted as `connect_429` and tried again. Other error codes
//! are counted by code; socket and protocol failures by their kind.
//!
//! **The server's side**, from `GET /api/stats`: a warm-up job (and a warm-up chat when chats are
//! planned, so that the model's load is not counted as growth) runs first; then the server's RSS is
//! read, sampled every 250 ms during the run (the peak), and read again once the clients are done
//! and the queue is empty (`queue.length` and `queue.running` both 0, polled for up to `settle`
//! seconds, which also waits for the run's sockets to be closed on the server), then, after
//! `linger` seconds more, a last time: the server keeps ended jobs' event logs for its resume
//! window (up to `--resume-max-bytes`, 64 MiB by default), so memory can only come back once that
//! window has passed. The report gives the three, the end over the start, and whether the end is
//! within 10 % of the start.
//!
//! **Bounds.** Jobs are submitted for at most `duration` seconds; jobs still out then have `grace`
//! seconds more to end (after that they are `missing_terminal`); then every socket is closed.
//! Every read, write and connect is bounded by those deadlines, so a server that stops answering
//! or dies cannot hold the run up (its failures are counted, and the report still comes).
//!
//! **Server flags.** No `--test-mode` is needed (no sleep jobs). All the clients share one
//! address, so for a large soak: `--rate-per-ip 0` (or well above the clients' message rate:
//! the default 200 messages/s for the address paces the whole soak, every refusal being sent
//! again), `--max-connections-per-ip` above `clients` (default 256; upgrades past it get 429 and
//! are tried again), `--max-waiting` above `clients` (e.g. 20000, else `queue_full`), and an
//! open-files limit above `clients` on both sides (`ulimit -n`). `--max-waiting-per-session` can
//! stay: a client has one job out at a time (two for a moment after it dropped one).

use crate::client::{self, Failure, Recv, WsClient, CONNECT_CONCURRENCY};
use crate::jobs;
use crate::report::{self, Errors, Latency, Table};
use crate::stats::{self, Snapshot};
use crate::RunResult;
use app::chat::{ChatJob, Conversation, ConversationId, Role};
use app::error_code::ErrorCode;
use app::protocol::{CalcJob, ClientMessage, JobId, Op, ServerMessage};
use app::tensor::{Fill, Tensor, TensorInput};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};
use tokio::time::Instant;

/// How many distinct identical-job operands there are (the cache may answer their repeats).
const SAME_JOBS: u8 = 4;
/// How often the server's stats are sampled during the run.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Most time the warm-up jobs (one add, one chat that may load the model) may take.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest pause before a refused job is sent again, whatever the server's hint.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);
/// How long a client waits for the answer to a `resume` it expects to be refused, or to its
/// final `ping`.
const REPLY_WAIT: Duration = Duration::from_secs(3);

/// The soak scenario's knobs (also its CLI flags).
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct SoakOptions {
    /// Concurrent clients, each its own session, one job out at a time.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Jobs in all (dealt evenly to the clients).
    #[arg(long, default_value_t = 10_000)]
    pub jobs: u64,
    /// Share of the jobs that are chats (0 to 1); chats are slow on a CPU, keep it small.
    #[arg(long, default_value_t = 0.02)]
    pub chat_share: f64,
    /// Share of the calculator jobs that are identical adds the server's cache may answer.
    #[arg(long, default_value_t = 0.05)]
    pub cached_share: f64,
    /// Share of the clients that misbehave (drop their connection, cancel jobs).
    #[arg(long, default_value_t = 0.10)]
    pub churn: f64,
    /// Share of a misbehaving client's calculator jobs it misbehaves on (it does on every chat).
    #[arg(long, default_value_t = 0.3)]
    pub churn_jobs: f64,
    /// Most tokens per chat answer.
    #[arg(long, default_value_t = 4)]
    pub max_tokens: u32,
    /// The message every chat sends (each in a new conversation).
    #[arg(long, default_value = "Say hello.")]
    pub prompt: String,
    /// Most seconds during which jobs are submitted (connecting included).
    #[arg(long, default_value_t = 300.0)]
    pub duration: f64,
    /// Seconds after `duration` that jobs still out may take to end.
    #[arg(long, default_value_t = 10.0)]
    pub grace: f64,
    /// Most seconds to wait, after the clients are done, for the server's queue to be empty.
    #[arg(long, default_value_t = 10.0)]
    pub settle: f64,
    /// Seconds to wait once the queue is empty before the last memory reading, so that what the
    /// server keeps on purpose for a while (ended jobs' event logs, for the resume window) has
    /// been let go: set it past the server's `--resume-window`.
    #[arg(long, default_value_t = 0.0)]
    pub linger: f64,
    /// Seed of the run's random choices (random when absent; the report gives the one used).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// What a soak run measured.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    /// Always `soak`.
    pub scenario: &'static str,
    /// What was asked.
    pub options: SoakOptions,
    /// The seed used (pass it as `--seed` to deal the same jobs and churn again).
    pub seed: u64,
    /// Clients that connected at least once.
    pub clients_connected: usize,
    /// Clients that misbehaved.
    pub churning_clients: usize,
    /// Where every job went.
    pub jobs: JobCounts,
    /// Whether every submitted job is in exactly one of the outcome counts.
    pub every_job_accounted: bool,
    /// Submissions refused by the server protecting itself, by code (sent again, not failures).
    pub refused: BTreeMap<String, u64>,
    /// Chats, and the resumes among them.
    pub chats: ChatCounts,
    /// What the misbehaving clients did.
    pub churn: ChurnCounts,
    /// Protocol violations seen by the clients, by kind.
    pub violations: Violations,
    /// Seconds from the first submission to the last client's end.
    pub wall_seconds: f64,
    /// Completed jobs (cached answers included) per wall second.
    pub jobs_per_second: f64,
    /// Submission to `done` of calculator jobs the device computed.
    pub calc_latency: Latency,
    /// Submission to `done` of chats that were not dropped or cancelled.
    pub chat_latency: Latency,
    /// Failed jobs by code, and socket and protocol failures by kind.
    pub errors: Errors,
    /// What the server reported.
    pub server: SoakServer,
}

/// Where the jobs went. Every submitted job ends in exactly one of `completed`, `cancelled`,
/// `dropped_by_disconnect`, `failed`, `lost`, `unfinished` and `gave_up`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JobCounts {
    /// Jobs dealt to the clients.
    pub planned: u64,
    /// Jobs sent at least once.
    pub submitted: u64,
    /// Jobs that ended with `done` (cached answers included).
    pub completed: u64,
    /// Of `completed`, answers from the server's result cache.
    pub cached: u64,
    /// Jobs that ended with `error` `cancelled` after the client's `cancel`.
    pub cancelled: u64,
    /// Calculator jobs whose connection the client dropped (the server cancels them).
    pub dropped_by_disconnect: u64,
    /// Jobs that ended with another error (by code in `errors`), refusals other than
    /// `rate_limited` and `queue_full` included.
    pub failed: u64,
    /// Jobs whose connection failed under them, not by the client's doing.
    pub lost: u64,
    /// Jobs with no terminal event when the run ended (each also a `missing_terminal`).
    pub unfinished: u64,
    /// Jobs still refused (`rate_limited`, `queue_full`) when the submission time was up.
    pub gave_up: u64,
    /// Jobs never sent: the submission time was up first.
    pub not_run: u64,
}

impl JobCounts {
    /// Adds another client's counts.
    fn merge(&mut self, o: &JobCounts) {
        self.planned += o.planned;
        self.submitted += o.submitted;
        self.completed += o.completed;
        self.cached += o.cached;
        self.cancelled += o.cancelled;
        self.dropped_by_disconnect += o.dropped_by_disconnect;
        self.failed += o.failed;
        self.lost += o.lost;
        self.unfinished += o.unfinished;
        self.gave_up += o.gave_up;
        self.not_run += o.not_run;
    }

    /// The outcomes' sum, which must be `submitted`.
    pub fn ended(&self) -> u64 {
        self.completed
            + self.cancelled
            + self.dropped_by_disconnect
            + self.failed
            + self.lost
            + self.unfinished
            + self.gave_up
    }
}

/// The chats and their resumes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChatCounts {
    /// Chats sent.
    pub submitted: u64,
    /// Chats that ended with `done`.
    pub completed: u64,
    /// Chats cancelled by their client.
    pub cancelled: u64,
    /// Chats resumed after a reconnect (at least once).
    pub resumed: u64,
    /// Resumed chats whose replay was exact (from `last_seq + 1`, no gap, one terminal event,
    /// the assembled answer equal to the stored one).
    pub replays_exact: u64,
    /// Resumed chats whose replay was not; why, in `replay_problems`.
    pub replays_inexact: u64,
    /// What was wrong with the inexact replays.
    pub replay_problems: Errors,
    /// Completion tokens reported by the chats' `done`.
    pub completion_tokens: u64,
    /// Each resumed chat's replay.
    pub replays: Vec<ReplayRecord>,
}

/// One resumed chat's replay.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReplayRecord {
    /// The chat job.
    pub job_id: String,
    /// The `last_seq` its `resume` sent.
    pub last_seq: u64,
    /// The type of the last message the client saw before the connection went (`accepted`,
    /// `position`, `started`, `loading`, `token`).
    pub dropped_after: String,
    /// The seq of the first message after the resume (exact: `last_seq + 1`).
    pub first_seq_after: Option<u64>,
    /// The answer assembled from the tokens before and after the drop.
    pub tokens_text: String,
    /// Whether the replay was exact.
    pub exact: bool,
    /// Why not, when it was not.
    pub problem: Option<String>,
}

impl ChatCounts {
    /// Adds another client's counts.
    fn merge(&mut self, o: ChatCounts) {
        self.submitted += o.submitted;
        self.completed += o.completed;
        self.cancelled += o.cancelled;
        self.resumed += o.resumed;
        self.replays_exact += o.replays_exact;
        self.replays_inexact += o.replays_inexact;
        self.replay_problems.merge(o.replay_problems);
        self.completion_tokens += o.completion_tokens;
        self.replays.extend(o.replays);
    }
}

/// What the misbehaving clients did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChurnCounts {
    /// Connections dropped on purpose in the middle of a job.
    pub disconnects: u64,
    /// Connections opened again after the first (after a drop or a failure).
    pub reconnects: u64,
    /// `cancel` messages sent.
    pub cancels_sent: u64,
    /// Cancels that came too late (the job had ended; answered with an untagged `not_found`).
    pub cancels_too_late: u64,
    /// `resume`s of a dropped calculator job.
    pub calc_resume_probes: u64,
    /// Of those, refused with `not_found` as they must be.
    pub calc_resume_refused: u64,
}

impl ChurnCounts {
    /// Adds another client's counts.
    fn merge(&mut self, o: &ChurnCounts) {
        self.disconnects += o.disconnects;
        self.reconnects += o.reconnects;
        self.cancels_sent += o.cancels_sent;
        self.cancels_too_late += o.cancels_too_late;
        self.calc_resume_probes += o.calc_resume_probes;
        self.calc_resume_refused += o.calc_resume_refused;
    }
}

/// A kind of protocol violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A second terminal event for a job.
    DuplicateTerminal,
    /// A job that never got its terminal event.
    MissingTerminal,
    /// A seq that is not the previous one plus one (or a replay not at `last_seq + 1`).
    SeqGap,
    /// A message about a job this client did not submit.
    ForeignEvent,
    /// A result that is not its operands' sum, or a result where none belongs.
    WrongResult,
    /// A message about one of the client's jobs that the connection no longer follows.
    StrayEvent,
}

impl Violation {
    /// The kind's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Violation::DuplicateTerminal => "duplicate_terminal",
            Violation::MissingTerminal => "missing_terminal",
            Violation::SeqGap => "seq_gap",
            Violation::ForeignEvent => "foreign_event",
            Violation::WrongResult => "wrong_result",
            Violation::StrayEvent => "stray_event",
        }
    }
}

/// Protocol violations by kind, with the first example of each.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Violations {
    /// Second terminal events.
    pub duplicate_terminal: u64,
    /// Jobs without a terminal event at the end.
    pub missing_terminal: u64,
    /// Gaps, repeats or reorderings of seq numbers.
    pub seq_gap: u64,
    /// Messages about other clients' jobs.
    pub foreign_event: u64,
    /// Wrong or misplaced results.
    pub wrong_result: u64,
    /// Messages about jobs the connection no longer follows.
    pub stray_event: u64,
    /// The first detail seen of each kind.
    pub examples: BTreeMap<String, String>,
}

impl Violations {
    /// Counts one violation.
    pub fn add(&mut self, kind: Violation, detail: &str) {
        let slot = match kind {
            Violation::DuplicateTerminal => &mut self.duplicate_terminal,
            Violation::MissingTerminal => &mut self.missing_terminal,
            Violation::SeqGap => &mut self.seq_gap,
            Violation::ForeignEvent => &mut self.foreign_event,
            Violation::WrongResult => &mut self.wrong_result,
            Violation::StrayEvent => &mut self.stray_event,
        };
        *slot += 1;
        self.examples
            .entry(kind.as_str().to_owned())
            .or_insert_with(|| detail.chars().take(300).collect());
    }

    /// Adds another tally.
    fn merge(&mut self, o: Violations) {
        self.duplicate_terminal += o.duplicate_terminal;
        self.missing_terminal += o.missing_terminal;
        self.seq_gap += o.seq_gap;
        self.foreign_event += o.foreign_event;
        self.wrong_result += o.wrong_result;
        self.stray_event += o.stray_event;
        for (k, v) in o.examples {
            self.examples.entry(k).or_insert(v);
        }
    }

    /// All violations.
    pub fn total(&self) -> u64 {
        self.duplicate_terminal
            + self.missing_terminal
            + self.seq_gap
            + self.foreign_event
            + self.wrong_result
            + self.stray_event
    }

    /// "none", or "kind ×n, ..." for a table.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = [
            (Violation::DuplicateTerminal, self.duplicate_terminal),
            (Violation::MissingTerminal, self.missing_terminal),
            (Violation::SeqGap, self.seq_gap),
            (Violation::ForeignEvent, self.foreign_event),
            (Violation::WrongResult, self.wrong_result),
            (Violation::StrayEvent, self.stray_event),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{} ×{n}", k.as_str()))
        .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The server's figures over the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SoakServer {
    /// Resident memory after the warm-up, before the run, bytes.
    pub rss_start_bytes: u64,
    /// The largest resident memory sampled during the run (and at its two ends), bytes.
    pub rss_peak_bytes: u64,
    /// Resident memory once the queue was empty again (or the settle time was up), and
    /// `linger` seconds more, bytes.
    pub rss_end_bytes: u64,
    /// `rss_end_bytes / rss_start_bytes` (0 when the start is unknown).
    pub rss_end_over_start: f64,
    /// Whether the end is within 10 % of the start.
    pub rss_within_10_percent: bool,
    /// Whether `queue.length` and `queue.running` were both 0 after the clients were done.
    pub queue_back_to_zero: bool,
    /// Seconds from the clients' end until the queue was seen empty (the settle time if never).
    pub queue_settle_seconds: f64,
    /// The longest queue sampled during the run.
    pub queue_length_peak: u64,
    /// WebSocket connections the server counted before the run.
    pub websocket_connections_start: u64,
    /// WebSocket connections the server counted at the end.
    pub websocket_connections_end: u64,
    /// Results the server answered from its cache during the run.
    pub cache_hits: u64,
    /// Whether the stats could be read after the run (when not, the end figures are 0).
    pub readable_after: bool,
    /// Stats reads during the run (samples).
    pub samples: u64,
    /// Stats reads that failed during the run.
    pub sample_failures: u64,
}

/// What kind of job a client runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A distinct 2x2 add.
    Add,
    /// One of [`SAME_JOBS`] identical 2x2 adds.
    Same(u8),
    /// A short chat.
    Chat,
}

/// How a job ended, from the client's side.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
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
enum Action {
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
enum Moment {
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
struct Misbehave {
    /// When.
    after: Moment,
    /// What to do.
    action: Action,
}

impl Misbehave {
    /// Whether its moment has come for `track`.
    fn due(&self, track: &Track) -> bool {
        match self.after {
            Moment::Event(n) => track.events > n,
            Moment::Started => track.started,
            Moment::Token(n) => track.token_messages >= n,
        }
    }
}

/// A resume in progress, for checking its replay.
#[derive(Clone, Debug)]
struct Replay {
    /// The `last_seq` sent.
    last_seq: u64,
    /// The first seq received after it.
    first: Option<u64>,
    /// Seq anomalies after it.
    anomalies: u32,
    /// Set when something else went wrong (reconnect, refusal).
    problem: Option<&'static str>,
}

/// The client's view of its current job.
#[derive(Clone, Debug)]
struct Track {
    /// What it is.
    kind: Kind,
    /// The sum its result must be, for calculator jobs.
    expected: Option<Vec<f32>>,
    /// The current submission's label.
    client_ref: String,
    /// Sent at least once.
    submitted: bool,
    /// Its id, once accepted.
    id: Option<JobId>,
    /// When the accepted submission was sent.
    sent: Instant,
    /// Its events received, all connections together.
    events: u32,
    /// The seq the next message must carry on this connection.
    next_seq: Option<u64>,
    /// The largest seq seen.
    last_seq: Option<u64>,
    /// Its terminal event arrived.
    ended: bool,
    /// Results received.
    results: u32,
    /// The result came from the cache.
    cached: bool,
    /// The client sent `cancel`.
    cancel_sent: bool,
    /// The answer so far (chat).
    text: String,
    /// Its conversation (chat).
    conversation: Option<ConversationId>,
    /// The latest resume, if any.
    replay: Option<Replay>,
    /// Completion tokens reported by `done`.
    tokens: u64,
    /// How it ended, when that happened while a control message was being fenced.
    outcome: Option<Outcome>,
    /// It has held the device (`started` arrived).
    started: bool,
    /// `token` messages received.
    token_messages: u32,
    /// The type of the last message received about it.
    last_kind: &'static str,
    /// The type of the last message seen before the client dropped the connection.
    dropped_after: &'static str,
}

impl Track {
    /// A job not yet sent.
    fn new(kind: Kind, expected: Option<Vec<f32>>) -> Track {
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
enum Step {
    /// Nothing decisive; read on.
    Go,
    /// The submission was refused (no job id): the code and the server's retry hint.
    Refused(ErrorCode, Option<u64>, String),
    /// The job ended.
    Ended(Outcome),
}

/// What became of a control message (`cancel`, `resume`).
enum Control {
    /// The server took it without an immediate answer.
    Taken,
    /// The server answered it at once with this untagged message (`not_found`: a late cancel).
    Answered(ServerMessage),
    /// Unknown: the connection failed, or the run's end came first.
    Unknown,
}

/// What following a submission gave.
enum Follow {
    /// Refused: code, retry hint, message.
    Refused(ErrorCode, Option<u64>, String),
    /// Ended.
    Ended(Outcome),
}

/// One client's figures, merged into the report at the end.
struct Tally {
    /// Where its jobs went.
    counts: JobCounts,
    /// Refusals sent again, by code.
    refused: BTreeMap<String, u64>,
    /// Its chats.
    chats: ChatCounts,
    /// Its misbehaviour.
    churn: ChurnCounts,
    /// What it saw wrong.
    violations: Violations,
    /// Failures and error codes.
    errors: Errors,
    /// Computed calculator jobs, submission to `done`.
    calc_latency: Histogram<u64>,
    /// Chats, submission to `done`.
    chat_latency: Histogram<u64>,
    /// It connected at least once.
    connected: bool,
    /// When its last job ended.
    last_end: Option<Instant>,
}

impl Tally {
    /// An empty tally.
    fn new() -> Tally {
        Tally {
            counts: JobCounts::default(),
            refused: BTreeMap::new(),
            chats: ChatCounts::default(),
            churn: ChurnCounts::default(),
            violations: Violations::default(),
            errors: Errors::default(),
            calc_latency: report::histogram(),
            chat_latency: report::histogram(),
            connected: false,
            last_end: None,
        }
    }

    /// Adds another client's tally.
    fn merge(&mut self, o: Tally) {
        self.counts.merge(&o.counts);
        for (k, n) in o.refused {
            *self.refused.entry(k).or_default() += n;
        }
        self.chats.merge(o.chats);
        self.churn.merge(&o.churn);
        self.violations.merge(o.violations);
        self.errors.merge(o.errors);
        let _ = self.calc_latency.add(&o.calc_latency);
        let _ = self.chat_latency.add(&o.chat_latency);
        self.last_end = match (self.last_end, o.last_end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// What every client shares.
struct Shared {
    /// The server's `host:port`.
    addr: String,
    /// The options.
    opts: SoakOptions,
    /// This run's nonce, in every distinct add.
    nonce: f32,
    /// Bounds concurrent handshakes.
    gate: Semaphore,
    /// For the stored-answer check of resumed chats.
    http: reqwest::Client,
    /// No submission after this.
    submit_until: Instant,
    /// No read after this.
    hard_deadline: Instant,
}

/// The pause before sending again what the server refused, from its hint (100 ms without one),
/// clamped to 10 ms ..= [`MAX_RETRY_PAUSE`].
fn retry_pause(retry_after_ms: Option<u64>) -> Duration {
    Duration::from_millis(retry_after_ms.unwrap_or(100))
        .clamp(Duration::from_millis(10), MAX_RETRY_PAUSE)
}

/// A share option as a probability: NaN is 0, the rest clamped to 0 ..= 1.
fn share(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Each client's jobs, and which clients churn: `jobs / clients` jobs each, the chats dealt
/// round-robin starting with the churning clients, the kinds shuffled within each client.
fn deal(opts: &SoakOptions, rng: &mut StdRng) -> (Vec<Vec<Kind>>, Vec<bool>) {
    let n = opts.clients;
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let churn = share(opts.churn);
    let churners = ((n as f64 * churn).round() as usize).clamp(usize::from(churn > 0.0), n);
    let mut ids: Vec<usize> = (0..n).collect();
    ids.shuffle(rng);
    let mut churning = vec![false; n];
    for &c in &ids[..churners] {
        churning[c] = true;
    }
    let per = opts.jobs / n as u64;
    let extra = (opts.jobs % n as u64) as usize;
    let counts: Vec<u64> = (0..n).map(|c| per + u64::from(c < extra)).collect();
    let chats_total = ((opts.jobs as f64 * share(opts.chat_share)).round() as u64).min(opts.jobs);
    let mut chats = vec![0u64; n];
    let mut dealt = 0u64;
    // `ids` lists the churning clients first: they get the first chats.
    'deal: while dealt < chats_total {
        let before = dealt;
        for &c in &ids {
            if dealt == chats_total {
                break 'deal;
            }
            if chats[c] < counts[c] {
                chats[c] += 1;
                dealt += 1;
            }
        }
        if dealt == before {
            break;
        }
    }
    let same = share(opts.cached_share);
    let plans = (0..n)
        .map(|c| {
            let mut kinds: Vec<Kind> = (0..counts[c])
                .map(|i| {
                    if i < chats[c] {
                        Kind::Chat
                    } else if rng.random_bool(same) {
                        Kind::Same(rng.random_range(0..SAME_JOBS))
                    } else {
                        Kind::Add
                    }
                })
                .collect();
            kinds.shuffle(rng);
            kinds
        })
        .collect();
    (plans, churning)
}

/// A 2x2 add of two literal operands.
fn add_of(a: [f32; 4], b: [f32; 4]) -> CalcJob {
    let literal = |data: [f32; 4]| {
        Tensor::new(vec![2, 2], data.to_vec())
            .map(TensorInput::Literal)
            // The shape fits the data by construction; the generator form cannot be reached.
            .unwrap_or(TensorInput::Generated {
                fill: Fill::Ones,
                shape: vec![2, 2],
                seed: None,
            })
    };
    CalcJob {
        op: Op::Add,
        a: Some(literal(a)),
        b: Some(literal(b)),
        dim: None,
        ms: None,
        us: None,
    }
}

/// The exact sum an add of literal operands must give (f32, as the device computes it).
fn expected_sum(job: &CalcJob) -> Option<Vec<f32>> {
    match (&job.a, &job.b) {
        (Some(TensorInput::Literal(a)), Some(TensorInput::Literal(b)))
            if job.op == Op::Add && a.shape == b.shape =>
        {
            Some(a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect())
        }
        _ => None,
    }
}

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

/// Whether `output` is exactly `expected` in a 2x2 shape.
fn result_matches(output: &Tensor, expected: &[f32]) -> bool {
    output.shape == [2, 2]
        && output.data.len() == expected.len()
        && output
            .data
            .iter()
            .zip(expected)
            .all(|(x, y)| x.to_bits() == y.to_bits() || x == y)
}

/// One client: its session, its connection (re-opened after drops) and its bookkeeping.
struct Client {
    /// Its number.
    id: usize,
    /// Its session, the same across reconnects.
    session: String,
    /// It misbehaves.
    churner: bool,
    /// It has run a chat already (the first one of a churner is always dropped and resumed).
    had_chat: bool,
    /// Its random choices.
    rng: StdRng,
    /// The connection, when open.
    ws: Option<WsClient>,
    /// The last ping's nonce.
    nonce: u64,
    /// A dropped calculator job whose `resume` must be refused (`not_found`) now.
    probing: Option<JobId>,
    /// Its jobs that have ended or were dropped: any message about them is a violation.
    past: HashSet<JobId>,
    /// Its figures.
    tally: Tally,
    /// What all clients share.
    shared: Arc<Shared>,
}

impl Client {
    /// Runs the client's jobs, then closes its connection.
    async fn run(mut self, plan: Vec<Kind>) -> Tally {
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

    /// Reconnects and resumes the current chat from the last seq seen (events that arrive
    /// meanwhile are applied to `track`, its end included).
    async fn resume(&mut self, track: &mut Track) -> bool {
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
    async fn probe(&mut self, id: &JobId) {
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
    async fn control(&mut self, msg: &ClientMessage, mut track: Option<&mut Track>) -> Control {
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
    async fn fence(
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
    fn unexpected(&mut self, msg: &ServerMessage) {
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

    /// Applies one server message: to the current job (`track`), or checked against the
    /// client's past jobs.
    fn dispatch(&mut self, track: Option<&mut Track>, msg: ServerMessage) -> Step {
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

    /// Records how the job ended.
    async fn finish(&mut self, track: Track, outcome: Outcome) {
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

    /// Opens the connection if it is not open, retrying until `until`; whether it is open.
    async fn connect(&mut self, until: Instant) -> bool {
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
    async fn send(&mut self, msg: &ClientMessage) -> bool {
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

/// Peak figures of the stats sampled during the run.
#[derive(Default)]
struct Samples {
    /// Largest RSS seen.
    rss_peak: u64,
    /// Longest queue seen.
    queue_peak: u64,
    /// Reads done.
    reads: u64,
    /// Reads that failed.
    failures: u64,
}

/// Reads `/api/stats`, trying again for a few seconds while the server refuses (its rate limit
/// counts these reads too).
async fn fetch_patiently(http: &reqwest::Client, addr: &str) -> Result<Snapshot, String> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match stats::fetch(http, addr).await {
            Ok(snap) => return Ok(snap),
            Err(e) if Instant::now() >= until => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Samples `/api/stats` every [`SAMPLE_EVERY`] until `stop` fires.
async fn sample(http: reqwest::Client, addr: String, mut stop: oneshot::Receiver<()>) -> Samples {
    let mut s = Samples::default();
    loop {
        s.reads += 1;
        let read = tokio::select! {
            read = stats::fetch(&http, &addr) => read,
            _ = &mut stop => return s,
        };
        match read {
            Ok(snap) => {
                s.rss_peak = s.rss_peak.max(snap.stats.process.rss_bytes);
                s.queue_peak = s.queue_peak.max(snap.stats.queue.length);
            }
            Err(_) => s.failures += 1,
        }
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE_EVERY) => {}
            _ = &mut stop => return s,
        }
    }
}

/// One job on a connection of its own, before the clock starts (opens the device and, for a
/// chat, loads the model); its failures are counted under `warmup: ...`.
async fn warm_up(addr: &str, job: ClientMessage, errors: &mut Errors) {
    let deadline = Instant::now() + WARM_UP_TIMEOUT;
    let mut ws = match WsClient::connect(addr, &client::new_session(), deadline).await {
        Ok(ws) => ws,
        Err(f) => {
            errors.add(&format!("warmup: {}", f.kind), &f.detail);
            return;
        }
    };
    if let Err(f) = ws.send(&job).await {
        errors.add(&format!("warmup: {}", f.kind), &f.detail);
        return;
    }
    loop {
        match ws.recv(deadline).await {
            Recv::Message(ServerMessage::Done { .. }) => break,
            Recv::Message(ServerMessage::Error { code, message, .. }) => {
                errors.add(&format!("warmup: {code}"), &message);
                break;
            }
            Recv::Message(_) => {}
            Recv::TimedOut => {
                errors.add("warmup: timeout", "the warm-up job did not end in time");
                break;
            }
            Recv::Failed(f) => {
                errors.add(&format!("warmup: {}", f.kind), &f.detail);
                return;
            }
        }
    }
    ws.close().await;
}

/// Runs the scenario against `addr` (`host:port`).
pub async fn run(addr: &str, opts: &SoakOptions) -> RunResult<SoakReport> {
    let http = stats::http_client()?;
    let seed = opts.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let (plans, churning) = deal(opts, &mut rng);
    let nonce = jobs::run_nonce();
    let mut errors = Errors::default();

    let warm = jobs::submit_calc("warmup", jobs::distinct_add(nonce, opts.clients, 0));
    warm_up(addr, warm, &mut errors).await;
    if plans.iter().flatten().any(|k| *k == Kind::Chat) {
        let chat = jobs::submit_chat("warmup", jobs::chat(&opts.prompt, opts.max_tokens));
        warm_up(addr, chat, &mut errors).await;
    }
    let before = fetch_patiently(&http, addr).await?;

    let start = Instant::now();
    let submit_until = start + crate::seconds(opts.duration);
    let hard_deadline = submit_until + crate::seconds(opts.grace);
    let shared = Arc::new(Shared {
        addr: addr.to_owned(),
        opts: opts.clone(),
        nonce,
        gate: Semaphore::new(CONNECT_CONCURRENCY),
        http: http.clone(),
        submit_until,
        hard_deadline,
    });
    let (stop_sampling, stopped) = oneshot::channel();
    let sampler = tokio::spawn(sample(http.clone(), addr.to_owned(), stopped));
    let mut tasks = Vec::with_capacity(plans.len());
    for (id, plan) in plans.into_iter().enumerate() {
        let client = Client {
            id,
            session: client::new_session(),
            churner: churning[id],
            had_chat: false,
            rng: StdRng::seed_from_u64(seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            ws: None,
            nonce: 0,
            probing: None,
            past: HashSet::new(),
            tally: Tally::new(),
            shared: Arc::clone(&shared),
        };
        tasks.push(tokio::spawn(client.run(plan)));
    }
    let mut total = Tally::new();
    total.errors = errors;
    let mut clients_connected = 0;
    // Every read and write of a client is bounded by the hard deadline; past it (and its close),
    // a client still running is stuck in something unbounded and is stopped.
    let give_up = hard_deadline + REPLY_WAIT + Duration::from_secs(5);
    for mut task in tasks {
        match tokio::time::timeout_at(give_up, &mut task).await {
            Ok(Ok(tally)) => {
                clients_connected += usize::from(tally.connected);
                total.merge(tally);
            }
            Ok(Err(e)) => total.errors.add("client_task_failed", &e.to_string()),
            Err(_) => {
                task.abort();
                total
                    .errors
                    .add("client_stuck", "a client had not ended after the run's end");
            }
        }
    }
    let wall = total
        .last_end
        .map_or(0.0, |end| end.duration_since(start).as_secs_f64());
    let jobs_per_second = if wall > 0.0 {
        total.counts.completed as f64 / wall
    } else {
        0.0
    };
    let _ = stop_sampling.send(());
    let samples = sampler.await.unwrap_or_default();

    // The server's side: its queue must empty, its sockets close, its memory come back.
    let settle_start = Instant::now();
    let settle_until = settle_start + crate::seconds(opts.settle);
    let mut back_to_zero: Option<f64> = None;
    let mut last: Option<Snapshot> = None;
    loop {
        // Each read is bounded too, so a server that hangs cannot hold the report up.
        let read = tokio::time::timeout_at(
            settle_until + Duration::from_secs(1),
            stats::fetch(&http, addr),
        );
        if let Ok(Ok(snap)) = read.await {
            let q = &snap.stats.queue;
            if back_to_zero.is_none() && q.length == 0 && q.running == 0 {
                back_to_zero = Some(settle_start.elapsed().as_secs_f64());
            }
            let closed = snap.stats.process.websocket_connections
                <= before.stats.process.websocket_connections;
            last = Some(snap);
            if back_to_zero.is_some() && closed {
                break;
            }
        }
        if Instant::now() >= settle_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What the server keeps for its resume window is let go once the window has passed.
    if opts.linger > 0.0 && last.is_some() {
        tokio::time::sleep(crate::seconds(opts.linger)).await;
        if let Ok(Ok(snap)) =
            tokio::time::timeout(Duration::from_secs(5), stats::fetch(&http, addr)).await
        {
            last = Some(snap);
        }
    }
    // A server that died during the run still gets a report: the clients' side of it.
    let after = last;
    if after.is_none() {
        total.errors.add(
            "stats_unreadable_after_the_run",
            &format!(
                "no read of /api/stats succeeded within the settle time of {} s",
                opts.settle
            ),
        );
    }
    let rss_start = before.stats.process.rss_bytes;
    let rss_end = after.as_ref().map_or(0, |a| a.stats.process.rss_bytes);
    let ratio = if rss_start > 0 {
        rss_end as f64 / rss_start as f64
    } else {
        0.0
    };
    let server = SoakServer {
        rss_start_bytes: rss_start,
        rss_peak_bytes: samples.rss_peak.max(rss_start).max(rss_end),
        rss_end_bytes: rss_end,
        rss_end_over_start: ratio,
        rss_within_10_percent: rss_start > 0 && (ratio - 1.0).abs() <= 0.10,
        queue_back_to_zero: back_to_zero.is_some(),
        queue_settle_seconds: back_to_zero.unwrap_or(opts.settle),
        queue_length_peak: samples.queue_peak,
        websocket_connections_start: before.stats.process.websocket_connections,
        websocket_connections_end: after
            .as_ref()
            .map_or(0, |a| a.stats.process.websocket_connections),
        cache_hits: after.as_ref().map_or(0, |a| {
            a.stats.cache.hits.saturating_sub(before.stats.cache.hits)
        }),
        readable_after: after.is_some(),
        samples: samples.reads,
        sample_failures: samples.failures,
    };
    Ok(SoakReport {
        scenario: "soak",
        options: opts.clone(),
        seed,
        clients_connected,
        churning_clients: churning.iter().filter(|c| **c).count(),
        every_job_accounted: total.counts.ended() == total.counts.submitted
            && total.counts.submitted + total.counts.not_run == total.counts.planned,
        jobs: total.counts,
        refused: total.refused,
        chats: total.chats,
        churn: total.churn,
        violations: total.violations,
        wall_seconds: wall,
        jobs_per_second,
        calc_latency: Latency::of(&total.calc_latency),
        chat_latency: Latency::of(&total.chat_latency),
        errors: total.errors,
        server,
    })
}

impl SoakReport {
    /// The human-readable table.
    pub fn table(&self) -> Table {
        let o = &self.options;
        let j = &self.jobs;
        let c = &self.chats;
        let ch = &self.churn;
        let s = &self.server;
        let mut t = Table::new(&format!(
            "soak: {} clients, {} jobs ({:.2} % chats of {} tokens), churn {:.0} %, {} s (+{} s grace), seed {}",
            o.clients,
            o.jobs,
            share(o.chat_share) * 100.0,
            o.max_tokens,
            share(o.churn) * 100.0,
            o.duration,
            o.grace,
            self.seed
        ));
        let refused = if self.refused.is_empty() {
            "none".to_owned()
        } else {
            self.refused
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        t.row(
            "clients connected (churning)",
            format!("{} ({})", self.clients_connected, self.churning_clients),
        )
        .row(
            "jobs planned / submitted / not run",
            format!("{} / {} / {}", j.planned, j.submitted, j.not_run),
        )
        .row(
            "completed (of which cached)",
            format!("{} ({})", j.completed, j.cached),
        )
        .row("cancelled", j.cancelled)
        .row("dropped by disconnect", j.dropped_by_disconnect)
        .row(
            "failed / lost / unfinished / gave up",
            format!(
                "{} / {} / {} / {}",
                j.failed, j.lost, j.unfinished, j.gave_up
            ),
        )
        .row(
            "every job accounted for",
            if self.every_job_accounted {
                "yes"
            } else {
                "NO"
            },
        )
        .row("refused and sent again", refused)
        .row(
            "chats submitted / completed / cancelled",
            format!("{} / {} / {}", c.submitted, c.completed, c.cancelled),
        )
        .row(
            "chats resumed (exact replay / not)",
            format!(
                "{} ({} / {})",
                c.resumed, c.replays_exact, c.replays_inexact
            ),
        )
        .row(
            "resumed in the middle of the answer",
            c.replays
                .iter()
                .filter(|r| r.dropped_after == "token")
                .count(),
        )
        .row("replay problems", c.replay_problems.summary())
        .row(
            "disconnects / reconnects",
            format!("{} / {}", ch.disconnects, ch.reconnects),
        )
        .row(
            "cancels sent (too late)",
            format!("{} ({})", ch.cancels_sent, ch.cancels_too_late),
        )
        .row(
            "calc resumes refused / tried",
            format!("{} / {}", ch.calc_resume_refused, ch.calc_resume_probes),
        )
        .row("violations", self.violations.summary())
        .row("wall time (s)", format!("{:.3}", self.wall_seconds))
        .row("jobs/s (completed)", format!("{:.1}", self.jobs_per_second))
        .row("calc latency", self.calc_latency.summary_ms())
        .row("chat latency", self.chat_latency.summary_ms())
        .row("errors", self.errors.summary())
        .row(
            "server queue back to zero",
            if s.queue_back_to_zero {
                format!("yes, after {:.3} s", s.queue_settle_seconds)
            } else {
                format!("NO within {:.0} s", s.queue_settle_seconds)
            },
        )
        .row(
            "server stats readable after the run",
            if s.readable_after { "yes" } else { "NO" },
        )
        .row("server queue peak", s.queue_length_peak)
        .row(
            "server sockets before / after",
            format!(
                "{} / {}",
                s.websocket_connections_start, s.websocket_connections_end
            ),
        )
        .row("server cache hits", s.cache_hits)
        .row(
            "server RSS start / peak / end (MiB)",
            format!(
                "{} / {} / {}",
                report::mib(s.rss_start_bytes),
                report::mib(s.rss_peak_bytes),
                report::mib(s.rss_end_bytes)
            ),
        )
        .row(
            "server RSS end / start",
            format!(
                "{:.3} ({} 10 %)",
                s.rss_end_over_start,
                if s.rss_within_10_percent {
                    "within"
                } else {
                    "NOT within"
                }
            ),
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(clients: usize, jobs: u64, chat_share: f64, churn: f64) -> SoakOptions {
        SoakOptions {
            clients,
            jobs,
            chat_share,
            cached_share: 0.1,
            churn,
            churn_jobs: 0.3,
            max_tokens: 4,
            prompt: "Say hello.".into(),
            duration: 10.0,
            grace: 1.0,
            settle: 1.0,
            linger: 0.0,
            seed: Some(1),
        }
    }

    #[test]
    fn jobs_are_dealt_evenly_and_chats_go_to_the_churning_clients_first() {
        let mut rng = StdRng::seed_from_u64(7);
        let (plans, churning) = deal(&opts(40, 2002, 0.004, 0.1), &mut rng);
        assert_eq!(plans.len(), 40);
        assert_eq!(plans.iter().map(Vec::len).sum::<usize>(), 2002);
        assert!(plans.iter().all(|p| p.len() == 50 || p.len() == 51));
        assert_eq!(churning.iter().filter(|c| **c).count(), 4);
        let chats = |c: usize| plans[c].iter().filter(|k| **k == Kind::Chat).count();
        assert_eq!((0..40).map(chats).sum::<usize>(), 8);
        for c in (0..40).filter(|c| churning[*c]) {
            assert_eq!(chats(c), 1, "churning client {c}");
        }
        // More chats than a client has jobs: everything is a chat, nothing overflows.
        let (plans, _) = deal(&opts(3, 7, 1.0, 0.5), &mut rng);
        assert!(plans.iter().flatten().all(|k| *k == Kind::Chat));
        assert_eq!(plans.iter().map(Vec::len).sum::<usize>(), 7);
        // Degenerate shares and no clients never panic.
        let _ = deal(&opts(5, 10, f64::NAN, -3.0), &mut rng);
        assert!(deal(&opts(0, 10, 0.5, 0.5), &mut rng).0.is_empty());
    }

    #[test]
    fn sums_are_checked_exactly_against_the_operands() {
        let job = jobs::distinct_add(12_345.0, 7, 3);
        let expected = expected_sum(&job).unwrap();
        assert_eq!(expected, vec![12_352.0, 6.0, 5.0, 7.0]);
        let right = Tensor::new(vec![2, 2], expected.clone()).unwrap();
        assert!(result_matches(&right, &expected));
        let wrong = Tensor::new(vec![2, 2], vec![12_352.0, 6.0, 5.0, 8.0]).unwrap();
        assert!(!result_matches(&wrong, &expected));
        let flat = Tensor::new(vec![4], expected.clone()).unwrap();
        assert!(!result_matches(&flat, &expected));
        let same = add_of([1.0, 2.0, 3.0, 4.0], [2.0; 4]);
        assert_eq!(expected_sum(&same).unwrap(), vec![3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn violations_tally_by_kind() {
        let mut v = Violations::default();
        assert_eq!(v.summary(), "none");
        v.add(Violation::SeqGap, "a");
        v.add(Violation::SeqGap, "b");
        v.add(Violation::ForeignEvent, "c");
        assert_eq!(v.total(), 3);
        assert_eq!(v.summary(), "seq_gap ×2, foreign_event ×1");
        assert_eq!(v.examples["seq_gap"], "a");
    }
}
