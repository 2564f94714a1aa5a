//! The WebSocket protocol at `/ws`: JSON text frames tagged by `type`. Declared once here and used
//! by the server and by the wasm client. `docs/protocol.md` shows an example of every message;
//! the golden tests below keep the two in step.
//!
//! A client frame is decoded, with the refusal to send when it does not decode, by
//! [`ClientMessage::decode`] (in `protocol/decode.rs`); the browser decodes a server frame with
//! [`ServerMessage::from_frame`] (in `protocol/frame.rs`, lighter in the wasm bundle than the
//! derive, and checked against it).
//!
//! Every server message about a job carries its `job_id` and a per-job `seq` (0, 1, 2, ... with no
//! gaps), so a client can tell the order of events and notice a lost one.

use crate::chat::{ChatJob, ChatUsage, ConversationId};
use crate::error_code::ErrorCode;
use crate::tensor::{Tensor, TensorInput};
use serde::{Deserialize, Serialize};
use std::fmt;

mod decode;
mod frame;
pub use decode::Undecodable;

/// An opaque, random job id (128 bits, hex). Knowing it grants nothing: jobs are bound to the
/// connection that submitted them, and only the same session can `resume` a chat job.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A calculator operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `a + b`, broadcasting.
    Add,
    /// `a - b`, broadcasting.
    Sub,
    /// `a * b` element-wise, broadcasting.
    Mul,
    /// `a / b` element-wise, broadcasting.
    Div,
    /// Matrix product over the last two dimensions (leading dimensions must match).
    Matmul,
    /// Swap the last two dimensions.
    Transpose,
    /// `max(a, 0)`.
    Relu,
    /// GELU (the exact, erf-based form).
    Gelu,
    /// `e^a`.
    Exp,
    /// Natural logarithm (`log 0 = -Infinity`, negative inputs give `NaN`).
    Log,
    /// Square root (negative inputs give `NaN`).
    Sqrt,
    /// Softmax over the last dimension.
    Softmax,
    /// Sum of all elements, or over `dim` when given.
    Sum,
    /// Mean of all elements, or over `dim` when given.
    Mean,
    /// Maximum of all elements, or over `dim` when given.
    Max,
    /// Test mode only: hold the device for `ms` milliseconds, checking for cancellation as it
    /// goes. A server not started with `--test-mode` rejects it as `invalid_input`.
    Sleep,
}

impl Op {
    /// The ops a person can pick, in the order the calculator lists them.
    pub const PUBLIC: [Op; 15] = [
        Op::Matmul,
        Op::Add,
        Op::Sub,
        Op::Mul,
        Op::Div,
        Op::Transpose,
        Op::Relu,
        Op::Gelu,
        Op::Exp,
        Op::Log,
        Op::Sqrt,
        Op::Softmax,
        Op::Sum,
        Op::Mean,
        Op::Max,
    ];

    /// Whether the op takes a second operand `b`.
    pub fn is_binary(self) -> bool {
        matches!(self, Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Matmul)
    }

    /// Whether the op reduces (and so accepts `dim`).
    pub fn is_reduction(self) -> bool {
        matches!(self, Op::Sum | Op::Mean | Op::Max)
    }

    /// The wire name, e.g. `"matmul"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Matmul => "matmul",
            Op::Transpose => "transpose",
            Op::Relu => "relu",
            Op::Gelu => "gelu",
            Op::Exp => "exp",
            Op::Log => "log",
            Op::Sqrt => "sqrt",
            Op::Softmax => "softmax",
            Op::Sum => "sum",
            Op::Mean => "mean",
            Op::Max => "max",
            Op::Sleep => "sleep",
        }
    }
}

/// One calculator job. Over HTTP (`POST /api/execute`) it is sent as is; over the WebSocket it is
/// wrapped in a [`Job`] with `"kind":"calc"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalcJob {
    /// What to compute.
    pub op: Op,
    /// The first (or only) operand. Absent only for `sleep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<TensorInput>,
    /// The second operand, for binary ops only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<TensorInput>,
    /// For `sum`, `mean`, `max`: reduce over this dimension instead of over everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// For `sleep` (test mode): how long to hold the device, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    /// For `sleep` (test mode): microseconds, added to `ms` (for sub-millisecond jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub us: Option<u64>,
}

impl CalcJob {
    /// For `sleep`: how long it holds the device (`ms` plus `us`), if either is given.
    pub fn sleep_duration(&self) -> Option<std::time::Duration> {
        if self.ms.is_none() && self.us.is_none() {
            return None;
        }
        let micros = self
            .ms
            .unwrap_or(0)
            .saturating_mul(1000)
            .saturating_add(self.us.unwrap_or(0));
        Some(std::time::Duration::from_micros(micros))
    }
}

/// A job for the device, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// A tensor calculator job.
    Calc(CalcJob),
    /// A chat message for the language model.
    Chat(ChatJob),
}

impl Job {
    /// A short label for logs, stats and the public queue listing (never the job's content).
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Calc(_) => "calc",
            Job::Chat(_) => "chat",
        }
    }
}

