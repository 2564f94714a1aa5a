//! Round-trip and golden-JSON tests for the wire protocol, and a check that every example in
//! `docs/protocol.md` decodes and re-encodes to the same JSON.

use super::*;
use crate::chat::FinishReason;
use crate::tensor::Fill;
use serde_json::{json, Value};

fn golden<T>(msg: &T, expected: Value)
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
{
    let encoded = serde_json::to_value(msg).unwrap();
    assert_eq!(encoded, expected, "encoding of {msg:?}");
    let decoded: T = serde_json::from_value(expected).unwrap();
    assert_eq!(&decoded, msg, "decoding");
}

/// [`golden`] for a server message, and the browser's decoder gives the same message.
fn server_golden(msg: &ServerMessage, expected: Value) {
    let text = expected.to_string();
    golden(msg, expected);
    assert_eq!(ServerMessage::from_frame(&text).as_ref(), Ok(msg), "{text}");
}

fn id() -> JobId {
    JobId("9f1c2e7a5b3d4f60a1b2c3d4e5f60718".into())
}

#[test]
fn client_messages_golden() {
    golden(
        &ClientMessage::Submit {
            client_ref: "r1".into(),
            job: Job::Calc(CalcJob {
                op: Op::Matmul,
                a: Some(TensorInput::Literal(Tensor {
                    shape: vec![2, 2],
                    data: vec![1., 2., 3., 4.],
                })),
                b: Some(TensorInput::Generated {
                    fill: Fill::Random,
                    shape: vec![2, 2],
                    seed: Some(7),
                }),
                dim: None,
                ms: None,
                us: None,
            }),
        },
        json!({"type":"submit","client_ref":"r1","job":{"kind":"calc","op":"matmul",
            "a":{"shape":[2,2],"data":[1.0,2.0,3.0,4.0]},
            "b":{"shape":[2,2],"fill":"random","seed":7}}}),
    );
    golden(
        &ClientMessage::Cancel { job_id: id() },
        json!({"type":"cancel","job_id":id().0}),
    );
    golden(
        &ClientMessage::Ping { nonce: Some(5) },
        json!({"type":"ping","nonce":5}),
    );
    golden(&ClientMessage::Ping { nonce: None }, json!({"type":"ping"}));
    golden(
        &ClientMessage::Resume {
            job_id: id(),
            last_seq: Some(7),
        },
        json!({"type":"resume","job_id":id().0,"last_seq":7}),
    );
    golden(
        &ClientMessage::Submit {
            client_ref: "c1".into(),
            job: Job::Chat(ChatJob {
                conversation_id: Some(ConversationId("9b2e".into())),
                message: "Hi!".into(),
                max_tokens: Some(64),
                stop: vec!["\n\n".into()],
                ..ChatJob::default()
            }),
        },
        json!({"type":"submit","client_ref":"c1","job":{"kind":"chat","conversation_id":"9b2e",
            "message":"Hi!","max_tokens":64,"stop":["\n\n"]}}),
    );
}

