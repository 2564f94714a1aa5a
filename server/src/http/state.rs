//! The application state every handler reaches, and how it is built at start: the device, the
//! calculator and chat handlers, the scheduler task, the relay, the store, the limits, and the
//! periodic chores. This folder (`http`) is the only place that knows it.
//!
//! Concurrency: [`AppState`] is cheap to clone; nothing in it is mutable except through the
//! scheduler's channel, the components' own small locks, and the connection counters.

use crate::cache;
use crate::calc::{CalcLimits, Calculator};
use crate::chat::ChatEngine;
use crate::config::Config;
use crate::device;
use crate::device::{CpuBackend, DeviceHost};
use crate::faults;
use crate::job;
use crate::job::JobExecutor;
use crate::limits;
use crate::metrics;
use crate::queue::{JobQueue, LocalScheduler};
use crate::relay::Relay;
use crate::store;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use turnstile_scheduler::SchedulerConfig;

/// What every handler can reach. Cheap to clone; nothing in it is mutable except through the
/// scheduler's channel and the connection counter.
#[derive(Clone)]
pub struct AppState {
    /// Where the site's files are and what the hydration scripts are called.
    pub leptos_options: LeptosOptions,
    /// Where jobs go: the one in-process scheduler, or the shared queue of a deployment.
    pub scheduler: JobQueue,
    /// The device, for health and stats.
    pub device: Arc<DeviceHost>,
    /// Sessions, conversations and messages.
    pub store: store::Store,
    /// The chat model (for validation, stats and `/v1/models`).
    pub chat: Arc<ChatEngine>,
    /// The event logs of WebSocket jobs (follow, resume).
    pub relay: Arc<Relay>,
    /// Limits and settings.
    pub config: Arc<Config>,
    /// When the server started.
    pub started: Instant,
    /// The calculator's result cache.
    pub cache: Arc<cache::ResultCache>,
    /// What `/metrics` exposes.
    pub metrics: Arc<metrics::Metrics>,
    /// Request rates and connection caps.
    pub limits: Arc<limits::Limits>,
    /// Test-only faults (armed only through `/test/faults`, which exists only in test mode).
    pub faults: Arc<faults::Faults>,
    /// Fires at the end of a shutdown's drain: WebSocket connections close ("going away").
    pub closing: CancellationToken,
    /// The calculator's caps (cache hits are checked against them too).
    pub calc_limits: CalcLimits,
    /// Open WebSocket connections.
    pub connections: Arc<AtomicUsize>,
    /// WebSocket upgrades refused for their origin, since start.
    pub ws_refused: Arc<std::sync::atomic::AtomicU64>,
}

