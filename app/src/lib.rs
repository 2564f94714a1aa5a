//! Turnstile's shared crate: the wire types (protocol, tensors, error codes, HTTP bodies,
//! Markdown rendering) used by the server, the browser and the tools, and, behind the `ui`
//! feature, the Leptos components rendered on the server and hydrated in the browser. Nothing here
//! holds shared state. With no features only the wire types compile (no Leptos), which is what
//! `turnstile-load`, `turnstile-calc` and the fuzz targets use; the browser-only code is behind
//! `hydrate`.

// Leptos view types nest deeply; layout queries for the biggest pages need the headroom.
#![recursion_limit = "256"]

pub mod api;
pub mod chat;
#[cfg(feature = "ui")]
pub mod client;
pub mod error_code;
mod fields;
pub mod markdown;
pub mod openai;
#[cfg(feature = "ui")]
pub mod pages;
pub mod protocol;
pub mod tensor;

#[cfg(feature = "ui")]
mod root;
#[cfg(feature = "ui")]
pub use root::{page_is_live, shell, App};

/// The page's script policy: only the site's own scripts and the inline hydration scripts
/// carrying this response's nonce run (so nothing a user or the model wrote can), WebAssembly may
/// be compiled, requests and sockets go to this server only. Sent as a `<meta>` because the nonce
/// exists only while the page renders; the server adds the framing and other headers.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'"
    )
}
