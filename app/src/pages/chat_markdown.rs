//! The chat's Markdown renderer, loaded when the chat first has something to render.
//!
//! The renderer itself is [`crate::markdown::render`]. The server calls it directly. In the
//! browser it is, with pulldown-cmark and its tables (about 50 KB gzipped), a wasm file of its
//! own (a `#[lazy]` function, split off by `scripts/build.sh` like the lazy routes): the chat page
//! hydrates without it, and fetches it once a conversation is shown or an answer is on its way
//! ([`Markdown::load`]), so an empty chat never downloads it. Until it has arrived
//! [`Markdown::renderer`] is `None` and the page keeps saying "Loading the conversation…"; the
//! HTML it then renders is the same as the server's.
//!
//! Concurrency: single-threaded (the browser's event loop); the load is one local task.

use leptos::prelude::*;

/// Markdown to HTML (see [`crate::markdown::render`]).
pub type Render = fn(&str) -> String;

/// The renderer once it is here: a signal, so views that wait for it re-render when it arrives.
#[derive(Clone, Copy)]
pub struct Markdown {
    renderer: RwSignal<Option<Render>>,
    /// A load has been started (browser only), so it is started once.
    loading: RwSignal<bool>,
}

impl Markdown {
    /// On the server and in native tests the renderer is there at once; in the browser it is
    /// there after [`Markdown::load`].
    pub fn new() -> Self {
        let renderer: Option<Render> = if cfg!(feature = "hydrate") {
            None
        } else {
            Some(crate::markdown::render)
        };
        Markdown {
            renderer: RwSignal::new(renderer),
            loading: RwSignal::new(false),
        }
    }

    /// The renderer, if it has arrived (tracked).
    pub fn renderer(self) -> Option<Render> {
        self.renderer.get()
    }

    /// `markdown` as HTML, or nothing while the renderer is not here yet (tracked).
    pub fn html(self, markdown: &str) -> String {
        self.renderer()
            .map(|render| render(markdown))
            .unwrap_or_default()
    }

    /// Fetches the renderer unless it is here or on its way. Does nothing outside the browser.
    pub fn load(self) {
        if self.renderer.with_untracked(Option::is_some) || self.loading.get_untracked() {
            return;
        }
        self.loading.set(true);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let render = lazy_renderer().await;
            self.renderer.set(Some(render));
        });
    }
}

impl Default for Markdown {
    fn default() -> Self {
        Markdown::new()
    }
}

/// The renderer, from its own wasm file (fetched on the first call).
#[cfg(feature = "hydrate")]
#[leptos::lazy]
fn lazy_renderer() -> Render {
    crate::markdown::render
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_the_browser_the_renderer_is_there_at_once() {
        let owner = Owner::new();
        owner.with(|| {
            let md = Markdown::new();
            assert_eq!(md.html("*hi*"), "<p><em>hi</em></p>\n");
            md.load();
            assert!(md.renderer().is_some());
        });
    }
}
