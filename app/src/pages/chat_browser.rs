//! The chat page's few direct uses of the browser: the answer in flight kept in
//! `sessionStorage` (so a reload can resume it), the clipboard, and keeping the newest text in
//! view while an answer streams.
//!
//! With `hydrate` these use `web_sys` and `js_sys`; elsewhere (the server render, unit tests)
//! they do nothing, because the page only calls them from handlers and effects, which never run
//! on the server. Failures are silent: storage or the clipboard may be blocked, and the page works
//! without them. Concurrency: single-threaded (the browser's event loop).

use crate::pages::chat_state::PendingJob;

/// `sessionStorage` key of the answer in flight.
pub const PENDING_KEY: &str = "turnstile_chat_pending";

/// How close (in CSS pixels) to the bottom of the page the reader must be for a streaming answer
/// to keep scrolling the page; further up, they are reading and the page stays still.
pub const FOLLOW_DISTANCE_PX: f64 = 160.0;

#[cfg(feature = "hydrate")]
mod browser {
    use super::{PendingJob, FOLLOW_DISTANCE_PX, PENDING_KEY};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    fn session_storage() -> Option<web_sys::Storage> {
        web_sys::window()?.session_storage().ok().flatten()
    }

    pub fn load_pending() -> Option<PendingJob> {
        let text = session_storage()?.get_item(PENDING_KEY).ok().flatten()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save_pending(pending: &PendingJob) {
        if let (Some(storage), Ok(text)) = (session_storage(), serde_json::to_string(pending)) {
            let _ = storage.set_item(PENDING_KEY, &text);
        }
    }

    pub fn clear_pending() {
        if let Some(storage) = session_storage() {
            let _ = storage.remove_item(PENDING_KEY);
        }
    }

    pub fn copy_to_clipboard(text: &str) -> bool {
        (|| -> Option<()> {
            let window = web_sys::window()?;
            let navigator = js_sys::Reflect::get(&window, &"navigator".into()).ok()?;
            let clipboard = js_sys::Reflect::get(&navigator, &"clipboard".into()).ok()?;
            if clipboard.is_undefined() || clipboard.is_null() {
                return None;
            }
            let write = js_sys::Reflect::get(&clipboard, &"writeText".into())
                .ok()?
                .dyn_into::<js_sys::Function>()
                .ok()?;
            let promise = write
                .call1(&clipboard, &JsValue::from_str(text))
                .ok()?
                .dyn_into::<js_sys::Promise>()
                .ok()?;
            // A refusal (no permission, page not focused) is not worth an error in the console.
            let ignore = Closure::<dyn FnMut(JsValue)>::new(|_| {});
            let _ = promise.catch(&ignore);
            ignore.forget();
            Some(())
        })()
        .is_some()
    }

    pub fn follow_the_end() {
        (|| -> Option<()> {
            let window = web_sys::window()?;
            let root = window.document()?.document_element()?;
            let height = f64::from(root.scroll_height());
            let seen = window.scroll_y().ok()? + window.inner_height().ok()?.as_f64()?;
            if height - seen <= FOLLOW_DISTANCE_PX {
                window.scroll_to_with_x_and_y(0.0, height);
            }
            Some(())
        })();
    }
}

/// The answer in flight saved by this tab, if any.
#[cfg(feature = "hydrate")]
pub fn load_pending() -> Option<PendingJob> {
    browser::load_pending()
}

/// Remembers the answer in flight for a reload of this tab.
#[cfg(feature = "hydrate")]
pub fn save_pending(pending: &PendingJob) {
    browser::save_pending(pending);
}

/// Forgets the answer in flight (it ended).
#[cfg(feature = "hydrate")]
pub fn clear_pending() {
    browser::clear_pending();
}

/// Puts `text` on the clipboard; `false` when the browser has no clipboard API for the page.
#[cfg(feature = "hydrate")]
pub fn copy_to_clipboard(text: &str) -> bool {
    browser::copy_to_clipboard(text)
}

/// Scrolls to the end of the page if the reader is already near it.
#[cfg(feature = "hydrate")]
pub fn follow_the_end() {
    browser::follow_the_end();
}

/// Outside the browser nothing is stored.
#[cfg(not(feature = "hydrate"))]
pub fn load_pending() -> Option<PendingJob> {
    None
}

/// Outside the browser nothing is stored.
#[cfg(not(feature = "hydrate"))]
pub fn save_pending(_pending: &PendingJob) {}

/// Outside the browser nothing is stored.
#[cfg(not(feature = "hydrate"))]
pub fn clear_pending() {}

/// Outside the browser there is no clipboard.
#[cfg(not(feature = "hydrate"))]
pub fn copy_to_clipboard(_text: &str) -> bool {
    false
}

/// Outside the browser there is nothing to scroll.
#[cfg(not(feature = "hydrate"))]
pub fn follow_the_end() {}

/// Whether the page runs on an embed route (`/embed/chat`, the widget).
#[cfg(feature = "hydrate")]
pub fn embedded() -> bool {
    web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .is_some_and(|p| crate::client::embed::is_embed_path(&p))
}

/// Outside the browser the links are the full page's.
#[cfg(not(feature = "hydrate"))]
pub fn embedded() -> bool {
    false
}
