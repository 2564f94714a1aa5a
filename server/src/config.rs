//! The server's configuration: every limit and interval, with the embedded defaults `make run`
//! uses. Read once at start-up from flags or `TURNSTILE_*` environment variables (clap), then
//! shared read-only. No config file is needed.

use clap::builder::TypedValueParser;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Turnstile: one scarce compute device, shared fairly.
#[derive(Clone, Debug, Parser)]
#[command(name = "turnstile", version, about)]
pub struct Config {
    /// What this process is: `serve` (the web app; with `--queue`, a web instance of a
    /// deployment that owns no device) or `worker` (a device worker of a deployment: it claims
    /// jobs from `--queue` and runs them on its device; it serves no pages).
    #[arg(value_enum, default_value_t = Role::Serve)]
    pub role: Role,

    /// A deployment's shared queue in Redis (`redis://host:port/db`, `redis+unix:///path`, or a
    /// Unix socket's path). Without it everything runs in this process (the default).
    #[arg(long, env = "TURNSTILE_QUEUE")]
    pub queue: Option<String>,

    /// Prefix of the shared queue's keys (deployments sharing one Redis need their own).
    #[arg(long, env = "TURNSTILE_QUEUE_PREFIX", default_value = "turnstile")]
    pub queue_prefix: String,

    /// How long a worker's claim on a running job lasts without a renewal; a job whose worker
    /// went silent this long goes back to its place once (or fails, if it had streamed output).
    #[arg(long, env = "TURNSTILE_LEASE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub lease: Duration,

    /// Address to listen on. (cargo-leptos sets LEPTOS_SITE_ADDR; it is honoured too.)
    #[arg(long, env = "TURNSTILE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Folder holding the built site (`pkg/turnstile.js`, `.wasm`, `.css`).
    #[arg(long, env = "TURNSTILE_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Jobs that may hold the device at once.
    #[arg(long, env = "TURNSTILE_MAX_CONCURRENT", default_value_t = 1)]
    pub max_concurrent: usize,

    /// Jobs that may wait at once; beyond it submissions get `queue_full`.
    #[arg(long, env = "TURNSTILE_MAX_WAITING", default_value_t = 1000)]
    pub max_waiting: usize,

    /// Longest a job may wait for the device before it fails with `timeout` (e.g. "120s").
    #[arg(long, env = "TURNSTILE_MAX_WAIT", default_value = "120s", value_parser = humantime::parse_duration)]
    pub max_wait: Duration,

    /// Longest a job may hold the device before it fails with `timeout`.
    #[arg(long, env = "TURNSTILE_MAX_RUN", default_value = "30s", value_parser = humantime::parse_duration)]
    pub max_run: Duration,

    /// Jobs handed to the device ahead of their turn (beyond `max-concurrent`), so the next job
    /// starts the moment the current one ends; 0 makes the device wait for the scheduler.
    #[arg(long, env = "TURNSTILE_PREFETCH", default_value_t = 1)]
    pub prefetch: usize,

    /// Beyond `--prefetch`, more jobs are handed to the device ahead of their turn while the
    /// expected device time of everything handed to it stays within this (at most 64 ahead):
    /// many tiny jobs queue on the device without a round trip through the scheduler between
    /// them, while a long job lets no more than `--prefetch` go ahead. 0 turns it off.
    #[arg(long, env = "TURNSTILE_PREFETCH_TIME", default_value = "1ms", value_parser = humantime::parse_duration)]
    pub prefetch_time: Duration,

