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
    /// No profile of this user is kept (and none is shown or used in prompts).
    pub no_profile: bool,
}

/// [`UserSettings`] as stored before profiles could be turned off; still read.
#[derive(Deserialize)]
struct UserSettingsV1 {
    no_reactions: bool,
    no_mentions: bool,
}

impl From<UserSettingsV1> for UserSettings {
    fn from(old: UserSettingsV1) -> Self {
        UserSettings {
            no_reactions: old.no_reactions,
            no_mentions: old.no_mentions,
            no_profile: false,
        }
    }
}

/// Reads a chat's settings (defaults when none were stored).
pub fn chat(store: &Store, chat: i64) -> crate::store::Result<ChatSettings> {
    Ok(store.setting(SettingKey::Chat(chat))?.unwrap_or_default())
}

/// Reads a user's settings (defaults when none were stored), in their current or first shape.
pub fn user(store: &Store, user: i64) -> crate::store::Result<UserSettings> {
    let key = SettingKey::User(user);
    match store.setting::<UserSettings>(key) {
        Ok(settings) => Ok(settings.unwrap_or_default()),
        Err(e) => match store.setting::<UserSettingsV1>(key) {
            Ok(Some(old)) => Ok(old.into()),
            _ => Err(e),
        },
    }
}

/// The users who asked not to be profiled. Someone whose settings cannot be read counts as
/// opted out (the safe side for privacy) and is logged, rather than stopping the bot.
pub fn profile_opt_outs(store: &Store) -> crate::store::Result<Vec<i64>> {
    let mut opted_out = Vec::new();
    for id in store.users_with_settings()? {
        match user(store, id) {
            Ok(settings) if !settings.no_profile => {}
            Ok(_) => opted_out.push(id),
            Err(e) => {
                tracing::warn!(user = id, error = %e, "unreadable settings: not profiling them");
                opted_out.push(id);
            }
        }
    }
    Ok(opted_out)
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
    fn user_settings_of_the_first_shape_are_still_read() {
        #[derive(Serialize)]
        struct Old {
            no_reactions: bool,
            no_mentions: bool,
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::store::StoreConfig::new(dir.path())).unwrap();
        let old = Old {
            no_reactions: true,
            no_mentions: false,
        };
        store.put_setting(SettingKey::User(5), &old).unwrap();
        let read = user(&store, 5).unwrap();
        assert!(read.no_reactions && !read.no_mentions && !read.no_profile);
        let new = UserSettings {
            no_profile: true,
            ..read
        };
        store.put_setting(SettingKey::User(5), &new).unwrap();
        assert_eq!(user(&store, 5).unwrap(), new);
        assert_eq!(profile_opt_outs(&store).unwrap(), vec![5]);
    }

    #[test]
    fn quiet_hours_parse() {
        assert_eq!(parse_quiet_hours("23-8"), Some(Some((23, 8))));
        assert_eq!(parse_quiet_hours(" 0 - 6 "), Some(Some((0, 6))));
        assert_eq!(parse_quiet_hours("off"), Some(None));
        assert_eq!(parse_quiet_hours("25-3"), None);
        assert_eq!(parse_quiet_hours("вечір"), None);
    }
}
