//! Everything the bot says and the charts show, in Ukrainian and English.
//!
//! One table below everything that speaks (the bot) or draws (the charts), so that a new text is
//! written in both languages at once and the command menu, `/help` and the replies cannot drift
//! apart. Choosing between a Ukrainian and an English literal (`Lang::pick`) is private to this
//! module: a text in one language only cannot be written anywhere else.

mod lang;
mod menu;
mod names;
mod phrases;
mod recall;
mod reports;
mod search;

pub use lang::Lang;
pub use menu::{help, menu, start, COMMANDS};
pub use names::{emotion, messages};
pub use phrases::Phrase;
pub use recall::{
    answer, ask_usage, catchup, catchup_nothing, catchup_refused, fits, no_answer, quotes, Links,
    Since,
};
pub use reports::{
    alert, analytics, chat_stats, global, health, import_failed, import_summary, me, settings_view,
    top, topic_stats, words, BotHealth, ChatSettingsView, UserSettingsView,
};
pub use search::{
    search_expired, search_page_buttons, search_refused, search_results, search_unavailable,
    ResultLine,
};
