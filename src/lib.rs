//! chatkeeper: a self-hosted Telegram group bot with its own memory.
//!
//! The binary (`src/main.rs`) is only the command line; everything else lives here so that tests
//! and benchmarks drive the same code: the [`store`], the export [`import`]er, the reply engines
//! ([`reply`]), the Telegram [`bot`] and its [`config`]uration, [`chart`]s, and the [`bench`]marks.

pub mod analyzer;
pub mod bench;
pub mod bot;
pub mod chart;
pub mod config;
pub mod import;
pub mod memory;
pub mod recall;
pub mod reply;
pub mod search;
pub mod store;
pub mod texts;
pub mod tokens;
