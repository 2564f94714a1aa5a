//! The OpenAI-compatible HTTP API (`POST /v1/chat/completions`, `GET /v1/models`): request and
//! response bodies, so existing OpenAI clients work against Turnstile unchanged. Only the fields
//! Turnstile honours are declared; unknown request fields are ignored.

use crate::chat::ChatTurn;
use serde::{Deserialize, Serialize};

/// `POST /v1/chat/completions` body.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// A model listed by `/v1/models`; absent or empty picks the configured one.
    #[serde(default)]
    pub model: String,
    /// The conversation so far, oldest first; the last one is usually the user's.
    pub messages: Vec<ChatTurn>,
    /// Stream the answer as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Most tokens to generate (`max_completion_tokens` is accepted too).
    #[serde(default, alias = "max_completion_tokens")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Stop sequences: one string or a list.
    #[serde(default)]
    pub stop: Option<StopSequences>,
}

/// OpenAI's `stop`: a string or an array of strings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StopSequences {
    /// One sequence.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl StopSequences {
    /// As a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StopSequences::One(s) => vec![s],
            StopSequences::Many(v) => v,
        }
    }
}

/// Token counts of a completion.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens read.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Both.
    pub total_tokens: u32,
}

/// A non-streaming answer (`object: "chat.completion"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// `chatcmpl-<job id>`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model that answered.
    pub model: String,
    /// Exactly one.
    pub choices: Vec<Choice>,
    /// Token counts.
    pub usage: Usage,
}

/// The one choice of a [`ChatCompletion`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The answer, role `assistant`.
    pub message: ChatTurn,
    /// `stop` or `length`.
    pub finish_reason: String,
}

/// One streamed event (`object: "chat.completion.chunk"`), sent as `data: {...}`; the stream ends
/// with `data: [DONE]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// Same for every chunk of one answer.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model that answers.
    pub model: String,
    /// Exactly one.
    pub choices: Vec<ChunkChoice>,
    /// On the last chunk only: token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// The one choice of a [`ChatCompletionChunk`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What to append.
    pub delta: Delta,
    /// Set on the last chunk: `stop` or `length`.
    pub finish_reason: Option<String>,
}

/// The change a chunk carries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// `assistant`, on the first chunk only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Text to append.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `GET /v1/models`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// The configured models.
    pub data: Vec<ModelCard>,
}

/// One model of [`ModelList`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// The name to put in `model`.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Unix seconds (0: unknown).
    pub created: u64,
    /// `turnstile`, or the upstream's name.
    pub owned_by: String,
}

/// An error in OpenAI's shape, so OpenAI clients can read it: `{"error":{...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorObject,
}

/// The `error` object of an [`ErrorResponse`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// A sentence a person can act on.
    pub message: String,
    /// OpenAI's category: `invalid_request_error`, `rate_limit_error`, `server_error`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Turnstile's stable error code (`invalid_input`, `queue_full`, ...).
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Role;

    #[test]
    fn requests_from_openai_clients_decode() {
        let r: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],
               "stream":true,"max_completion_tokens":20,"stop":"\n","n":1,"user":"x"}"#,
        )
        .unwrap();
        assert_eq!(r.messages[1].role, Role::User);
        assert_eq!(r.max_tokens, Some(20));
        assert_eq!(r.stop.unwrap().into_vec(), vec!["\n".to_string()]);
        let r: ChatCompletionRequest =
            serde_json::from_str(r#"{"messages":[],"stop":["a","b"]}"#).unwrap();
        assert!(!r.stream && r.model.is_empty());
        assert_eq!(r.stop.unwrap().into_vec().len(), 2);
    }

    #[test]
    fn chunk_golden_json() {
        let chunk = ChatCompletionChunk {
            id: "chatcmpl-1".into(),
            object: "chat.completion.chunk".into(),
            created: 1,
            model: "m".into(),
            choices: vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    role: None,
                    content: Some("Hi".into()),
                },
                finish_reason: None,
            }],
            usage: None,
        };
        assert_eq!(
            serde_json::to_string(&chunk).unwrap(),
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#
        );
    }
}
