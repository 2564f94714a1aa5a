//! The pages and their parts. Each page renders meaningful HTML on the server and becomes live
//! after hydration; pure logic (parsing, formatting, the job state machine, layout of pictures)
//! lives in its own module with unit tests.

pub mod calculator;
pub mod chat;
pub mod chat_actions;
pub mod chat_browser;
pub mod chat_markdown;
pub mod chat_state;
pub mod chat_view;
pub mod format;
pub mod heatmap;
pub mod job;
pub mod operand;
pub mod parse;
pub mod result;
pub mod stats;
pub mod stats_chart;
