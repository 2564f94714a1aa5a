//! Chat wire types shared by the server and the browser: the chat job a client submits, the usage
//! summary that ends an answer, and the stored conversations the history API returns. Declared
//! once here; `docs/protocol.md` shows each in context.

use serde::{Deserialize, Serialize};
use std::fmt;

// The history's answers decoded in the browser without the derive (`from_json`).
mod from_json;

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The name chat templates use: `system`, `user`, `assistant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation, as a model sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTurn {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

/// A conversation's id: random, 128 bits, hex. Knowing it grants nothing: conversations belong to
/// the session that created them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(pub String);

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A chat job, submitted over the WebSocket as `{"kind":"chat", ...}`.
///
/// The server keeps the conversation: the client sends only the new message, and the model sees
/// the stored history before it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatJob {
    /// The conversation to continue; absent starts a new one (its id comes back in `accepted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// The person's new message. Empty (or absent) only with `regenerate`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Answer the conversation's last user message again, replacing the last answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regenerate: bool,
    /// Most tokens to generate (the server's default and cap apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature; 0 picks the most likely token every time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling: sample only from the most likely tokens whose probabilities sum to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Stop when the answer would contain any of these (they are not included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

/// Why an answer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its answer, or a stop sequence was reached.
    Stop,
    /// `max_tokens` (or the model's context) was reached.
    Length,
}

/// How an answer went; carried by `done` after a chat job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatUsage {
    /// Tokens in the prompt the model read (history and template included).
    pub prompt_tokens: u32,
    /// Tokens the model generated.
    pub completion_tokens: u32,
    /// From holding the device to the first token, in milliseconds (model load included).
    pub time_to_first_token_ms: f64,
    /// Generated tokens per second after the first.
    pub tokens_per_second: f64,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

/// What became of a stored message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Written in full.
    Complete,
    /// An answer cut short by Stop (or a disconnect past the resume window); kept as far as it got.
    Stopped,
    /// An answer that failed part-way; kept as far as it got.
    Failed,
}

/// One stored message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Its id within the store (increasing with time).
    pub id: i64,
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
    /// Whether it is complete.
    pub status: MessageStatus,
    /// When it was stored, RFC 3339.
    pub created_at: String,
}

/// A conversation in the list (`GET /api/conversations`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// Its id.
    pub id: ConversationId,
    /// The start of its first message.
    pub title: String,
    /// When it started, RFC 3339.
    pub created_at: String,
    /// When it last changed, RFC 3339.
    pub updated_at: String,
    /// Messages in it.
    pub message_count: u64,
}

/// A conversation with its messages (`GET /api/conversations/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// The start of its first message.
    pub title: String,
    /// When it started, RFC 3339.
    pub created_at: String,
    /// When it last changed, RFC 3339.
    pub updated_at: String,
    /// Oldest first.
    pub messages: Vec<StoredMessage>,
}

/// `GET /api/conversations`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationList {
    /// Most recently changed first.
    pub conversations: Vec<ConversationSummary>,
}

/// `POST /api/session`: the session token, for clients that cannot keep the cookie (an iframe
/// on another site with third-party cookies blocked). Send it back as the `x-turnstile-session`
/// header or the `session` query parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionToken {
    /// The session's token.
    pub token: String,
}

/// A conversation's title: its first message, shortened to about 60 characters on a char
/// boundary.
pub fn title_from(message: &str) -> String {
    const MAX: usize = 60;
    let line = message.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() <= MAX {
        return if line.is_empty() {
            "New conversation".into()
        } else {
            line.into()
        };
    }
    let cut: String = line.chars().take(MAX).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_short_single_lines_cut_on_char_boundaries() {
        assert_eq!(title_from("  hello\nworld"), "hello");
        assert_eq!(title_from(""), "New conversation");
        let long = "é".repeat(100);
        let t = title_from(&long);
        assert_eq!(t.chars().count(), 61);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn chat_job_defaults_and_golden_json() {
        let job: ChatJob = serde_json::from_str(r#"{"message":"hi"}"#).unwrap();
        assert_eq!(job.message, "hi");
        assert!(!job.regenerate && job.stop.is_empty() && job.conversation_id.is_none());
        assert_eq!(serde_json::to_string(&job).unwrap(), r#"{"message":"hi"}"#);
        let usage = ChatUsage {
            prompt_tokens: 30,
            completion_tokens: 12,
            time_to_first_token_ms: 85.5,
            tokens_per_second: 41.0,
            finish_reason: FinishReason::Stop,
        };
        assert_eq!(
            serde_json::to_string(&usage).unwrap(),
            r#"{"prompt_tokens":30,"completion_tokens":12,"time_to_first_token_ms":85.5,"tokens_per_second":41.0,"finish_reason":"stop"}"#
        );
    }
}
