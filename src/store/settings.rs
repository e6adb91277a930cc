//! Small per-chat and per-user records the bot keeps beside the messages: opt-outs, reply
//! chances, quiet hours, the cooldown of spontaneous posts, and the profile of each person in each
//! chat. The store does not interpret them: callers choose the type, the codec adds the
//! format-version byte, and backups copy them. Profiles are many, so most of them live in chunks
//! in a log of their own (`profiles.rs`); this API hides where.

use super::shared::Store;
use super::{codec, layout, ChatId, Result, UserId};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::atomic::Ordering;

/// Whose record: a chat's, a user's, or a user's within one chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SettingKey {
    Chat(ChatId),
    User(UserId),
    /// What the bot learned of a user in one chat (kept apart per chat: a group does not see
    /// what someone does elsewhere).
    Profile {
        chat: ChatId,
        user: UserId,
    },
}

const CHAT: u8 = b'c';
const USER: u8 = b'u';
const PROFILE: u8 = b'p';

impl SettingKey {
    /// `S kind id` (`S p chat user` for profiles: a chat's profiles are one range).
    pub(super) fn encode(self) -> Vec<u8> {
        let mut key = Vec::with_capacity(18);
        key.push(layout::SETTINGS);
        match self {
            SettingKey::Chat(chat) => {
                key.push(CHAT);
                key.extend_from_slice(&layout::ordered_i64(chat));
            }
            SettingKey::User(user) => {
                key.push(USER);
                key.extend_from_slice(&layout::ordered_i64(user));
            }
            SettingKey::Profile { chat, user } => {
                key.push(PROFILE);
                key.extend_from_slice(&layout::ordered_i64(chat));
                key.extend_from_slice(&layout::ordered_i64(user));
            }
        }
        key
    }

    /// `S p` or `S p chat`: the prefix of every profile record, or of a chat's.
    pub(super) fn profile_prefix(chat: Option<ChatId>) -> Vec<u8> {
        let mut prefix = vec![layout::SETTINGS, PROFILE];
        if let Some(chat) = chat {
            prefix.extend_from_slice(&layout::ordered_i64(chat));
        }
        prefix
    }

    /// The chat and user of a profile key, from its encoding.
    pub(super) fn decode_profile(key: &[u8]) -> Option<(ChatId, UserId)> {
        let rest = key.strip_prefix(&[layout::SETTINGS, PROFILE])?;
        let chat = layout::from_ordered_i64(rest.get(..8)?.try_into().ok()?);
        let user = layout::from_ordered_i64(rest.get(8..16)?.try_into().ok()?);
        Some((chat, user))
    }
}

impl Store {
    /// The stored setting under `key`, or `None` when none was stored.
    pub fn setting<T: DeserializeOwned>(&self, key: SettingKey) -> Result<Option<T>> {
        self.check_thread();
        let stored = match key {
            SettingKey::Profile { chat, user } => self.shared.stored_profile(chat, user)?,
            _ => self
                .shared
                .db
                .get(key.encode())
                .map_err(|e| self.shared.io(e))?
                .map(|bytes| bytes.to_vec()),
        };
        let Some(bytes) = stored else {
            return Ok(None);
        };
        codec::decode(&bytes)
            .map(Some)
            .map_err(|e| self.shared.corrupt(format!("setting {key:?}"), e))
    }

    /// Stores a setting (durable at the next group commit, like messages).
    pub fn put_setting<T: Serialize>(&self, key: SettingKey, value: &T) -> Result<()> {
        self.check_thread();
        self.put_settings([(key, value)])
    }

    /// Stores many records in one write (cheaper than one [`Store::put_setting`] each). Profiles
    /// written here are sled records until the group commit settles them into the profiles log:
    /// the way for a few at a time (the live path); many at once go through
    /// [`Store::put_profiles`].
    pub fn put_settings<'a, T: Serialize + 'a>(
        &self,
        records: impl IntoIterator<Item = (SettingKey, &'a T)>,
    ) -> Result<()> {
        self.check_thread();
        let mut batch = sled::Batch::default();
        let mut profiles = 0;
        for (key, value) in records {
            profiles += u64::from(matches!(key, SettingKey::Profile { .. }));
            batch.insert(key.encode(), codec::encode(value));
        }
        self.shared
            .db
            .apply_batch(batch)
            .map_err(|e| self.shared.io(e))?;
        self.shared
            .profiles
            .unsettled
            .fetch_add(profiles, Ordering::Relaxed);
        Ok(())
    }

    /// Stores many profiles straight into the profiles log (an import): sled would keep the
    /// pages of as many records resident. Durable at the next group commit, like messages.
    pub fn put_profiles<'a, T: Serialize + 'a>(
        &self,
        profiles: impl IntoIterator<Item = ((ChatId, UserId), &'a T)>,
    ) -> Result<()> {
        self.check_thread();
        self.shared.put_profiles(
            profiles
                .into_iter()
                .map(|((chat, user), value)| (chat, user, Some(codec::encode(value)))),
        )?;
        Ok(())
    }

    /// Forgets a setting (a user who asked to be forgotten everywhere).
    pub fn remove_setting(&self, key: SettingKey) -> Result<()> {
        self.check_thread();
        if let SettingKey::Profile { chat, user } = key {
            return self.remove_profiles(Some(chat), Some(user)).map(|_| ());
        }
        self.shared
            .db
            .remove(key.encode())
            .map_err(|e| self.shared.io(e))?;
        Ok(())
    }

    /// The users who have a record of their own (e.g. to learn the opt-outs at start-up).
    pub fn users_with_settings(&self) -> Result<Vec<UserId>> {
        self.check_thread();
        self.shared
            .db
            .scan_prefix([layout::SETTINGS, USER])
            .map(|item| {
                let (key, _) = item.map_err(|e| self.shared.io(e))?;
                key.get(2..10)
                    .and_then(|id| id.try_into().ok())
                    .map(layout::from_ordered_i64)
                    .ok_or_else(|| self.shared.corrupt_msg(format!("setting key {key:?}")))
            })
            .collect()
    }

    /// Deletes the profiles of `user` (every user when `None`) in `chat` (every chat when
    /// `None`), and their bytes from the disk; returns how many.
    pub fn remove_profiles(&self, chat: Option<ChatId>, user: Option<UserId>) -> Result<u64> {
        self.check_thread();
        self.shared.remove_profiles(chat, user)
    }

    /// Restores one raw setting from a backup.
    pub(super) fn put_raw_setting(&self, key: &[u8], value: &[u8]) -> Result<()> {
        if key.first() != Some(&layout::SETTINGS) {
            return Err(super::StoreError::Invalid(
                "a backup setting has a key outside the settings family".into(),
            ));
        }
        self.shared
            .db
            .insert(key, value)
            .map_err(|e| self.shared.io(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Prefs {
        quiet: Option<(u8, u8)>,
        chance: f32,
    }

    #[test]
    fn settings_round_trip_and_keep_chats_and_users_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let prefs = Prefs {
            quiet: Some((23, 7)),
            chance: 0.25,
        };
        store.put_setting(SettingKey::Chat(-100), &prefs).unwrap();
        assert_eq!(
            store.setting::<Prefs>(SettingKey::User(-100)).unwrap(),
            None
        );
        drop(store);
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        assert_eq!(
            store.setting::<Prefs>(SettingKey::Chat(-100)).unwrap(),
            Some(prefs)
        );
        // A setting of another shape is an error that names it, not a panic.
        let err = store.setting::<Vec<String>>(SettingKey::Chat(-100));
        assert!(err.is_err());
    }
}
