//! Turnstile's server: shares one compute device fairly among many users. It serves the Leptos
//! pages, the WebSocket protocol and the JSON API, and runs every job through one scheduler that
//! owns the device.
//!
//! [`run`] serves on a listener until a shutdown future resolves; [`app`] builds the router, so
//! tests can serve it on port 0.

#![recursion_limit = "256"]

pub mod admin;
pub mod cache;
pub mod calc;
pub mod chat;
pub mod chat_stream;
pub mod client_addr;
pub mod config;
pub mod conversations;
pub mod device;
pub mod embed;
pub mod error;
pub mod faults;
pub mod job;
pub mod limits;
pub mod messages;
pub mod metrics;
pub mod model;
pub mod openai;
pub mod party;
pub mod process;
pub mod relay;
pub mod routes;
pub mod session;
pub mod store;
pub mod views;
pub mod ws;

use crate::calc::{CalcLimits, Calculator};
use crate::chat::ChatEngine;
use crate::config::Config;
use crate::device::{CpuBackend, DeviceHost};
use crate::job::{JobExecutor, Scheduler};
use crate::relay::Relay;
use turnstile_scheduler::SchedulerConfig;
use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// What every handler can reach. Cheap to clone; nothing in it is mutable except through the
/// scheduler's channel and the connection counter.
#[derive(Clone)]
pub struct AppState {
    /// Where the site's files are and what the hydration scripts are called.
    pub leptos_options: LeptosOptions,
    /// The one scheduler.
    pub scheduler: Scheduler,
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
        calc::validate(job, &self.calc_limits).ok()?;
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
    let db = config.db_path();
    let store = store::Store::open(&db).await.map_err(|e| {
        std::io::Error::other(format!("cannot open the database {}: {e}", db.display()))
    })?;
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
    let scheduler = Scheduler::spawn(
        SchedulerConfig {
            max_concurrent: config.max_concurrent.max(1),
            lanes: config.chat.chat_lanes.max(1),
            max_waiting: config.max_waiting,
            max_wait: config.max_wait,
            max_run: config.max_run,
            prefetch: config.prefetch,
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
    let relay = Relay::new(
        config.chat.resume_window,
        config.chat.resume_max_events,
        config.chat.resume_max_bytes,
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

/// Test-mode routes: fault injection. Empty otherwise.
fn test_routes(state: &AppState) -> Router<AppState> {
    if state.config.test_mode {
        Router::new().route("/test/faults", post(faults::arm))
    } else {
        Router::new()
    }
}

/// The router: API, WebSocket, pages and static files.
pub fn app(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let options = state.leptos_options.clone();
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/api/execute", post(routes::execute))
        .route("/api/device/queue", get(routes::device_queue))
        .route("/api/stats", get(routes::stats))
        .route("/queue/status", get(routes::queue_status))
        .route("/health", get(routes::health))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/chat/completions", post(openai::completions))
        .route("/v1/models", get(openai::models))
        .route("/chat/stream", post(chat_stream::chat_stream))
        .route("/api/conversations", get(conversations::list))
        .route(
            "/api/conversations/{id}",
            get(conversations::get).delete(conversations::delete),
        )
        .route("/api/session", post(conversations::session_token))
        .route("/widget.js", get(embed::widget_js))
        .merge(test_routes(&state))
        .leptos_routes(&state, routes, move || app::shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        // Inside the session layer (which runs first and names the session).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::http_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::session_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            embed::frame_layer,
        ))
        // Outermost of the state's layers: every one above reads the client it names.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_addr::layer,
        ))
        .with_state(state)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let rid = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %rid)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Serves Turnstile on `listener` until `shutdown` resolves, then shuts down gracefully: no new
/// job is accepted (`shutting_down`), waiting jobs are told to retry, running jobs get up to
/// `--drain-timeout` to finish (then they are cancelled), WebSocket connections are closed as
/// "going away", open requests finish, and the database is flushed and closed. Returns `Ok`
/// after a clean shutdown.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let drain_timeout = config.drain_timeout;
    let state = state(config, addr, stop.clone()).await?;
    tracing::info!(%addr, "Turnstile listening on http://{addr}");
    let (scheduler, store, closing) = (
        state.scheduler.clone(),
        state.store.clone(),
        state.closing.clone(),
    );
    let signal = {
        let stop = stop.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: no new jobs; the running ones may finish");
            stop.cancel();
            if tokio::time::timeout(drain_timeout, scheduler.idle())
                .await
                .is_err()
            {
                tracing::warn!("drain timeout: cancelling the running jobs");
                scheduler.cancel_running();
                let _ = tokio::time::timeout(Duration::from_secs(5), scheduler.idle()).await;
            }
            closing.cancel();
        }
    };
    // No Nagle delay: protocol messages are small and go out one at a time; waiting for an ACK
    // before sending the next one would add tens of milliseconds to every job.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await?;
    if let Err(e) = store.close().await {
        tracing::error!(error = %e, "could not flush the database");
        return Err(std::io::Error::other(e.to_string()));
    }
    tracing::info!("stopped");
    Ok(())
}
