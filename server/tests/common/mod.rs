//! Test harness: a real Turnstile server on an ephemeral port, and small clients for it.
#![allow(dead_code)]

use app::protocol::{ClientMessage, ServerMessage};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use turnstile_server::config::Config;

pub mod nginx;
pub mod procs;
mod sessions;
pub use sessions::*;

/// A running server; dropping it shuts the server down.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Its SQLite database (a file of its own; tests may open it to set up data); empty for a
    /// server started with `start_on`.
    pub db: std::path::PathBuf,
    _stop: oneshot::Sender<()>,
    /// The server's own database folder, when it has one (removed on drop).
    _dir: Option<TempDir>,
}

/// The embedded model that `scripts/model.sh` puts in the data directory.
pub fn model_path() -> String {
    let data = std::env::var("TURNSTILE_DATA_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../data").to_owned());
    let path = format!("{data}/models/SmolLM2-135M-Instruct.Q8_0.gguf");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run scripts/model.sh (make test does)"
    );
    path
}

impl TestServer {
    /// Starts a server in test mode with extra flags, e.g. `["--max-waiting", "2"]`, on a fresh
    /// database of its own. The pseudo-flag `--no-test-mode` starts it as in production.
    pub async fn start(flags: &[&str]) -> TestServer {
        let dir = TempDir::new();
        let mut server = Self::start_in(&dir, flags).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a server on the database in `dir` (which outlives it: for restart tests).
    pub async fn start_in(dir: &TempDir, flags: &[&str]) -> TestServer {
        let db_path = dir.path().join("turnstile.sqlite3");
        let mut server = Self::start_on(db_path.to_str().unwrap(), flags).await;
        server.db = db_path;
        server
    }

    /// Starts a server on the database `db` names (`--db`: a SQLite file or a `postgres://`
    /// URL, which other servers may share). Its `db` field is empty.
    pub async fn start_on(db: &str, flags: &[&str]) -> TestServer {
        let model = model_path();
        let production = flags.contains(&"--no-test-mode");
        let mut args = vec!["turnstile"];
        if !production {
            args.push("--test-mode");
        }
        args.extend(["--position-interval", "20ms", "--db", db, "--model", &model]);
        args.extend(flags.iter().filter(|f| **f != "--no-test-mode"));
        let config = Config::parse_from(args);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(turnstile_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        // Requests made before the server has opened its database wait in the listen backlog.
        TestServer {
            addr,
            db: std::path::PathBuf::new(),
            _stop: stop,
            _dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn ws(&self) -> Client {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", self.addr))
            .await
            .unwrap();
        Client { stream }
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A WebSocket client speaking the protocol.
pub struct Client {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_text(serde_json::to_string(msg).unwrap()).await;
    }

    pub async fn send_json(&mut self, v: serde_json::Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next protocol message (skipping transport pings), within 30 s (generous: a loaded
    /// machine can take seconds over a chat answer another job waits behind).
    pub async fn recv(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.stream.next())
                .await
                .expect("a message within 30 s")
                .expect("connection open")
                .expect("no transport error");
            match frame {
                Message::Text(t) => return serde_json::from_str(&t).expect("a protocol message"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Messages until one ends a job (done, or error with a job id) or a refusal.
    pub async fn until_end(&mut self) -> Vec<ServerMessage> {
        let mut out = vec![];
        loop {
            let m = self.recv().await;
            let end = m.is_terminal() || matches!(m, ServerMessage::Error { job_id: None, .. });
            out.push(m);
            if end {
                return out;
            }
        }
    }
}

pub fn submit(client_ref: &str, job: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"type":"submit","client_ref":client_ref,"job":job})
}

pub fn sleep_job(ms: u64) -> serde_json::Value {
    serde_json::json!({"kind":"calc","op":"sleep","ms":ms})
}

pub fn matmul_job() -> serde_json::Value {
    serde_json::json!({"kind":"calc","op":"matmul","a":{"shape":[2,2],"data":[1,2,3,4]},"b":{"shape":[2,2],"data":[5,6,7,8]}})
}

/// A device worker of a deployment, in this process; dropping it stops it (no new claims; its
/// running jobs finish).
pub struct TestWorker {
    _stop: oneshot::Sender<()>,
    _dir: TempDir,
}

impl TestWorker {
    /// Starts a worker in test mode on the shared queue at `queue`, with extra flags.
    pub async fn start(queue: &str, flags: &[&str]) -> TestWorker {
        let dir = TempDir::new();
        let db = dir.path().join("worker.sqlite3");
        let db = db.to_str().unwrap().to_owned();
        let model = model_path();
        let mut args = vec!["turnstile", "worker", "--test-mode", "--queue", queue];
        args.extend(["--db", &db, "--model", &model]);
        args.extend(flags);
        let config = Config::parse_from(args);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let r = turnstile_server::run_worker(config, async move {
                let _ = stopped.await;
            })
            .await;
            if let Err(e) = r {
                panic!("the worker failed: {e}");
            }
        });
        TestWorker {
            _stop: stop,
            _dir: dir,
        }
    }
}

/// The text of a chat's streamed tokens, in order.
pub fn text_of(msgs: &[ServerMessage]) -> String {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMessage::Token { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// A plain connection to the Redis at `url`, to look at the shared queue from the outside.
pub async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
