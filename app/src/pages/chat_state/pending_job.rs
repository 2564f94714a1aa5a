//! The record of the answer in flight kept in `sessionStorage`, so a reload can `resume` it.

use crate::chat::ConversationId;
use crate::protocol::JobId;
use serde::{Deserialize, Serialize};

/// The answer in flight, as kept in `sessionStorage` so a reload can `resume` it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingJob {
    /// The job to resume.
    pub job_id: JobId,
    /// Its conversation, to show around the answer.
    pub conversation_id: ConversationId,
}
