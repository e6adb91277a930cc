//! Profiles as stored: most in chunks in the profiles log, the newest as sled records.
//!
//! A profile record for every person in every chat is many small records (250,000 for an
//! account of 200 chats), and sled keeps every page it writes resident: kept as sled records,
//! an import of such an account grew by ~130 MB. So profiles live in chunks of up to
//! [`CHUNK_PROFILES`] of one chat's people, sorted by user, in their own log; the index holds
//! one pointer per chunk (`R chat first_user`).
//!
//! - **Live writes** (a batch's changed profiles) are sled records `S p chat user`, as cheap as
//!   before; they take precedence over the chunks. Once [`SETTLE_AFTER`] of them piled up, the
//!   group-commit thread settles them into the chunks a step at a time and removes each record
//!   unless it changed meanwhile (so a settle never undoes a newer write, and takes no lock the
//!   live path takes).
//! - **Bulk writes** (import, restore) go straight into the chunks.
//! - Every change of chunks appends them, syncs the log, then applies one sled batch that swaps
//!   the pointers (and drops the sled records of what it wrote); a crash leaves the old chunks
//!   or the new. Changes of chunks are serialized by one lock, which compaction of the profiles
//!   log also takes.
//! - A deletion rewrites the chunks without the person (or drops the chat's) and then compacts
//!   the profiles log's segments with dead records, so that the deleted bytes leave the disk.

use super::blocklog::{Location, RecordError};
use super::layout;
use super::model::{ChatId, UserId};
use super::settings::SettingKey;
use super::{codec, lock, Result, Shared};
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Profiles per chunk at most (a profile is ~70 bytes: about 2.3 KB).
const CHUNK_PROFILES: usize = 32;
/// Sled records of profiles after which a settle is due.
pub(super) const SETTLE_AFTER: u64 = 1_024;
/// Records settled per step: bounds a step's memory and how long it holds the profile lock.
const SETTLE_STEP: usize = 4_096;
/// Decoded chunks kept in memory: an import or a chat's live traffic reads the same few again.
const CACHED_CHUNKS: usize = 64;

/// One user's profile as the settings API stored it (the codec's bytes, opaque here).
pub(super) type Entry = (UserId, Vec<u8>);

/// A chunk as stored in the profiles log.
#[derive(Serialize, Deserialize)]
struct Chunk {
    chat: ChatId,
    /// Sorted by user, users unique.
    entries: Vec<Entry>,
}

/// A change of one profile: its new bytes, or `None` to delete it.
pub(super) type Update = (UserId, Option<Vec<u8>>);

/// The in-memory side of profile storage.
pub(super) struct ProfileState {
    /// Serializes every change of chunk pointers.
    pub(super) lock: Mutex<()>,
    /// Decoded chunks by where they are; a location never holds other bytes.
    cache: Mutex<LruCache<Location, Arc<Vec<Entry>>>>,
    /// Profile records in sled not yet settled (an estimate: it triggers a settle).
    pub(super) unsettled: AtomicU64,
}

impl Default for ProfileState {
    fn default() -> Self {
        ProfileState {
            lock: Mutex::new(()),
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHED_CHUNKS).expect("non-zero"),
            )),
            // An open does not count them: the first commit looks.
            unsettled: AtomicU64::new(SETTLE_AFTER),
        }
    }
}

/// One chunk as found in the index.
pub(super) struct ChunkPointer {
    pub key: sled::IVec,
    pub chat: ChatId,
    pub first_user: UserId,
    pub location: Location,
}

impl Shared {
    fn profile_pointer(
        &self,
        item: sled::Result<(sled::IVec, sled::IVec)>,
    ) -> Result<ChunkPointer> {
        let (key, value) = item.map_err(|e| self.io(e))?;
        let (chat, first_user) = layout::parse_profile_chunk_key(&key)
            .ok_or_else(|| self.corrupt_msg("a profile chunk key is malformed"))?;
        let location: Location =
            codec::decode(&value).map_err(|e| self.corrupt("profile chunk pointer", e))?;
        Ok(ChunkPointer {
            key,
            chat,
            first_user,
            location,
        })
    }

