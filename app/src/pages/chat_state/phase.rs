//! Where the answer in flight is ([`AnswerPhase`]) and what one server message did to the
//! tracker ([`Applied`]).

use crate::chat::ChatUsage;

/// Where the answer is.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum AnswerPhase {
    /// Nothing submitted yet (or the page just opened).
    #[default]
    Idle,
    /// Sent; waiting for `accepted`.
    Sending,
    /// A `resume` was sent after a reload; waiting for the replay.
    Resuming,
    /// Queued.
    Waiting {
        /// 1 = next to run.
        position: u64,
        /// Estimated wait until the job starts.
        eta_ms: u64,
    },
    /// Holding the device while the model loads.
    Loading {
        /// Fraction loaded, when the server can tell.
        progress: Option<f32>,
    },
    /// Holding the device: tokens arrive (or are about to).
    Streaming,
    /// The answer is complete.
    Done {
        /// Token counts and speed, when the server sent them.
        usage: Option<ChatUsage>,
    },
    /// Cancelled by its owner (Stop): the partial answer stays.
    Stopped,
    /// Refused, failed, or the connection was lost for good.
    Failed {
        /// An [`ErrorCode`](crate::error_code::ErrorCode) wire string, or
        /// [`CONNECTION_LOST`](super::CONNECTION_LOST).
        code: String,
        /// A sentence for people.
        message: String,
    },
    /// A resumed job the server no longer knows (`not_found`): it ended while nobody listened,
    /// and the stored conversation has whatever it produced.
    Gone,
}

/// What one server message did to the tracker, so the page knows what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Not about this answer, a repeat, or too late: nothing changed.
    Ignored,
    /// Something visible changed.
    Changed,
    /// `accepted`: the job and conversation ids are known now.
    Accepted,
    /// The answer ended (done, stopped, failed or gone); nothing more will change.
    Ended,
}