/// A message from a client to the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Queue a job. `client_ref` is the client's own label, echoed in `accepted` (or in `error`
    /// when the job is refused) so it can match answers to requests.
    Submit {
        /// The client's label for this submission.
        client_ref: String,
        /// The job.
        job: Job,
    },
    /// Cancel one of this connection's own jobs, waiting or running.
    Cancel {
        /// The job to cancel.
        job_id: JobId,
    },
    /// Follow a chat job again after a reconnect (same session, within the resume window): every
    /// event after `last_seq` is replayed in order, then the live stream follows.
    Resume {
        /// The job to follow.
        job_id: JobId,
        /// The last sequence number this client saw; absent replays from the start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seq: Option<u64>,
    },
    /// Liveness check; answered by `pong` with the same `nonce`.
    Ping {
        /// Echoed back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<u64>,
    },
}

/// A message from the server to a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The job is queued.
    Accepted {
        /// The submission's label.
        client_ref: String,
        /// The new job's id.
        job_id: JobId,
        /// Always 0.
        seq: u64,
        /// 1 = next to run.
        position: u64,
        /// Jobs waiting in all, this one included.
        queue_length: u64,
        /// Estimated wait until the job starts.
        eta_ms: u64,
        /// For a chat job: its conversation (new when the submission named none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation_id: Option<ConversationId>,
    },
    /// The job's place in the queue changed (sent at most once per coalescing interval).
    Position {
        /// The job.
        job_id: JobId,
        /// Per-job sequence number.
        seq: u64,
        /// 1 = next to run.
        position: u64,
        /// Estimated wait until the job starts.
        eta_ms: u64,
    },
    /// The job holds the device now.
    Started {
        /// The job.
        job_id: JobId,
        /// Per-job sequence number.
        seq: u64,
        /// Time spent waiting in the queue.
        waited_ms: u64,
    },
    /// A chat job holds the device and waits for the model to load ("loading model").
    Loading {
        /// The job.
        job_id: JobId,
        /// Per-job sequence number.
        seq: u64,
        /// Fraction loaded, when the loader can tell.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        progress: Option<f32>,
    },
    /// The next piece of a chat answer: whole UTF-8 characters, in order.
    Token {
        /// The job.
        job_id: JobId,
        /// Per-job sequence number.
        seq: u64,
        /// The text to append.
        text: String,
    },
    /// The job's output.
    Result {
        /// The job.
        job_id: JobId,
        /// Per-job sequence number.
        seq: u64,
        /// The computed tensor.
        output: Tensor,
        /// Time spent computing on the device (for a cached answer: when it was computed).
        compute_ms: f64,
        /// The answer came from the result cache: an identical job was computed before, and
        /// this one neither waited nor took the device.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cached: bool,
    },
    /// The job finished successfully; nothing more will be sent about it.
    Done {
        /// The job.
        job_id: JobId,
        /// Per-job sequence number.
        seq: u64,
        /// For a chat job: token counts and speed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<ChatUsage>,
    },
    /// A failure. With a `job_id` it ends that job; with only a `client_ref` the submission was
    /// refused; with neither it is about the last message received.
    Error {
        /// The job it ends, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_id: Option<JobId>,
        /// The refused submission's label, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ref: Option<String>,
        /// Per-job sequence number, when about a job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// What went wrong, from the fixed set.
        code: ErrorCode,
        /// A sentence a person can act on.
        message: String,
        /// For `rate_limited` and `queue_full`: when trying again makes sense.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Answer to `ping`.
    Pong {
        /// The ping's nonce.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<u64>,
    },
}

impl ServerMessage {
    /// The job this message is about, if any.
    pub fn job_id(&self) -> Option<&JobId> {
        match self {
            ServerMessage::Accepted { job_id, .. }
            | ServerMessage::Position { job_id, .. }
            | ServerMessage::Started { job_id, .. }
            | ServerMessage::Loading { job_id, .. }
            | ServerMessage::Token { job_id, .. }
            | ServerMessage::Result { job_id, .. }
            | ServerMessage::Done { job_id, .. } => Some(job_id),
            ServerMessage::Error { job_id, .. } => job_id.as_ref(),
            ServerMessage::Pong { .. } => None,
        }
    }

    /// The per-job sequence number, if the message is about a job.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ServerMessage::Accepted { seq, .. }
            | ServerMessage::Position { seq, .. }
            | ServerMessage::Started { seq, .. }
            | ServerMessage::Loading { seq, .. }
            | ServerMessage::Token { seq, .. }
            | ServerMessage::Result { seq, .. }
            | ServerMessage::Done { seq, .. } => Some(*seq),
            ServerMessage::Error { seq, .. } => *seq,
            ServerMessage::Pong { .. } => None,
        }
    }

    /// Whether nothing more will follow about the job.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ServerMessage::Done { .. }
                | ServerMessage::Error {
                    job_id: Some(_),
                    ..
                }
        )
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
