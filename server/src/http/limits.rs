//! The middleware that counts each HTTP request against its session's and address's rates
//! (`crate::limits` keeps them).
//!
//! Concurrency: the limiters are the registry's (lock-free GCRA cells).

use crate::error::AppError;
use crate::limits::rate_limited;

/// The HTTP middleware: counts every request except the site's static files.
pub async fn layer(
    axum::extract::State(state): axum::extract::State<crate::http::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    let static_file = path.starts_with("/pkg/") || path == "/favicon.ico";
    if !static_file {
        let ip = crate::client_addr::ClientAddr::of(req.extensions()).ip;
        let session = req
            .extensions()
            .get::<crate::ids::SessionId>()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        if let Err(wait) = state.limits.check_request(ip, &session) {
            state.metrics.on_rejected("rate_limited");
            return AppError::from(rate_limited(wait)).into_response();
        }
    }
    next.run(req).await
}