    /// The order waiting jobs run in: `fair` (start-time fair queuing across sessions) or
    /// `fifo` (arrival order).
    #[arg(
        long,
        env = "TURNSTILE_QUEUE_ORDER",
        default_value = "fair",
        value_parser = clap::builder::PossibleValuesParser::new(["fair", "fifo"])
            .map(|s| s.parse::<turnstile_scheduler::QueueOrder>().expect("a possible value"))
    )]
    pub queue_order: turnstile_scheduler::QueueOrder,

    /// Most jobs one session (or API key, or anonymous address) may have waiting at once;
    /// beyond it, `rate_limited` (HTTP 429 with Retry-After). 0 = no cap.
    #[arg(long, env = "TURNSTILE_MAX_WAITING_PER_SESSION", default_value_t = 32)]
    pub max_waiting_per_session: usize,

    /// API keys and their weights in the fair queue, `KEY=WEIGHT` (comma-separated), e.g.
    /// `paid-123=4`. A request carrying a key (`Authorization: Bearer KEY`, `X-API-Key: KEY`, or
    /// `?api_key=KEY` on the WebSocket) shares the device as that key, with that weight.
    #[arg(long = "api-key", env = "TURNSTILE_API_KEYS", value_delimiter = ',', value_parser = parse_api_key)]
    pub api_keys: Vec<ApiKey>,

    /// Threads candle's kernels may use (0 = one less than the machine's cores, at least one:
    /// a core stays free for the server itself).
    #[arg(long, env = "TURNSTILE_DEVICE_THREADS", default_value_t = 0)]
    pub device_threads: usize,

    /// Threads for the server's async work: sockets, the scheduler, the handlers (0 = the
    /// machine's cores less the device's compute threads, at least one). More threads than free
    /// cores only add wake-ups between them.
    #[arg(long, env = "TURNSTILE_ASYNC_THREADS", default_value_t = 0)]
    pub async_threads: usize,

    /// Shortest interval between two position messages for one job.
    #[arg(long, env = "TURNSTILE_POSITION_INTERVAL", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub position_interval: Duration,

    /// How long the device stays open after its last job.
    #[arg(long, env = "TURNSTILE_DEVICE_KEEP_ALIVE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub device_keep_alive: Duration,

    /// Most elements in any one tensor (operand or result).
    #[arg(long, env = "TURNSTILE_MAX_ELEMENTS", default_value_t = 1 << 20)]
    pub max_elements: usize,

    /// Most floating-point operations one calculator op may cost (matmul counts 2·m·k·n).
    #[arg(long, env = "TURNSTILE_MAX_OP_COST", default_value_t = 1 << 32)]
    pub max_op_cost: u64,

    /// Most results the calculator's cache keeps (0 turns the cache off).
    #[arg(long, env = "TURNSTILE_CACHE_ENTRIES", default_value_t = 10_000)]
    pub cache_entries: u64,

    /// Most bytes the calculator's cache keeps (keys and results).
    #[arg(long, env = "TURNSTILE_CACHE_BYTES", default_value_t = 64 << 20)]
    pub cache_bytes: u64,

    /// How long a cached result is kept.
    #[arg(long, env = "TURNSTILE_CACHE_TTL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub cache_ttl: Duration,

    /// Largest WebSocket message or HTTP body accepted, in bytes; larger ones get `bad_message`.
    #[arg(long, env = "TURNSTILE_MAX_MESSAGE_BYTES", default_value_t = 16 << 20)]
    pub max_message_bytes: usize,

    /// Enables test-only behaviour: the `sleep` op, for deterministic slow jobs. Never in production.
    #[arg(long, env = "TURNSTILE_TEST_MODE", default_value_t = false)]
    pub test_mode: bool,

    /// Folder for the database and the embedded model (`models/`).
    #[arg(long, env = "TURNSTILE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// The database of sessions and conversations: a file path (SQLite, embedded; the default
    /// is `<data-dir>/turnstile.sqlite3`), or a `postgres://user[:password]@host[:port]/database`
    /// URL (PostgreSQL, for several stateless web instances sharing one store; `postgresql://`
    /// too, with libpq's query options such as `?host=/run/postgresql` for a Unix socket). The
    /// password is never printed.
    #[arg(long, env = "TURNSTILE_DB", hide_env_values = true, value_parser = crate::store::DbLocationParser)]
    pub db: Option<crate::store::DbLocation>,

    /// How long a conversation is kept after its last change (and the session cookie lives).
    #[arg(long, env = "TURNSTILE_RETENTION", default_value = "30days", value_parser = humantime::parse_duration)]
    pub retention: Duration,

    /// Most conversations one session may keep; a new one beyond it gets `invalid_input`
    /// (delete some first). 0 = no cap.
    #[arg(
        long,
        env = "TURNSTILE_MAX_CONVERSATIONS_PER_SESSION",
        default_value_t = 200
    )]
    pub max_conversations_per_session: u64,

    /// Mark the session cookie `Secure` (set it when serving over TLS, directly or behind a proxy).
    #[arg(long, env = "TURNSTILE_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// Reverse proxies whose forwarding headers are believed: addresses or CIDR ranges,
    /// comma-separated (e.g. `127.0.0.1,10.0.0.0/8`). A request from one of them is treated as
    /// coming from the right-most address in its forwarding header that is not itself a trusted
    /// proxy, over the scheme the proxy reports (https gives the cookie `Secure` and HSTS). From
    /// any other peer those headers are ignored. Default: none (the TCP peer is the client).
    #[arg(long, env = "TURNSTILE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::client_addr::parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The header the trusted proxies write: `x-forwarded-for` (with `X-Forwarded-Proto`) or
    /// `forwarded` (RFC 7239). Only this one is read.
    #[arg(
        long,
        env = "TURNSTILE_PROXY_HEADER",
        value_enum,
        default_value = "x-forwarded-for"
    )]
    pub proxy_header: crate::client_addr::ProxyHeader,

    /// Who may frame the embeddable widgets (`/embed/...`): `*` (anyone, the default) or a
    /// comma-separated list of origins such as `https://example.com`. Sent as
    /// `Content-Security-Policy: frame-ancestors`; every other page refuses framing.
    #[arg(
        long,
        env = "TURNSTILE_FRAME_ANCESTORS",
        default_value = "*",
        value_delimiter = ','
    )]
    pub frame_ancestors: Vec<String>,

    /// Origins besides the server's own whose pages may open the WebSocket (comma-separated).
    /// Browsers always send `Origin`; upgrades from any other origin get 403.
    #[arg(long, env = "TURNSTILE_WS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub ws_allowed_origins: Vec<String>,

    /// Requests per second one address may make (HTTP requests and WebSocket messages; bursts
    /// of twice that); beyond it, `rate_limited`. 0 = no limit.
    #[arg(long, env = "TURNSTILE_RATE_PER_IP", default_value_t = 200)]
    pub rate_per_ip: u32,

    /// Requests per second one session may make (bursts of twice that). 0 = no limit.
    #[arg(long, env = "TURNSTILE_RATE_PER_SESSION", default_value_t = 50)]
    pub rate_per_session: u32,

    /// Messages per second one WebSocket connection may send (bursts of twice that). 0 = no
    /// limit.
    #[arg(long, env = "TURNSTILE_RATE_PER_CONNECTION", default_value_t = 50)]
    pub rate_per_connection: u32,

    /// Open WebSocket connections in all; beyond it, upgrades get 429. 0 = no cap.
    #[arg(long, env = "TURNSTILE_MAX_CONNECTIONS", default_value_t = 16_384)]
    pub max_connections: usize,

    /// Open WebSocket connections per address. 0 = no cap.
    #[arg(long, env = "TURNSTILE_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// How long one write to a WebSocket may take: a client that stops reading for longer is
    /// disconnected (its chat jobs go on, for a resume).
    #[arg(long, env = "TURNSTILE_WS_WRITE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub ws_write_timeout: Duration,

    /// A bearer token for the admin views: with it set, `/queue/status`'s job-level detail (and
    /// `/metrics` with `--protect-metrics`) need `Authorization: Bearer <token>`.
    #[arg(long, env = "TURNSTILE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// `/metrics` needs the admin token too.
    #[arg(
        long,
        env = "TURNSTILE_PROTECT_METRICS",
        default_value_t = false,
        requires = "admin_token"
    )]
    pub protect_metrics: bool,

    /// On SIGTERM or Ctrl-C: how long running jobs may take to finish before they are cancelled
    /// (waiting jobs are told to retry at once; no new job is accepted).
    #[arg(long, env = "TURNSTILE_DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// The chat model and its limits.
    #[command(flatten)]
    pub chat: crate::chat::ChatConfig,
}

