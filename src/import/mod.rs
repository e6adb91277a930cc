//! Import of Telegram Desktop exports (`result.json`).
//!
//! [`reader`] walks an export file without loading it; [`record`] maps each exported message to
//! a store message.

pub mod reader;
pub mod record;