impl AppState {
    /// The cached answer to a calculator job, if there is one. The job is checked first, so an
    /// invalid job is never a hit (nor a miss): it goes on to be refused as usual.
    pub fn cached(&self, job: &app::protocol::CalcJob) -> Option<Arc<cache::Cached>> {
        crate::calc::validate(job, &self.calc_limits).ok()?;
        self.cache.get(job)
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// Builds the state: the device (closed until the first job) and the scheduler task. Needs a
/// Tokio runtime. The scheduler stops when `shutdown` fires.
pub async fn state(
    config: Config,
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<AppState> {
    let faults = Arc::new(faults::Faults::default());
    let device = DeviceHost::with_workers(
        Box::new(faults::FaultyBackend {
            inner: backend(),
            faults: Arc::clone(&faults),
        }),
        config.device_keep_alive,
        device::WorkerConfig {
            slots: config.max_concurrent.max(1),
            compute_threads: config.device_threads,
        },
    );
    let cache = cache::ResultCache::new(config.cache_entries, config.cache_bytes, config.cache_ttl);
    let calc_limits = CalcLimits {
        max_elements: config.max_elements,
        max_op_cost: config.max_op_cost,
        test_mode: config.test_mode,
        max_sleep: config.max_run,
    };
    let calculator = Calculator {
        cache: Arc::clone(&cache),
        faults: Arc::clone(&faults),
        limits: calc_limits,
    };
    let db = config.db_location();
    let store = store::Store::connect(&db)
        .await
        .map_err(|e| std::io::Error::other(format!("cannot open the database {db}: {e}")))?;
    spawn_expiry(store.clone(), config.retention, shutdown.clone());
    let chat = ChatEngine::from_config(
        &config.chat,
        &config.data_dir,
        config.test_mode,
        Arc::clone(&device),
        Arc::clone(&faults),
    )
    .map_err(std::io::Error::other)?;
    let metrics = Arc::new(metrics::Metrics::new());
    let local = LocalScheduler::spawn(
        SchedulerConfig {
            max_concurrent: config.max_concurrent.max(1),
            lanes: config.chat.chat_lanes.max(1),
            max_waiting: config.max_waiting,
            max_wait: config.max_wait,
            max_run: config.max_run,
            prefetch: config.prefetch,
            prefetch_time: config.prefetch_time,
            position_interval: config.position_interval,
            initial_run_estimate: Duration::from_millis(50),
            order: config.queue_order,
            max_waiting_per_party: config.max_waiting_per_session,
        },
        Arc::clone(&device),
        Arc::new(JobExecutor {
            calc: Arc::new(calculator),
            chat: Arc::clone(&chat) as Arc<dyn job::Handler<job::ChatWork>>,
            on_answer: {
                let metrics = Arc::clone(&metrics);
                Arc::new(move |usage| metrics.on_answer(usage))
            },
        }),
        Arc::clone(&metrics) as Arc<dyn turnstile_scheduler::Observer>,
        shutdown.clone(),
    );
    let scheduler = match config.queue_url() {
        Some(url) if config.role == crate::config::Role::Serve => {
            let queue = shared_queue(&config, &url).await?;
            let front = crate::cluster::SharedFront::start(
                queue,
                Arc::clone(local.executor()),
                crate::cluster::FrontTimes {
                    position_interval: config.position_interval,
                    max_wait: config.max_wait,
                    max_run: config.max_run,
                    lease: config.lease,
                },
                shutdown.clone(),
            )
            .await
            .map_err(|e| std::io::Error::other(format!("the shared queue: {e}")))?;
            tracing::info!("web instance of a deployment: jobs go to the shared queue");
            JobQueue::Shared { front, idle: local }
        }
        _ => JobQueue::Local(local),
    };
    // A web instance of a deployment copies its chats' messages to the shared queue, so a
    // client can resume them through another instance.
    let wire = scheduler
        .shared()
        .map(|front| Arc::new(WireToQueue(front.clone())) as Arc<dyn crate::relay::WireCopy>);
    let relay = Relay::with_wire(
        config.chat.resume_window,
        config.chat.resume_max_events,
        config.chat.resume_max_bytes,
        wire,
    );
    let limits = limits::Limits::new(limits::LimitConfig {
        per_ip: config.rate_per_ip,
        per_session: config.rate_per_session,
        per_connection: config.rate_per_connection,
        max_connections: config.max_connections,
        max_connections_per_ip: config.max_connections_per_ip,
    });
    spawn_housekeeping(
        Arc::clone(&relay),
        Arc::clone(&chat),
        Arc::clone(&limits),
        shutdown,
    );
    let leptos_options = LeptosOptions::builder()
        .output_name("turnstile")
        .site_root(config.site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    Ok(AppState {
        leptos_options,
        scheduler,
        device,
        chat,
        relay,
        store,
        config: Arc::new(config),
        cache,
        metrics,
        limits,
        faults,
        closing: CancellationToken::new(),
        calc_limits,
        started: Instant::now(),
        connections: Arc::new(AtomicUsize::new(0)),
        ws_refused: Arc::new(std::sync::atomic::AtomicU64::new(0)),
    })
}

/// The relay's copies of chat messages, sent to the shared queue's front.
struct WireToQueue(crate::cluster::SharedFront);

impl crate::relay::WireCopy for WireToQueue {
    fn copy(
        &self,
        id: &app::protocol::JobId,
        seq: u64,
        q: u64,
        message: &Arc<str>,
        copied: crate::relay::Copied,
    ) -> bool {
        self.0
            .copy_wire(&id.0, seq, q, message, Box::new(move || copied.done()))
    }
}

/// Connects to the deployment's shared queue, with the settings every process must share.
pub async fn shared_queue(
    config: &Config,
    url: &str,
) -> std::io::Result<turnstile_cluster::SharedQueue> {
    let settings = turnstile_cluster::QueueConfig {
        prefix: config.queue_prefix.clone(),
        fifo: config.queue_order == turnstile_scheduler::QueueOrder::Fifo,
        max_waiting: config.max_waiting as u64,
        max_waiting_per_party: config.max_waiting_per_session as u64,
        lease: config.lease,
        resume_window: config.chat.resume_window,
    };
    turnstile_cluster::SharedQueue::connect(url, settings)
        .await
        .map_err(|e| std::io::Error::other(format!("cannot reach the shared queue: {e}")))
}

/// Once at start and then hourly: deletes conversations older than the retention.
fn spawn_expiry(store: store::Store, retention: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    let cutoff = std::time::SystemTime::now() - retention;
                    match store.expire(cutoff).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(conversations = n, "expired old conversations"),
                        Err(e) => tracing::warn!(error = %e, "expiring conversations failed"),
                    }
                }
            }
        }
    });
}

/// Once a second: cancels chat jobs whose owner did not come back within the resume window,
/// forgets old job logs, unloads an idle model after its keep-alive, and forgets idle rate-limit
/// state.
fn spawn_housekeeping(
    relay: Arc<Relay>,
    chat: Arc<ChatEngine>,
    limits: Arc<limits::Limits>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    let now = Instant::now();
                    relay.sweep(now);
                    chat.housekeeping(now);
                    limits.housekeeping();
                }
            }
        }
    });
}

#[cfg(not(feature = "cuda"))]
fn backend() -> Box<dyn device::Backend<device::Device>> {
    Box::new(CpuBackend)
}

#[cfg(feature = "cuda")]
fn backend() -> Box<dyn device::Backend<device::Device>> {
    Box::new(device::CudaBackend(0))
}