    /// Every profile chunk pointer, by chat and first user.
    pub(super) fn profile_chunks(&self) -> impl Iterator<Item = Result<ChunkPointer>> + '_ {
        self.db
            .scan_prefix([layout::PROFILE_CHUNK])
            .map(move |item| self.profile_pointer(item))
    }

    /// The chunk pointers of one chat, by first user.
    fn chat_profile_chunks(&self, chat: ChatId) -> Result<Vec<ChunkPointer>> {
        self.db
            .scan_prefix(layout::chat_prefix(layout::PROFILE_CHUNK, chat))
            .map(|item| self.profile_pointer(item))
            .collect()
    }

    /// The entries of the chunk at `location`.
    pub(super) fn profile_chunk_at(
        &self,
        chat: ChatId,
        location: Location,
    ) -> Result<Arc<Vec<Entry>>, ChunkError> {
        if let Some(entries) = lock(&self.profiles.cache).get(&location) {
            return Ok(entries.clone());
        }
        let bytes = self.profiles_log.read(location)?;
        let chunk: Chunk = codec::decode(&bytes).map_err(|_| ChunkError::Malformed)?;
        let sorted = chunk.entries.windows(2).all(|w| w[0].0 < w[1].0);
        if chunk.chat != chat || chunk.entries.is_empty() || !sorted {
            return Err(ChunkError::Malformed);
        }
        let entries = Arc::new(chunk.entries);
        lock(&self.profiles.cache).put(location, entries.clone());
        Ok(entries)
    }

    /// The stored bytes of `user`'s profile in `chat`: the sled record if there is one, else the
    /// chunk's entry.
    pub(super) fn stored_profile(&self, chat: ChatId, user: UserId) -> Result<Option<Vec<u8>>> {
        let key = SettingKey::Profile { chat, user }.encode();
        if let Some(bytes) = self.db.get(key).map_err(|e| self.io(e))? {
            return Ok(Some(bytes.to_vec()));
        }
        let start = layout::profile_chunk_key(chat, UserId::MIN);
        let end = layout::profile_chunk_key(chat, user);
        // Readers take no lock: a chunk may be rewritten and its segment compacted away between
        // reading its pointer and its bytes; then the index, which points at the new chunk by
        // then, is asked again.
        let mut last_error = None;
        for _ in 0..3 {
            let Some(item) = self.db.range(start..=end).next_back() else {
                return Ok(None);
            };
            let pointer = self.profile_pointer(item)?;
            match self.profile_chunk_at(chat, pointer.location) {
                Ok(entries) => {
                    return Ok(entries
                        .binary_search_by_key(&user, |(u, _)| *u)
                        .ok()
                        .map(|i| entries[i].1.clone()))
                }
                Err(e) => last_error = Some((pointer.first_user, e)),
            }
        }
        let (first, e) = last_error.expect("three attempts failed");
        Err(self.corrupt_msg(format!(
            "the profiles of chat {chat} from user {first} on: {e}; `chatkeeper verify --repair` \
             drops them (profiles are rebuilt as people write)"
        )))
    }

    /// Writes `updates` (any order; the last one of a key wins) into the chunks and drops the
    /// sled records of their keys. Returns how many profiles it deleted.
    pub(super) fn put_profiles(
        &self,
        updates: impl IntoIterator<Item = (ChatId, UserId, Option<Vec<u8>>)>,
    ) -> Result<u64> {
        let mut by_chat: BTreeMap<ChatId, BTreeMap<UserId, Option<Vec<u8>>>> = BTreeMap::new();
        for (chat, user, bytes) in updates {
            by_chat.entry(chat).or_default().insert(user, bytes);
        }
        let _one = lock(&self.profiles.lock);
        let mut batch = sled::Batch::default();
        let mut released = Vec::new();
        let mut deleted = 0;
        for (chat, updates) in by_chat {
            for &user in updates.keys() {
                batch.remove(&SettingKey::Profile { chat, user }.encode()[..]);
            }
            let updates: Vec<Update> = updates.into_iter().collect();
            deleted += self.merge_profiles(chat, &updates, &mut batch, &mut released)?;
        }
        self.apply_profile_batch(batch, released)?;
        Ok(deleted)
    }

    /// Merges `updates` (sorted by user, unique) into `chat`'s chunks: each chunk they touch is
    /// read, changed, and written again (split when it grew past [`CHUNK_PROFILES`]), its pointer
    /// swapped in `batch`; chunks they do not touch stay. Returns how many profiles were deleted.
    /// The caller holds the profile lock, and applies `batch` with
    /// [`Shared::apply_profile_batch`].
    fn merge_profiles(
        &self,
        chat: ChatId,
        updates: &[Update],
        batch: &mut sled::Batch,
        released: &mut Vec<(ChatId, Location)>,
    ) -> Result<u64> {
        let chunks = self.chat_profile_chunks(chat)?;
        let mut deleted = 0;
        let mut rest = updates;
        let mut written: Vec<Vec<Entry>> = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            // A chunk takes the updates up to the next chunk's first user (the first chunk also
            // those before it, the last all after it).
            let take = match chunks.get(i + 1) {
                Some(next) => rest.partition_point(|(u, _)| *u < next.first_user),
                None => rest.len(),
            };
            let (mine, later) = rest.split_at(take);
            rest = later;
            if mine.is_empty() {
                continue;
            }
            let old = self.profile_chunk_at(chat, chunk.location).map_err(|e| {
                self.corrupt_msg(format!(
                    "the profiles of chat {chat} from user {} on: {e}; `chatkeeper verify \
                         --repair` drops them",
                    chunk.first_user
                ))
            })?;
            let (merged, gone) = merge_entries(&old, mine);
            if gone == 0 && merged.len() == old.len() && merged.iter().eq(old.iter()) {
                continue;
            }
            deleted += gone;
            batch.remove(chunk.key.clone());
            released.push((chat, chunk.location));
            written.push(merged);
        }
        if chunks.is_empty() {
            let (merged, _) = merge_entries(&[], rest);
            written.push(merged);
        }
        let mut pieces: Vec<(UserId, Vec<u8>)> = Vec::new();
        for entries in written.iter().filter(|e| !e.is_empty()) {
            let parts = entries.len().div_ceil(CHUNK_PROFILES);
            let per_part = entries.len().div_ceil(parts);
            for part in entries.chunks(per_part) {
                pieces.push((
                    part[0].0,
                    codec::encode(&ChunkRef {
                        chat,
                        entries: part,
                    }),
                ));
            }
        }
        let locations = self
            .profiles_log
            .append(pieces.iter().map(|(_, bytes)| bytes.as_slice()))?;
        for ((first_user, _), location) in pieces.iter().zip(locations) {
            self.profiles_log.referenced(location);
            batch.insert(
                &layout::profile_chunk_key(chat, *first_user)[..],
                codec::encode(&location),
            );
        }
        Ok(deleted)
    }

    /// Syncs the profiles log and applies `batch`; the chunks it replaced are then dead.
    fn apply_profile_batch(
        &self,
        batch: sled::Batch,
        released: Vec<(ChatId, Location)>,
    ) -> Result<()> {
        self.profiles_log.sync()?;
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        for (chat, location) in released {
            self.profiles_log.released(location, chat);
        }
        Ok(())
    }

    /// Settles a step of the profiles' sled records into chunks when enough piled up (the
    /// group-commit thread, after a sync). A running backup postpones it.
    pub(super) fn settle_profiles_if_due(&self) -> Result<()> {
        if self.profiles.unsettled.load(Ordering::Relaxed) < SETTLE_AFTER {
            return Ok(());
        }
        let Ok(_gate) = self.rewrites.try_read() else {
            return Ok(());
        };
        if self.settle_profiles_step()? < SETTLE_STEP {
            // All there were; what was written since waits for the next trigger.
            self.profiles.unsettled.store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Moves up to [`SETTLE_STEP`] sled records of profiles into chunks, then removes each record
    /// that still holds what was moved (one written meanwhile is newer and stays). Returns how
    /// many it moved.
    pub(super) fn settle_profiles_step(&self) -> Result<usize> {
        let prefix = SettingKey::profile_prefix(None);
        let mut records: Vec<(sled::IVec, sled::IVec)> = Vec::new();
        for item in self.db.scan_prefix(&prefix).take(SETTLE_STEP) {
            records.push(item.map_err(|e| self.io(e))?);
        }
        if records.is_empty() {
            return Ok(0);
        }
        {
            let _one = lock(&self.profiles.lock);
            let mut batch = sled::Batch::default();
            let mut released = Vec::new();
            let mut updates: Vec<Update> = Vec::new();
            let mut current = None;
            for (key, value) in &records {
                let (chat, user) = SettingKey::decode_profile(key)
                    .ok_or_else(|| self.corrupt_msg(format!("profile key {key:?}")))?;
                if current.is_some_and(|c| c != chat) {
                    let c = current.expect("a chat");
                    self.merge_profiles(c, &updates, &mut batch, &mut released)?;
                    updates.clear();
                }
                current = Some(chat);
                updates.push((user, Some(value.to_vec())));
            }
            if let Some(chat) = current {
                self.merge_profiles(chat, &updates, &mut batch, &mut released)?;
            }
            self.apply_profile_batch(batch, released)?;
        }
        for (key, value) in &records {
            // Unless a newer write replaced it, the record now equals its chunk's entry.
            let _ = self
                .db
                .compare_and_swap(key, Some(value), None::<&[u8]>)
                .map_err(|e| self.io(e))?;
        }
        tracing::debug!(profiles = records.len(), "settled profiles into chunks");
        Ok(records.len())
    }

    /// Deletes the profiles of `user` (everyone when `None`) in `chat` (every chat when `None`),
    /// records and chunks, and erases their bytes from the profiles log. Returns how many.
    pub(super) fn remove_profiles(
        &self,
        chat: Option<ChatId>,
        user: Option<UserId>,
    ) -> Result<u64> {
        // The records are settled into the chunks first, so that each profile is counted once.
        while self.settle_profiles_step()? == SETTLE_STEP {}
        let deleted = {
            let _one = lock(&self.profiles.lock);
            let mut batch = sled::Batch::default();
            let mut released = Vec::new();
            let mut deleted = 0;
            let chats: Vec<ChatId> = match chat {
                Some(chat) => vec![chat],
                None => {
                    let mut chats: Vec<ChatId> = Vec::new();
                    for pointer in self.profile_chunks() {
                        let pointer = pointer?;
                        if chats.last() != Some(&pointer.chat) {
                            chats.push(pointer.chat);
                        }
                    }
                    chats
                }
            };
            for chat in chats {
                match user {
                    Some(user) => {
                        deleted +=
                            self.merge_profiles(chat, &[(user, None)], &mut batch, &mut released)?
                    }
                    None => {
                        for chunk in self.chat_profile_chunks(chat)? {
                            // An unreadable chunk goes too; it counts as none.
                            deleted += self
                                .profile_chunk_at(chat, chunk.location)
                                .map_or(0, |e| e.len() as u64);
                            batch.remove(chunk.key);
                            released.push((chat, chunk.location));
                        }
                    }
                }
            }
            // Records written since the settle above.
            for item in self.db.scan_prefix(SettingKey::profile_prefix(chat)) {
                let key = item.map_err(|e| self.io(e))?.0;
                if user.is_none() || SettingKey::decode_profile(&key).map(|(_, u)| u) == user {
                    batch.remove(key);
                    deleted += 1;
                }
            }
            self.apply_profile_batch(batch, released)?;
            deleted
        };
        self.erase_dead_profiles()?;
        Ok(deleted)
    }
}

impl Shared {
    /// Checks every profile chunk — readable, of its chat, sorted, its users from its key's on
    /// and before the next chunk's — and adds its bytes to `live` (per segment). Returns how
    /// many profiles the chunks hold.
    pub(super) fn check_profiles(
        &self,
        problems: &mut Vec<String>,
        live: &mut HashMap<u32, u64>,
    ) -> Result<u64> {
        let mut profiles = 0;
        let mut previous: Option<(ChatId, UserId)> = None;
        for pointer in self.profile_chunks() {
            let pointer = match pointer {
                Ok(pointer) => pointer,
                Err(e) => {
                    problems.push(format!("a profile chunk pointer is unreadable: {e}"));
                    continue;
                }
            };
            let chat = pointer.chat;
            *live.entry(pointer.location.segment).or_default() += pointer.location.record_bytes();
            match self.profile_chunk_at(chat, pointer.location) {
                Ok(entries) => {
                    profiles += entries.len() as u64;
                    let (first, last) = (entries[0].0, entries[entries.len() - 1].0);
                    if first != pointer.first_user
                        || previous.is_some_and(|(c, u)| c == chat && u >= first)
                    {
                        problems.push(format!(
                            "chat {chat}: the profile chunk of user {} on holds users out of its \
                             range",
                            pointer.first_user
                        ));
                    }
                    previous = Some((chat, last));
                }
                Err(e) => problems.push(format!(
                    "chat {chat}: the profile chunk of user {} on: {e}",
                    pointer.first_user
                )),
            }
        }
        Ok(profiles)
    }

    /// Drops the pointers of profile chunks that cannot be read (repair): those profiles are
    /// lost and start again from the next message. Notes each in `dropped`.
    pub(super) fn drop_unreadable_profiles(&self, dropped: &mut Vec<String>) -> Result<()> {
        let _one = lock(&self.profiles.lock);
        let mut batch = sled::Batch::default();
        let mut released = Vec::new();
        for pointer in self.profile_chunks() {
            let pointer = pointer?;
            if let Err(e) = self.profile_chunk_at(pointer.chat, pointer.location) {
                dropped.push(format!(
                    "chat {}: dropped the profiles of user {} on ({e})",
                    pointer.chat, pointer.first_user
                ));
                batch.remove(pointer.key);
                released.push((pointer.chat, pointer.location));
            }
        }
        self.apply_profile_batch(batch, released)
    }
}

/// A chunk to encode, borrowing its entries.
#[derive(Serialize)]
struct ChunkRef<'a> {
    chat: ChatId,
    entries: &'a [Entry],
}

