//! A real nginx in front of a test server: Debian's `nginx`, started by the test in a temporary
//! directory of its own (configuration, pid, logs and temporary files all inside it) on an
//! ephemeral port, in the foreground as one process, serving `docs/nginx.conf` (the snippet the
//! README shows) in front of the given upstream. Dropping it stops nginx and removes the folder.
//!
//! A machine without nginx fails the test with the command that installs it; nothing is skipped.

use super::TempDir;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The snippet under test, shared with the README.
pub const SNIPPET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/nginx.conf");

/// A running nginx; dropping it stops it.
pub struct Nginx {
    /// Where it listens (on 127.0.0.1; every 127.x.y.z source can reach it).
    pub addr: SocketAddr,
    /// The nginx process (one, no workers: `master_process off`).
    child: Child,
    /// Its folder; removed after the process is gone.
    dir: TempDir,
}

/// The nginx binary: on `PATH`, or where Debian puts it (`/usr/sbin` is not on every `PATH`).
fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file());
    let found = on_path.or_else(|| {
        ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "nginx is missing: install it with `apt-get install -y nginx` \
             (scripts/setup.sh --test does); the reverse-proxy tests need a real one"
        )
    })
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

impl Nginx {
    /// Starts nginx in front of `upstream`, once it accepts connections. Retries on another
    /// port if the one it was given got taken in between.
    pub fn start(upstream: SocketAddr) -> Nginx {
        let nginx = binary();
        let mut last_error = String::new();
        for _ in 0..5 {
            match Self::try_start(&nginx, upstream) {
                Ok(n) => return n,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    fn try_start(nginx: &PathBuf, upstream: SocketAddr) -> Result<Nginx, String> {
        let dir = TempDir::new();
        let d = dir.path().display().to_string();
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let conf = format!(
            "user root;\n\
             worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
               access_log {d}/access.log;\n\
               client_body_temp_path {d}/client_body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               upstream turnstile {{ server {upstream}; }}\n\
               server {{\n\
                 listen {addr};\n\
                 include {SNIPPET};\n\
               }}\n\
             }}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).map_err(|e| e.to_string())?;
        let child = Command::new(nginx)
            .args(["-p", &d, "-c", &format!("{d}/nginx.conf"), "-e"])
            .arg(format!("{d}/error.log"))
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", nginx.display()))?;
        let mut n = Nginx { addr, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = n.child.try_wait() {
                return Err(format!("exited with {status}: {}", n.log()));
            }
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(n);
            }
            if Instant::now() > deadline {
                return Err(format!("not listening on {addr} after 10 s: {}", n.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its error log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// `http://nginx/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// An HTTP client whose connections come from `source` (a 127.x.y.z address), without
    /// cookies: every request is an anonymous client.
    pub fn client_from(source: IpAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(source)
            .no_proxy()
            .build()
            .unwrap()
    }

    /// A WebSocket to `/ws` through nginx from `source`: the client, or the HTTP status the
    /// upgrade was refused with.
    pub async fn ws_from(&self, source: IpAddr) -> Result<super::Client, u16> {
        use tokio_tungstenite::tungstenite::Error;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let tcp = socket.connect(self.addr).await.unwrap();
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
        match tokio_tungstenite::client_async(format!("ws://{}/ws", self.addr), stream).await {
            Ok((stream, _)) => Ok(super::Client { stream }),
            Err(Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("WebSocket through nginx from {source}: {e}"),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // One process (no workers), so killing it stops nginx entirely.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
