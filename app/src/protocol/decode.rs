//! Decoding one client WebSocket frame into a [`ClientMessage`], with the refusal a client is
//! sent when it does not decode. Wire-level and pure: the server's connections call it for every
//! text frame, and the fuzz targets check it without building the server.

use super::ClientMessage;
use crate::error_code::ErrorCode;

/// Why a client frame was refused, as the `error` message the client is sent.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Undecodable {
    /// `bad_message` when the frame itself is unusable (so there is nothing to answer to);
    /// `invalid_input` when it is a `submit` whose job does not decode (the message was
    /// understood, only the job is wrong), so the client can branch on it.
    pub code: ErrorCode,
    /// The `submit`'s `client_ref`, so the client can tell which of its jobs was refused; `None`
    /// for `bad_message`.
    pub client_ref: Option<String>,
    /// What was wrong, for the person reading it (serde's own words, with where in the frame).
    pub message: String,
}

impl ClientMessage {
    /// Parses a client message. Unusable frames are `bad_message`; a `submit` whose job does not
    /// decode is `invalid_input` (with its `client_ref`), since the message itself was understood.
    /// Never panics, whatever the text; accepts exactly what `serde_json::from_str` accepts.
    pub fn decode(text: &str) -> Result<ClientMessage, Undecodable> {
        // The common case first: a well-formed message decodes in one pass. Whatever it refuses
        // goes through the generic value below, which says why (a frame that decodes here
        // decodes there too, to the same message).
        if let Ok(message) = serde_json::from_str::<ClientMessage>(text) {
            return Ok(message);
        }
        let refuse = |code, client_ref, message| Undecodable {
            code,
            client_ref,
            message,
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            refuse(
                ErrorCode::BadMessage,
                None,
                format!("the message is not valid JSON: {e}"),
            )
        })?;
        let ty = value
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        let client_ref = value
            .get("client_ref")
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        serde_json::from_value(value).map_err(|e| match ty.as_deref() {
            Some("submit") => refuse(
                ErrorCode::InvalidInput,
                client_ref,
                format!("invalid job: {e}"),
            ),
            Some(_) => refuse(ErrorCode::BadMessage, None, format!("invalid message: {e}")),
            None => refuse(
                ErrorCode::BadMessage,
                None,
                "a message must be a JSON object with a \"type\" (submit, cancel, resume or ping)"
                    .into(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Job, JobId};

    fn refused(text: &str) -> Undecodable {
        ClientMessage::decode(text).expect_err(text)
    }

    #[test]
    fn accepts_what_serde_accepts() {
        for text in [
            r#"{"type":"ping","nonce":7}"#,
            r#"{"type":"cancel","job_id":"abc"}"#,
            r#"{"type":"submit","client_ref":"r","job":{"kind":"calc","op":"relu","a":{"shape":[2],"fill":"ones"}}}"#,
            r#"{"type":"submit","client_ref":"r","job":{"kind":"chat","message":"hi"}}"#,
        ] {
            let direct: ClientMessage = serde_json::from_str(text).unwrap();
            assert_eq!(ClientMessage::decode(text).unwrap(), direct, "{text}");
        }
        assert_eq!(
            ClientMessage::decode(r#"{"type":"cancel","job_id":"abc"}"#).unwrap(),
            ClientMessage::Cancel {
                job_id: JobId("abc".into())
            }
        );
        assert!(matches!(
            ClientMessage::decode(
                r#"{"type":"submit","client_ref":"r","job":{"kind":"chat","message":"hi"}}"#
            ),
            Ok(ClientMessage::Submit {
                job: Job::Chat(_),
                ..
            })
        ));
    }

    #[test]
    fn unusable_frames_are_bad_message_without_a_client_ref() {
        for (text, says) in [
            ("not json", "not valid JSON"),
            ("", "not valid JSON"),
            (
                r#"[1,2]"#,
                "a message must be a JSON object with a \"type\"",
            ),
            (
                r#"{"client_ref":"r"}"#,
                "must be a JSON object with a \"type\"",
            ),
            (r#"{"type":"dance","client_ref":"r"}"#, "invalid message"),
            (r#"{"type":"cancel"}"#, "invalid message"),
            (r#"{"type":7}"#, "must be a JSON object with a \"type\""),
        ] {
            let e = refused(text);
            assert_eq!(e.code, ErrorCode::BadMessage, "{text}");
            assert_eq!(e.client_ref, None, "{text}");
            assert!(e.message.contains(says), "{text}: {}", e.message);
        }
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(refused(&deep).code, ErrorCode::BadMessage);
    }

    #[test]
    fn a_submit_with_a_bad_job_is_invalid_input_with_its_client_ref() {
        for text in [
            r#"{"type":"submit","client_ref":"r1","job":{"kind":"calc","op":"fork_bomb"}}"#,
            r#"{"type":"submit","client_ref":"r1","job":{"kind":"shell"}}"#,
            r#"{"type":"submit","client_ref":"r1","job":{"kind":"chat","message":"hi","max_tokens":-1}}"#,
        ] {
            let e = refused(text);
            assert_eq!(e.code, ErrorCode::InvalidInput, "{text}");
            assert_eq!(e.client_ref.as_deref(), Some("r1"), "{text}");
            assert!(e.message.starts_with("invalid job: "), "{}", e.message);
        }
        // Without a usable client_ref it is still invalid_input, answered to no job in particular.
        let e = refused(r#"{"type":"submit","client_ref":5,"job":{"kind":"shell"}}"#);
        assert_eq!((e.code, e.client_ref), (ErrorCode::InvalidInput, None));
    }

    #[test]
    fn the_refusal_displays_its_code_and_message() {
        let e = refused("{");
        assert!(e
            .to_string()
            .starts_with("bad_message: the message is not valid JSON"));
    }
}
