//! Everything that changes the store.
//!
//! New messages after a chat's last sealed block take the fast path: memory only, under the chat's
//! lock. Everything that rewrites sealed blocks (edits of old messages, history older than what is
//! sealed, deletions, retention) takes the writer lock first and stages all of a chat's changes —
//! blocks, directory, pending postings, tail segments, checkpoint — into one atomic sled batch.

use super::chat::{BlockMeta, ChatState, MAX_BLOCK_LEN, SEAL_LEN};
use super::codec::{self, key_of, Compressor};
use super::counters::Counters;
use super::keys;
use super::model::{ChatId, ChatInfo, Message, MessageId, MessageRef, Timestamp, UserId, UserInfo};
use super::postings::{self, BlockRefs, PostingRef};
use super::{lock, posting_of, Commit, Result, Shared, Store};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, RwLockReadGuard};
use std::time::Instant;

/// Tail segments a chat may have before its tail is rewritten as one.
const MAX_SEGMENTS: usize = 16;
/// Seals between checkpoint writes (each seal would otherwise rewrite the chat's counters).
const CHECKPOINT_EVERY: usize = 16;
/// A user's last postings chunk smaller than this takes in new refs instead of a new chunk.
const SMALL_CHUNK_REFS: usize = 256;
/// A tail this long is sealed by its writer instead of waiting for the group commit: a hard cap
/// on memory. Well above what arrives during one commit (up to ~150 ms for hundreds of changed
/// chats), so that writers do not wait for commits; the group commit is woken at two blocks.
const MAX_TAIL: usize = 64 * SEAL_LEN;
/// Sealed blocks needed before a compression dictionary is trained (blocks sealed before keep
/// plain compression).
const DICTIONARY_AFTER_BLOCKS: usize = 64;
/// Frames the dictionary is trained on.
const DICTIONARY_SAMPLES: usize = 512;
/// Refs per postings chunk at most.
const MAX_CHUNK_REFS: usize = 4096;

/// The guards of [`Shared::lock_for_rewrite`].
pub(super) type RewriteLocks<'a> = (RwLockReadGuard<'a, ()>, MutexGuard<'a, ()>);

/// Messages encoded ahead of a write, outside the chat's lock.
pub(super) struct EncodedBlock {
    messages: Vec<MessageRef>,
    bytes: Vec<u8>,
}

/// How a chat is written: what [`Shared::prepare`] encoded ahead, and what else to write.
#[derive(Default)]
pub(super) struct WritePlan {
    blocks: Vec<EncodedBlock>,
    segment: Option<EncodedBlock>,
    /// Write the checkpoint even if few blocks were sealed since the last one.
    checkpoint_now: bool,
    /// Write the unsaved tail records now. Otherwise they wait for the group commit, unless the
    /// segments on disk are stale: then the tail is rewritten in the same batch, or a sealed
    /// message could come back from an old segment after a crash.
    persist_tail: bool,
}

/// Whether `list` starts with exactly the messages of `prefix` (the same records, not equal ones).
fn starts_with(list: &[MessageRef], prefix: &[MessageRef]) -> bool {
    list.len() >= prefix.len() && list.iter().zip(prefix).all(|(a, b)| Arc::ptr_eq(a, b))
}

/// Changes to one sealed block.
#[derive(Default)]
pub(super) struct BlockEdit {
    remove_ids: HashSet<MessageId>,
    remove_before: Option<Timestamp>,
    insert: Vec<MessageRef>,
}

impl Store {
    /// Stores a message, or replaces the stored message with the same `(chat, message id)` (an
    /// edit). Counters follow. Durable after the next group commit or [`Store::flush`].
    pub fn save_message(&self, message: Message) -> Result<()> {
        let message = Arc::new(message);
        let handle = self.shared.chat_or_new(message.chat_id);
        let tail_len = {
            let mut chat = lock(&handle);
            if self.shared.upsert_fast(&mut chat, &message) {
                Some(chat.tail.len())
            } else {
                None
            }
        };
        match tail_len {
            Some(len) if len < MAX_TAIL => {
                if len == 2 * SEAL_LEN {
                    self.shared.wake_flusher();
                }
                Ok(())
            }
            // Writers outran the group commit: seal now to keep memory bounded.
            Some(_) => {
                let _writer = lock(&self.shared.writer);
                let plan = self.shared.prepare(&handle)?;
                self.shared
                    .write_chat_with(&mut lock(&handle), BTreeMap::new(), None, plan)
            }
            None => {
                let _locks = self.shared.lock_for_rewrite();
                let mut chat = lock(&handle);
                self.shared.upsert_slow(&mut chat, vec![message])
            }
        }
    }

