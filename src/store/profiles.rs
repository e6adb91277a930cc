//! Profiles as stored: most in chunks in the profiles log, the newest as sled records.
//!
//! A profile record for every person in every chat is many small records (250,000 for an
//! account of 200 chats), and sled keeps every page it writes resident: kept as sled records,
//! an import of such an account peaked at 171 MiB (56 MiB with chunks). So profiles live in chunks of up to
//! [`CHUNK_PROFILES`] of one chat's people, sorted by user, in their own log; the index holds
//! one pointer per chunk (`R chat first_user`).
//!
//! - **Live writes** (a batch's changed profiles) are sled records `S p chat user`, as cheap as
//!   before; they take precedence over the chunks. Once [`SETTLE_AFTER`] of them piled up, the
//!   group-commit thread settles them into the chunks a step at a time, under the profile lock,
//!   and removes each record unless a live write (which takes no lock) replaced it meanwhile.
//! - **Bulk writes** (import, restore) go straight into the chunks.
//! - Every change of chunks appends them, syncs the log, then applies one sled batch that swaps
//!   the pointers (and drops the sled records of what it wrote); a crash leaves the old chunks
//!   or the new ([`Shared::change_chunks`]). Changes of chunks and removals of records are
//!   serialized by one lock, which compaction of the profiles log, backups (while they copy
//!   profiles) and `verify` also take.
//! - A deletion rewrites the chunks without the person (or drops the chat's) and then compacts
//!   the profiles segments that may hold dead chunks of the chats concerned, so that the deleted
//!   bytes leave the disk (after a running backup, at the next group commit).