/// A secret from the command line or the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// An API key and the weight it gives in the fair queue.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The secret.
    pub key: String,
    /// Its weight (at least 1).
    pub weight: u32,
}

impl std::fmt::Debug for ApiKey {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey(***, weight {})", self.weight)
    }
}

fn parse_api_key(s: &str) -> Result<ApiKey, String> {
    let (key, weight) = s.split_once('=').unwrap_or((s, "1"));
    let weight: u32 = weight
        .trim()
        .parse()
        .map_err(|_| format!("the weight in {key}=... must be a whole number"))?;
    if key.trim().is_empty() || weight == 0 {
        return Err("an API key needs a name and a weight of at least 1 (KEY=WEIGHT)".into());
    }
    Ok(ApiKey {
        key: key.trim().to_owned(),
        weight,
    })
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["turnstile"])
    }
}

impl Config {
    /// The async threads this configuration asks for, resolved against the machine.
    pub fn resolved_async_threads(&self) -> usize {
        if self.async_threads > 0 {
            return self.async_threads;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let compute = crate::device::WorkerConfig {
            slots: self.max_concurrent.max(1),
            compute_threads: self.device_threads,
        }
        .resolved_compute_threads();
        cores.saturating_sub(compute).max(1)
    }

    /// The database: `--db`, or the SQLite file in the data folder.
    pub fn db_location(&self) -> crate::store::DbLocation {
        self.db.clone().unwrap_or_else(|| {
            crate::store::DbLocation::Sqlite(self.data_dir.join("turnstile.sqlite3"))
        })
    }

    /// Flags and `TURNSTILE_*` variables; where neither sets the address or site root, the
    /// `LEPTOS_SITE_ADDR` / `LEPTOS_SITE_ROOT` that `cargo leptos watch` exports are used.
    pub fn from_env_and_args() -> Self {
        use clap::parser::ValueSource;
        use clap::{CommandFactory, FromArgMatches};
        let matches = Config::command().get_matches();
        let mut config = Config::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let defaulted = |id| matches.value_source(id) == Some(ValueSource::DefaultValue);
        if defaulted("addr") {
            if let Some(addr) = std::env::var("LEPTOS_SITE_ADDR")
                .ok()
                .and_then(|a| a.parse().ok())
            {
                config.addr = addr;
            }
        }
        if defaulted("site_root") {
            if let Some(root) = std::env::var_os("LEPTOS_SITE_ROOT") {
                config.site_root = root.into();
            }
        }
        config
    }
}

/// What a process of a deployment does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The web app (and, without `--queue`, the device too).
    Serve,
    /// A device worker of a deployment sharing `--queue`.
    Worker,
}

