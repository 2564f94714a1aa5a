//! Model output rendered as Markdown: `app::markdown::render` never panics and never writes
//! markup the input could have smuggled in (see `turnstile_fuzz::checks::markdown`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        turnstile_fuzz::checks::markdown(text);
    }
});
