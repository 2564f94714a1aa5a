//! Client WebSocket frames: `app::protocol::ClientMessage::decode` and
//! `serde_json::from_str::<app::protocol::ClientMessage>` (see `turnstile_fuzz::checks`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are UTF-8 by the time they reach `ClientMessage::decode`.
    if let Ok(text) = std::str::from_utf8(data) {
        turnstile_fuzz::checks::client_message(text);
    }
});
