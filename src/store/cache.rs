//! A persistent cache tier with a time to live: results that are worth keeping across restarts
//! (analyses) but can always be recomputed. Values are opaque to the store (the codec adds the
//! format-version byte); each carries its expiry, and [`Store::purge_expired_cache`] (a
//! maintenance task) drops the stale ones. Backups leave the cache out.

use super::{codec, layout, Result, Store, Timestamp};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// A cached value and when it stops being valid.
#[derive(Serialize, Deserialize)]
struct Entry<T> {
    expires: Timestamp,
    value: T,
}

fn cache_key(namespace: u8, key: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(2 + key.len());
    full.push(layout::CACHE);
    full.push(namespace);
    full.extend_from_slice(key);
    full
}

impl Store {
    /// The value cached under `key` in `namespace`, unless absent or expired at `now`. An entry
    /// that no longer decodes (an older format) counts as absent.
    pub fn cache_get<T: DeserializeOwned>(
        &self,
        namespace: u8,
        key: &[u8],
        now: Timestamp,
    ) -> Result<Option<T>> {
        let bytes = self
            .shared
            .db
            .get(cache_key(namespace, key))
            .map_err(|e| self.shared.io(e))?;
        Ok(bytes
            .and_then(|b| codec::decode::<Entry<T>>(&b).ok())
            .filter(|entry| entry.expires > now)
            .map(|entry| entry.value))
    }

    /// Caches `value` under `key` in `namespace` until `expires`.
    pub fn cache_put<T: Serialize>(
        &self,
        namespace: u8,
        key: &[u8],
        value: &T,
        expires: Timestamp,
    ) -> Result<()> {
        self.cache_put_many(namespace, [(key, value)], expires)
    }

    /// Caches many values in one write (cheaper than one [`Store::cache_put`] each).
    pub fn cache_put_many<'a, T: Serialize + 'a>(
        &self,
        namespace: u8,
        entries: impl IntoIterator<Item = (&'a [u8], &'a T)>,
        expires: Timestamp,
    ) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (key, value) in entries {
            batch.insert(
                cache_key(namespace, key),
                codec::encode(&Entry { expires, value }),
            );
        }
        self.shared
            .db
            .apply_batch(batch)
            .map_err(|e| self.shared.io(e))
    }

    /// Drops every cache entry expired at `now` (and any that no longer decodes); returns how
    /// many. A scan: run it from a maintenance task, off the async runtime.
    pub fn purge_expired_cache(&self, now: Timestamp) -> Result<u64> {
        let mut batch = sled::Batch::default();
        let mut dropped = 0;
        for item in self.shared.db.scan_prefix([layout::CACHE]) {
            let (k, v) = item.map_err(|e| self.shared.io(e))?;
            // Only the expiry is read: the value's type is the caller's.
            let expired = codec::decode_prefix::<Timestamp>(&v).map_or(true, |(t, _)| t <= now);
            if expired {
                batch.remove(k);
                dropped += 1;
            }
        }
        self.shared
            .db
            .apply_batch(batch)
            .map_err(|e| self.shared.io(e))?;
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreConfig};

    #[test]
    fn entries_expire_and_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        store.cache_put(1, b"short", &"a".to_string(), 100).unwrap();
        store.cache_put(1, b"long", &"b".to_string(), 300).unwrap();
        store.cache_put(2, b"short", &7u32, 300).unwrap();
        assert_eq!(
            store
                .cache_get::<String>(1, b"short", 99)
                .unwrap()
                .as_deref(),
            Some("a")
        );
        assert_eq!(store.cache_get::<String>(1, b"short", 100).unwrap(), None);
        assert_eq!(store.cache_get::<u32>(2, b"short", 99).unwrap(), Some(7));
        assert_eq!(store.purge_expired_cache(200).unwrap(), 1);
        assert_eq!(
            store
                .cache_get::<String>(1, b"long", 200)
                .unwrap()
                .as_deref(),
            Some("b")
        );
        // A value that does not decode (another format) reads as absent, not as an error.
        store.cache_put(1, b"odd", &(1u8, 2u8), 300).unwrap();
        assert_eq!(
            store.cache_get::<(u8, u8, String)>(1, b"odd", 200).unwrap(),
            None
        );
    }
}
