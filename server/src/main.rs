//! The `turnstile` binary: reads the configuration, starts logging, and serves until Ctrl-C or
//! SIGTERM.

use turnstile_server::config::Config;

fn main() -> std::io::Result<()> {
    let config = Config::from_env_and_args();
    // The async threads (sockets, scheduler, handlers) and the device's compute threads share
    // the machine's cores: by default each gets its own (see `--async-threads`).
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.resolved_async_threads())
        .on_thread_start(|| {
            // Never preempt a device thread on wake-up (see `batch_scheduling`).
            turnstile_server::process::batch_scheduling();
        })
        .enable_all()
        .build()?
        .block_on(serve(config))
}

async fn serve(config: Config) -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,turnstile_server=info,tower_http=warn".into()),
        )
        .init();
    // Every waiting client holds a socket: take the open-files limit the system allows.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }
    if config.role == turnstile_server::config::Role::Worker {
        return turnstile_server::run_worker(config, shutdown_signal()).await;
    }
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    turnstile_server::run(listener, config, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
