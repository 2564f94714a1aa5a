//! The chat history's answers decoded in the browser (`from_json`): the same values as the
//! derived `Deserialize`, read by hand out of one parsed `serde_json::Value` (see
//! [`crate::fields`]), so the chat page's wasm carries no deserializer per type. The tests check
//! them against the derive.

use super::{
    Conversation, ConversationId, ConversationList, ConversationSummary, MessageStatus, Role,
    SessionToken, StoredMessage,
};
use crate::fields::{field, int, list, object, string, uint};
use serde_json::Value;

impl Conversation {
    /// `GET /api/conversations/{id}`'s answer.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let f = object(v, "a conversation")?;
        Ok(Conversation {
            id: ConversationId(string(f, "id")?),
            title: string(f, "title")?,
            created_at: string(f, "created_at")?,
            updated_at: string(f, "updated_at")?,
            messages: list(f, "messages", StoredMessage::from_json)?,
        })
    }
}

impl StoredMessage {
    /// One message of a [`Conversation`].
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let f = object(v, "a message")?;
        Ok(StoredMessage {
            id: int(f, "id")?,
            role: field(f, "role", |v| match v.as_str()? {
                "system" => Some(Role::System),
                "user" => Some(Role::User),
                "assistant" => Some(Role::Assistant),
                _ => None,
            })?,
            content: string(f, "content")?,
            status: field(f, "status", |v| match v.as_str()? {
                "complete" => Some(MessageStatus::Complete),
                "stopped" => Some(MessageStatus::Stopped),
                "failed" => Some(MessageStatus::Failed),
                _ => None,
            })?,
            created_at: string(f, "created_at")?,
        })
    }
}

impl ConversationList {
    /// `GET /api/conversations`'s answer.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let f = object(v, "a conversation list")?;
        Ok(ConversationList {
            conversations: list(f, "conversations", ConversationSummary::from_json)?,
        })
    }
}

impl ConversationSummary {
    /// One entry of a [`ConversationList`].
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let f = object(v, "a conversation summary")?;
        Ok(ConversationSummary {
            id: ConversationId(string(f, "id")?),
            title: string(f, "title")?,
            created_at: string(f, "created_at")?,
            updated_at: string(f, "updated_at")?,
            message_count: uint(f, "message_count")?,
        })
    }
}

impl SessionToken {
    /// `POST /api/session`'s answer.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let f = object(v, "a session token")?;
        Ok(SessionToken {
            token: string(f, "token")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `from_json` and the derive agree on `v` (both decode it, to the same value, or both refuse).
    fn agree<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        v: Value,
        ours: fn(&Value) -> Result<T, String>,
    ) {
        let derived = serde_json::from_value::<T>(v.clone()).ok();
        assert_eq!(ours(&v).ok(), derived, "{v}");
    }

    #[test]
    fn the_browser_decoders_agree_with_serde() {
        let message = json!({"id":3,"role":"assistant","content":"**hi**","status":"stopped",
            "created_at":"2026-12-06T10:00:00Z"});
        let conversation = json!({"id":"ab12","title":"Hello","created_at":"t0","updated_at":"t1",
            "messages":[message, {"id":2,"role":"user","content":"hi","status":"complete",
            "created_at":"t0","extra":true}]});
        agree(conversation.clone(), Conversation::from_json);
        let decoded = Conversation::from_json(&conversation).unwrap();
        assert_eq!(decoded.messages.len(), 2);
        assert_eq!(decoded.messages[0].status, MessageStatus::Stopped);
        for bad in [
            json!({"id":"ab12","title":"Hello","created_at":"t0","updated_at":"t1"}),
            json!({"id":"ab12","title":"Hello","created_at":"t0","updated_at":"t1","messages":[
                {"id":1.5,"role":"user","content":"","status":"complete","created_at":"t0"}]}),
            json!({"id":"ab12","title":"Hello","created_at":"t0","updated_at":"t1","messages":[
                {"id":1,"role":"robot","content":"","status":"complete","created_at":"t0"}]}),
            json!({"id":"ab12","title":"Hello","created_at":"t0","updated_at":"t1","messages":[
                {"id":1,"role":"user","content":"","status":"lost","created_at":"t0"}]}),
            json!({"id":"ab12","title":null,"created_at":"t0","updated_at":"t1","messages":[]}),
            json!([]),
        ] {
            agree(bad, Conversation::from_json);
        }
        let list = json!({"conversations":[{"id":"ab12","title":"Hello","created_at":"t0",
            "updated_at":"t1","message_count":4}]});
        agree(list, ConversationList::from_json);
        agree(json!({"conversations":[]}), ConversationList::from_json);
        agree(
            json!({"conversations":[{"id":"ab12","title":"Hello","created_at":"t0",
            "updated_at":"t1","message_count":-4}]}),
            ConversationList::from_json,
        );
        agree(json!({}), ConversationList::from_json);
        agree(json!({"token":"0123abcd"}), SessionToken::from_json);
        agree(json!({"token":7}), SessionToken::from_json);
    }
}
