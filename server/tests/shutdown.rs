//! Issue 6, restarts: the real binary, stopped with SIGTERM (a graceful drain: the running job
//! finishes, waiting clients are told to retry, the store is flushed, exit 0) and with SIGKILL
//! (SQLite recovers every committed message). Conversations are intact after either.

mod common;

use app::chat::{Conversation, MessageStatus};
use app::error_code::ErrorCode;
use app::protocol::ServerMessage;
use common::*;
use futures::StreamExt;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The `turnstile` binary, running on a database of the test's.
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Process {
    fn start(db: &Path, extra: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_turnstile"))
            .args(["--addr", "127.0.0.1:0", "--test-mode", "--db"])
            .arg(db)
            .args(["--model", &model_path()])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let addr = line[at + "listening on http://".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .to_owned();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server says where it listens")
            .parse()
            .unwrap();
        Process { child, addr }
    }

    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal}");
    }

    /// Waits for the process to exit; its exit code.
    fn wait(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("the server did not exit within {within:?}");
    }

    async fn ws(&self, session: &str) -> Client {
        let (stream, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/ws?session={session}", self.addr))
                .await
                .unwrap();
        Client { stream }
    }

    async fn conversation(&self, session: &str, id: &str) -> Conversation {
        reqwest::Client::new()
            .get(format!("http://{}/api/conversations/{id}", self.addr))
            .header("x-turnstile-session", session)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A whole chat answer; its conversation id.
async fn chat(p: &Process, session: &str, text: &str) -> String {
    let mut c = p.ws(session).await;
    c.send_json(submit(
        "c",
        json!({"kind":"chat","message":text,"max_tokens":6}),
    ))
    .await;
    let msgs = c.until_end().await;
    assert!(
        matches!(msgs.last(), Some(ServerMessage::Done { .. })),
        "{msgs:?}"
    );
    match &msgs[0] {
        ServerMessage::Accepted {
            conversation_id: Some(c),
            ..
        } => c.0.clone(),
        m => panic!("{m:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_running_job_tells_the_waiting_to_retry_and_exits_cleanly() {
    let dir = TempDir::new();
    let db = dir.path().join("t.sqlite3");
    let mut p = Process::start(&db, &["--drain-timeout", "20s"]);
    let session = new_session();
    let conversation = chat(&p, &session, "Say hello.").await;

    let mut running = p.ws(&new_session()).await;
    running.send_json(submit("run", sleep_job(1500))).await;
    assert!(matches!(
        running.recv().await,
        ServerMessage::Accepted { .. }
    ));
    assert!(matches!(
        running.recv().await,
        ServerMessage::Started { .. }
    ));
    // One more is handed to the device ahead of its turn; the third waits in the queue.
    let mut next = p.ws(&new_session()).await;
    next.send_json(submit("next", sleep_job(10))).await;
    assert!(matches!(next.recv().await, ServerMessage::Accepted { .. }));
    let mut waiting = p.ws(&new_session()).await;
    waiting.send_json(submit("wait", sleep_job(10))).await;
    assert!(matches!(
        waiting.recv().await,
        ServerMessage::Accepted { .. }
    ));

    let t = Instant::now();
    p.signal("-TERM");
    // The waiting job is told at once to retry.
    match waiting.recv().await {
        ServerMessage::Error {
            code: ErrorCode::ShuttingDown,
            retry_after_ms: Some(_),
            ..
        } => {}
        m => panic!("{m:?}"),
    }
    // New work is refused while the server drains.
    running.send_json(submit("late", sleep_job(10))).await;
    let mut saw_refusal = false;
    let mut finished = false;
    while !(saw_refusal && finished) {
        match running.recv().await {
            ServerMessage::Error {
                code: ErrorCode::ShuttingDown,
                client_ref: Some(r),
                ..
            } if r == "late" => saw_refusal = true,
            ServerMessage::Done { .. } => finished = true,
            ServerMessage::Result { .. } => {}
            m => panic!("{m:?}"),
        }
    }
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "the running job was cut short"
    );
    // The prefetched one runs to its end too, then the server says goodbye and exits 0.
    assert!(matches!(
        next.until_end().await.last(),
        Some(ServerMessage::Done { .. })
    ));
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match running.stream.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the socket closes");
    assert_eq!(close, Some(1001), "closed as going away");
    drop((running, next, waiting));
    assert_eq!(p.wait(Duration::from_secs(15)), Some(0), "a clean exit");

    // Restarted on the same database: the conversation is whole.
    let p = Process::start(&db, &[]);
    let c = p.conversation(&session, &conversation).await;
    assert_eq!(c.messages.len(), 2);
    assert_eq!(c.messages[0].content, "Say hello.");
    assert_eq!(c.messages[1].status, MessageStatus::Complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_sqlite_recovers_every_committed_message() {
    let dir = TempDir::new();
    let db = dir.path().join("k.sqlite3");
    let mut p = Process::start(&db, &["--test-token-delay", "100ms"]);
    let session = new_session();
    let mut conversations = vec![];
    for text in ["One.", "Two.", "Three."] {
        conversations.push(chat(&p, &session, text).await);
    }
    // Killed in the middle of another answer, with nothing flushed on purpose.
    let mut c = p.ws(&session).await;
    c.send_json(submit(
        "c",
        json!({"kind":"chat","message":"Write a long story.","max_tokens":200}),
    ))
    .await;
    loop {
        if let ServerMessage::Token { .. } = c.recv().await {
            break;
        }
    }
    p.signal("-KILL");
    p.wait(Duration::from_secs(10));

    let check = rusqlite::Connection::open(&db).unwrap();
    let integrity: String = check
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    drop(check);
    let p = Process::start(&db, &[]);
    for (id, text) in conversations.iter().zip(["One.", "Two.", "Three."]) {
        let c = p.conversation(&session, id).await;
        assert_eq!(c.messages.len(), 2, "{c:?}");
        assert_eq!(c.messages[0].content, text);
        assert_eq!(c.messages[1].status, MessageStatus::Complete);
        assert!(!c.messages[1].content.is_empty());
    }
}
