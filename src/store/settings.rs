//! Small per-chat and per-user settings the bot keeps beside the messages: opt-outs, reply
//! chances, quiet hours, the cooldown of spontaneous posts. The store does not interpret them:
//! callers choose the type, the codec adds the format-version byte, and backups copy them.

use super::{codec, keys, ChatId, Result, Store, UserId};
use serde::{de::DeserializeOwned, Serialize};

/// Whose setting: a chat's or a user's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingKey {
    Chat(ChatId),
    User(UserId),
}

impl SettingKey {
    /// `S kind id`.
    pub(super) fn encode(self) -> [u8; 10] {
        let (kind, id) = match self {
            SettingKey::Chat(chat) => (b'c', chat),
            SettingKey::User(user) => (b'u', user),
        };
        let mut key = [0u8; 10];
        key[0] = keys::SETTINGS;
        key[1] = kind;
        key[2..].copy_from_slice(&keys::ordered_i64(id));
        key
    }
}

impl Store {
    /// The stored setting under `key`, or `None` when none was stored.
    pub fn setting<T: DeserializeOwned>(&self, key: SettingKey) -> Result<Option<T>> {
        let Some(bytes) = self
            .shared
            .db
            .get(key.encode())
            .map_err(|e| self.shared.io(e))?
        else {
            return Ok(None);
        };
        codec::decode(&bytes)
            .map(Some)
            .map_err(|e| self.shared.corrupt(format!("setting {key:?}"), e))
    }

    /// Stores a setting (durable at the next group commit, like messages).
    pub fn put_setting<T: Serialize>(&self, key: SettingKey, value: &T) -> Result<()> {
        self.shared
            .db
            .insert(key.encode(), codec::encode(value))
            .map_err(|e| self.shared.io(e))?;
        Ok(())
    }

    /// Forgets a setting (a user who asked to be forgotten everywhere).
    pub fn remove_setting(&self, key: SettingKey) -> Result<()> {
        self.shared
            .db
            .remove(key.encode())
            .map_err(|e| self.shared.io(e))?;
        Ok(())
    }

    /// Every stored setting as raw key and value, for backups.
    pub(super) fn raw_settings(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.shared
            .db
            .scan_prefix([keys::SETTINGS])
            .map(|item| {
                item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| self.shared.io(e))
            })
            .collect()
    }

    /// Restores one raw setting from a backup.
    pub(super) fn put_raw_setting(&self, key: &[u8], value: &[u8]) -> Result<()> {
        if key.first() != Some(&keys::SETTINGS) {
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