    /// Stores many messages (the import path): like [`Store::save_message`] for each, but sealing
    /// inline and writing each chat's changes in one batch. Durable after [`Store::flush`].
    pub fn save_batch(&self, messages: Vec<Message>) -> Result<()> {
        let mut by_chat: HashMap<ChatId, Vec<MessageRef>> = HashMap::new();
        for m in messages {
            by_chat.entry(m.chat_id).or_default().push(Arc::new(m));
        }
        for (chat_id, mut batch) in by_chat {
            batch.sort_by_key(|m| key_of(m));
            let handle = self.shared.chat_or_new(chat_id);
            // New messages only touch memory: no store-wide lock, so a running backup (which
            // holds the rewrite gate) does not stall live recording.
            let (slow, seal) = {
                let mut chat = lock(&handle);
                let slow: Vec<MessageRef> = batch
                    .into_iter()
                    .filter(|m| !self.shared.upsert_fast(&mut chat, m))
                    .collect();
                (slow, chat.tail.len() >= SEAL_LEN)
            };
            if !slow.is_empty() {
                let _locks = self.shared.lock_for_rewrite();
                self.shared.upsert_slow(&mut lock(&handle), slow)?;
            } else if seal {
                // Seal now to keep memory flat; a short tail waits for the group commit.
                let _writer = lock(&self.shared.writer);
                let plan = self.shared.prepare(&handle)?;
                self.shared
                    .write_chat_with(&mut lock(&handle), BTreeMap::new(), None, plan)?;
            }
        }
        Ok(())
    }

    /// Records a chat's title and type.
    pub fn set_chat_info(&self, chat: ChatId, info: ChatInfo) -> Result<()> {
        let handle = self.shared.chat_or_new(chat);
        let mut state = lock(&handle);
        if state.info.as_ref() != Some(&info) {
            self.shared
                .db
                .insert(
                    keys::chat_prefix(keys::CHAT_INFO, chat),
                    codec::encode(&info),
                )
                .map_err(|e| self.shared.io(e))?;
            state.info = Some(info);
        }
        Ok(())
    }

    /// Records a user's names (messages record the display name on their own). Unchanged names
    /// write nothing, so callers may call this for every message.
    pub fn set_user_info(&self, user: UserId, info: UserInfo) -> Result<()> {
        if self.shared.stored_user(user).as_ref() == Some(&info) {
            return Ok(());
        }
        self.shared
            .db
            .insert(
                keys::user_prefix(keys::USER_INFO, user),
                codec::encode(&info),
            )
            .map_err(|e| self.shared.io(e))?;
        let mut shard = self.shared.user_shard(user);
        if let Some(entry) = shard.get_mut(&user) {
            entry.name = Arc::from(info.display_name.as_str());
        }
        Ok(())
    }

    /// Deletes every message of `user` in every chat, with their postings, counters and name.
    /// Returns how many messages were deleted.
    pub fn delete_user(&self, user: UserId) -> Result<u64> {
        self.shared.delete_user(user, None)
    }

    /// Deletes the messages of `user` in one chat. Returns how many were deleted.
    pub fn delete_user_in_chat(&self, user: UserId, chat: ChatId) -> Result<u64> {
        self.shared.delete_user(user, Some(chat))
    }

    /// Deletes every message older than `time` (retention). Returns how many were deleted.
    pub fn purge_before(&self, time: Timestamp) -> Result<u64> {
        self.shared.purge(None, time)
    }

    /// Deletes every message of one chat, with its counters, postings and title (an admin's
    /// `/purge_chat`). Returns how many messages were deleted.
    pub fn purge_chat(&self, chat: ChatId) -> Result<u64> {
        let purged = self.shared.purge(Some(chat), Timestamp::MAX)?;
        if let Some(handle) = self.shared.chat(chat) {
            let mut state = lock(&handle);
            self.shared
                .db
                .remove(keys::chat_prefix(keys::CHAT_INFO, chat))
                .map_err(|e| self.shared.io(e))?;
            state.info = None;
        }
        Ok(purged)
    }
}

