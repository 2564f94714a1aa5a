//! Decoding a server frame in the browser ([`ServerMessage::from_frame`]): the same message that
//! serde's derived `Deserialize` gives for every frame it accepts, through one parsed
//! `serde_json::Value` and a hand-written match on `type`.
//!
//! Why not the derive: `ServerMessage` is internally tagged, so serde buffers each frame into its
//! generic `Content` and then runs a deserializer per variant over it; in the wasm bundle that was
//! the largest function (the WebSocket pump, 34.6 KB with it inlined) and about 20 KB gzipped in
//! all. The server never decodes its own messages, and the wire format is the derive's; the golden
//! tests (`protocol_tests.rs`) check this decoder against it on every example. Frames the derive
//! refuses are refused here too (the reason's wording may differ: it is only logged).
//! Pure, no I/O.

use super::{JobId, ServerMessage};
use crate::chat::{ChatUsage, ConversationId, FinishReason};
use crate::error_code::ErrorCode;
use crate::fields::{float, get, optional, string, uint, wrong};
use crate::tensor::Tensor;
use serde_json::{Number, Value};

impl ServerMessage {
    /// The message in a text frame from the server, or why it is not one.
    pub fn from_frame(text: &str) -> Result<ServerMessage, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let Value::Object(f) = value else {
            return Err("a message is a JSON object".into());
        };
        let f = &f;
        let kind = get(f, "type")?.as_str().ok_or("`type` is not a string")?;
        Ok(match kind {
            "accepted" => ServerMessage::Accepted {
                client_ref: string(f, "client_ref")?,
                job_id: JobId(string(f, "job_id")?),
                seq: uint(f, "seq")?,
                position: uint(f, "position")?,
                queue_length: uint(f, "queue_length")?,
                eta_ms: uint(f, "eta_ms")?,
                conversation_id: optional(f, "conversation_id", |v| {
                    v.as_str().map(|s| ConversationId(s.into()))
                })?,
            },
            "position" => ServerMessage::Position {
                job_id: JobId(string(f, "job_id")?),
                seq: uint(f, "seq")?,
                position: uint(f, "position")?,
                eta_ms: uint(f, "eta_ms")?,
            },
            "started" => ServerMessage::Started {
                job_id: JobId(string(f, "job_id")?),
                seq: uint(f, "seq")?,
                waited_ms: uint(f, "waited_ms")?,
            },
            "loading" => ServerMessage::Loading {
                job_id: JobId(string(f, "job_id")?),
                seq: uint(f, "seq")?,
                progress: optional(f, "progress", |v| v.as_number().map(cast_f32))?,
            },
            "token" => ServerMessage::Token {
                job_id: JobId(string(f, "job_id")?),
                seq: uint(f, "seq")?,
                text: string(f, "text")?,
            },
            "result" => ServerMessage::Result {
                job_id: JobId(string(f, "job_id")?),
                seq: uint(f, "seq")?,
                output: tensor(get(f, "output")?).ok_or("`output` is not a tensor")?,
                compute_ms: float(f, "compute_ms")?,
                // `#[serde(default)]` on a `bool`: absent is false, `null` is refused.
                cached: match f.get("cached") {
                    None => false,
                    Some(v) => v.as_bool().ok_or_else(|| wrong("cached"))?,
                },
            },
            "done" => ServerMessage::Done {
                job_id: JobId(string(f, "job_id")?),
                seq: uint(f, "seq")?,
                usage: match f.get("usage") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(usage(v).ok_or("`usage` is not a chat usage")?),
                },
            },
            "error" => ServerMessage::Error {
                job_id: optional(f, "job_id", |v| v.as_str().map(|s| JobId(s.into())))?,
                client_ref: optional(f, "client_ref", |v| v.as_str().map(String::from))?,
                seq: optional(f, "seq", Value::as_u64)?,
                code: error_code(get(f, "code")?).ok_or("`code` is not an error code")?,
                message: string(f, "message")?,
                retry_after_ms: optional(f, "retry_after_ms", Value::as_u64)?,
            },
            "pong" => ServerMessage::Pong {
                nonce: optional(f, "nonce", Value::as_u64)?,
            },
            other => return Err(format!("unknown message type `{other}`")),
        })
    }
}

/// A JSON number as serde reads it into an `f32` (a plain cast from the integer or the float).
fn cast_f32(n: &Number) -> f32 {
    if let Some(u) = n.as_u64() {
        u as f32
    } else if let Some(i) = n.as_i64() {
        i as f32
    } else {
        n.as_f64().unwrap_or(f64::NAN) as f32
    }
}

/// `{"shape":[..],"data":[..]}`, `data` as [`crate::tensor::finite_json`] writes it.
fn tensor(v: &Value) -> Option<Tensor> {
    let shape = v
        .get("shape")?
        .as_array()?
        .iter()
        .map(|d| usize::try_from(d.as_u64()?).ok())
        .collect::<Option<Vec<usize>>>()?;
    let data = v
        .get("data")?
        .as_array()?
        .iter()
        .map(|x| match x {
            // Finite floats must fit an f32; integers are cast, as serde does.
            Value::Number(n) if n.is_f64() => {
                let wide = n.as_f64()?;
                let x = wide as f32;
                (x.is_finite() || !wide.is_finite()).then_some(x)
            }
            Value::Number(n) => Some(cast_f32(n)),
            Value::String(s) => match s.as_str() {
                "NaN" => Some(f32::NAN),
                "Infinity" => Some(f32::INFINITY),
                "-Infinity" => Some(f32::NEG_INFINITY),
                _ => None,
            },
            _ => None,
        })
        .collect::<Option<Vec<f32>>>()?;
    Some(Tensor { shape, data })
}

fn usage(v: &Value) -> Option<ChatUsage> {
    let count = |name: &str| u32::try_from(v.get(name)?.as_u64()?).ok();
    Some(ChatUsage {
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
        time_to_first_token_ms: v.get("time_to_first_token_ms")?.as_f64()?,
        tokens_per_second: v.get("tokens_per_second")?.as_f64()?,
        finish_reason: match v.get("finish_reason")?.as_str()? {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            _ => return None,
        },
    })
}

fn error_code(v: &Value) -> Option<ErrorCode> {
    let s = v.as_str()?;
    ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
}
