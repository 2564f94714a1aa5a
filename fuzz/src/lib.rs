//! Shared pieces of Turnstile's fuzz targets: the properties they check ([`checks`], also
//! replayed by `server/tests/fuzz_regressions.rs`) and the structured generator of calculator
//! jobs ([`gen`]).

pub mod checks;
pub mod gen;
