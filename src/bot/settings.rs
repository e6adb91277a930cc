//! What chats and users chose in `/settings`, and the spontaneous-post cooldown: kept in the
//! store (so they survive restarts and go into backups), read on the paths that need them.

use crate::config::QuietHours;
use crate::store::{SettingKey, Store};
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

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
    /// The local hour the daily digest is posted at; `None`: no digest (the default).
    pub digest_hour: Option<u8>,
    /// When the last digest was posted or found the day quiet (Unix time): one a day.
    pub last_digest: Option<i64>,
}

/// [`ChatSettings`] as stored before the daily digest; still read.
#[derive(Deserialize)]
struct ChatSettingsV1 {
    replies: bool,
    reply_chance: Option<f64>,
    quiet_hours: Option<(u8, u8)>,
    spontaneous: bool,
    last_spontaneous: Option<i64>,
}

impl From<ChatSettingsV1> for ChatSettings {
    fn from(old: ChatSettingsV1) -> Self {
        ChatSettings {
            replies: old.replies,
            reply_chance: old.reply_chance,
            quiet_hours: old.quiet_hours,
            spontaneous: old.spontaneous,
            last_spontaneous: old.last_spontaneous,
            digest_hour: None,
            last_digest: None,
        }
    }
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings {
            replies: true,
            reply_chance: None,
            quiet_hours: None,
            spontaneous: true,
            last_spontaneous: None,
            digest_hour: None,
            last_digest: None,
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

/// Reads a chat's settings (defaults when none were stored), in their current or first shape.
pub fn chat(store: &Store, chat: i64) -> crate::store::Result<ChatSettings> {
    current_or_first::<ChatSettings, ChatSettingsV1>(store, SettingKey::Chat(chat))
}

/// The record under `key` in its current shape `T`, or in its first shape `Old`, or the
/// default when none was stored.
fn current_or_first<T, Old>(store: &Store, key: SettingKey) -> crate::store::Result<T>
where
    T: serde::de::DeserializeOwned + Default + From<Old>,
    Old: serde::de::DeserializeOwned,
{
    match store.setting::<T>(key) {
        Ok(settings) => Ok(settings.unwrap_or_default()),
        Err(e) => match store.setting::<Old>(key) {
            Ok(Some(old)) => Ok(old.into()),
            _ => Err(e),
        },
    }
}

/// Reads a user's settings (defaults when none were stored), in their current or first shape.
pub fn user(store: &Store, user: i64) -> crate::store::Result<UserSettings> {
    current_or_first::<UserSettings, UserSettingsV1>(store, SettingKey::User(user))
}

/// Chats' and users' settings kept in memory: read through from the store, written through to
/// it, so that handling an ordinary message reads no disk. Every change of settings in the bot
/// goes through here. A miss or a change holds its map's lock while it reads or writes the
/// store (off the runtime), so that a read cannot put back what a change replaced.
pub struct Settings {
    chats: Held<ChatSettings>,
    users: Held<UserSettings>,
}

/// Chats and users held (a few dozen bytes each: well under 1 MiB together).
const CACHED_CHATS: usize = 2_048;
const CACHED_USERS: usize = 8_192;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            chats: Held::new(CACHED_CHATS, chat, SettingKey::Chat),
            users: Held::new(CACHED_USERS, user, SettingKey::User),
        }
    }
}

impl Settings {
    /// A user's and a chat's settings if memory holds both, for async code: it never waits,
    /// not even for a lock held by a miss reading the store (that counts as not held).
    pub fn cached(&self, user: i64, chat: i64) -> Option<(UserSettings, ChatSettings)> {
        let user = try_locked(&self.users.map)?.get(&user).cloned()?;
        let chat = try_locked(&self.chats.map)?.get(&chat).cloned()?;
        Some((user, chat))
    }

