//! [`SharedQueue`]: one client's handle on the shared queue in Redis. Every change of the queue
//! is one script call (one round trip, atomic on the server); reads of a job's events are plain
//! stream reads.
//!
//! Concurrency: a handle is cheap to clone; clones share one multiplexed connection that
//! reconnects on its own (`ConnectionManager`), so calls from many tasks are pipelined on one
//! socket and never wait for each other's answers.

use crate::error::{QueueError, Refusal};
use crate::keys::Keys;
use crate::scripts::Scripts;
use redis::aio::ConnectionManager;
use redis::{FromRedisValue, Value};
use std::sync::Arc;
use std::time::Duration;

/// How the shared queue behaves; every instance and worker of one deployment must agree.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// Prefix of every key (several deployments may share one Redis).
    pub prefix: String,
    /// Arrival order instead of fair order.
    pub fifo: bool,
    /// Most jobs waiting in all lines together (0 = no cap): `queue_full` beyond it.
    pub max_waiting: u64,
    /// Most jobs one party may have waiting (0 = no cap): `rate_limited` beyond it.
    pub max_waiting_per_party: u64,
    /// How long a claimed job stays a worker's without a renewal.
    pub lease: Duration,
    /// How long an ended job's record and events are kept (for `resume` from any instance).
    pub resume_window: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            prefix: "turnstile".into(),
            fifo: false,
            max_waiting: 0,
            max_waiting_per_party: 0,
            lease: Duration::from_secs(5),
            resume_window: Duration::from_secs(300),
        }
    }
}

/// A job to queue.
#[derive(Clone, Copy, Debug)]
pub struct NewJob<'a> {
    /// Its id (unique; 32 hex digits in Turnstile).
    pub id: &'a str,
    /// The line it waits in (one per resource: a device place, an engine's lane).
    pub line: &'a str,
    /// Who it is for, as the fair order sees it.
    pub party: &'a str,
    /// The party's share (1 unless configured otherwise).
    pub weight: u32,
    /// Its expected device time in microseconds (its charge in the fair order).
    pub cost_us: u64,
    /// The instance whose client waits for its events.
    pub owner: &'a str,
    /// What the worker needs to run it (opaque here).
    pub payload: &'a [u8],
    /// The session that may resume it through another instance (empty: none may).
    pub session: &'a str,
    /// What an instance taking it over needs (opaque here).
    pub meta: &'a [u8],
}

/// A queued job's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// Arrival number (unique, increasing).
    pub seq: u64,
    /// Its score in the line (the fair tag; arrival number in FIFO order).
    pub tag: u64,
    /// 1 = next to run, in its line.
    pub position: u64,
    /// Jobs waiting in its line, itself included.
    pub line_length: u64,
}

/// A job a worker claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// Its id.
    pub id: String,
    /// The fencing token every later write for it must carry.
    pub fence: u64,
    /// What it is.
    pub payload: Vec<u8>,
    /// How long it waited, in milliseconds.
    pub waited_ms: u64,
    /// 1 when a worker held it before and lost its lease.
    pub attempts: u32,
}

/// What renewing a lease found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// The lease is extended.
    Kept,
    /// Extended, and the job's owner asked for it to be cancelled.
    CancelRequested,
    /// The lease is lost (expired and taken back, or the job ended): stop the job.
    Lost,
}

/// What a cancel did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was waiting and left its line; its terminal event is appended.
    Removed,
    /// It is running; its worker was told to stop.
    Signalled,
    /// It had ended already.
    Ended,
    /// Another instance owns it now (its client resumed there): left alone.
    Moved,
    /// No such job (never queued, or forgotten after the resume window).
    Unknown,
}

/// The lines' order at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The number of the last change it includes.
    pub cseq: u64,
    /// Each line's `(member, score)` pairs, in run order.
    pub lines: Vec<(String, Vec<(String, u64)>)>,
}

/// A handle on the shared queue; cheap to clone.
#[derive(Clone)]
pub struct SharedQueue {
    /// The multiplexed, self-reconnecting connection.
    pub(crate) conn: ConnectionManager,
    /// The connection's client, for dedicated connections (followers).
    client: redis::Client,
    /// The scripts.
    pub(crate) scripts: Arc<Scripts>,
    /// The behaviour every caller shares.
    pub(crate) config: Arc<QueueConfig>,
    /// Key names.
    keys: Keys,
}

