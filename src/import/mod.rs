//! Import of Telegram Desktop exports (`result.json`).
//!
//! So far: the mapping of one exported record to a store message ([`record`]). The streaming
//! reader and the `chatkeeper import` command build on it.

pub mod record;
