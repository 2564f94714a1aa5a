//! The HTTP layer: every axum handler, middleware and extractor, the router that joins them,
//! and the server's run loop. It is the only part of the server that knows the application state
//! ([`AppState`]); everything below it (the scheduler crate, the executor and its handlers, the
//! relay, the store, the limits) knows nothing of HTTP.
//!
//! [`run`] serves on a listener until a shutdown future resolves; [`app`] builds the router, so
//! tests can serve it on port 0.
//!
//! Concurrency: handlers hold no state of their own beyond a request; see each module.

pub mod admin;
pub mod chat_stream;
pub mod client_addr;
pub mod conversations;
pub mod embed;
pub mod faults;
pub mod limits;
pub mod metrics;
pub mod openai;
pub mod party;
pub mod routes;
pub mod session;
mod state;
pub mod views;
pub mod ws;

pub use state::{state, AppState};

use crate::config::Config;
use axum::routing::{get, post};
use axum::Router;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

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
            limits::layer,
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

/// Runs a device worker of a deployment (`turnstile worker --queue ...`): the device, the model
/// and the in-process scheduler as in one process, fed by jobs claimed from the shared queue
/// instead of by clients; no pages are served. Stops claiming when `shutdown` resolves, lets its
/// running jobs finish (up to the drain timeout), and returns.
pub async fn run_worker(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let url = config
        .queue_url()
        .ok_or_else(|| std::io::Error::other("a worker needs --queue (the deployment's Redis)"))?;
    let stop = CancellationToken::new();
    let queue = state::shared_queue(&config, &url).await?;
    let capacity = crate::cluster::worker::Capacity {
        max_wait: config.max_wait,
        // No prefetch across machines: a claimed job starts at once, so every position the
        // instances announce counts only jobs still in the shared line (exact), at the price of
        // one round trip to Redis of device idle time between jobs.
        device: config.max_concurrent.max(1),
        lane: config.chat.chat_lanes.max(1),
    };
    let addr = config.addr;
    let drain_timeout = config.drain_timeout;
    let app = state(config, addr, stop.clone()).await?;
    let crate::queue::JobQueue::Local(scheduler) = app.scheduler.clone() else {
        return Err(std::io::Error::other("a worker's scheduler is its own"));
    };
    let claiming = CancellationToken::new();
    let worker = tokio::spawn(crate::cluster::worker::run(
        queue,
        scheduler.clone(),
        capacity,
        claiming.clone(),
    ));
    shutdown.await;
    tracing::info!("worker shutting down: no new claims; the running jobs may finish");
    claiming.cancel();
    match tokio::time::timeout(drain_timeout, worker).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the worker stopped with an error"),
        Ok(_) => {}
        Err(_) => scheduler.cancel_running(),
    }
    stop.cancel();
    Ok(())
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