#[test]
fn server_messages_golden() {
    let j = id().0;
    server_golden(
        &ServerMessage::Accepted {
            client_ref: "r1".into(),
            job_id: id(),
            seq: 0,
            position: 3,
            queue_length: 5,
            eta_ms: 600,
            conversation_id: None,
        },
        json!({"type":"accepted","client_ref":"r1","job_id":j,"seq":0,"position":3,
            "queue_length":5,"eta_ms":600}),
    );
    server_golden(
        &ServerMessage::Accepted {
            client_ref: "c1".into(),
            job_id: id(),
            seq: 0,
            position: 1,
            queue_length: 1,
            eta_ms: 0,
            conversation_id: Some(ConversationId("9b2e".into())),
        },
        json!({"type":"accepted","client_ref":"c1","job_id":j,"seq":0,"position":1,
            "queue_length":1,"eta_ms":0,"conversation_id":"9b2e"}),
    );
    server_golden(
        &ServerMessage::Loading {
            job_id: id(),
            seq: 2,
            progress: Some(0.5),
        },
        json!({"type":"loading","job_id":j,"seq":2,"progress":0.5}),
    );
    server_golden(
        &ServerMessage::Token {
            job_id: id(),
            seq: 3,
            text: "Hé".into(),
        },
        json!({"type":"token","job_id":j,"seq":3,"text":"Hé"}),
    );
    server_golden(
        &ServerMessage::Done {
            job_id: id(),
            seq: 9,
            usage: Some(ChatUsage {
                prompt_tokens: 31,
                completion_tokens: 5,
                time_to_first_token_ms: 120.0,
                tokens_per_second: 40.0,
                finish_reason: FinishReason::Stop,
            }),
        },
        json!({"type":"done","job_id":j,"seq":9,"usage":{"prompt_tokens":31,"completion_tokens":5,
            "time_to_first_token_ms":120.0,"tokens_per_second":40.0,"finish_reason":"stop"}}),
    );
    server_golden(
        &ServerMessage::Position {
            job_id: id(),
            seq: 1,
            position: 2,
            eta_ms: 400,
        },
        json!({"type":"position","job_id":j,"seq":1,"position":2,"eta_ms":400}),
    );
    server_golden(
        &ServerMessage::Started {
            job_id: id(),
            seq: 2,
            waited_ms: 412,
        },
        json!({"type":"started","job_id":j,"seq":2,"waited_ms":412}),
    );
    server_golden(
        &ServerMessage::Result {
            cached: false,
            job_id: id(),
            seq: 3,
            output: Tensor {
                shape: vec![2],
                data: vec![1.0, f32::INFINITY],
            },
            compute_ms: 3.1,
        },
        json!({"type":"result","job_id":j,"seq":3,"output":{"shape":[2],"data":[1.0,"Infinity"]},
            "compute_ms":3.1}),
    );
    server_golden(
        &ServerMessage::Done {
            job_id: id(),
            seq: 4,
            usage: None,
        },
        json!({"type":"done","job_id":j,"seq":4}),
    );
    server_golden(
        &ServerMessage::Error {
            job_id: None,
            client_ref: Some("r1".into()),
            seq: None,
            code: ErrorCode::InvalidInput,
            message: "m".into(),
            retry_after_ms: None,
        },
        json!({"type":"error","client_ref":"r1","code":"invalid_input","message":"m"}),
    );
    server_golden(
        &ServerMessage::Pong { nonce: Some(5) },
        json!({"type":"pong","nonce":5}),
    );
}

#[test]
fn unknown_fields_are_ignored_and_unknown_types_rejected() {
    let m: ClientMessage = serde_json::from_value(json!({"type":"ping","extra":true})).unwrap();
    assert_eq!(m, ClientMessage::Ping { nonce: None });
    assert!(serde_json::from_value::<ClientMessage>(json!({"type":"launch"})).is_err());
}

