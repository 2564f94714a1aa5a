//! A throwaway PostgreSQL server for tests: `initdb` and `postgres` from the newest
//! `/usr/lib/postgresql/<version>/bin` (or `$TURNSTILE_PG_BIN`), in a temporary folder, listening
//! only on a Unix socket in that folder, with trust authentication and durability off (it lives
//! for one test process). Each test takes a fresh database of its own on it
//! ([`PgServer::fresh_database`]), so tests run side by side without seeing each other's rows.
//!
//! Where it is: compiled into the crate's unit tests, and, with the `test-support` feature, into
//! its library for integration tests (`server/tests/` enable it through the crate's
//! dev-dependency on itself) and other crates' tests. Never in a release build. A shell
//! equivalent for scripts is the same three steps: `initdb -D dir/data -U postgres --auth=trust`,
//! append `listen_addresses = ''` and `unix_socket_directories = 'dir'` to its
//! `postgresql.conf`, `pg_ctl -D dir/data -l dir/log -w start`.
//!
//! Clean-up: a test process never runs destructors of statics, so the server is tied to the
//! process another way: a small watchdog shell, started with a pipe from this process as its
//! stdin, waits for that pipe to close (which the kernel does when the process ends, however it
//! ends), then stops the server and removes the folder. No `postgres` process outlives the test
//! process by more than its shutdown.
//!
//! PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user
//! (`runuser -u postgres --`), and the folder is made theirs.
//!
//! Concurrency: [`PgServer::shared`] starts one server per process, once, whichever test asks
//! first (the others wait for it); after that it is read-only and shared by every thread.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// A running throwaway PostgreSQL server.
pub struct PgServer {
    /// The temporary folder: `data/` (the cluster), `log`, and the server's socket.
    dir: PathBuf,
    /// The watchdog: it stops the server and removes `dir` when its stdin (held here, in this
    /// process) closes, which is when this process ends. Kept only to be held.
    _watchdog: Child,
}

/// The superuser `initdb` makes (trust authentication: no password).
const SUPERUSER: &str = "postgres";

impl PgServer {
    /// The process's one server, started on first use. Panics, saying what to install, where
    /// PostgreSQL's binaries are missing: a test that needs it fails, it is never skipped.
    pub fn shared() -> &'static PgServer {
        static SERVER: OnceLock<PgServer> = OnceLock::new();
        SERVER.get_or_init(|| PgServer::start().unwrap_or_else(|why| panic!("{why}")))
    }

    /// Starts a server of its own in a new temporary folder; it is stopped and the folder
    /// removed when this value is dropped or this process ends.
    pub fn start() -> Result<PgServer, String> {
        let bin = bin_dir()?;
        let dir =
            std::env::temp_dir().join(format!("turnstile-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let as_root = is_root()?;
        if as_root {
            run(Command::new("chown").arg(format!("{SUPERUSER}:")).arg(&dir))?;
        }
        // The watchdog first: from here on, the folder goes whatever happens to this process.
        // In a process group of its own: a Ctrl-C or a kill of the test's group does not stop it
        // before it has cleaned up.
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "watchdog"])
            .arg(&dir)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the watchdog shell: {e}"))?;
        let server = PgServer {
            dir: dir.clone(),
            _watchdog: watchdog,
        };
        let data = dir.join("data");
        run(pg(as_root, &bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale"])
            .arg("--no-sync"))?;
        let settings = format!(
            "\n# Turnstile's throwaway test server\nlisten_addresses = ''\n\
             unix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nmax_connections = 200\nshared_buffers = 16MB\n",
            dir.display()
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)
            .map_err(|e| format!("reading {}: {e}", conf.display()))?;
        text.push_str(&settings);
        std::fs::write(&conf, text).map_err(|e| format!("writing {}: {e}", conf.display()))?;
        run(pg(as_root, &bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-w", "-t", "60", "start"]))
        .map_err(|e| format!("{e}\nthe server's log: {}", server.log()))?;
        Ok(server)
    }

    /// The folder holding the server's socket (libpq's `host`).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// A `postgres://` URL for `database` on this server, over its Unix socket.
    pub fn url(&self, database: &str) -> String {
        let host = self.dir.to_string_lossy().replace('/', "%2F");
        format!("postgres://{SUPERUSER}@{host}/{database}")
    }

    /// Creates a new, empty database and returns its URL.
    pub async fn fresh_database(&self) -> String {
        let name = format!("t{}", uuid::Uuid::new_v4().simple());
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connecting to the test server: {e}\n{}", self.log()));
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        drop(client);
        let _ = connection.await;
        self.url(&name)
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

/// Waits for stdin to close (the `PgServer` was dropped, or this process ended), then stops the
/// server at once (no checkpoint: the data is thrown away) and removes the folder. Hang-ups and
/// interrupts are ignored so that it always gets that far.
const WATCHDOG: &str = r#"trap '' INT TERM HUP
cat >/dev/null
pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
fi
rm -rf "$1""#;

/// The newest PostgreSQL's binaries: `$TURNSTILE_PG_BIN`, else the highest version under
/// `/usr/lib/postgresql` (Debian's layout).
fn bin_dir() -> Result<PathBuf, String> {
    match std::env::var_os("TURNSTILE_PG_BIN") {
        Some(dir) => Ok(dir.into()),
        None => newest_bin(Path::new("/usr/lib/postgresql")),
    }
}

/// `<root>/<highest version>/bin`, of the versions there that have a `bin/postgres`; the error
/// says what to install.
fn newest_bin(root: &Path) -> Result<PathBuf, String> {
    let missing = || {
        format!(
            "PostgreSQL's server binaries (initdb, postgres) are not installed: no \
             {}/<version>/bin/postgres. Install them with `apt-get install postgresql` \
             (scripts/setup.sh --test does), or point TURNSTILE_PG_BIN at their folder.",
            root.display()
        )
    };
    let newest = std::fs::read_dir(root)
        .map_err(|_| missing())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    newest.map(|(_, bin)| bin).ok_or_else(missing)
}

/// Whether this process runs as root (then PostgreSQL runs as `postgres`).
fn is_root() -> Result<bool, String> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("running id -u: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `bin/<tool>`, run as the `postgres` user when this process is root.
fn pg(as_root: bool, bin: &Path, tool: &str) -> Command {
    let mut cmd = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", SUPERUSER, "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    // The tools complain when they cannot read the folder they start in.
    cmd.current_dir("/");
    cmd
}

/// Runs `cmd` to the end; its output is the error when it fails.
fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{shown}: {e} (as root, runuser and the postgres user are needed)"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{shown} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_installed_version_is_used_and_none_says_what_to_install() {
        let root = std::env::temp_dir().join(format!(
            "turnstile-pg-bins-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let why = newest_bin(&root).unwrap_err();
        assert!(why.contains("apt-get install postgresql"), "{why}");
        for (version, complete) in [("9", true), ("15", true), ("16", false), ("x", true)] {
            let bin = root.join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            if complete {
                std::fs::write(bin.join("postgres"), "").unwrap();
            }
        }
        // 16 has no server binary, x is no version: 15 beats 9 (by number, not by name).
        assert_eq!(newest_bin(&root).unwrap(), root.join("15").join("bin"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
