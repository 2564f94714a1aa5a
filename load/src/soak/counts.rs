//! The report's tallies: where the jobs went, what the chats and their resumes and the
//! misbehaving clients did (each client's merged into the run's), and the server's figures.

use crate::report::Errors;
use serde::Serialize;

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
    pub(super) fn merge(&mut self, o: &JobCounts) {
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
    pub(super) fn merge(&mut self, o: ChatCounts) {
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
    pub(super) fn merge(&mut self, o: &ChurnCounts) {
        self.disconnects += o.disconnects;
        self.reconnects += o.reconnects;
        self.cancels_sent += o.cancels_sent;
        self.cancels_too_late += o.cancels_too_late;
        self.calc_resume_probes += o.calc_resume_probes;
        self.calc_resume_refused += o.calc_resume_refused;
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
