//! The wasm entry point. It owns nothing but start-up: install the panic hook and hydrate the
//! server-rendered [`app::App`] in place. Everything else lives in `app`.

#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
