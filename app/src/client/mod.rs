//! Browser-side I/O, one concept per file: the calculator's WebSocket connection ([`ws`]) and the
//! stats page's JSON fetches and timer ([`http`]).
//!
//! Both compile in every `ui` build so the pages need no `cfg` of their own: with the `hydrate`
//! feature they use gloo-net and gloo-timers; without it (the server render, unit tests) they open
//! nothing and report that they are browser-only. The pages only call them from event handlers and
//! effects, which never run on the server.

pub mod embed;
pub mod http;
pub mod ws;
