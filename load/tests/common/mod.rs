//! The server the scenario tests drive: Turnstile started in-process on an ephemeral port in test
//! mode, on a fresh database file, one test at a time.
#![allow(dead_code)]

use clap::Parser;
use std::path::PathBuf;
use tokio::sync::{oneshot, Mutex, MutexGuard};
use turnstile_server::config::Config;

/// One test at a time.
static TURN: Mutex<()> = Mutex::const_new(());

/// A running server; dropping it stops the server and removes its database.
pub struct Server {
    /// `host:port`.
    pub addr: String,
    /// Its SQLite file.
    db: PathBuf,
    /// Dropping it is the shutdown signal.
    _stop: oneshot::Sender<()>,
    /// Held for the test's length.
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.db.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The embedded model that `scripts/model.sh` puts in the data directory.
pub fn model_path() -> String {
    let data = std::env::var("TURNSTILE_DATA_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../data").to_owned());
    format!("{data}/models/SmolLM2-135M-Instruct.Q8_0.gguf")
}

/// Starts a test-mode server with extra `flags` on a fresh database file, once it is our turn.
pub async fn start(flags: &[&str]) -> Server {
    let turn = TURN.lock().await;
    let db = std::env::temp_dir().join(format!(
        "turnstile-load-test-{}.sqlite3",
        turnstile_load::client::new_session()
    ));
    let db_arg = db.to_str().unwrap().to_owned();
    let model = model_path();
    let mut args = vec![
        "turnstile",
        "--test-mode",
        "--db",
        &db_arg,
        "--model",
        &model,
    ];
    args.extend_from_slice(flags);
    let config = Config::parse_from(args);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(turnstile_server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        db,
        _stop: stop,
        _turn: turn,
    }
}
