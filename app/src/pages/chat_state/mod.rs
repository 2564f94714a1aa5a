//! The chat page's view of its one answer in flight: a small state machine fed by the server's
//! messages, like the calculator's [`JobTracker`](crate::pages::job::JobTracker), plus the
//! thread's message type and the record kept in `sessionStorage` so a reload can resume.
//!
//! A [`ChatTracker`] starts from a submission (its `client_ref`) or from a resume (a known
//! `job_id`). It ignores messages about other jobs and other submissions, takes the job and
//! conversation ids from `accepted`, follows the queue position, the model load, the start and
//! every token, and ends with `done` or `error`. It remembers the last `seq` seen and ignores any
//! message at or below it, so a replay after `resume` never repeats a token, and it can say which
//! `resume` to send after the socket reopens.
//!
//! Pure (no DOM, no I/O), so it is unit-tested here without a browser. Concurrency: none; the page
//! owns it in a signal and feeds it from the browser's single-threaded event loop.
//!
//! Laid out by part: the answer's phase and what a message did (`phase`), the thread's
//! message (`thread_message`), the resume record (`pending_job`), the tracker's state and
//! its queries and connection handling (`tracker`), and the reducer that feeds it the server's
//! messages (`reducer`).

mod pending_job;
mod phase;
mod reducer;
mod thread_message;
mod tracker;

#[cfg(test)]
mod tests;

pub use pending_job::PendingJob;
pub use phase::{AnswerPhase, Applied};
pub use thread_message::ThreadMessage;
pub use tracker::ChatTracker;

/// Code shown when the socket dropped and could not be reopened in time.
pub const CONNECTION_LOST: &str = "connection_lost";
