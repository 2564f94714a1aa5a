//! One WebSocket connection to `/ws`, always as a session of its own
//! (`/ws?session=<32 hex>`): the server's fair queue treats each session as a party, while
//! anonymous sockets from one address would share a single party and its cap of waiting jobs.
//!
//! Two ways to use a connection:
//! - [`WsClient`]: driven directly by one task (send, then read until the job ends), for the
//!   request/response loop of the saturate scenario.
//! - [`spawn`]: a task of its own that owns the socket, forwards the driver's messages to the
//!   server and stamps every server message with the instant it arrived into one shared channel
//!   ([`Event`]), so one collector can follow thousands of sockets without polling them.
//!
//! Failures never panic: they come back as a [`Failure`] with a short kind (for tallies) and
//! the detail.

use app::protocol::{ClientMessage, ServerMessage};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The transport under a connection (plain TCP: the generator talks to one address it is given).
type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many connections may be in their opening handshake at once, so that thousands of
/// clients starting together do not overflow the server's listen backlog.
pub const CONNECT_CONCURRENCY: usize = 256;

/// Raises this process's soft limit on open files towards `want` (at most the hard limit), so
/// it can hold thousands of sockets; returns the limit now in force.
pub fn raise_open_files(want: u64) -> Result<u64, String> {
    rlimit::increase_nofile_limit(want).map_err(|e| format!("cannot raise RLIMIT_NOFILE: {e}"))
}

/// A fresh session id: 32 random lowercase hex characters, the exact shape the server accepts.
pub fn new_session() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Why a connection (or one exchange on it) failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// A short, stable label to tally by (`connect_failed`, `connection_closed`, ...).
    pub kind: &'static str,
    /// What exactly happened, for a person reading the report.
    pub detail: String,
}

impl Failure {
    /// A failure of `kind` with its `detail`.
    pub fn new(kind: &'static str, detail: impl Into<String>) -> Failure {
        Failure {
            kind,
            detail: detail.into(),
        }
    }
}

/// What one read from a [`WsClient`] gave.
#[derive(Debug)]
pub enum Recv {
    /// A protocol message from the server.
    Message(ServerMessage),
    /// Nothing arrived before the deadline (the connection may still be fine).
    TimedOut,
    /// The connection is unusable now.
    Failed(Failure),
}

/// A WebSocket connection driven directly by its owner.
pub struct WsClient {
    /// The socket.
    stream: Stream,
}

/// The address client `i` connects to: `addr` may list several web instances of one deployment,
/// separated by commas (`--addr a:3000,b:3000`); clients are spread over them in turn. Requests
/// that are not a client's (the statistics) go to the first.
pub fn nth_addr(addr: &str, i: usize) -> &str {
    let n = addr.split(',').count();
    addr.split(',').nth(i % n).unwrap_or(addr)
}

impl WsClient {
    /// Opens `ws://addr/ws?session=session`, giving up at `deadline`. Nagle's algorithm is off so
    /// small request/response exchanges are not held back.
    pub async fn connect(addr: &str, session: &str, deadline: Instant) -> Result<Self, Failure> {
        let url = format!("ws://{addr}/ws?session={session}");
        let connect = tokio_tungstenite::connect_async_with_config(url, None, true);
        match tokio::time::timeout_at(deadline, connect).await {
            Err(_) => Err(Failure::new(
                "connect_timeout",
                "no connection before the deadline",
            )),
            Ok(Err(e)) => Err(Failure::new("connect_failed", e.to_string())),
            Ok(Ok((stream, _))) => Ok(WsClient { stream }),
        }
    }

    /// Opens `n` connections, each a session of its own, with at most [`CONNECT_CONCURRENCY`]
    /// handshakes at once; those that fail are tallied in `errors` and left out.
    pub async fn connect_many(
        addr: &str,
        n: usize,
        deadline: Instant,
        errors: &mut crate::report::Errors,
    ) -> Vec<WsClient> {
        let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let connecting: Vec<_> = (0..n)
            .map(|i| {
                let (gate, addr) = (Arc::clone(&gate), nth_addr(addr, i).to_owned());
                tokio::spawn(async move {
                    let _permit = gate.acquire().await;
                    WsClient::connect(&addr, &new_session(), deadline).await
                })
            })
            .collect();
        let mut sockets = Vec::with_capacity(n);
        for task in connecting {
            match task.await {
                Ok(Ok(client)) => sockets.push(client),
                Ok(Err(failure)) => errors.add(failure.kind, &failure.detail),
                Err(e) => errors.add("task_failed", &e.to_string()),
            }
        }
        sockets
    }