impl Shared {
    /// The locks of code that may rewrite sealed blocks, in the store's one lock order: the
    /// rewrite gate (held shared, so that a backup's block list stays valid), then the writer
    /// lock; chat locks come after both.
    pub(super) fn lock_for_rewrite(&self) -> RewriteLocks<'_> {
        let gate = self.rewrites.read().expect("rewrite gate");
        (gate, lock(&self.writer))
    }

    /// Queues a chat for the next group commit.
    fn mark_dirty(&self, chat: &mut ChatState) {
        if !chat.dirty {
            chat.dirty = true;
            lock(&self.dirty).push(chat.id);
        }
    }

    /// Counts (or uncounts) a message everywhere counters live.
    fn account(&self, chat: &mut ChatState, m: &MessageRef, added: bool, in_tail: bool) {
        let stored_before = chat.counters.total + chat.counters.service;
        let delta = if added {
            chat.counters.add(m)
        } else {
            chat.counters.remove(m)
        };
        let sign: i64 = if added { 1 } else { -1 };
        let total = if m.counts_for_users() {
            &self.totals.messages
        } else {
            &self.totals.service
        };
        if added {
            total.fetch_add(1, Ordering::Relaxed);
        } else {
            total.fetch_sub(1, Ordering::Relaxed);
        }
        let stored_after = chat.counters.total + chat.counters.service;
        if stored_before == 0 && stored_after > 0 {
            self.totals.chats.fetch_add(1, Ordering::Relaxed);
        } else if stored_before > 0 && stored_after == 0 {
            self.totals.chats.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(d) = delta {
            if added {
                let count = chat.counters.users.get(d.user).unwrap_or(0);
                chat.top.increased(d.user, count);
            } else {
                chat.top.decreased();
            }
            self.user_count_changed(d.user, added.then_some(m.sender_name.as_str()), sign);
        }
        if in_tail {
            if let Some(user) = m.user_id {
                if added {
                    self.postings.add_unsealed(user, posting_of(m));
                } else {
                    self.postings.remove_unsealed(user, posting_of(m));
                }
            }
        }
        if added {
            chat.max_id = chat.max_id.max(m.message_id);
        }
    }

    /// The common case, in memory only: a message after everything sealed, new or replacing a
    /// tail message. Returns false when the message needs the slow path.
    pub(super) fn upsert_fast(&self, chat: &mut ChatState, m: &MessageRef) -> bool {
        if chat.sealed_end().is_some_and(|end| key_of(m) <= end) {
            return false;
        }
        if m.message_id <= chat.max_id {
            if let Some(pos) = chat.tail_position(m.message_id) {
                if chat.tail[pos] == *m {
                    return true;
                }
                let old = chat.tail.remove(pos);
                self.account(chat, &old, false, true);
                // A record under another key could outlive the new one (if that is sealed) and
                // come back at replay: rewrite the tail instead of appending to it.
                if key_of(&old) != key_of(m) {
                    chat.segments_stale = true;
                }
            } else if chat.blocks_may_hold(m.message_id) {
                return false;
            }
        }
        chat.insert_tail(m.clone());
        self.account(chat, m, true, true);
        chat.unsaved.push(m.clone());
        self.mark_dirty(chat);
        true
    }

    /// Messages that touch sealed blocks: edits of sealed messages and history older than the
    /// last sealed message. The writer lock must be held.
    pub(super) fn upsert_slow(
        &self,
        chat: &mut ChatState,
        messages: Vec<MessageRef>,
    ) -> Result<()> {
        let mut edits: BTreeMap<usize, BlockEdit> = BTreeMap::new();
        let mut tail_changed = false;
        let mut latest: HashMap<MessageId, MessageRef> = HashMap::new();
        for m in messages {
            latest.insert(m.message_id, m);
        }
        let mut messages: Vec<MessageRef> = latest.into_values().collect();
        messages.sort_by_key(|m| key_of(m));
        for m in messages {
            if let Some(pos) = chat.tail_position(m.message_id) {
                if chat.tail[pos] == m {
                    continue;
                }
                let old = chat.tail.remove(pos);
                self.account(chat, &old, false, true);
                tail_changed = true;
            } else if chat.blocks_may_hold(m.message_id) {
                if let Some((index, old)) = self.find_sealed(chat, m.message_id)? {
                    if old == m {
                        continue;
                    }
                    edits
                        .entry(index)
                        .or_default()
                        .remove_ids
                        .insert(old.message_id);
                    self.account(chat, &old, false, false);
                }
            }
            match chat.block_for(key_of(&m)) {
                Some(index) if key_of(&m) <= chat.blocks[chat.blocks.len() - 1].last => {
                    self.account(chat, &m, true, false);
                    edits.entry(index).or_default().insert.push(m);
                }
                _ => {
                    chat.insert_tail(m.clone());
                    self.account(chat, &m, true, true);
                    chat.unsaved.push(m);
                }
            }
        }
        if tail_changed {
            chat.unsaved = chat.tail.clone();
            chat.segments_stale = true;
        }
        self.write_chat(chat, edits, None)
    }

    /// Finds a sealed message by id: its block index and the message.
    pub(super) fn find_sealed(
        &self,
        chat: &ChatState,
        id: MessageId,
    ) -> Result<Option<(usize, MessageRef)>> {
        for index in (0..chat.blocks.len()).rev() {
            let meta = &chat.blocks[index];
            if !meta.may_hold_id(id) {
                continue;
            }
            let bytes = self.block_bytes(chat.id, meta)?;
            let view = self.block_view(chat.id, meta, &bytes)?;
            for (fi, frame) in view.header.frames.iter().enumerate() {
                if frame.min_id <= id && id <= frame.max_id {
                    let messages = self.frame_from(chat.id, meta, &view, fi)?;
                    if let Some(m) = messages.iter().find(|m| m.message_id == id) {
                        return Ok(Some((index, m.clone())));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Writes one chat's pending changes in one atomic batch: block edits, newly full blocks,
    /// tail segments and the checkpoint. The writer lock must be held.
    pub(super) fn write_chat(
        &self,
        chat: &mut ChatState,
        edits: BTreeMap<usize, BlockEdit>,
        forget: Option<UserId>,
    ) -> Result<()> {
        self.write_chat_with(chat, edits, forget, WritePlan::default())
    }

    /// [`Shared::write_chat`] following a [`WritePlan`]. With `edits`, the caller holds
    /// [`Shared::lock_for_rewrite`].
    fn write_chat_with(
        &self,
        chat: &mut ChatState,
        edits: BTreeMap<usize, BlockEdit>,
        forget: Option<UserId>,
        plan: WritePlan,
    ) -> Result<()> {
        let rewrite = !edits.is_empty();
        let mut batch = sled::Batch::default();
        let mut effects = Effects::default();
        let end_before = chat.sealed_end();
        if rewrite {
            self.stage_block_edits(chat, edits, forget, &mut batch, &mut effects)?;
            // Tail records of messages sealed before may now sort after the sealed end: only a
            // rewrite of the tail keeps them from coming back at the next open.
            if chat.sealed_end() < end_before {
                chat.segments_stale = true;
            }
        }
        if chat.tail.len() >= SEAL_LEN {
            self.stage_seal(chat, &mut batch, &mut effects, plan.blocks)?;
        }
        if plan.persist_tail || chat.segments_stale {
            self.stage_tail(chat, &mut batch, plan.segment)?;
        }
        if rewrite
            || chat.unchecked_seals >= CHECKPOINT_EVERY
            || (plan.checkpoint_now && chat.unchecked_seals > 0)
        {
            self.stage_checkpoint(chat, &mut batch);
        }
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        effects.apply(self);
        chat.dirty = false;
        if !chat.unsaved.is_empty() {
            self.mark_dirty(chat);
        }
        Ok(())
    }

    /// Writes the chat's checkpoint covering every current block (or drops it if none is left).
    fn stage_checkpoint(&self, chat: &mut ChatState, batch: &mut sled::Batch) {
        let key = keys::chat_prefix(keys::CHECKPOINT, chat.id);
        let covered = chat.blocks.iter().map(|b| b.seq).max().unwrap_or(0);
        if chat.blocks.is_empty() {
            batch.remove(&key);
        } else {
            batch.insert(
                &key,
                codec::encode(&self.sealed_counters(chat).to_checkpoint(covered)),
            );
        }
        chat.checkpoint_seq = covered;
        chat.unchecked_seals = 0;
    }

    /// Counters of the sealed blocks only: everything minus the tail.
    fn sealed_counters(&self, chat: &ChatState) -> Counters {
        let mut sealed = chat.counters.clone();
        for m in &chat.tail {
            sealed.remove(m);
        }
        sealed
    }

    /// Seals full blocks off the front of the tail.
    fn stage_seal(
        &self,
        chat: &mut ChatState,
        batch: &mut sled::Batch,
        effects: &mut Effects,
        prepared: Vec<EncodedBlock>,
    ) -> Result<()> {
        let full = chat.tail.len() / SEAL_LEN * SEAL_LEN;
        let sealed: Vec<MessageRef> = chat.tail.drain(..full).collect();
        let mut prepared = prepared.into_iter();
        for block in sealed.chunks(SEAL_LEN) {
            // Use the encoding made outside the lock if the tail still starts with those messages.
            let bytes = prepared
                .next()
                .filter(|p| p.messages.len() == block.len() && starts_with(block, &p.messages))
                .map(|p| p.bytes);
            let meta = self.stage_block(chat.id, block, bytes, batch, effects, true)?;
            chat.blocks.push(meta);
            for m in block {
                if let Some(user) = m.user_id {
                    self.postings.remove_unsealed(user, posting_of(m));
                }
            }
        }
        self.stats
            .blocks_sealed
            .fetch_add((full / SEAL_LEN) as u64, Ordering::Relaxed);
        chat.unchecked_seals += full / SEAL_LEN;
        // The oldest segments holding only sealed records are obsolete. Only a prefix may go: a
        // later segment can hold the newer record of a message an older one also holds, and
        // removing the newer alone would bring the old record back at replay.
        let end = chat.sealed_end();
        let obsolete = chat
            .segments
            .iter()
            .take_while(|&&(_, max)| end.is_some_and(|end| max <= end))
            .count();
        for (seq, _) in chat.segments.drain(..obsolete) {
            batch.remove(&keys::tail_key(chat.id, seq));
        }
        chat.unsaved
            .retain(|m| end.is_none_or(|end| key_of(m) > end));
        Ok(())
    }

    /// Writes one block with its directory entry and, if its postings are pending, its `Q` record.
    fn stage_block(
        &self,
        chat: ChatId,
        messages: &[MessageRef],
        encoded: Option<Vec<u8>>,
        batch: &mut sled::Batch,
        effects: &mut Effects,
        postings_pending: bool,
    ) -> Result<BlockMeta> {
        let seq = self.next_seq();
        let meta = BlockMeta::describe(messages, seq);
        let bytes = match encoded {
            Some(bytes) => bytes,
            None => self.encode(chat, messages)?,
        };
        batch.insert(&keys::seq_key(keys::BLOCK, seq), bytes);
        batch.insert(
            &keys::block_key(keys::DIRECTORY, chat, meta.first),
            codec::encode(&meta),
        );
        if postings_pending {
            let refs = block_refs(chat, messages);
            batch.insert(
                &keys::seq_key(keys::PENDING_POSTINGS, seq),
                codec::encode(&refs),
            );
            effects.pending_added.push((seq, refs));
        }
        Ok(meta)
    }

    fn encode(&self, chat: ChatId, messages: &[MessageRef]) -> Result<Vec<u8>> {
        codec::encode_block(&self.compressor, chat, messages)
            .map_err(|e| self.corrupt(format!("encoding a block of chat {chat}"), e))
    }

    /// Encodes what the next write of a chat will seal and append, without holding the chat's
    /// lock, so that writers to a busy chat never wait for compression. The writer lock must be
    /// held (nothing else seals meanwhile).
    fn prepare(&self, handle: &Mutex<ChatState>) -> Result<WritePlan> {
        let (chat, ready, unsaved) = {
            let chat = lock(handle);
            let full = chat.tail.len() / SEAL_LEN * SEAL_LEN;
            let end = if full > 0 {
                Some(key_of(&chat.tail[full - 1]))
            } else {
                chat.sealed_end()
            };
            let unsaved: Vec<MessageRef> = chat
                .unsaved
                .iter()
                .filter(|m| end.is_none_or(|end| key_of(m) > end))
                .cloned()
                .collect();
            (chat.id, chat.tail[..full].to_vec(), unsaved)
        };
        let blocks = ready
            .chunks(SEAL_LEN)
            .map(|block| {
                Ok(EncodedBlock {
                    bytes: self.encode(chat, block)?,
                    messages: block.to_vec(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let segment = if unsaved.is_empty() {
            None
        } else {
            Some(EncodedBlock {
                bytes: self.encode(chat, &unsaved)?,
                messages: unsaved,
            })
        };
        Ok(WritePlan {
            blocks,
            segment,
            ..WritePlan::default()
        })
    }

    /// Writes the tail: a new segment with the unsaved records, or, when segments are stale or
    /// too many, one segment with the whole tail in place of all others.
    ///
    /// A segment encoded outside the lock is used if the unsaved records still start with its
    /// records; records that arrived since stay unsaved for the next commit.
    fn stage_tail(
        &self,
        chat: &mut ChatState,
        batch: &mut sled::Batch,
        prepared: Option<EncodedBlock>,
    ) -> Result<()> {
        let rewrite = chat.segments_stale || chat.segments.len() >= MAX_SEGMENTS;
        if rewrite {
            for (seq, _) in chat.segments.drain(..) {
                batch.remove(&keys::tail_key(chat.id, seq));
            }
            chat.unsaved = chat.tail.clone();
        }
        let (records, bytes) =
            match prepared.filter(|p| !rewrite && starts_with(&chat.unsaved, &p.messages)) {
                Some(p) => (chat.unsaved.drain(..p.messages.len()).collect(), p.bytes),
                None => {
                    let records = std::mem::take(&mut chat.unsaved);
                    let bytes = if records.is_empty() {
                        Vec::new()
                    } else {
                        self.encode(chat.id, &records)?
                    };
                    (records, bytes)
                }
            };
        if let Some(max) = records.iter().map(|m| key_of(m)).max() {
            let seq = self.next_seq();
            batch.insert(&keys::tail_key(chat.id, seq), bytes);
            chat.segments.push((seq, max));
        }
        chat.segments_stale = false;
        Ok(())
    }

    /// Rewrites edited blocks: drops removed messages, merges inserted ones, splits what grew
    /// too large and drops what became empty, keeping postings exact.
    fn stage_block_edits(
        &self,
        chat: &mut ChatState,
        edits: BTreeMap<usize, BlockEdit>,
        forget: Option<UserId>,
        batch: &mut sled::Batch,
        effects: &mut Effects,
    ) -> Result<()> {
        let mut chunk_removals: HashMap<UserId, HashSet<PostingRef>> = HashMap::new();
        let mut chunk_additions: HashMap<UserId, Vec<PostingRef>> = HashMap::new();
        let mut replaced: BTreeMap<usize, Vec<BlockMeta>> = BTreeMap::new();
        let pending_blocks = lock(&self.postings.pending).blocks.clone();
        for (index, edit) in edits {
            let meta = chat.blocks[index].clone();
            let old = self.read_block(chat.id, &meta)?;
            let mut kept: Vec<MessageRef> = old
                .iter()
                .filter(|m| {
                    !edit.remove_ids.contains(&m.message_id)
                        && edit.remove_before.is_none_or(|t| m.time >= t)
                })
                .cloned()
                .collect();
            kept.extend(edit.insert);
            kept.sort_by_key(|m| key_of(m));
            batch.remove(&keys::seq_key(keys::BLOCK, meta.seq));
            batch.remove(&keys::block_key(keys::DIRECTORY, chat.id, meta.first));
            let pending = pending_blocks.contains(&meta.seq);
            if pending {
                batch.remove(&keys::seq_key(keys::PENDING_POSTINGS, meta.seq));
                effects
                    .pending_removed
                    .push((meta.seq, block_refs(chat.id, &old)));
            } else {
                let before: HashSet<(UserId, PostingRef)> = user_refs(&old).collect();
                let after: HashSet<(UserId, PostingRef)> = user_refs(&kept).collect();
                for (user, r) in before.difference(&after) {
                    if Some(*user) != forget {
                        chunk_removals.entry(*user).or_default().insert(*r);
                    }
                }
                for (user, r) in after.difference(&before) {
                    chunk_additions.entry(*user).or_default().push(*r);
                }
            }
            let pieces: Vec<&[MessageRef]> = if kept.len() > MAX_BLOCK_LEN {
                kept.chunks(SEAL_LEN).collect()
            } else if kept.is_empty() {
                Vec::new()
            } else {
                vec![&kept[..]]
            };
            let mut metas = Vec::new();
            for piece in pieces {
                metas.push(self.stage_block(chat.id, piece, None, batch, effects, pending)?);
            }
            replaced.insert(index, metas);
        }
        for (index, metas) in replaced.into_iter().rev() {
            chat.blocks.splice(index..=index, metas);
        }
        for (user, removed) in chunk_removals {
            self.stage_chunk_rewrite(user, batch, |r| !removed.contains(r))?;
        }
        for (user, mut added) in chunk_additions {
            added.sort_unstable();
            self.stage_new_chunks(user, &added, batch);
        }
        Ok(())
    }

    /// Rewrites the chunks of `user`, keeping the refs `keep` accepts.
    pub(super) fn stage_chunk_rewrite(
        &self,
        user: UserId,
        batch: &mut sled::Batch,
        keep: impl Fn(&PostingRef) -> bool,
    ) -> Result<()> {
        for item in self.db.scan_prefix(keys::user_prefix(keys::POSTINGS, user)) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let (_, first, seq) = postings::parse_key(&k)
                .ok_or_else(|| self.corrupt_msg("a postings key is malformed"))?;
            let refs =
                postings::decode_chunk(first, &v).map_err(|e| self.corrupt("postings chunk", e))?;
            let kept: Vec<PostingRef> = refs.iter().copied().filter(|r| keep(r)).collect();
            if kept.len() == refs.len() {
                continue;
            }
            batch.remove(k);
            if !kept.is_empty() {
                let (first, bytes) = postings::encode_chunk(&kept);
                batch.insert(&keys::postings_key(user, first, seq), bytes);
            }
        }
        Ok(())
    }

    /// Writes `refs` (sorted) of `user` as new chunks.
    fn stage_new_chunks(&self, user: UserId, refs: &[PostingRef], batch: &mut sled::Batch) {
        for chunk in refs.chunks(MAX_CHUNK_REFS) {
            let (first, bytes) = postings::encode_chunk(chunk);
            batch.insert(&keys::postings_key(user, first, self.next_seq()), bytes);
        }
    }

    /// The group commit: writes every changed chat, trains the dictionary when due, flushes
    /// postings when the buffer is large, then (unless only sealing) syncs.
    pub(super) fn commit(&self, kind: Commit) -> Result<()> {
        let everything = kind == Commit::Close;
        let started = Instant::now();
        // The writer lock is taken chat by chat, so that a bulk writer waits for one chat's
        // write rather than the whole commit.
        {
            let dirty = std::mem::take(&mut *lock(&self.dirty));
            for (i, &id) in dirty.iter().enumerate() {
                let Some(handle) = self.chat(id) else {
                    continue;
                };
                let _writer = lock(&self.writer);
                let plan = WritePlan {
                    checkpoint_now: everything,
                    persist_tail: kind != Commit::Seal,
                    ..self.prepare(&handle)?
                };
                let mut chat = lock(&handle);
                if kind == Commit::Seal && chat.tail.len() < SEAL_LEN {
                    // Only full blocks are worth an early commit; the rest waits for the sync.
                    lock(&self.dirty).push(id);
                    continue;
                }
                let written = self.write_chat_with(&mut chat, BTreeMap::new(), None, plan);
                if let Err(e) = written {
                    // Keep the rest queued for the next attempt.
                    drop(chat);
                    lock(&self.dirty).extend_from_slice(&dirty[i..]);
                    return Err(e);
                }
            }
            if everything {
                for handle in self.all_chats() {
                    let _writer = lock(&self.writer);
                    let mut chat = lock(&handle);
                    if chat.unchecked_seals > 0 {
                        let plan = WritePlan {
                            checkpoint_now: true,
                            persist_tail: true,
                            ..WritePlan::default()
                        };
                        self.write_chat_with(&mut chat, BTreeMap::new(), None, plan)?;
                    }
                }
            }
            let _writer = lock(&self.writer);
            if lock(&self.postings.pending).refs >= postings::FLUSH_REFS {
                self.flush_postings()?;
            }
            let mut names = sled::Batch::default();
            self.stage_renamed(&mut names);
            self.db.apply_batch(names).map_err(|e| self.io(e))?;
        }
        self.maybe_train_dictionary()?;
        if kind == Commit::Seal {
            return Ok(());
        }
        // The sync covers every batch applied above; writers need not wait for the disk.
        self.db.flush().map_err(|e| self.io(e))?;
        self.record_commit(started);
        Ok(())
    }

    /// Writes the pending postings as chunks and drops their `Q` records. A user whose last
    /// chunk is still small gets it extended instead of another small chunk.
    fn flush_postings(&self) -> Result<()> {
        let mut pending = lock(&self.postings.pending);
        let mut batch = sled::Batch::default();
        for (&user, refs) in pending.by_user.iter_mut() {
            // Forward: sled's reverse iteration costs far more than walking a user's few chunks.
            let last = self
                .db
                .scan_prefix(keys::user_prefix(keys::POSTINGS, user))
                .last()
                .transpose()
                .map_err(|e| self.io(e))?;
            if let Some((k, v)) = last {
                let (_, first, _) = postings::parse_key(&k)
                    .ok_or_else(|| self.corrupt_msg("a postings key is malformed"))?;
                let old = postings::decode_chunk(first, &v)
                    .map_err(|e| self.corrupt("postings chunk", e))?;
                if old.len() < SMALL_CHUNK_REFS {
                    batch.remove(k);
                    refs.extend(old);
                }
            }
            refs.sort_unstable();
            self.stage_new_chunks(user, refs, &mut batch);
        }
        for seq in &pending.blocks {
            batch.remove(&keys::seq_key(keys::PENDING_POSTINGS, *seq));
        }
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        *pending = postings::Pending::default();
        Ok(())
    }

    /// Once enough blocks exist, trains a dictionary from them and recompresses them with it.
    fn maybe_train_dictionary(&self) -> Result<()> {
        if self.compressor.current_dictionary() != codec::NO_DICTIONARY {
            return Ok(());
        }
        let chats = self.all_chats();
        let blocks: usize = chats.iter().map(|c| lock(c).blocks.len()).sum();
        let attempted = self.dictionary_attempt.load(Ordering::Relaxed);
        if blocks < DICTIONARY_AFTER_BLOCKS || blocks < attempted * 2 {
            return Ok(());
        }
        self.dictionary_attempt.store(blocks, Ordering::Relaxed);
        let mut samples = Vec::new();
        {
            // Blocks are not rewritten while the writer lock is held.
            let _writer = lock(&self.writer);
            'chats: for handle in &chats {
                let (chat, metas) = {
                    let chat = lock(handle);
                    (chat.id, chat.blocks.clone())
                };
                for meta in &metas {
                    let messages = self.read_block(chat, meta)?;
                    samples.extend(messages.chunks(codec::FRAME_LEN).map(codec::encode_columns));
                    if samples.len() >= DICTIONARY_SAMPLES {
                        break 'chats;
                    }
                }
            }
        }
        // Training takes a while: no lock is held, writers and commits go on.
        let raw = match Compressor::train(&samples) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::info!(error = %e, "no compression dictionary yet; will retry with more data");
                return Ok(());
            }
        };
        let id = 1;
        // Stored before any block can be compressed with it.
        self.db
            .insert(keys::meta_key(&format!("dict/{id}")), codec::encode(&raw))
            .map_err(|e| self.io(e))?;
        self.compressor
            .add_dictionary(id, raw)
            .map_err(|e| self.corrupt("new dictionary", e))?;
        tracing::info!(samples = samples.len(), "trained a compression dictionary");
        Ok(())
    }

    /// Deletes a user's messages in one chat or all, with postings, counters and (for all
    /// chats) the user record.
    fn delete_user(&self, user: UserId, only_chat: Option<ChatId>) -> Result<u64> {
        let _locks = self.lock_for_rewrite();
        let mut refs = self.chunk_refs(user, Timestamp::MIN, Timestamp::MAX)?;
        refs.extend(self.postings.in_memory(user));
        let mut by_chat: BTreeMap<ChatId, Vec<PostingRef>> = BTreeMap::new();
        for r in refs {
            if only_chat.is_none_or(|c| c == r.chat) {
                by_chat.entry(r.chat).or_default().push(r);
            }
        }
        let mut deleted = 0u64;
        for (chat_id, refs) in by_chat {
            let Some(handle) = self.chat(chat_id) else {
                continue;
            };
            let mut chat = lock(&handle);
            deleted +=
                self.remove_from_chat(&mut chat, |m| m.user_id == Some(user), &refs, Some(user))?;
        }
        let mut batch = sled::Batch::default();
        match only_chat {
            None => {
                for item in self.db.scan_prefix(keys::user_prefix(keys::POSTINGS, user)) {
                    batch.remove(item.map_err(|e| self.io(e))?.0);
                }
                batch.remove(&keys::user_prefix(keys::USER_INFO, user));
                self.postings.forget_user(user);
                self.user_shard(user).remove(&user);
            }
            Some(chat) => self.stage_chunk_rewrite(user, &mut batch, |r| r.chat != chat)?,
        }
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(deleted)
    }

    /// Removes the messages `doomed` accepts from a chat's tail and from the sealed blocks that
    /// `refs` point into.
    fn remove_from_chat(
        &self,
        chat: &mut ChatState,
        doomed: impl Fn(&Message) -> bool,
        refs: &[PostingRef],
        forget: Option<UserId>,
    ) -> Result<u64> {
        let mut removed = 0;
        let doomed_tail: Vec<MessageRef> =
            chat.tail.iter().filter(|m| doomed(m)).cloned().collect();
        if !doomed_tail.is_empty() {
            chat.tail.retain(|m| !doomed(m));
            for m in &doomed_tail {
                self.account(chat, m, false, true);
            }
            chat.segments_stale = true;
            removed += doomed_tail.len() as u64;
        }
        let sealed_end = chat.sealed_end();
        let mut edits: BTreeMap<usize, BlockEdit> = BTreeMap::new();
        for r in refs {
            if sealed_end.is_some_and(|end| r.key() <= end) {
                if let Some(index) = chat.block_for(r.key()) {
                    edits.entry(index).or_default();
                }
            }
        }
        for (&index, edit) in edits.iter_mut() {
            for m in self.read_block(chat.id, &chat.blocks[index].clone())? {
                if doomed(&m) {
                    self.account(chat, &m, false, false);
                    edit.remove_ids.insert(m.message_id);
                    removed += 1;
                }
            }
        }
        self.mark_dirty(chat);
        self.write_chat(chat, edits, forget)?;
        Ok(removed)
    }

    /// Drops every message older than `time` (of one chat, or of all), blocks, tails and
    /// postings alike: retention, and with `time = MAX` the purge of a chat.
    fn purge(&self, only_chat: Option<ChatId>, time: Timestamp) -> Result<u64> {
        let _locks = self.lock_for_rewrite();
        let mut purged = 0u64;
        for handle in self.all_chats() {
            let mut chat = lock(&handle);
            if only_chat.is_some_and(|only| only != chat.id) {
                continue;
            }
            let mut edits: BTreeMap<usize, BlockEdit> = BTreeMap::new();
            for (index, meta) in chat.blocks.clone().iter().enumerate() {
                if meta.first.time >= time {
                    break;
                }
                for m in self.read_block(chat.id, meta)? {
                    if m.time < time {
                        self.account(&mut chat, &m, false, false);
                        purged += 1;
                    }
                }
                edits.insert(
                    index,
                    BlockEdit {
                        remove_before: Some(time),
                        ..BlockEdit::default()
                    },
                );
            }
            let old_tail: Vec<MessageRef> = chat
                .tail
                .iter()
                .filter(|m| m.time < time)
                .cloned()
                .collect();
            if edits.is_empty() && old_tail.is_empty() {
                continue;
            }
            for m in &old_tail {
                self.account(&mut chat, m, false, true);
            }
            purged += old_tail.len() as u64;
            if !old_tail.is_empty() {
                chat.tail.retain(|m| m.time >= time);
                chat.segments_stale = true;
            }
            self.write_chat(&mut chat, edits, None)?;
        }
        // Refs of purged messages in chunks of other users: one pass over all chunks.
        let mut batch = sled::Batch::default();
        for item in self.db.scan_prefix([keys::POSTINGS]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let (user, first, seq) = postings::parse_key(&k)
                .ok_or_else(|| self.corrupt_msg("a postings key is malformed"))?;
            if first >= time {
                continue;
            }
            let refs =
                postings::decode_chunk(first, &v).map_err(|e| self.corrupt("postings chunk", e))?;
            let refs_len = refs.len();
            let doomed = |r: &PostingRef| r.time < time && only_chat.is_none_or(|c| c == r.chat);
            let kept: Vec<PostingRef> = refs.into_iter().filter(|r| !doomed(r)).collect();
            if kept.len() == refs_len {
                continue;
            }
            batch.remove(k);
            if !kept.is_empty() {
                let (first, bytes) = postings::encode_chunk(&kept);
                batch.insert(&keys::postings_key(user, first, seq), bytes);
            }
        }
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(purged)
    }
}

/// In-memory changes that follow a successful batch.
#[derive(Default)]
pub(super) struct Effects {
    pending_added: Vec<(u64, BlockRefs)>,
    pending_removed: Vec<(u64, BlockRefs)>,
}

impl Effects {
    fn apply(self, shared: &Shared) {
        let mut pending = lock(&shared.postings.pending);
        for (seq, refs) in &self.pending_removed {
            pending.remove_block(*seq, refs);
        }
        for (seq, refs) in &self.pending_added {
            pending.add_block(*seq, refs);
        }
    }
}

/// The postings of a block's messages.
fn block_refs(chat: ChatId, messages: &[MessageRef]) -> BlockRefs {
    BlockRefs {
        chat,
        refs: messages
            .iter()
            .filter_map(|m| Some((m.user_id?, m.time, m.message_id)))
            .collect(),
    }
}

fn user_refs(messages: &[MessageRef]) -> impl Iterator<Item = (UserId, PostingRef)> + '_ {
    messages
        .iter()
        .filter_map(|m| Some((m.user_id?, posting_of(m))))
}

/// How errors name a block.
pub(super) fn block_name(chat: ChatId, meta: &BlockMeta) -> String {
    format!(
        "block of chat {chat} starting at message {} ({})",
        meta.first.id, meta.first.time
    )
}
