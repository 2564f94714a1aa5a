//! The jobs the scenarios submit, built from the shared wire types (never re-declared here):
//! calculator adds made distinct per job so the server's result cache cannot answer them,
//! test-mode sleeps that hold the device for a known time, and chat messages.

use app::chat::ChatJob;
use app::protocol::{CalcJob, ClientMessage, Job, Op};
use app::tensor::{Fill, Tensor, TensorInput};

/// Which calculator job a saturating client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CalcKind {
    /// A 2x2 add whose operands name the run, the client and the job: never cached.
    Add,
    /// Test mode's `sleep`: holds the device for a known time, like an accelerator job.
    Sleep,
}

/// A random number for this run, exactly representable in an `f32`, so that two runs against
/// the same server never send the same add (the cache would answer the second).
pub fn run_nonce() -> f32 {
    // Below 2^24 every integer is exact in f32.
    rand::random_range(0..(1u32 << 24)) as f32
}

/// A 2x2 add no other job of this run (or of another run, by `nonce`) sends: `a` carries the
/// client and the job number, `b` the run's nonce. Values stay exact below 2^24.
pub fn distinct_add(nonce: f32, client: usize, job: u64) -> CalcJob {
    let literal = |data: Vec<f32>| {
        Tensor::new(vec![2, 2], data)
            .map(TensorInput::Literal)
            // The shape and data lengths are fixed above; the generator form is a fallback that
            // cannot be reached.
            .unwrap_or(TensorInput::Generated {
                fill: Fill::Ones,
                shape: vec![2, 2],
                seed: None,
            })
    };
    CalcJob {
        op: Op::Add,
        a: Some(literal(vec![client as f32, job as f32, 1.0, 2.0])),
        b: Some(literal(vec![nonce, 3.0, 4.0, 5.0])),
        dim: None,
        ms: None,
        us: None,
    }
}

/// Test mode's `sleep` for `us` microseconds (the server must run with `--test-mode`).
pub fn sleep_us(us: u64) -> CalcJob {
    CalcJob {
        op: Op::Sleep,
        a: None,
        b: None,
        dim: None,
        ms: None,
        us: Some(us),
    }
}

/// Test mode's `sleep` for `ms` milliseconds.
pub fn sleep_ms(ms: u64) -> CalcJob {
    CalcJob {
        ms: Some(ms),
        us: None,
        ..sleep_us(0)
    }
}

/// A new conversation's first message, answering at most `max_tokens` tokens.
pub fn chat(message: &str, max_tokens: u32) -> ChatJob {
    ChatJob {
        message: message.to_owned(),
        max_tokens: Some(max_tokens),
        ..ChatJob::default()
    }
}

/// The WebSocket `submit` of a calculator job.
pub fn submit_calc(client_ref: impl Into<String>, job: CalcJob) -> ClientMessage {
    ClientMessage::Submit {
        client_ref: client_ref.into(),
        job: Job::Calc(job),
    }
}

/// The WebSocket `submit` of a chat job.
pub fn submit_chat(client_ref: impl Into<String>, job: ChatJob) -> ClientMessage {
    ClientMessage::Submit {
        client_ref: client_ref.into(),
        job: Job::Chat(job),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_differ_per_client_and_job_and_are_literal() {
        let a = distinct_add(7.0, 1, 2);
        assert_ne!(a, distinct_add(7.0, 2, 1));
        assert_ne!(a, distinct_add(8.0, 1, 2));
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["op"], "add");
        assert_eq!(json["a"]["data"], serde_json::json!([1.0, 2.0, 1.0, 2.0]));
        let ws = serde_json::to_value(submit_calc("r", sleep_us(50))).unwrap();
        assert_eq!(
            ws,
            serde_json::json!({"type":"submit","client_ref":"r","job":{"kind":"calc","op":"sleep","us":50}})
        );
    }
}
