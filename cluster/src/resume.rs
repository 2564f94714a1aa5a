//! Resuming a chat through another instance: each instance copies the wire messages of the jobs
//! it owns to the job's wire stream ([`SharedQueue::copy_wire`]), and an instance that a client
//! resumes through takes the job over ([`SharedQueue::take_over`]): after a session check, the
//! job's later events go to it, and it gets the copied messages to replay.
//!
//! Concurrency: both are single script calls, atomic on the server. A copy is accepted only from
//! the job's owner at the moment it runs, and a take-over reads the copies and moves the owner in
//! one step, so no copy of the old owner lands after the new owner read the stream.

use crate::error::QueueError;
use crate::queue::SharedQueue;
use redis::{FromRedisValue, Value};

/// Most wire messages kept per job (as many as its events).
const MAX_WIRE: u64 = 10_000;

/// One wire message to copy.
#[derive(Clone, Debug)]
pub struct WireEntry {
    /// The job's id.
    pub job: String,
    /// The message's seq.
    pub seq: u64,
    /// How many of the job's events (from the worker: start, progress, end) it reflects.
    pub q: u64,
    /// The message as the client gets it.
    pub message: std::sync::Arc<str>,
}

/// A job moved to the instance its client resumes through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    /// Its state when it moved (`waiting`, `running`, `done`).
    pub state: String,
    /// What its first owner stored for this (opaque).
    pub meta: Vec<u8>,
    /// How many times it moved (this move's number).
    pub moves: u64,
    /// One past the highest seq copied (0: nothing was).
    pub next_seq: u64,
    /// The highest event number a copied message reflects.
    pub last_q: u64,
    /// The copied messages from the asked seq on, `(seq, q, message)` in copy order (a seq may
    /// come twice: a replaced `position`; the later one counts).
    pub messages: Vec<(u64, u64, String)>,
}

/// What a take-over found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Takeover {
    /// No such job, or another session's (one answer for both).
    Unknown,
    /// The asking instance owns it already.
    Mine,
    /// Messages from the asked seq on are no longer kept; `first` is the oldest kept.
    Gone {
        /// The oldest seq kept.
        first: u64,
    },
    /// It moved to the asking instance.
    Moved(Moved),
}

impl SharedQueue {
    /// Copies wire messages of jobs `owner` owns (others are skipped); returns how many were.
    pub async fn copy_wire(&self, owner: &str, entries: &[WireEntry]) -> Result<u64, QueueError> {
        let mut call = self.scripts.wire.arg(&self.config.prefix);
        call.arg(owner)
            .arg(Self::ms(self.config.resume_window))
            .arg(MAX_WIRE);
        for e in entries {
            call.arg(&e.job)
                .arg(e.seq)
                .arg(e.q)
                .arg(e.message.as_bytes());
        }
        Ok(call.invoke_async(&mut self.conn.clone()).await?)
    }

    /// Moves job `id` to `owner` for a client of `session` resuming from seq `from`, with the
    /// copied messages from `from` on.
    pub async fn take_over(
        &self,
        id: &str,
        owner: &str,
        session: &str,
        from: u64,
    ) -> Result<Takeover, QueueError> {
        let v: Vec<Value> = self
            .scripts
            .takeover
            .arg(&self.config.prefix)
            .arg(id)
            .arg(owner)
            .arg(session)
            .arg(from)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let bad = |detail: &str| QueueError::Protocol {
            script: "takeover",
            detail: detail.to_owned(),
        };
        let text = |i: usize| -> Result<String, QueueError> {
            Ok(String::from_redis_value_ref(
                v.get(i).ok_or_else(|| bad("short answer"))?,
            )?)
        };
        let number = |i: usize| -> Result<u64, QueueError> {
            Ok(u64::from_redis_value_ref(
                v.get(i).ok_or_else(|| bad("short answer"))?,
            )?)
        };
        Ok(match text(0)?.as_str() {
            "unknown" => Takeover::Unknown,
            "mine" => Takeover::Mine,
            "gone" => Takeover::Gone { first: number(1)? },
            "moved" => {
                let meta = Vec::<u8>::from_redis_value_ref(&v[2])?;
                let mut messages = Vec::with_capacity(v.len().saturating_sub(6) / 3);
                let mut i = 6;
                while i + 2 < v.len() {
                    messages.push((number(i)?, number(i + 1)?, text(i + 2)?));
                    i += 3;
                }
                Takeover::Moved(Moved {
                    state: text(1)?,
                    meta,
                    moves: number(3)?,
                    next_seq: number(4)?,
                    last_q: number(5)?,
                    messages,
                })
            }
            other => return Err(bad(&format!("status {other:?}"))),
        })
    }
}