/// `old` (sorted) with `updates` (sorted) applied, and how many of `old` were deleted.
fn merge_entries(old: &[Entry], updates: &[Update]) -> (Vec<Entry>, u64) {
    let mut out = Vec::with_capacity(old.len() + updates.len());
    let mut deleted = 0;
    let mut old = old.iter().peekable();
    for (user, bytes) in updates {
        while let Some(entry) = old.next_if(|(u, _)| u < user) {
            out.push(entry.clone());
        }
        let existed = old.next_if(|(u, _)| u == user).is_some();
        match bytes {
            Some(bytes) => out.push((*user, bytes.clone())),
            None => deleted += u64::from(existed),
        }
    }
    out.extend(old.cloned());
    (out, deleted)
}

/// Why a profile chunk could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ChunkError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("the chunk is malformed")]
    Malformed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FlushPolicy, Store, StoreConfig};

    fn entry(user: UserId, v: u8) -> Entry {
        (user, vec![v])
    }

    #[test]
    fn merging_inserts_replaces_and_deletes_in_order() {
        let old = vec![entry(1, 1), entry(3, 3), entry(5, 5)];
        let updates = vec![
            (0, Some(vec![0])),
            (3, None),
            (4, Some(vec![4])),
            (5, Some(vec![55])),
            (7, None),
        ];
        let (merged, deleted) = merge_entries(&old, &updates);
        assert_eq!(
            merged,
            vec![entry(0, 0), entry(1, 1), entry(4, 4), entry(5, 55)]
        );
        // Deleting a profile that is not there deletes nothing.
        assert_eq!(deleted, 1);
    }

    fn open(dir: &std::path::Path) -> Store {
        let mut config = StoreConfig::new(dir);
        config.flush = FlushPolicy::Manual;
        config.segment_bytes = 16 << 10;
        Store::open(config).unwrap()
    }

    fn profile(store: &Store, chat: ChatId, user: UserId) -> Option<(u64, String)> {
        store.setting(SettingKey::Profile { chat, user }).unwrap()
    }

    fn records(store: &Store) -> usize {
        store
            .shared
            .db
            .scan_prefix(SettingKey::profile_prefix(None))
            .count()
    }

    const CHATS: [ChatId; 2] = [-1_001_000_000_001, 77];

    #[test]
    fn bulk_and_live_profiles_read_back_settle_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let bulk: Vec<((ChatId, UserId), (u64, String))> = CHATS
            .iter()
            .flat_map(|&c| (0..100).map(move |u| ((c, 10 * u), (u as u64, "bulk".to_string()))))
            .collect();
        store
            .put_profiles(bulk.iter().map(|(k, v)| (*k, v)))
            .unwrap();
        assert_eq!(records(&store), 0, "bulk writes go to the log, not to sled");
        // 100 people per chat: four chunks each.
        let chunks: Vec<ChunkPointer> = store.shared.profile_chunks().map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 8);
        // Live writes: ten people change, five are new (among and around the chunks' users).
        let live: Vec<(SettingKey, (u64, String))> = (0..10)
            .map(|u| 10 * u * 7)
            .chain([-5, 5, 333, 2_000, 991])
            .map(|u| {
                let key = SettingKey::Profile {
                    chat: CHATS[0],
                    user: u,
                };
                (key, (u as u64, "live".to_string()))
            })
            .collect();
        store
            .put_settings(live.iter().map(|(k, v)| (*k, v)))
            .unwrap();
        let check = |store: &Store| {
            for ((chat, user), value) in &bulk {
                let newer = live.iter().find(|(k, _)| {
                    *k == SettingKey::Profile {
                        chat: *chat,
                        user: *user,
                    }
                });
                let want = newer.map_or(value, |(_, v)| v);
                assert_eq!(profile(store, *chat, *user).as_ref(), Some(want));
            }
            for (key, value) in &live {
                let SettingKey::Profile { chat, user } = *key else {
                    unreachable!()
                };
                assert_eq!(profile(store, chat, user).as_ref(), Some(value));
            }
            assert_eq!(profile(store, CHATS[1], 5), None);
            assert_eq!(profile(store, 12345, 10), None);
        };
        check(&store);
        assert_eq!(records(&store), 15);
        assert_eq!(store.shared.settle_profiles_step().unwrap(), 15);
        assert_eq!(records(&store), 0);
        check(&store);
        let report = store.verify().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(report.profiles, 205);
        store.flush().unwrap();
        drop(store);
        let store = open(dir.path());
        check(&store);
        assert!(store.verify().unwrap().is_clean());
    }

    #[test]
    fn removals_count_each_profile_once_and_leave_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let value = (1u64, "x".to_string());
        let keys: Vec<(ChatId, UserId)> = CHATS
            .iter()
            .flat_map(|&c| (0..70).map(move |u| (c, u)))
            .collect();
        store
            .put_profiles(keys.iter().map(|k| (*k, &value)))
            .unwrap();
        // User 3 also has a newer record in the first chat: still one profile there.
        store
            .put_setting(
                SettingKey::Profile {
                    chat: CHATS[0],
                    user: 3,
                },
                &value,
            )
            .unwrap();
        assert_eq!(store.remove_profiles(None, Some(3)).unwrap(), 2);
        assert_eq!(store.remove_profiles(None, Some(3)).unwrap(), 0);
        assert_eq!(store.remove_profiles(Some(CHATS[1]), None).unwrap(), 69);
        assert_eq!(store.remove_profiles(Some(CHATS[0]), Some(69)).unwrap(), 1);
        for (chat, user) in keys {
            let kept = chat == CHATS[0] && user != 3 && user != 69;
            assert_eq!(profile(&store, chat, user).is_some(), kept, "{chat} {user}");
        }
        let report = store.verify().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(report.profiles, 68);
    }

    #[test]
    fn rewritten_chunks_are_compacted_and_read_after_their_move() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        // Each round rewrites every chunk: most of the log becomes dead.
        for round in 0..20u64 {
            let value = (round, "r".repeat(40));
            store
                .put_profiles((0..200).map(|u| ((CHATS[0], u), &value)))
                .unwrap();
        }
        let before = store.shared.profiles_log.size_on_disk();
        store.shared.compact_if_due().unwrap();
        let after = store.shared.profiles_log.size_on_disk();
        assert!(after * 2 < before, "{before} → {after} bytes");
        for u in 0..200 {
            assert_eq!(profile(&store, CHATS[0], u), Some((19, "r".repeat(40))));
        }
        let report = store.verify().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
    }

    #[test]
    fn a_damaged_chunk_is_a_clear_error_and_repair_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let value = (7u64, "x".to_string());
        store
            .put_profiles((0..100).map(|u| ((CHATS[0], u), &value)))
            .unwrap();
        store.flush().unwrap();
        drop(store);
        // Flip a byte in the middle of the profiles log.
        let segment = std::fs::read_dir(dir.path().join("profiles"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .next()
            .unwrap();
        let mut bytes = std::fs::read(&segment).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&segment, bytes).unwrap();
        let store = open(dir.path());
        let errors: Vec<String> = (0..100)
            .filter_map(|u| {
                store
                    .setting::<(u64, String)>(SettingKey::Profile {
                        chat: CHATS[0],
                        user: u,
                    })
                    .err()
                    .map(|e| e.to_string())
            })
            .collect();
        let damaged = errors.len();
        assert!((1..100).contains(&damaged), "{damaged} unreadable");
        assert!(errors[0].contains("verify --repair"), "{}", errors[0]);
        assert!(!store.verify().unwrap().is_clean());
        let report = store.repair().unwrap();
        assert!(report
            .problems
            .iter()
            .any(|p| p.contains("dropped the profiles")));
        assert!(store.verify().unwrap().is_clean());
        let kept = (0..100)
            .filter(|&u| profile(&store, CHATS[0], u).is_some())
            .count();
        assert_eq!(kept, 100 - damaged);
    }

    #[test]
    fn a_backup_holds_every_profile_and_the_newest_wins_at_the_restore() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("a"));
        let old = (1u64, "old".to_string());
        let new = (2u64, "new".to_string());
        store
            .put_profiles((0..50).map(|u| ((CHATS[1], u), &old)))
            .unwrap();
        store
            .put_settings((0..50).step_by(7).map(|u| {
                (
                    SettingKey::Profile {
                        chat: CHATS[1],
                        user: u,
                    },
                    &new,
                )
            }))
            .unwrap();
        let file = dir.path().join("b.ckb");
        store.backup(&file).unwrap();
        let restored = dir.path().join("r");
        crate::store::restore(&file, &restored).unwrap();
        let store = open(&restored);
        for u in 0..50 {
            let want = if u % 7 == 0 { &new } else { &old };
            assert_eq!(profile(&store, CHATS[1], u).as_ref(), Some(want));
        }
        assert_eq!(records(&store), 0, "a restore writes profiles to the log");
        assert!(store.verify().unwrap().is_clean());
    }
}
