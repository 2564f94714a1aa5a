//! Turnstile processes for the deployment tests: the built `turnstile` binary started as web
//! instances and workers on one shared queue, with the faults a real deployment meets (`kill
//! -9`, `SIGSTOP`/`SIGCONT`, a restart on the same port). Every process is killed on drop.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `turnstile` process.
pub struct Proc {
    /// Its arguments, to start it again the same way.
    args: Vec<String>,
    /// The process, while it runs.
    child: Option<Child>,
    /// Where a web instance listens.
    pub addr: Option<SocketAddr>,
}

/// A free port of 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

impl Proc {
    /// A web instance on the shared queue `queue`, in test mode, with its own database in `dir`.
    pub fn web(queue: &str, dir: &std::path::Path, name: &str, extra: &[&str]) -> Proc {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut args = base(queue, dir, name, extra);
        args.extend(["--addr".into(), addr.to_string()]);
        Proc::spawn(args, Some(addr))
    }

    /// A device worker on the shared queue `queue`, in test mode.
    pub fn worker(queue: &str, dir: &std::path::Path, name: &str, extra: &[&str]) -> Proc {
        let mut args = vec!["worker".to_owned()];
        args.extend(base(queue, dir, name, extra));
        Proc::spawn(args, None)
    }

    fn spawn(args: Vec<String>, addr: Option<SocketAddr>) -> Proc {
        let mut p = Proc {
            args,
            child: None,
            addr,
        };
        p.start();
        p
    }

    /// Starts it (again), and for a web instance waits until it answers.
    pub fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_turnstile"))
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("turnstile starts");
        self.child = Some(child);
        if let Some(addr) = self.addr {
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(addr).is_err() {
                assert!(Instant::now() < deadline, "{addr} did not start listening");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `SIGSTOP`: frozen, as a paused VM or a long GC pause.
    pub fn pause(&self) {
        signal(self.child.as_ref().unwrap().id(), "-STOP");
    }

    /// `SIGCONT`.
    pub fn resume(&self) {
        signal(self.child.as_ref().unwrap().id(), "-CONT");
    }
}

fn base(queue: &str, dir: &std::path::Path, name: &str, extra: &[&str]) -> Vec<String> {
    let db = dir.join(format!("{name}.sqlite3"));
    let mut args: Vec<String> = [
        "--test-mode",
        "--queue",
        queue,
        "--db",
        db.to_str().unwrap(),
        "--model",
        &super::model_path(),
        "--position-interval",
        "20ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.kill();
    }
}
