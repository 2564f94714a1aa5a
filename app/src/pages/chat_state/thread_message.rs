//! One message of the chat thread as the page shows it, made from the person's input or from a
//! stored message.

use crate::chat::{MessageStatus, Role, StoredMessage};

/// One message of the thread as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadMessage {
    /// Who said it.
    pub role: Role,
    /// What was said (markdown for the assistant, plain text for the person).
    pub content: String,
    /// Whether it is complete, stopped or failed.
    pub status: MessageStatus,
}

impl ThreadMessage {
    /// A complete message by the person.
    pub fn user(content: impl Into<String>) -> Self {
        ThreadMessage {
            role: Role::User,
            content: content.into(),
            status: MessageStatus::Complete,
        }
    }
}

impl From<StoredMessage> for ThreadMessage {
    fn from(m: StoredMessage) -> Self {
        ThreadMessage {
            role: m.role,
            content: m.content,
            status: m.status,
        }
    }
}
