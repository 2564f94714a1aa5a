//! Calculator input: jobs decoded from JSON, validated against the caps, and (when small)
//! executed on the CPU (see `turnstile_fuzz::checks::calc_job`).
//!
//! Each input is used twice: as raw JSON text (so decoding itself is fuzzed, and the committed
//! seeds are plain JSON), and as the bytes from which `turnstile_fuzz::gen` builds a job's JSON
//! with mostly-compatible small shapes, so that validation's edge cases and execution are
//! reached far more often than random JSON would reach them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        turnstile_fuzz::checks::calc_json(text);
    }
    if let Ok(text) = turnstile_fuzz::gen::calc_job_json(data) {
        turnstile_fuzz::checks::calc_json(&text);
    }
});