    /// A chat's settings (defaults when none were stored). Blocking on a miss.
    pub fn chat(&self, store: &Store, id: i64) -> crate::store::Result<ChatSettings> {
        self.chats.get(store, id)
    }

    /// A user's settings (defaults when none were stored). Blocking on a miss.
    pub fn user(&self, store: &Store, id: i64) -> crate::store::Result<UserSettings> {
        self.users.get(store, id)
    }

    /// Changes a chat's settings with `change` and stores them. Blocking.
    pub fn change_chat(
        &self,
        store: &Store,
        id: i64,
        change: impl FnOnce(&mut ChatSettings),
    ) -> crate::store::Result<ChatSettings> {
        self.chats.change(store, id, change)
    }

    /// Changes a user's settings with `change` and stores them. Blocking.
    pub fn change_user(
        &self,
        store: &Store,
        id: i64,
        change: impl FnOnce(&mut UserSettings),
    ) -> crate::store::Result<UserSettings> {
        self.users.change(store, id, change)
    }

    /// Removes a user's stored settings when they are the defaults (after they deleted their
    /// data: their opt-outs stay, so that the bot keeps respecting them). Blocking.
    pub fn forget_user_if_default(&self, store: &Store, id: i64) -> crate::store::Result<()> {
        let mut users = locked(&self.users.map);
        let settings = self.users.read(&mut users, store, id)?;
        if settings == UserSettings::default() {
            store.remove_setting(SettingKey::User(id))?;
        }
        Ok(())
    }
}

/// One kind of settings held: where they are stored and how they are read.
struct Held<V> {
    map: Mutex<LruCache<i64, V>>,
    load: fn(&Store, i64) -> crate::store::Result<V>,
    key: fn(i64) -> SettingKey,
}

impl<V: Clone + Serialize> Held<V> {
    fn new(
        entries: usize,
        load: fn(&Store, i64) -> crate::store::Result<V>,
        key: fn(i64) -> SettingKey,
    ) -> Self {
        Held {
            map: Mutex::new(LruCache::new(capacity(entries))),
            load,
            key,
        }
    }

    /// The settings of `id`, from `map` (its lock held) or read from the store into it.
    fn read(&self, map: &mut LruCache<i64, V>, store: &Store, id: i64) -> crate::store::Result<V> {
        if let Some(held) = map.get(&id) {
            return Ok(held.clone());
        }
        let read = (self.load)(store, id)?;
        map.put(id, read.clone());
        Ok(read)
    }

    fn get(&self, store: &Store, id: i64) -> crate::store::Result<V> {
        self.read(&mut locked(&self.map), store, id)
    }

    fn change(
        &self,
        store: &Store,
        id: i64,
        change: impl FnOnce(&mut V),
    ) -> crate::store::Result<V> {
        let mut map = locked(&self.map);
        let mut settings = self.read(&mut map, store, id)?;
        change(&mut settings);
        store.put_setting((self.key)(id), &settings)?;
        map.put(id, settings.clone());
        Ok(settings)
    }
}

