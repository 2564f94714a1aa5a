//! Browser sessions: a random 128-bit id in an HttpOnly, SameSite cookie, with a fallback for
//! clients that cannot keep the cookie (an iframe on another site with third-party cookies
//! blocked): the same token in the `x-turnstile-session` header or the `session` query
//! parameter. The middleware resolves the session for every request (cookie first), creates one
//! when there is none, and sets the cookie whenever the request did not carry it.
//!
//! The middleware does not ask the database about sessions it did not create: a well-formed id
//! it has not seen is used as is, and its row is made when it first creates a conversation
//! ([`crate::store::Store::create_conversation`]). Ids are unguessable (128 random bits), and
//! every store query is scoped to the id, so an invented id reaches only an empty session.
//!
//! Concurrency: stateless. A new session is not recorded at all until it creates a conversation
//! (and, as always, only the store's thread touches the connection).

use crate::http::AppState;
use crate::ids::SessionId;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, SameSite};

/// The session cookie's name.
pub const COOKIE: &str = "turnstile_session";
/// The header a cookie-less client sends its token in.
pub const HEADER: &str = "x-turnstile-session";

/// The session a request names: cookie, then header, then query parameter.
fn from_request(req: &Request) -> (Option<SessionId>, bool) {
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .and_then(|c| SessionId::parse(c.value()));
    if cookie.is_some() {
        return (cookie, true);
    }
    let header = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(SessionId::parse);
    if header.is_some() {
        return (header, false);
    }
    let query = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "session")
            .and_then(|(_, v)| SessionId::parse(v))
    });
    (query, false)
}

/// The `Set-Cookie` value for `id`.
pub fn cookie(id: &SessionId, max_age: std::time::Duration, secure: bool) -> String {
    let c = Cookie::build((COOKIE, id.as_str().to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
        .build();
    format!("{c}; Max-Age={}", max_age.as_secs())
}

/// Resolves (or creates) the request's session, puts it in the request's extensions, and sets the
/// cookie on the response when the request did not carry it.
pub async fn session_layer(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let (found, from_cookie) = from_request(&req);
    let secure =
        crate::client_addr::ClientAddr::of(req.extensions()).secure(state.config.secure_cookies);
    // A new session costs nothing until it stores something: its row is made with its first
    // conversation, so anonymous API traffic never writes to the database.
    let id = match found {
        Some(id) => id,
        None => {
            req.extensions_mut().insert(crate::http::party::NewSession);
            SessionId::new()
        }
    };
    req.extensions_mut().insert(id.clone());
    let mut response = next.run(req).await;
    if !from_cookie {
        if let Ok(v) = cookie(&id, state.config.retention, secure).parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_and_same_site() {
        let id = SessionId::parse(&"b".repeat(32)).unwrap();
        let c = cookie(&id, std::time::Duration::from_secs(60), false);
        assert!(c.starts_with(&format!("{COOKIE}={}", "b".repeat(32))));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"));
        assert!(c.contains("Max-Age=60") && !c.contains("Secure"));
        assert!(cookie(&id, std::time::Duration::from_secs(60), true).contains("Secure"));
    }

    #[test]
    fn the_cookie_wins_then_the_header_then_the_query() {
        let (a, b) = ("a".repeat(32), "b".repeat(32));
        let req = Request::builder()
            .uri(format!("/ws?session={b}"))
            .header(header::COOKIE, format!("x=1; {COOKIE}={a}"))
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(from_request(&req), (SessionId::parse(&a), true));
        let req = Request::builder()
            .uri(format!("/ws?x=1&session={b}"))
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(from_request(&req), (SessionId::parse(&b), false));
        let req = Request::builder()
            .uri("/ws")
            .header(HEADER, a.as_str())
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(from_request(&req), (SessionId::parse(&a), false));
        // A malformed cookie falls through to the header, then the query; none is a new session.
        let req = Request::builder()
            .uri(format!("/api/conversations?session={b}"))
            .header(header::COOKIE, format!("{COOKIE}=nope"))
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(from_request(&req), (SessionId::parse(&b), false));
        let req = Request::builder()
            .uri("/?session=ZZ")
            .header(header::COOKIE, format!("{COOKIE}={}", "A".repeat(32)))
            .header(HEADER, "short")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(from_request(&req), (None, false));
    }
}