use super::blocklog::{Location, RecordError};
use super::layout;
use super::model::{ChatId, UserId};
use super::profile_state::{Entry, SETTLE_AFTER};
use super::settings::SettingKey;
use super::shared::{lock, Shared};
use super::{codec, Result, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Profiles per chunk at most (a profile is ~70 bytes: about 2.3 KB).
const CHUNK_PROFILES: usize = 32;
/// Records settled per step: bounds a step's memory and how long it holds the profile lock.
const SETTLE_STEP: usize = 4_096;
/// A chunk as stored in the profiles log.
#[derive(Serialize, Deserialize)]
struct Chunk {
    chat: ChatId,
    /// Sorted by user, users unique.
    entries: Vec<Entry>,
}

/// A change of one profile: its new bytes, or `None` to delete it.
pub(super) type Update = (UserId, Option<Vec<u8>>);

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

    /// Every chunk pointer that parses: a malformed one is left out (logged), so that it stops
    /// neither an open, a deletion, a compaction nor a backup; `verify` reports it and
    /// `--repair` drops it.
    pub(super) fn valid_profile_chunks(&self) -> impl Iterator<Item = Result<ChunkPointer>> + '_ {
        self.profile_chunks().filter(|pointer| match pointer {
            Err(StoreError::Corrupt { what, .. }) => {
                tracing::warn!(%what, "a profile chunk pointer is malformed; run `chatkeeper verify --repair`");
                false
            }
            _ => true,
        })
    }

    /// Where every chunk is, to recover the profiles log at open.
    pub(super) fn profile_locations(&self) -> Result<Vec<Location>> {
        self.valid_profile_chunks()
            .map(|pointer| pointer.map(|p| p.location))
            .collect()
    }

    /// The chunk pointers of one chat, by first user.
    fn chat_profile_chunks(&self, chat: ChatId) -> Result<Vec<ChunkPointer>> {
        self.db
            .scan_prefix(layout::chat_prefix(layout::PROFILE_CHUNK, chat))
            .map(|item| self.profile_pointer(item))
            .filter(|pointer| !matches!(pointer, Err(StoreError::Corrupt { .. })))
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
             drops them (they start again from the next message)"
        )))
    }

    /// Writes `updates` (any order; the last one of a key wins) into the chunks and drops the
    /// sled records of their keys. Callers serialize it with live writes of the same profiles
    /// (the analyzer's `Profiles` does): a record written meanwhile would be dropped.
    pub(super) fn put_profiles(
        &self,
        updates: impl IntoIterator<Item = (ChatId, UserId, Option<Vec<u8>>)>,
    ) -> Result<()> {
        let mut by_chat: BTreeMap<ChatId, BTreeMap<UserId, Option<Vec<u8>>>> = BTreeMap::new();
        for (chat, user, bytes) in updates {
            by_chat.entry(chat).or_default().insert(user, bytes);
        }
        let _one = lock(&self.profiles.lock);
        self.change_chunks(|changes| {
            for (chat, updates) in by_chat {
                for &user in updates.keys() {
                    changes
                        .batch
                        .remove(&SettingKey::Profile { chat, user }.encode()[..]);
                }
                let updates: Vec<Update> = updates.into_iter().collect();
                self.merge_profiles(chat, &updates, changes, Unreadable::Fail)?;
            }
            Ok(())
        })
    }

    /// Prepares a change of chunks with `prepare`, then syncs the profiles log and applies the
    /// batch: the chunks written become live and those replaced dead. If anything fails, the
    /// chunks written are dead and the index is as it was. The caller holds the profile lock.
    fn change_chunks<T>(&self, prepare: impl FnOnce(&mut ChunkChanges) -> Result<T>) -> Result<T> {
        let mut changes = ChunkChanges::default();
        let applied = prepare(&mut changes).and_then(|value| {
            if !changes.written.is_empty() {
                self.profiles_log.sync()?;
            }
            let batch = std::mem::take(&mut changes.batch);
            self.db.apply_batch(batch).map_err(|e| self.io(e))?;
            Ok(value)
        });
        if applied.is_ok() {
            for &(_, location) in &changes.written {
                self.profiles_log.referenced(location);
            }
            for &(chat, location) in &changes.released {
                self.profiles_log.released(location, chat);
            }
        } else {
            for &(chat, location) in &changes.written {
                self.profiles_log.abandoned(location, chat);
            }
        }
        applied
    }

    /// Merges `updates` (sorted by user, unique) into `chat`'s chunks: each chunk they touch is
    /// read, changed, and written again (split when it grew past [`CHUNK_PROFILES`]), its pointer
    /// swapped in `changes`; chunks they do not touch stay. A chunk that cannot be read fails
    /// the merge, leaving `changes` as they were, or with [`Unreadable::Drop`] is dropped whole
    /// (a deletion must not be stopped by damage). Returns how many profiles were deleted.
    fn merge_profiles(
        &self,
        chat: ChatId,
        updates: &[Update],
        changes: &mut ChunkChanges,
        unreadable: Unreadable,
    ) -> Result<u64> {
        let chunks = self.chat_profile_chunks(chat)?;
        let mut deleted = 0;
        let mut rest = updates;
        // Every touched chunk is read before `changes` is touched.
        let mut replaced: Vec<&ChunkPointer> = Vec::new();
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
            let old = match self.profile_chunk_at(chat, chunk.location) {
                Ok(old) => old,
                Err(e) if unreadable == Unreadable::Drop => {
                    tracing::warn!(chat, first_user = chunk.first_user, error = %e, "dropped an unreadable profile chunk");
                    replaced.push(chunk);
                    continue;
                }
                Err(e) => {
                    return Err(self.corrupt_msg(format!(
                        "the profiles of chat {chat} from user {} on: {e}; `chatkeeper verify \
                         --repair` drops them",
                        chunk.first_user
                    )))
                }
            };
            let (merged, gone) = merge_entries(&old, mine);
            if gone == 0 && merged.len() == old.len() && merged.iter().eq(old.iter()) {
                continue;
            }
            deleted += gone;
            replaced.push(chunk);
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
        let locations = if pieces.is_empty() {
            Vec::new()
        } else {
            self.profiles_log
                .append(pieces.iter().map(|(_, bytes)| bytes.as_slice()))?
        };
        for chunk in replaced {
            changes.batch.remove(chunk.key.clone());
            changes.released.push((chat, chunk.location));
        }
        for ((first_user, _), location) in pieces.iter().zip(locations) {
            changes.written.push((chat, location));
            changes.batch.insert(
                &layout::profile_chunk_key(chat, *first_user)[..],
                codec::encode(&location),
            );
        }
        Ok(deleted)
    }

    /// The group commit's part, after a sync: settles a step of the profiles' sled records into
    /// chunks when enough piled up, and erases what deletions left to erase. A running backup
    /// postpones both.
    pub(super) fn maintain_profiles(&self) -> Result<()> {
        let seen = self.profiles.unsettled.load(Ordering::Relaxed);
        let settle = seen >= SETTLE_AFTER;
        let erase = !lock(&self.profiles.erase).chats.is_empty();
        if !settle && !erase {
            return Ok(());
        }
        let Ok(_gate) = self.rewrites.try_read() else {
            return Ok(());
        };
        let settled = if settle {
            let from = lock(&self.profiles.settle_cursor).clone();
            let step = {
                let _one = lock(&self.profiles.lock);
                self.settle_locked(None, None, SETTLE_STEP, from)
            };
            step.map(|step| {
                let reached_end = step.scanned < SETTLE_STEP;
                *lock(&self.profiles.settle_cursor) = if reached_end { None } else { step.last };
                // At the end of the records what was counted is settled (or cannot be: records
                // of a chat with a damaged chunk), and only writes since count; before it, the
                // next commit goes on from the cursor.
                if reached_end {
                    let _ = self.profiles.unsettled.fetch_update(
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                        |n| Some(n.saturating_sub(seen)),
                    );
                }
            })
        } else {
            Ok(())
        };
        settled.and(self.erase_owed())
    }

    /// Erases the dead chunks of the queued chats (the caller holds the rewrite gate). Chats
    /// leave the queue only once erased; a failure leaves them for the next group commit.
    fn erase_owed(&self) -> Result<()> {
        let chats = lock(&self.profiles.erase).chats.clone();
        if chats.is_empty() {
            return Ok(());
        }
        self.erase_dead_profiles(&chats)?;
        let mut queue = lock(&self.profiles.erase);
        queue.chats.retain(|c| !chats.contains(c));
        if queue.chats.is_empty() && queue.in_flight == 0 {
            self.db
                .remove(layout::meta_key(ERASE_PENDING))
                .map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// At open: erases what deletions owed when the process ended (every profiles segment with
    /// dead chunks: which chats is not kept). A failure is logged and left for the next open,
    /// so that it never keeps the store from opening.
    pub(super) fn erase_queued_profiles(&self) -> Result<()> {
        let marker = layout::meta_key(ERASE_PENDING);
        if !self.db.contains_key(&marker).map_err(|e| self.io(e))? {
            return Ok(());
        }
        match self.erase_all_dead_profiles() {
            Ok(()) => {
                self.db.remove(&marker).map_err(|e| self.io(e))?;
                tracing::info!("erased the profiles deleted before the last shutdown");
            }
            Err(e) => {
                tracing::error!(error = %e, "erasing deleted profiles failed; the next open retries")
            }
        }
        Ok(())
    }

    /// At close: erases what is queued (no backup runs any more).
    pub(super) fn erase_profiles_at_close(&self) -> Result<()> {
        let _gate = self.rewrites.read().expect("rewrite gate");
        self.erase_owed()
    }

    /// Moves up to `limit` sled records of profiles (of `chat` and `user`, or all) into chunks
    /// and removes them; a chat whose chunks cannot be read keeps its records (logged). The caller holds the profile lock, which every other
    /// change of chunks and removal of records takes: the records read are current, and only a
    /// live write (which takes no lock) can replace one meanwhile — the compare-and-swap then
    /// keeps the newer record.
    fn settle_locked(
        &self,
        chat: Option<ChatId>,
        user: Option<UserId>,
        limit: usize,
        after: Option<sled::IVec>,
    ) -> Result<SettleStep> {
        let prefix = SettingKey::profile_prefix(chat);
        let start = match after {
            // The smallest key after the cursor.
            Some(key) => [key.as_ref(), &[0]].concat(),
            None => prefix.clone(),
        };
        let mut records: Vec<(ChatId, UserId, sled::IVec, sled::IVec)> = Vec::new();
        let mut last = None;
        for item in self.db.range(start..) {
            let (key, value) = item.map_err(|e| self.io(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            last = Some(key.clone());
            let Some((c, u)) = SettingKey::decode_profile(&key) else {
                tracing::warn!(
                    ?key,
                    "a profile record's key is malformed; it is left alone"
                );
                continue;
            };
            if user.is_none_or(|x| x == u) {
                records.push((c, u, key, value));
                if records.len() == limit {
                    break;
                }
            }
        }
        if records.is_empty() {
            return Ok(SettleStep::default());
        }
        let settled: Vec<ChatId> = self.change_chunks(|changes| {
            let mut settled = Vec::new();
            for group in records.chunk_by(|a, b| a.0 == b.0) {
                let chat = group[0].0;
                let updates: Vec<Update> = group
                    .iter()
                    .map(|(_, u, _, v)| (*u, Some(v.to_vec())))
                    .collect();
                match self.merge_profiles(chat, &updates, changes, Unreadable::Fail) {
                    Ok(_) => settled.push(chat),
                    Err(e) => {
                        tracing::warn!(chat, error = %e, "profiles of a chat not settled");
                    }
                }
            }
            Ok(settled)
        })?;
        let mut moved = 0;
        for (chat, _, key, value) in &records {
            if settled.binary_search(chat).is_ok() {
                moved += 1;
                self.db
                    .compare_and_swap(key, Some(value), None::<&[u8]>)
                    .map_err(|e| self.io(e))?
                    .ok();
            }
        }
        tracing::debug!(profiles = moved, "settled profiles into chunks");
        Ok(SettleStep {
            scanned: records.len(),
            moved,
            last,
        })
    }

    /// Settles every profile record into chunks (the conversion from store format 2), a step at
    /// a time; returns how many it moved.
    pub(super) fn settle_all_profiles(&self) -> Result<usize> {
        let (mut moved, mut from) = (0, None);
        loop {
            let step = {
                let _one = lock(&self.profiles.lock);
                self.settle_locked(None, None, SETTLE_STEP, from)?
            };
            moved += step.moved;
            if step.scanned < SETTLE_STEP {
                return Ok(moved);
            }
            from = step.last;
            tracing::info!(
                profiles = moved,
                "converting: profiles moved to the profiles log"
            );
        }
    }

    /// Deletes the profiles of `user` (everyone when `None`) in `chat` (every chat when `None`),
    /// records and chunks, then erases their bytes from the profiles log (at the next group
    /// commit if a backup is running). Returns how many. Callers serialize it with live writes
    /// of the same profiles, or one written meanwhile may be counted twice.
    pub(super) fn remove_profiles(
        &self,
        chat: Option<ChatId>,
        user: Option<UserId>,
    ) -> Result<u64> {
        let mut affected: HashSet<ChatId> = HashSet::new();
        lock(&self.profiles.erase).in_flight += 1;
        let deleted = (|| {
            let _one = lock(&self.profiles.lock);
            // The records are settled into the chunks first, so that each profile is counted
            // once.
            self.settle_locked(chat, user, usize::MAX, None)?;
            let chats: Vec<ChatId> = match chat {
                Some(chat) => vec![chat],
                None => {
                    let mut chats: Vec<ChatId> = Vec::new();
                    for pointer in self.valid_profile_chunks() {
                        let pointer = pointer?;
                        if chats.last() != Some(&pointer.chat) {
                            chats.push(pointer.chat);
                        }
                    }
                    chats
                }
            };
            self.change_chunks(|changes| {
                let mut deleted = 0;
                // Users of chunks dropped whole, so that a record of one counts once.
                let mut in_dropped: HashSet<(ChatId, UserId)> = HashSet::new();
                for chat in chats {
                    let before = changes.released.len();
                    match user {
                        Some(user) => {
                            deleted += self.merge_profiles(
                                chat,
                                &[(user, None)],
                                changes,
                                Unreadable::Drop,
                            )?;
                        }
                        None => {
                            for chunk in self.chat_profile_chunks(chat)? {
                                // An unreadable chunk goes too; it counts as none.
                                if let Ok(entries) = self.profile_chunk_at(chat, chunk.location) {
                                    deleted += entries.len() as u64;
                                    in_dropped.extend(entries.iter().map(|(u, _)| (chat, *u)));
                                }
                                changes.released.push((chat, chunk.location));
                            }
                            // Every pointer of the chat, malformed ones too.
                            let prefix = layout::chat_prefix(layout::PROFILE_CHUNK, chat);
                            for key in self.db.scan_prefix(prefix).keys() {
                                changes.batch.remove(key.map_err(|e| self.io(e))?);
                            }
                        }
                    }
                    if changes.released.len() > before {
                        affected.insert(chat);
                    }
                }
                // Records left: those of chats that could not be settled, and any written
                // since.
                for item in self.db.scan_prefix(SettingKey::profile_prefix(chat)) {
                    let key = item.map_err(|e| self.io(e))?.0;
                    if let Some((c, u)) = SettingKey::decode_profile(&key) {
                        if user.is_none_or(|x| x == u) {
                            changes.batch.remove(key);
                            deleted += u64::from(!in_dropped.contains(&(c, u)));
                            affected.insert(c);
                        }
                    }
                }
                if !affected.is_empty() {
                    // The erase is owed from the moment the deletion is applied.
                    changes
                        .batch
                        .insert(layout::meta_key(ERASE_PENDING), &[][..]);
                }
                Ok(deleted)
            })
        })();
        {
            let mut queue = lock(&self.profiles.erase);
            queue.in_flight -= 1;
            queue.chats.extend(affected);
        }
        let deleted = deleted?;
        // A running backup holds the gate: the group commit erases after it. An erase that
        // fails stays queued, and the deletion stands.
        if let Ok(_gate) = self.rewrites.try_read() {
            if let Err(e) = self.erase_owed() {
                tracing::error!(error = %e, "erasing deleted profiles failed; retrying at the next group commit");
            }
        }
        Ok(deleted)
    }
}

/// Chunk changes being prepared under the profile lock (see [`Shared::change_chunks`]).
#[derive(Default)]
struct ChunkChanges {
    batch: sled::Batch,
    /// Chunks appended: live once the batch is applied.
    written: Vec<(ChatId, Location)>,
    /// Chunks replaced: dead once the batch is applied.
    released: Vec<(ChatId, Location)>,
}

/// What a settle step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct SettleStep {
    /// Records looked at.
    scanned: usize,
    /// Records moved into chunks.
    moved: usize,
    /// The last key looked at: where a next step goes on.
    last: Option<sled::IVec>,
}

/// An index marker (`M erase-profiles`): deleted profiles' bytes are still to be erased.
const ERASE_PENDING: &str = "erase-profiles";

/// What a merge does with a chunk it cannot read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unreadable {
    Fail,
    Drop,
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

    /// Drops the pointers of profile chunks that cannot be read, or do not parse (repair):
    /// those profiles are lost and start again from the next message. Notes each in `dropped`.
    /// The caller holds the profile lock.
    pub(super) fn drop_unreadable_profiles(&self, dropped: &mut Vec<String>) -> Result<()> {
        self.change_chunks(|changes| {
            for item in self.db.scan_prefix([layout::PROFILE_CHUNK]) {
                let (key, value) = item.map_err(|e| self.io(e))?;
                let Ok(pointer) = self.profile_pointer(Ok((key.clone(), value))) else {
                    dropped.push(format!("dropped a malformed profile chunk pointer {key:?}"));
                    changes.batch.remove(key);
                    continue;
                };
                if let Err(e) = self.profile_chunk_at(pointer.chat, pointer.location) {
                    dropped.push(format!(
                        "chat {}: dropped the profiles of user {} on ({e})",
                        pointer.chat, pointer.first_user
                    ));
                    changes.batch.remove(pointer.key);
                    changes.released.push((pointer.chat, pointer.location));
                }
            }
            Ok(())
        })
    }

    /// Forgets every decoded chunk (a repair reloads the logs).
    pub(super) fn clear_profile_cache(&self) {
        lock(&self.profiles.cache).clear();
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

    fn profile_result(
        store: &Store,
        chat: ChatId,
        user: UserId,
    ) -> crate::store::Result<Option<(u64, String)>> {
        store.setting(SettingKey::Profile { chat, user })
    }

    /// How many times `needle` occurs in the profiles log's files under `dir`.
    /// Writes 50 profiles of `chat` holding `marker` twice (so that old chunks are left dead),
    /// then deletes them while a backup holds the rewrite gate: their erase is put off.
    fn erase_while_a_backup_runs(store: &Store, chat: ChatId, marker: &str) {
        for round in 0..2u64 {
            let value = (round, marker.to_string());
            store
                .put_profiles((0..50).map(|u| ((chat, u), &value)))
                .unwrap();
        }
        let _backup = store.shared.rewrites.write().unwrap();
        store.remove_profiles(Some(chat), None).unwrap();
    }

    fn in_profiles_log(dir: &std::path::Path, needle: &[u8]) -> usize {
        std::fs::read_dir(dir.join("profiles"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .map(|b| b.windows(needle.len()).filter(|w| *w == needle).count())
            .sum()
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
        let scanned = {
            let _one = lock(&store.shared.profiles.lock);
            store
                .shared
                .settle_locked(None, None, SETTLE_STEP, None)
                .unwrap()
        };
        assert_eq!((scanned.scanned, scanned.moved), (15, 15));
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

    /// A store with 100 profiles in one chat, a byte of one chunk flipped; returns the users
    /// whose profile reads fail, after checking the error names the way out.
    fn damaged(dir: &std::path::Path) -> (Store, Vec<UserId>) {
        damaged_at(dir, |len| len / 2)
    }

    /// [`damaged`], flipping the byte at `at(file length)`.
    fn damaged_at(dir: &std::path::Path, at: impl Fn(usize) -> usize) -> (Store, Vec<UserId>) {
        let store = open(dir);
        let value = (7u64, "x".to_string());
        store
            .put_profiles((0..100).map(|u| ((CHATS[0], u), &value)))
            .unwrap();
        store.flush().unwrap();
        drop(store);
        // Flip a byte of the profiles log.
        let segment = std::fs::read_dir(dir.join("profiles"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .next()
            .unwrap();
        let mut bytes = std::fs::read(&segment).unwrap();
        let at = at(bytes.len());
        bytes[at] ^= 0xff;
        std::fs::write(&segment, bytes).unwrap();
        let store = open(dir);
        let mut damaged = Vec::new();
        for u in 0..100 {
            if let Err(e) = profile_result(&store, CHATS[0], u) {
                assert!(e.to_string().contains("verify --repair"), "{e}");
                damaged.push(u);
            }
        }
        assert!((1..100).contains(&damaged.len()), "{damaged:?} unreadable");
        assert!(!store.verify().unwrap().is_clean());
        (store, damaged)
    }

    #[test]
    fn a_damaged_chunk_is_a_clear_error_and_repair_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let (store, damaged) = damaged(dir.path());
        let report = store.repair().unwrap();
        assert!(report
            .problems
            .iter()
            .any(|p| p.contains("dropped the profiles")));
        assert!(store.verify().unwrap().is_clean());
        for u in 0..100 {
            assert_eq!(
                profile(&store, CHATS[0], u).is_some(),
                !damaged.contains(&u)
            );
        }
    }

    #[test]
    fn a_damaged_chunk_stops_neither_other_chats_settling_nor_a_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let (store, damaged) = damaged(dir.path());
        let value = (8u64, "y".to_string());
        let victim = damaged[0];
        for (chat, user) in [(CHATS[0], victim), (CHATS[1], 5)] {
            store
                .put_setting(SettingKey::Profile { chat, user }, &value)
                .unwrap();
        }
        {
            let _one = lock(&store.shared.profiles.lock);
            let step = store
                .shared
                .settle_locked(None, None, SETTLE_STEP, None)
                .unwrap();
            assert_eq!((step.scanned, step.moved), (2, 1));
        }
        // The damaged chat's record stays a record (and is read); the other chat's settled.
        assert_eq!(records(&store), 1);
        assert_eq!(profile(&store, CHATS[0], victim), Some(value.clone()));
        assert_eq!(profile(&store, CHATS[1], 5), Some(value));
        // Deleting someone whose chunk is damaged drops that chunk whole.
        assert_eq!(store.remove_profiles(None, Some(victim)).unwrap(), 1);
        assert_eq!(records(&store), 0);
        assert_eq!(profile(&store, CHATS[0], victim), None);
        assert!(store.verify().unwrap().is_clean());
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

    #[test]
    fn a_deletion_during_a_backup_does_not_wait_and_is_erased_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let secret = |u: UserId| format!("marker-{u}-marker");
        let values: Vec<(u64, String)> = (0..100).map(|u| (u, secret(u as i64))).collect();
        // Twice, so that the first copies are dead and segments hold both.
        for round in 0..2 {
            let values: Vec<(u64, String)> =
                values.iter().map(|(u, v)| (u + round, v.clone())).collect();
            store
                .put_profiles((0..100).map(|u| ((CHATS[0], u), &values[u as usize])))
                .unwrap();
        }
        let on_disk = |needle: &str| in_profiles_log(dir.path(), needle.as_bytes());
        assert!(on_disk(&secret(42)) >= 2);
        {
            // A backup holds the rewrite gate.
            let _backup = store.shared.rewrites.write().unwrap();
            assert_eq!(store.remove_profiles(None, Some(42)).unwrap(), 1);
            assert_eq!(profile(&store, CHATS[0], 42), None);
            assert!(on_disk(&secret(42)) > 0, "erased only after the backup");
            store.shared.maintain_profiles().unwrap();
            assert!(on_disk(&secret(42)) > 0);
        }
        store.shared.maintain_profiles().unwrap();
        assert_eq!(on_disk(&secret(42)), 0);
        assert!(on_disk(&secret(41)) > 0);
        assert!(store.verify().unwrap().is_clean());
    }

    #[test]
    fn settles_come_after_many_writes_not_after_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let unsettled = || store.shared.profiles.unsettled.load(Ordering::Relaxed);
        // The count an open starts from is dropped by the first look.
        store.shared.maintain_profiles().unwrap();
        assert_eq!(unsettled(), 0);
        // One person writing 2,000 times is one record: settled once, and then nothing is due.
        for n in 0..2_000u64 {
            store
                .put_setting(
                    SettingKey::Profile {
                        chat: CHATS[0],
                        user: 1,
                    },
                    &n,
                )
                .unwrap();
        }
        assert_eq!(unsettled(), 2_000);
        store.shared.maintain_profiles().unwrap();
        assert_eq!(records(&store), 0);
        assert_eq!(unsettled(), 0);
        for n in 0..(SETTLE_AFTER - 1) {
            store
                .put_setting(
                    SettingKey::Profile {
                        chat: CHATS[0],
                        user: n as i64,
                    },
                    &n,
                )
                .unwrap();
        }
        store.shared.maintain_profiles().unwrap();
        assert_eq!(records(&store) as u64, SETTLE_AFTER - 1, "not due yet");
    }

    #[test]
    fn an_erase_the_process_did_not_get_to_runs_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        erase_while_a_backup_runs(&store, CHATS[0], "marker-7-marker");
        store.flush().unwrap();
        // As if the process ended before the group commit erased them.
        lock(&store.shared.profiles.erase).chats.clear();
        let on_disk = || in_profiles_log(dir.path(), b"marker-7-marker");
        assert!(on_disk() > 0);
        drop(store);
        let store = open(dir.path());
        assert_eq!(on_disk(), 0);
        assert!(store.verify().unwrap().is_clean());
        let marker = layout::meta_key(ERASE_PENDING);
        assert!(!store.shared.db.contains_key(marker).unwrap());
    }

    #[test]
    fn an_erase_put_off_by_a_backup_is_done_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        erase_while_a_backup_runs(&store, CHATS[1], "marker-8-marker");
        let marker = layout::meta_key(ERASE_PENDING);
        assert!(store.shared.db.contains_key(&marker).unwrap());
        drop(store);
        assert_eq!(in_profiles_log(dir.path(), b"marker-8-marker"), 0);
        let store = open(dir.path());
        assert!(!store.shared.db.contains_key(&marker).unwrap());
    }

    #[test]
    fn records_that_cannot_settle_do_not_hold_back_later_chats() {
        let dir = tempfile::tempdir().unwrap();
        // The last chunk is damaged: every user after its first maps to it.
        let (store, damaged) = damaged_at(dir.path(), |len| len - 3);
        assert!(damaged.contains(&99));
        let value = 5u64;
        store
            .put_settings((1_000..1_000 + SETTLE_STEP as i64 + 10).map(|u| {
                (
                    SettingKey::Profile {
                        chat: CHATS[0],
                        user: u,
                    },
                    &value,
                )
            }))
            .unwrap();
        store
            .put_settings((0..10).map(|u| {
                (
                    SettingKey::Profile {
                        chat: CHATS[1],
                        user: u,
                    },
                    &value,
                )
            }))
            .unwrap();
        // The damaged chat sorts first and fills a whole step; the next step goes on after it.
        for _ in 0..3 {
            store.shared.maintain_profiles().unwrap();
        }
        assert_eq!(
            records(&store),
            SETTLE_STEP + 10,
            "only the other chat's settled"
        );
        assert_eq!(store.shared.profiles.unsettled.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn erasing_beside_a_damaged_chunk_drops_it_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, damaged) = damaged(dir.path());
        let readable = (0..100).find(|u| !damaged.contains(u)).unwrap();
        // Its chunk shares the segment with the damaged one, which the erase compacts.
        assert_eq!(
            store
                .remove_profiles(Some(CHATS[0]), Some(readable))
                .unwrap(),
            1
        );
        assert!(lock(&store.shared.profiles.erase).chats.is_empty());
        assert!(store.verify().unwrap().is_clean());
        for u in 0..100 {
            let kept = u != readable && !damaged.contains(&u);
            assert_eq!(profile(&store, CHATS[0], u).is_some(), kept, "{u}");
        }
    }
}
