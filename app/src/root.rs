//! The application's root components (feature `ui`): the HTML document the server renders
//! ([`shell`]), the app with its routes ([`App`]), and the site chrome around them, which the embed
//! routes (`/embed/...`, the widget) leave out. Every page is a lazy route: in the browser each
//! page's code is a wasm file of its own, so the main bundle holds only what all pages share.

use crate::{client, content_security_policy, pages};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    hooks::{use_location, use_query_map},
    Lazy, StaticSegment,
};

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let nonce = leptos::nonce::use_nonce()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let csp = content_security_policy(&nonce);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta http-equiv="Content-Security-Policy" content=csp/>
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
/// The root element gets `data-hydrated="true"` once the app is live in the browser, the page
/// shown included, so browser tests (and the hydration benchmark) can wait for hydration. Every
/// page is a lazily loaded route, whose hydration ends after its wasm file has arrived, later than
/// the frame's: so the mark is set by an effect of the page's own ([`page_is_live`], called by
/// each route's view), never by one of the frame, and effects never run on the server.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let hydrated = RwSignal::new(false);
    provide_context(Live(hydrated));
    view! {
        <Stylesheet id="leptos" href="/pkg/turnstile.css"/>
        <Title text="Turnstile"/>
        <Link rel="icon" href=FAVICON/>
        <Router>
            <Frame hydrated/>
        </Router>
    }
}

/// Whether the page shown is live (see [`App`]).
#[derive(Clone, Copy)]
struct Live(RwSignal<bool>);

/// Marks the app live once the page being built has hydrated: an effect runs after the
/// synchronous work that hydrates the view it is created in. Each page's route view calls it.
pub fn page_is_live() {
    if let Some(Live(live)) = use_context::<Live>() {
        Effect::new(move |_| live.set(true));
    }
}

/// A CSS colour a host page may pass as `accent`: `#rgb`, `#rrggbb` (or with alpha), nothing else,
/// so the query string can never inject CSS.
fn accent_colour(s: &str) -> Option<&str> {
    let hex = s.strip_prefix('#')?;
    (matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// The page around the routes: the site chrome, or none on the embed routes (`/embed/...`, the
/// widget), where `theme` (light, dark, auto) and `accent` come from the query string.
#[component]
fn Frame(hydrated: RwSignal<bool>) -> impl IntoView {
    let location = use_location();
    let query = use_query_map();
    let embed = Memo::new(move |_| location.pathname.with(|p| client::embed::is_embed_path(p)));
    let theme = move || {
        let asked = query.with(|q| q.get("theme"));
        match (embed.get(), asked.as_deref()) {
            (true, Some("dark")) => "dark",
            (true, Some("auto")) => "auto",
            _ => "light",
        }
    };
    let accent = move || {
        query.with(|q| q.get("accent")).and_then(|a| {
            accent_colour(&a).map(|c| format!("--accent: {c}; --accent-strong: {c}; --queue: {c}"))
        })
    };
    Effect::new(move |_| {
        if embed.get() {
            client::embed::start();
        }
    });
    view! {
        <div
            class="app"
            class:embed=move || embed.get()
            data-theme=theme
            style=accent
            data-hydrated=move || hydrated.get().then_some("true")
        >
            <Show when=move || !embed.get()>
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
            </Show>
            <main id="main" tabindex="-1">
                <Routes fallback=|| {
                    page_is_live();
                    view! { <p class="not-found">"Page not found."</p> }
                }>
                    <Route path=StaticSegment("") view={Lazy::<pages::calculator::CalculatorRoute>::new()}/>
                    <Route path=StaticSegment("chat") view={Lazy::<pages::chat::ChatRoute>::new()}/>
                    <Route path=StaticSegment("stats") view={Lazy::<pages::stats::StatsRoute>::new()}/>
                    <Route
                        path=(StaticSegment("embed"), StaticSegment("calculator"))
                        view={Lazy::<pages::calculator::CalculatorRoute>::new()}
                    />
                    <Route
                        path=(StaticSegment("embed"), StaticSegment("chat"))
                        view={Lazy::<pages::chat::ChatRoute>::new()}
                    />
                </Routes>
            </main>
        </div>
    }
}