    /// Sends one client message as a text frame.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), Failure> {
        let text =
            serde_json::to_string(msg).map_err(|e| Failure::new("encode_failed", e.to_string()))?;
        self.stream
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| Failure::new("send_failed", e.to_string()))
    }

    /// The next protocol message, skipping transport frames, or why there is none by `deadline`.
    pub async fn recv(&mut self, deadline: Instant) -> Recv {
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Recv::TimedOut,
                Ok(frame) => frame,
            };
            match decode(frame) {
                None => continue,
                Some(Ok(msg)) => return Recv::Message(msg),
                Some(Err(failure)) => return Recv::Failed(failure),
            }
        }
    }

    /// Closes the connection politely (the server cancels its calculator jobs at once), waiting
    /// at most a second for the close to go out.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.close(None)).await;
    }
}

/// Makes sense of one read from the socket: a message, a failure, or `None` for frames that
/// carry no protocol message (pings, pongs, binary).
fn decode(
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Option<Result<ServerMessage, Failure>> {
    match frame {
        None => Some(Err(Failure::new(
            "connection_closed",
            "the server closed the connection",
        ))),
        Some(Err(e)) => Some(Err(Failure::new("transport_error", e.to_string()))),
        Some(Ok(Message::Text(text))) => Some(
            serde_json::from_str::<ServerMessage>(text.as_str()).map_err(|e| {
                Failure::new("undecodable_message", format!("{e}: {}", text.as_str()))
            }),
        ),
        Some(Ok(Message::Close(frame))) => Some(Err(Failure::new(
            "connection_closed",
            format!("the server closed the connection: {frame:?}"),
        ))),
        Some(Ok(_)) => None,
    }
}

/// Something that happened on a spawned connection, stamped when it happened.
#[derive(Debug)]
pub struct Event {
    /// Which connection (the id given to [`spawn`]).
    pub conn: usize,
    /// When the connection's task saw it (not when the collector got round to it).
    pub at: Instant,
    /// What happened.
    pub what: What,
}

/// The kinds of [`Event`].
#[derive(Debug)]
pub enum What {
    /// The connection is open; messages sent before this were queued and now go out.
    Connected,
    /// A protocol message from the server.
    Message(ServerMessage),
    /// The connection failed and its task ended; nothing more comes from it.
    Failed(Failure),
}

/// The driver's handle on a spawned connection. Dropping it closes the connection.
pub struct Conn {
    /// The id its events carry.
    pub id: usize,
    /// Messages for the task to send, in order.
    commands: mpsc::UnboundedSender<ClientMessage>,
}

impl Conn {
    /// Queues `msg` for sending; `false` if the connection's task has ended.
    pub fn send(&self, msg: ClientMessage) -> bool {
        self.commands.send(msg).is_ok()
    }
}

/// Starts a task that connects to `addr` as a new session (at most `gate`'s permits
/// connecting at once, giving up at `deadline`), then forwards the handle's messages and reports
/// every server message to `events`. Returns at once; messages sent before the connection is
/// open are queued.
pub fn spawn(
    addr: &str,
    id: usize,
    gate: Arc<Semaphore>,
    deadline: Instant,
    events: mpsc::UnboundedSender<Event>,
) -> Conn {
    let (commands, rx) = mpsc::unbounded_channel();
    let addr = nth_addr(addr, id).to_owned();
    tokio::spawn(run_conn(addr, id, gate, deadline, events, rx));
    Conn { id, commands }
}

/// The body of a spawned connection's task.
async fn run_conn(
    addr: String,
    id: usize,
    gate: Arc<Semaphore>,
    deadline: Instant,
    events: mpsc::UnboundedSender<Event>,
    mut commands: mpsc::UnboundedReceiver<ClientMessage>,
) {
    let emit = |what: What| {
        events
            .send(Event {
                conn: id,
                at: Instant::now(),
                what,
            })
            .is_ok()
    };
    let connected = {
        let _permit = gate.acquire().await;
        WsClient::connect(&addr, &new_session(), deadline).await
    };
    let mut client = match connected {
        Ok(client) => client,
        Err(failure) => {
            emit(What::Failed(failure));
            return;
        }
    };
    if !emit(What::Connected) {
        return;
    }
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(msg) => {
                    if let Err(failure) = client.send(&msg).await {
                        emit(What::Failed(failure));
                        return;
                    }
                }
                None => {
                    client.close().await;
                    return;
                }
            },
            frame = client.stream.next() => {
                let go_on = match decode(frame) {
                    None => true,
                    Some(Ok(msg)) => emit(What::Message(msg)),
                    Some(Err(failure)) => {
                        emit(What::Failed(failure));
                        false
                    }
                };
                if !go_on {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod spread_tests {
    use super::nth_addr;

    #[test]
    fn clients_are_spread_over_the_listed_instances() {
        assert_eq!(nth_addr("a:1", 5), "a:1");
        let spread: Vec<&str> = (0..4).map(|i| nth_addr("a:1,b:2,c:3", i)).collect();
        assert_eq!(spread, ["a:1", "b:2", "c:3", "a:1"]);
    }
}