/// The browser's decoder agrees with the derive on what it accepts and what it refuses, optional
/// fields absent or `null`, and tensor data in every form.
#[test]
fn the_browser_decoder_agrees_with_serde() {
    let j = id().0;
    let frames = [
        json!({"type":"loading","job_id":j,"seq":1}),
        json!({"type":"loading","job_id":j,"seq":1,"progress":null}),
        json!({"type":"loading","job_id":j,"seq":1,"progress":1}),
        json!({"type":"loading","job_id":j,"seq":1,"progress":0.25}),
        json!({"type":"result","job_id":j,"seq":2,"compute_ms":1,"cached":true,
            "output":{"shape":[3],"data":[1,-2,0.5]}}),
        json!({"type":"result","job_id":j,"seq":2,"compute_ms":1.5,
            "output":{"shape":[],"data":["NaN"]}}),
        json!({"type":"result","job_id":j,"seq":2,"compute_ms":1.5,
            "output":{"shape":[2],"data":["Infinity","-Infinity"]}}),
        json!({"type":"result","job_id":j,"seq":2,"compute_ms":1.5,
            "output":{"shape":[1],"data":[1e300]}}),
        json!({"type":"result","job_id":j,"seq":2,"compute_ms":1.5,
            "output":{"shape":[1],"data":["nan"]}}),
        json!({"type":"result","job_id":j,"seq":2,"compute_ms":1.5,"output":{"shape":[1]}}),
        json!({"type":"result","job_id":j,"seq":2,"compute_ms":1.5,"cached":null,
            "output":{"shape":[1],"data":[1]}}),
        json!({"type":"done","job_id":j,"seq":3,"usage":null}),
        json!({"type":"done","job_id":j,"seq":3,"usage":{"prompt_tokens":1,
            "completion_tokens":2,"time_to_first_token_ms":3,"tokens_per_second":4.5,
            "finish_reason":"length"}}),
        json!({"type":"done","job_id":j,"seq":3,"usage":{"prompt_tokens":1,
            "completion_tokens":2,"time_to_first_token_ms":3,"tokens_per_second":4.5,
            "finish_reason":"tired"}}),
        json!({"type":"done","job_id":j,"seq":3,"usage":{"prompt_tokens":5000000000u64,
            "completion_tokens":2,"time_to_first_token_ms":3,"tokens_per_second":4.5,
            "finish_reason":"stop"}}),
        json!({"type":"error","code":"bad_message","message":"no","seq":null,"job_id":null}),
        json!({"type":"error","code":"teapot","message":"no"}),
        json!({"type":"error","code":"timeout"}),
        json!({"type":"position","job_id":j,"seq":1.0,"position":1,"eta_ms":0}),
        json!({"type":"position","job_id":j,"seq":-1,"position":1,"eta_ms":0}),
        json!({"type":"position","job_id":7,"seq":1,"position":1,"eta_ms":0}),
        json!({"type":"started","job_id":j,"seq":1,"waited_ms":2,"extra":[1]}),
        json!({"type":"token","job_id":j,"seq":4}),
        json!({"type":"pong"}),
        json!({"type":"pong","nonce":9}),
        json!({"type":"launch"}),
        json!({"type":3}),
        json!({"job_id":j}),
        json!([1, 2]),
    ];
    for frame in frames {
        let text = frame.to_string();
        let serde = serde_json::from_str::<ServerMessage>(&text).ok();
        // Compared as printed: NaN is not equal to itself.
        let ours = ServerMessage::from_frame(&text).ok();
        assert_eq!(format!("{ours:?}"), format!("{serde:?}"), "{text}");
    }
    assert!(ServerMessage::from_frame("{\"type\":").is_err());
}

#[test]
fn unknown_op_names_the_choices() {
    let err = serde_json::from_value::<Job>(json!({"kind":"calc","op":"frobnicate"}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("frobnicate") && err.contains("matmul"),
        "{err}"
    );
}

#[test]
fn op_names_match_serde() {
    for op in Op::PUBLIC.into_iter().chain([Op::Sleep]) {
        assert_eq!(serde_json::to_value(op).unwrap(), json!(op.as_str()));
    }
}

/// Every ```json block in docs/protocol.md whose first key is `"type"` is a protocol message:
/// it must decode as a client or server message and re-encode to the same JSON.
#[test]
fn every_example_in_the_protocol_doc_round_trips() {
    let doc = include_str!("../../docs/protocol.md");
    let mut checked = 0;
    let mut rest = doc;
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("unterminated code block");
        let block = &body[..end];
        rest = &body[end + 3..];
        let value: Value = serde_json::from_str(block)
            .unwrap_or_else(|e| panic!("docs/protocol.md example is not JSON ({e}):\n{block}"));
        let Some(ty) = value.get("type").and_then(Value::as_str) else {
            continue;
        };
        let reencoded = match ty {
            "submit" | "cancel" | "resume" | "ping" => serde_json::to_value(
                serde_json::from_value::<ClientMessage>(value.clone()).unwrap(),
            ),
            _ => {
                let decoded = serde_json::from_value::<ServerMessage>(value.clone())
                    .unwrap_or_else(|e| panic!("{e}: {block}"));
                assert_eq!(
                    ServerMessage::from_frame(block).as_ref(),
                    Ok(&decoded),
                    "{block}"
                );
                serde_json::to_value(decoded)
            }
        }
        .unwrap();
        assert_eq!(normalise(reencoded), normalise(value), "example:\n{block}");
        checked += 1;
    }
    assert!(
        checked >= 14,
        "expected an example of every message, found {checked}"
    );
}

/// Integers and floats compare equal when they hold the same number (`1` vs `1.0`).
fn normalise(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalise(v))).collect()),
        other => other,
    }
}