fn capacity(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

/// Locks a map of [`Settings`]: a panic elsewhere leaves it a valid cache.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks a map of [`Settings`] if it is free (poisoned counts as free, as in [`locked`]).
fn try_locked<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
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

/// The local hour the digest button turns the daily digest on at.
pub const DEFAULT_DIGEST_HOUR: u8 = 9;

/// Parses the digest's hour as `/settings digest` takes it: `9`, `21:00`, or `off`.
pub fn parse_digest_hour(text: &str) -> Option<Option<u8>> {
    let text = text.trim();
    if matches!(text, "off" | "вимк" | "ні" | "no") {
        return Some(None);
    }
    let hour = text.strip_suffix(":00").unwrap_or(text);
    let hour: u8 = hour.parse().ok()?;
    (hour < 24).then_some(Some(hour))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_hours_parse() {
        assert_eq!(parse_digest_hour("9"), Some(Some(9)));
        assert_eq!(parse_digest_hour(" 21:00 "), Some(Some(21)));
        assert_eq!(parse_digest_hour("off"), Some(None));
        assert_eq!(parse_digest_hour("24"), None);
        assert_eq!(parse_digest_hour("ранок"), None);
    }

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

    /// A chat's settings as the last build before the daily digest wrote them
    /// (`codec::encode` of `ChatSettings { replies: false, reply_chance: Some(0.25),
    /// quiet_hours: Some((23, 7)), spontaneous: false, last_spontaneous: Some(1_760_000_000) }`).
    const CHAT_SETTINGS_V1: &str = "010001000000000000d03f0117070001fc00f0ced1";

    #[test]
    fn chat_settings_written_before_the_digest_are_still_read() {
        let written: Vec<u8> = (0..CHAT_SETTINGS_V1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&CHAT_SETTINGS_V1[i..i + 2], 16).unwrap())
            .collect();
        let old: ChatSettingsV1 = crate::store::codec::decode(&written).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::store::StoreConfig::new(dir.path())).unwrap();
        #[derive(Serialize)]
        struct Shape(bool, Option<f64>, Option<(u8, u8)>, bool, Option<i64>);
        let shape = Shape(
            old.replies,
            old.reply_chance,
            old.quiet_hours,
            old.spontaneous,
            old.last_spontaneous,
        );
        assert_eq!(
            crate::store::codec::encode(&shape),
            written,
            "the old record's bytes"
        );
        store.put_setting(SettingKey::Chat(-7), &shape).unwrap();
        let read = chat(&store, -7).unwrap();
        assert_eq!(
            read,
            ChatSettings {
                replies: false,
                reply_chance: Some(0.25),
                quiet_hours: Some((23, 7)),
                spontaneous: false,
                last_spontaneous: Some(1_760_000_000),
                digest_hour: None,
                last_digest: None,
            }
        );
        let new = ChatSettings {
            digest_hour: Some(9),
            ..read
        };
        store.put_setting(SettingKey::Chat(-7), &new).unwrap();
        assert_eq!(chat(&store, -7).unwrap(), new);
    }

    #[test]
    fn quiet_hours_parse() {
        assert_eq!(parse_quiet_hours("23-8"), Some(Some((23, 8))));
        assert_eq!(parse_quiet_hours(" 0 - 6 "), Some(Some((0, 6))));
        assert_eq!(parse_quiet_hours("off"), Some(None));
        assert_eq!(parse_quiet_hours("25-3"), None);
        assert_eq!(parse_quiet_hours("вечір"), None);
    }

    #[test]
    fn settings_are_read_through_and_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::store::StoreConfig::new(dir.path())).unwrap();
        let settings = Settings::default();
        assert_eq!(settings.cached(5, -100), None);
        assert_eq!(settings.user(&store, 5).unwrap(), UserSettings::default());
        assert!(settings.chat(&store, -100).unwrap().replies);
        assert!(settings.cached(5, -100).is_some(), "held after a read");
        settings
            .change_chat(&store, -100, |c| c.replies = false)
            .unwrap();
        settings
            .change_user(&store, 5, |u| u.no_reactions = true)
            .unwrap();
        let (user_held, chat_held) = settings.cached(5, -100).unwrap();
        assert!(user_held.no_reactions && !chat_held.replies);
        // Written through: the store has them, for the next start.
        assert!(user(&store, 5).unwrap().no_reactions);
        assert!(!chat(&store, -100).unwrap().replies);
        settings.forget_user_if_default(&store, 5).unwrap();
        assert!(user(&store, 5).unwrap().no_reactions, "opt-outs stay");
        settings
            .change_user(&store, 5, |u| u.no_reactions = false)
            .unwrap();
        settings.forget_user_if_default(&store, 5).unwrap();
        assert!(store.users_with_settings().unwrap().is_empty());
    }
}
