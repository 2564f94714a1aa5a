//! What crosses between machines through the shared queue: a job's payload (the [`Work`] as
//! queued) and its events after the queue ([`RemoteEvent`]: start, progress, end), as JSON. The
//! positions are not carried: every instance computes them from its mirror of the order.
//!
//! Concurrency: plain data.

use crate::error::JobError;
use crate::job::{JobEvent, Outcome, Progress, Work};
use serde::{Deserialize, Serialize};

/// A job's event after it left the queue, as a worker appends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum RemoteEvent {
    /// Reached a device after waiting this long in all (the shared queue and the worker).
    Started {
        /// Milliseconds since it was queued.
        waited_ms: u64,
    },
    /// Something the job reports while it runs.
    Progress {
        /// The report.
        progress: Progress,
    },
    /// Its end.
    Ended {
        /// Its result or failure.
        result: Result<Outcome, JobError>,
    },
}

impl RemoteEvent {
    /// The event a worker appends for a local event (`None` for the worker's own queueing
    /// events, which its client never hears).
    pub fn from_local(event: JobEvent, waited_before_ms: u64) -> Option<RemoteEvent> {
        Some(match event {
            JobEvent::Accepted { .. } | JobEvent::Position { .. } => return None,
            JobEvent::Started { waited_ms } => RemoteEvent::Started {
                waited_ms: waited_ms + waited_before_ms,
            },
            JobEvent::Progress(progress) => RemoteEvent::Progress { progress },
            JobEvent::Ended(result) => RemoteEvent::Ended { result },
        })
    }

    /// The event as its owner's sink hears it.
    pub fn into_local(self) -> JobEvent {
        match self {
            RemoteEvent::Started { waited_ms } => JobEvent::Started { waited_ms },
            RemoteEvent::Progress { progress } => JobEvent::Progress(progress),
            RemoteEvent::Ended { result } => JobEvent::Ended(result),
        }
    }

    /// Whether nothing follows it.
    pub fn is_terminal(&self) -> bool {
        matches!(self, RemoteEvent::Ended { .. })
    }

    /// Whether it shows the client output that cannot be taken back (a job that streamed is
    /// never run a second time).
    pub fn is_output(&self) -> bool {
        matches!(
            self,
            RemoteEvent::Progress {
                progress: Progress::Token { .. }
            }
        )
    }

    /// As JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events serialize")
    }

    /// From JSON.
    pub fn decode(bytes: &[u8]) -> Result<RemoteEvent, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// A job's end with `error`, encoded (for the scripts that end jobs themselves: cancel,
    /// the lease reaper).
    pub fn failure(error: JobError) -> Vec<u8> {
        RemoteEvent::Ended { result: Err(error) }.encode()
    }
}

/// A job's payload in the queue.
pub fn encode_work(work: &Work) -> Vec<u8> {
    serde_json::to_vec(work).expect("jobs serialize")
}

/// A job from its payload.
pub fn decode_work(bytes: &[u8]) -> Result<Work, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::{CalcJob, Op};

    #[test]
    fn events_and_jobs_round_trip() {
        let events = [
            RemoteEvent::Started { waited_ms: 12 },
            RemoteEvent::Progress {
                progress: Progress::Token { text: "hé".into() },
            },
            RemoteEvent::Ended {
                result: Err(JobError::RateLimited {
                    waiting: 3,
                    retry_after: std::time::Duration::from_millis(1500),
                }),
            },
            RemoteEvent::Ended {
                result: Ok(Outcome::Tensor {
                    output: app::tensor::Tensor::new(vec![2], vec![1.0, 2.5]).unwrap(),
                    compute_ms: 0.25,
                }),
            },
        ];
        for e in events {
            assert_eq!(RemoteEvent::decode(&e.encode()).unwrap(), e);
        }
        let work = Work::Calc(CalcJob {
            op: Op::Sleep,
            a: None,
            b: None,
            dim: None,
            ms: Some(5),
            us: None,
        });
        assert_eq!(decode_work(&encode_work(&work)).unwrap(), work);
        assert!(RemoteEvent::decode(br#"{"t":"nope"}"#).is_err());
    }
}
