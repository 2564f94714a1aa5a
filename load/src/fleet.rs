//! A fleet of spawned WebSocket connections ([`crate::client::spawn`]) that report into one
//! channel, read by one collector (the scenario's driver) under the run's deadline. This is how
//! the hold, flood and chat scenarios follow many sockets at once without polling them.

use crate::client::{self, Conn, Event, Failure, What, CONNECT_CONCURRENCY};
use app::protocol::{ClientMessage, ServerMessage};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

/// Connections and the channel they report into.
pub struct Fleet {
    /// The server's `host:port`.
    addr: String,
    /// When the whole run must be over; no read waits past it.
    pub deadline: Instant,
    /// Bounds how many connections are in their handshake at once.
    gate: Arc<Semaphore>,
    /// The connections, indexed by id.
    conns: Vec<Conn>,
    /// Handed to each new connection.
    tx: mpsc::UnboundedSender<Event>,
    /// Where every connection's events arrive.
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Fleet {
    /// An empty fleet for `addr`, bounded by `deadline`.
    pub fn new(addr: &str, deadline: Instant) -> Fleet {
        let (tx, rx) = mpsc::unbounded_channel();
        Fleet {
            addr: addr.to_owned(),
            deadline,
            gate: Arc::new(Semaphore::new(CONNECT_CONCURRENCY)),
            conns: Vec::new(),
            tx,
            rx,
        }
    }

    /// Starts one more connection (a new session) and returns its id (0, 1, 2, ...).
    pub fn add(&mut self) -> usize {
        let id = self.conns.len();
        let conn = client::spawn(
            &self.addr,
            id,
            Arc::clone(&self.gate),
            self.deadline,
            self.tx.clone(),
        );
        self.conns.push(conn);
        id
    }

    /// How many connections were started.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether none were started.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Queues `msg` on connection `id`; `false` if it is gone.
    pub fn send(&self, id: usize, msg: ClientMessage) -> bool {
        self.conns.get(id).is_some_and(|c| c.send(msg))
    }

    /// The next event, or `None` once the run's deadline has passed.
    pub async fn next(&mut self) -> Option<Event> {
        self.next_until(self.deadline).await
    }

    /// The next event before `until` (and the run's deadline), or `None`.
    pub async fn next_until(&mut self, until: Instant) -> Option<Event> {
        let until = until.min(self.deadline);
        tokio::time::timeout_at(until, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits until every connection is open or has failed (or the deadline passed): for each
    /// id, `Ok` or why not. Call it before anything is sent, so no message events are lost.
    pub async fn wait_connected(&mut self) -> Vec<Result<(), Failure>> {
        let timeout = || {
            Err(Failure::new(
                "connect_timeout",
                "not connected before the deadline",
            ))
        };
        let mut state: Vec<Option<Result<(), Failure>>> = vec![None; self.conns.len()];
        let mut open = state.len();
        while open > 0 {
            let Some(event) = self.next().await else {
                break;
            };
            let outcome = match event.what {
                What::Connected => Ok(()),
                What::Failed(failure) => Err(failure),
                What::Message(_) => continue,
            };
            if let Some(slot @ None) = state.get_mut(event.conn) {
                *slot = Some(outcome);
                open -= 1;
            }
        }
        state
            .into_iter()
            .map(|s| s.unwrap_or_else(timeout))
            .collect()
    }

    /// Pings each connection `i` with `which[i]` once and returns its round trip (`None` for
    /// those not pinged or that did not answer within a second), and the other events that
    /// arrived meanwhile (a failed connection's, say), for the caller to apply.
    pub async fn ping(&mut self, which: &[bool]) -> (Vec<Option<Duration>>, Vec<Event>) {
        let mut sent = vec![None; self.conns.len()];
        for (i, slot) in sent.iter_mut().enumerate() {
            let at = Instant::now();
            let nonce = Some(i as u64);
            if which.get(i) == Some(&true) && self.send(i, ClientMessage::Ping { nonce }) {
                *slot = Some(at);
            }
        }
        let mut rtts = vec![None; sent.len()];
        let mut others = Vec::new();
        let mut open = sent.iter().flatten().count();
        let until = Instant::now() + Duration::from_secs(1);
        while open > 0 {
            let Some(event) = self.next_until(until).await else {
                break;
            };
            let pinged = sent.get(event.conn).copied().flatten();
            match (&event.what, pinged, rtts.get_mut(event.conn)) {
                (What::Message(ServerMessage::Pong { .. }), Some(at), Some(slot @ None)) => {
                    *slot = Some(event.at.duration_since(at));
                    open -= 1;
                }
                (What::Failed(_), Some(_), Some(None)) => {
                    open -= 1;
                    others.push(event);
                }
                _ => others.push(event),
            }
        }
        (rtts, others)
    }
}
