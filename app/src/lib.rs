//! Turnstile's shared crate: the wire types (protocol, tensors, error codes, HTTP bodies) used by
//! both the server and the browser, and the Leptos components rendered on the server and hydrated
//! in the browser. Nothing here holds shared state; the browser-only code is behind `hydrate`.

// Leptos view types nest deeply; layout queries for the biggest pages need the headroom.
#![recursion_limit = "256"]

pub mod api;
pub mod chat;
pub mod client;
pub mod error_code;
pub mod markdown;
pub mod openai;
pub mod pages;
pub mod protocol;
pub mod tensor;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    StaticSegment,
};

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The brand mark as an inline icon, so browsers do not ask for a missing `/favicon.ico`.
const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='8' fill='%232f5bd3'/%3E%3C/svg%3E";

/// The application: site chrome and the routes.
///
/// The root element gets `data-hydrated="true"` once the app is live in the browser (set by an
/// effect, which never runs on the server), so browser tests can wait for hydration.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Stylesheet id="leptos" href="/pkg/turnstile.css"/>
        <Title text="Turnstile"/>
        <Link rel="icon" href=FAVICON/>
        <Router>
            <div class="app" data-hydrated=move || hydrated.get().then_some("true")>
                <a class="skip-link" href="#main">"Skip to content"</a>
                <header class="site-header">
                    <div class="site-header-inner">
                        <a class="brand" href="/">
                            <span class="brand-mark" aria-hidden="true"></span>
                            "Turnstile"
                        </a>
                        <nav aria-label="Main">
                            <A href="/">"Calculator"</A>
                            <A href="/chat">"Chat"</A>
                            <A href="/stats">"Stats"</A>
                        </nav>
                    </div>
                </header>
                <main id="main" tabindex="-1">
                    <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                        <Route path=StaticSegment("") view=pages::calculator::CalculatorPage/>
                        <Route path=StaticSegment("chat") view=pages::chat::ChatPage/>
                        <Route path=StaticSegment("stats") view=pages::stats::StatsPage/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}
