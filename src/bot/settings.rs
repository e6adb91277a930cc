//! What chats and users chose in `/settings`, and the spontaneous-post cooldown: kept in the
//! store (so they survive restarts and go into backups), read on the paths that need them.

use crate::config::QuietHours;
use crate::store::{SettingKey, Store};
use serde::{Deserialize, Serialize};

/// A chat's choices, changed by its administrators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatSettings {
    /// Whether the bot replies at all (commands always work).
    pub replies: bool,
    /// Chance of unprompted replies; `None` takes the configured default.
    pub reply_chance: Option<f64>,
    /// Local quiet hours of this chat (`start`, `end`); `None` takes the configured ones.
    pub quiet_hours: Option<(u8, u8)>,
    /// Whether the bot may post on its own here.
    pub spontaneous: bool,
    /// When the bot last posted on its own here (Unix time).
    pub last_spontaneous: Option<i64>,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings {
            replies: true,
            reply_chance: None,
            quiet_hours: None,
            spontaneous: true,
            last_spontaneous: None,
        }
    }
}

impl ChatSettings {
    /// This chat's quiet hours, or `default` (the configured ones).
    pub fn quiet_hours_or(&self, default: QuietHours) -> QuietHours {
        match self.quiet_hours {
            Some((start, end)) => QuietHours { start, end },
            None => default,
        }
    }
}

/// A user's opt-outs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserSettings {
    /// No emoji reactions to this user's messages.
    pub no_reactions: bool,
    /// This user's messages are left out of spontaneous posts' prompts, so the bot does not
    /// bring them up unasked.
    pub no_mentions: bool,
}

/// Reads a chat's settings (defaults when none were stored).
pub fn chat(store: &Store, chat: i64) -> crate::store::Result<ChatSettings> {
    Ok(store.setting(SettingKey::Chat(chat))?.unwrap_or_default())
}

/// Reads a user's settings (defaults when none were stored).
pub fn user(store: &Store, user: i64) -> crate::store::Result<UserSettings> {
    Ok(store.setting(SettingKey::User(user))?.unwrap_or_default())
}

/// Parses quiet hours as `/settings quiet` takes them: `23-8`, or `off`.
pub fn parse_quiet_hours(text: &str) -> Option<Option<(u8, u8)>> {
    let text = text.trim();
    if matches!(text, "off" | "вимк" | "ні" | "no") {
        return Some(None);
    }
    let (start, end) = text.split_once('-')?;
    let start: u8 = start.trim().parse().ok()?;
    let end: u8 = end.trim().parse().ok()?;
    (start < 24 && end < 24).then_some(Some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_parse() {
        assert_eq!(parse_quiet_hours("23-8"), Some(Some((23, 8))));
        assert_eq!(parse_quiet_hours(" 0 - 6 "), Some(Some((0, 6))));
        assert_eq!(parse_quiet_hours("off"), Some(None));
        assert_eq!(parse_quiet_hours("25-3"), None);
        assert_eq!(parse_quiet_hours("вечір"), None);
    }
}
