//! Talking to the host page when Turnstile runs as a widget in someone else's page (an iframe
//! under `/embed/...`, inserted by `/widget.js`): the widget's height, so the loader can size the
//! frame, and its public events (`ready`, `queued` with the position, `done`), which the loader
//! re-dispatches on the host page as `turnstile:*` DOM events. Messages are
//! `{"source":"turnstile","type":...}` posted to the parent; they carry nothing private (no job
//! content, no session), so any parent may read them. The loader checks that they come from the
//! frame's own origin.
//!
//! Concurrency: single-threaded (the browser's event loop). Outside the browser every function
//! does nothing.

use crate::protocol::ServerMessage;
use serde_json::{json, Value};

/// Whether `path` is one of the embed routes.
pub fn is_embed_path(path: &str) -> bool {
    path.starts_with("/embed/")
}

/// The public event a server message means for the host page, if any.
pub fn event_for(msg: &ServerMessage) -> Option<(&'static str, Value)> {
    match msg {
        ServerMessage::Accepted { position, .. } | ServerMessage::Position { position, .. } => {
            Some(("queued", json!({ "position": position })))
        }
        ServerMessage::Done { .. } => Some(("done", json!({ "ok": true }))),
        ServerMessage::Error {
            job_id: Some(_),
            code,
            ..
        } => Some(("done", json!({ "ok": false, "code": code }))),
        _ => None,
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use serde_json::{json, Value};

    /// The parent window, when this page is framed on an embed route.
    fn parent() -> Option<web_sys::Window> {
        let window = web_sys::window()?;
        let path = window.location().pathname().ok()?;
        if !super::is_embed_path(&path) {
            return None;
        }
        let parent = window.parent().ok().flatten()?;
        // Not framed: the parent is the window itself.
        (!js_sys::Object::is(&parent, &window)).then_some(parent)
    }

    /// Posts `{"source":"turnstile","type":kind, ...fields}` to the parent, if framed.
    pub fn post(kind: &str, fields: Value) {
        let Some(parent) = parent() else { return };
        let mut msg = json!({ "source": "turnstile", "type": kind });
        if let (Some(m), Value::Object(f)) = (msg.as_object_mut(), fields) {
            m.extend(f);
        }
        if let Ok(value) = js_sys::JSON::parse(&msg.to_string()) {
            let _ = parent.post_message(&value, "*");
        }
    }

    /// The document's full height in CSS pixels.
    pub fn height() -> Option<i32> {
        let doc = web_sys::window()?.document()?;
        Some(doc.document_element()?.scroll_height())
    }

    /// Whether the page is framed on an embed route.
    pub fn framed() -> bool {
        parent().is_some()
    }
}

/// Tells the host page about a server message, if it means a public event.
pub fn notify(msg: &ServerMessage) {
    #[cfg(feature = "hydrate")]
    if let Some((kind, detail)) = event_for(msg) {
        browser::post(kind, json!({ "detail": detail }));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = msg;
}

/// Where a third-party frame may not keep storage: gives the session token to the loader on the
/// host page (`{"type":"session"}`), which keeps it in the host's own storage and passes it back
/// in the frame's URL next time. Nothing happens when the page is not a framed widget.
pub fn hand_session_to_host(token: &str) {
    #[cfg(feature = "hydrate")]
    browser::post("session", json!({ "token": token }));
    #[cfg(not(feature = "hydrate"))]
    let _ = token;
}

/// When framed on an embed route: says `ready`, then reports the page's height whenever it
/// changes (checked a few times a second) for as long as the page lives.
pub fn start() {
    #[cfg(feature = "hydrate")]
    {
        if !browser::framed() {
            return;
        }
        browser::post("ready", json!({ "detail": {} }));
        leptos::task::spawn_local(async {
            let mut last = 0;
            loop {
                if let Some(h) = browser::height() {
                    if h != last {
                        last = h;
                        browser::post("height", json!({ "height": h }));
                    }
                }
                gloo_timers::future::TimeoutFuture::new(250).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_code::ErrorCode;
    use crate::protocol::JobId;

    #[test]
    fn only_public_facts_become_events() {
        let id = JobId("j".into());
        let queued = event_for(&ServerMessage::Position {
            job_id: id.clone(),
            seq: 1,
            position: 3,
            eta_ms: 10,
        });
        assert_eq!(queued, Some(("queued", json!({"position": 3}))));
        let failed = event_for(&ServerMessage::Error {
            job_id: Some(id.clone()),
            client_ref: None,
            seq: Some(2),
            code: ErrorCode::Cancelled,
            message: "secret details".into(),
            retry_after_ms: None,
        });
        assert_eq!(
            failed,
            Some(("done", json!({"ok": false, "code": "cancelled"})))
        );
        assert!(event_for(&ServerMessage::Token {
            job_id: id,
            seq: 3,
            text: "private answer".into()
        })
        .is_none());
        assert!(is_embed_path("/embed/chat") && !is_embed_path("/chat"));
    }
}