impl SharedQueue {
    /// Connects to `url` (`redis://host:port/db` or `redis+unix:///path?db=N`).
    pub async fn connect(url: &str, config: QueueConfig) -> Result<SharedQueue, QueueError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new_with_config(
            client.clone(),
            redis::aio::ConnectionManagerConfig::new()
                .set_response_timeout(Some(Duration::from_secs(5)))
                .set_number_of_retries(3),
        )
        .await?;
        let keys = Keys::new(&config.prefix);
        Ok(SharedQueue {
            conn,
            client,
            scripts: Arc::new(Scripts::new()),
            config: Arc::new(config),
            keys,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The client (for a follower's own connection).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A clone of the multiplexed connection (for plain commands).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub(crate) fn ms(d: Duration) -> u64 {
        d.as_millis().max(1) as u64
    }

    /// Admits and queues a job, or says why not.
    pub async fn enqueue(&self, job: NewJob<'_>) -> Result<Result<Enqueued, Refusal>, QueueError> {
        let c = &self.config;
        let v: Vec<Value> = self
            .scripts
            .enqueue
            .arg(&c.prefix)
            .arg(job.id)
            .arg(job.line)
            .arg(job.party)
            .arg(job.weight)
            .arg(job.cost_us)
            .arg(u8::from(c.fifo))
            .arg(c.max_waiting)
            .arg(c.max_waiting_per_party)
            .arg(job.owner)
            .arg(job.payload)
            .arg(job.session)
            .arg(job.meta)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let bad = |detail: String| QueueError::Protocol {
            script: "enqueue",
            detail,
        };
        let status: String = v
            .first()
            .map(String::from_redis_value_ref)
            .transpose()?
            .ok_or_else(|| bad("empty answer".into()))?;
        match status.as_str() {
            "ok" if v.len() == 5 => {
                let n = |i: usize| u64::from_redis_value_ref(&v[i]);
                Ok(Ok(Enqueued {
                    seq: n(1)?,
                    tag: n(2)?,
                    position: n(3)?,
                    line_length: n(4)?,
                }))
            }
            "queue_full" => Ok(Err(Refusal::QueueFull)),
            "rate_limited" => Ok(Err(Refusal::RateLimited)),
            "duplicate" => Ok(Err(Refusal::Duplicate)),
            other => Err(bad(format!("status {other:?}"))),
        }
    }

    /// Claims the first waiting job of `line` for `worker`, under a lease.
    pub async fn claim(&self, line: &str, worker: &str) -> Result<Option<Claimed>, QueueError> {
        let v: Option<(String, u64, Vec<u8>, i64, u32)> = self
            .scripts
            .claim
            .arg(&self.config.prefix)
            .arg(line)
            .arg(worker)
            .arg(Self::ms(self.config.lease))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(v.map(|(id, fence, payload, waited, attempts)| Claimed {
            id,
            fence,
            payload,
            waited_ms: waited.max(0) as u64,
            attempts,
        }))
    }

    /// Extends the lease on a running job, if `fence` is still its token.
    pub async fn renew(&self, id: &str, fence: u64) -> Result<Renewal, QueueError> {
        let v: i64 = self
            .scripts
            .renew
            .arg(&self.config.prefix)
            .arg(id)
            .arg(fence)
            .arg(Self::ms(self.config.lease))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match v {
            1 => Renewal::Kept,
            2 => Renewal::CancelRequested,
            _ => Renewal::Lost,
        })
    }

    /// Appends an event of a running job, if `fence` is still its token; a terminal event ends
    /// the job. `streamed`: the event carries output the client has been shown (a job that
    /// streamed is never run again). Returns the event's seq, or `None` when fenced out.
    pub async fn emit(
        &self,
        id: &str,
        fence: u64,
        event: &[u8],
        terminal: bool,
        streamed: bool,
    ) -> Result<Option<u64>, QueueError> {
        let seq: i64 = self
            .scripts
            .emit
            .arg(&self.config.prefix)
            .arg(id)
            .arg(fence)
            .arg(event)
            .arg(u8::from(terminal))
            .arg(u8::from(streamed))
            .arg(Self::ms(self.config.resume_window))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((seq > 0).then_some(seq as u64))
    }

    /// Cancels a job wherever it is; a waiting one ends with `cancelled_event`.
    pub async fn cancel(
        &self,
        id: &str,
        cancelled_event: &[u8],
    ) -> Result<CancelOutcome, QueueError> {
        self.cancel_owned(id, cancelled_event, "").await
    }

    /// Cancels a job as [`SharedQueue::cancel`] does, only while `owner` owns it (`Moved`
    /// otherwise; an empty `owner` is anyone).
    pub async fn cancel_owned(
        &self,
        id: &str,
        cancelled_event: &[u8],
        owner: &str,
    ) -> Result<CancelOutcome, QueueError> {
        let v: String = self
            .scripts
            .cancel
            .arg(&self.config.prefix)
            .arg(id)
            .arg(cancelled_event)
            .arg(Self::ms(self.config.resume_window))
            .arg(owner)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(match v.as_str() {
            "removed" => CancelOutcome::Removed,
            "signalled" => CancelOutcome::Signalled,
            "ended" => CancelOutcome::Ended,
            "moved" => CancelOutcome::Moved,
            _ => CancelOutcome::Unknown,
        })
    }

    /// The whole order of each of `lines` (members and scores, in run order), and the change
    /// number they are current at.
    pub async fn snapshot(&self, lines: &[&str]) -> Result<Snapshot, QueueError> {
        let mut call = self.scripts.snapshot.arg(&self.config.prefix);
        for l in lines {
            call.arg(*l);
        }
        let v: Vec<Value> = call.invoke_async(&mut self.conn.clone()).await?;
        let mut it = v.into_iter();
        let cseq = it
            .next()
            .map(u64::from_redis_value)
            .transpose()?
            .unwrap_or(0);
        let mut out = Snapshot {
            cseq,
            lines: Vec::with_capacity(lines.len()),
        };
        for (line, flat) in lines.iter().zip(it) {
            let flat = Vec::<Value>::from_redis_value(flat)?;
            let mut order = Vec::with_capacity(flat.len() / 2);
            let mut f = flat.iter();
            while let (Some(m), Some(s)) = (f.next(), f.next()) {
                order.push((
                    String::from_redis_value_ref(m)?,
                    u64::from_redis_value_ref(s)?,
                ));
            }
            out.lines.push(((*line).to_owned(), order));
        }
        Ok(out)
    }

    /// The job's events after `after_seq`, in order (for `resume`).
    pub async fn events_after(
        &self,
        id: &str,
        after_seq: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, QueueError> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys.events(id))
            .arg("-")
            .arg("+")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(crate::follow::seq_entries(&reply.ids, "q", "e")
            .filter(|(seq, _)| *seq > after_seq)
            .collect())
    }
}
