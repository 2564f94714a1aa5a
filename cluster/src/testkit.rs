//! A throwaway `redis-server` for tests and local clusters: started in a temporary directory,
//! listening on a Unix socket there (and on a TCP port when asked), with an append-only file so
//! a restart keeps the queue, and stopped when dropped. Where `redis-server` is not installed it
//! panics with the command that installs it (a test fails, it is never skipped).
//!
//! Concurrency: owns its child process; `restart` and `Drop` need `&mut`/ownership.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    /// Its folder (socket, append-only file); removed on drop.
    dir: tempfile::TempDir,
    /// The process.
    child: Child,
    /// Its TCP port, when it listens on one.
    port: Option<u16>,
}

/// The binary, or a panic naming the install command.
fn binary() -> PathBuf {
    for dir in std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
    {
        let p = dir.join("redis-server");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "redis-server is not installed: run `scripts/setup.sh --test` \
         (or `apt-get install redis-server`)"
    );
}

impl RedisServer {
    /// Starts one on a Unix socket only.
    pub fn start() -> RedisServer {
        Self::launch(None)
    }

    /// Starts one on a Unix socket and a free TCP port of 127.0.0.1.
    pub fn start_tcp() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self::launch(Some(port))
    }

    fn launch(port: Option<u16>) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let child = Self::spawn(dir.path(), port);
        let server = RedisServer { dir, child, port };
        server.wait_ready();
        server
    }

    fn spawn(dir: &Path, port: Option<u16>) -> Child {
        Command::new(binary())
            .arg("--port")
            .arg(port.unwrap_or(0).to_string())
            .args(["--bind", "127.0.0.1", "--unixsocket"])
            .arg(dir.join("redis.sock"))
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(dir)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let socket = self.socket();
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start within 10 s");
    }

    /// Its Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// Its address for clients (the Unix socket).
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Its TCP address, when it has one.
    pub fn tcp_url(&self) -> Option<String> {
        self.port.map(|p| format!("redis://127.0.0.1:{p}/0"))
    }

    /// Its process id (for fault injection).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it (`SIGKILL`) and starts it again from its append-only file, on the same socket
    /// and port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.socket());
        self.child = Self::spawn(self.dir.path(), self.port);
        self.wait_ready();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