impl Config {
    /// The shared queue's address as the Redis client takes it (a bare path is a Unix socket).
    pub fn queue_url(&self) -> Option<String> {
        let q = self.queue.as_deref()?;
        Some(if q.starts_with('/') {
            format!("redis+unix://{q}")
        } else {
            q.to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.max_concurrent, 1);
        assert_eq!(c.max_waiting, 1000);
        assert_eq!(c.max_wait, Duration::from_secs(120));
        assert_eq!(c.position_interval, Duration::from_millis(100));
        assert!(!c.test_mode);
        assert_eq!(c.queue_order, turnstile_scheduler::QueueOrder::Fair);
        assert_eq!(c.max_waiting_per_session, 32);
        assert_eq!(c.prefetch, 1);
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(
            c.proxy_header,
            crate::client_addr::ProxyHeader::XForwardedFor
        );
    }

    #[test]
    fn trusted_proxies_are_a_list_of_addresses_and_ranges() {
        let c = Config::parse_from([
            "turnstile",
            "--trusted-proxies",
            "127.0.0.1,10.0.0.0/8",
            "--trusted-proxies",
            "::1",
            "--proxy-header",
            "forwarded",
        ]);
        let nets: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        assert_eq!(c.proxy_header, crate::client_addr::ProxyHeader::Forwarded);
        assert!(Config::try_parse_from(["turnstile", "--trusted-proxies", "proxy.local"]).is_err());
    }

    #[test]
    fn api_keys_parse_with_weights_and_never_print() {
        let c = Config::parse_from(["turnstile", "--api-key", "paid=4,free", "--api-key", "x=2"]);
        let weights: Vec<u32> = c.api_keys.iter().map(|k| k.weight).collect();
        assert_eq!(weights, [4, 1, 2]);
        assert!(!format!("{:?}", c.api_keys).contains("paid"));
        assert!(Config::try_parse_from(["turnstile", "--api-key", "k=0"]).is_err());
        assert!(Config::try_parse_from(["turnstile", "--api-key", "k=lots"]).is_err());
    }

    #[test]
    fn db_is_a_path_or_a_postgres_url_and_a_bad_url_stops_the_start() {
        let c = Config::parse_from(["turnstile", "--db", "postgres://u:s3cret@h/d"]);
        assert!(matches!(
            c.db_location(),
            crate::store::DbLocation::Postgres(_)
        ));
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = Config::parse_from(["turnstile", "--data-dir", "/srv/t"]);
        assert_eq!(
            c.db_location(),
            crate::store::DbLocation::Sqlite("/srv/t/turnstile.sqlite3".into())
        );
        let e = Config::try_parse_from(["turnstile", "--db", "postgres://u:s3cret@h:x/d"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid --db") && !e.contains("s3cret"), "{e}");
    }
}
