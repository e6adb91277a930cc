//! Rewrites of sealed blocks: edits of old messages, history older than what is sealed,
//! deletions of a user's messages and retention. Each takes the rewrite gate and the writer lock,
//! stages all of a chat's changes (new blocks in the block log, directory, pending postings, tail
//! segments, checkpoint) and applies them as one batch. Deletions then compact the log segments
//! that held the deleted messages, so that their bytes leave the disk, not just the index.

use super::chat::{ChatState, MAX_BLOCK_LEN, SEAL_LEN};
use super::commit::{BlockEdit, IndexWrites, WritePlan};
use super::directory::BlockMeta;
use super::layout;
use super::model::{key_of, ChatId, Message, MessageId, MessageRef, Timestamp, UserId};
use super::postings::PostingRef;
use super::shared::{lock, posting_of, Shared, Store};
use super::Result;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{MutexGuard, RwLockReadGuard};

/// The guards of [`Shared::lock_for_rewrite`].
pub(super) type RewriteLocks<'a> = (RwLockReadGuard<'a, ()>, MutexGuard<'a, ()>);

impl Store {
    /// Deletes every message of `user` in every chat, with their postings, counters and name;
    /// their bytes are gone from the data directory when this returns. Returns how many
    /// messages were deleted.
    pub fn delete_user(&self, user: UserId) -> Result<u64> {
        self.check_thread();
        self.shared.delete_user(user, None)
    }

    /// Deletes the messages of `user` in one chat, bytes included. Returns how many.
    pub fn delete_user_in_chat(&self, user: UserId, chat: ChatId) -> Result<u64> {
        self.check_thread();
        self.shared.delete_user(user, Some(chat))
    }

    /// Deletes every message older than `time` (retention), bytes included. Returns how many.
    pub fn purge_before(&self, time: Timestamp) -> Result<u64> {
        self.check_thread();
        self.shared.purge(None, time)
    }

    /// Deletes every message of one chat, with its counters, postings and title (an admin's
    /// `/purge_chat`), bytes included. Returns how many messages were deleted.
    pub fn purge_chat(&self, chat: ChatId) -> Result<u64> {
        self.check_thread();
        let purged = self.shared.purge(Some(chat), Timestamp::MAX)?;
        if let Some(handle) = self.shared.chat(chat) {
            let mut state = lock(&handle);
            self.shared
                .db
                .remove(layout::chat_prefix(layout::CHAT_INFO, chat))
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

    /// Messages that touch sealed blocks: edits of sealed messages and history older than the
    /// last sealed message. [`Shared::lock_for_rewrite`] must be held. Returns the messages
    /// that were not stored before (edits of stored ones excluded).
    pub(super) fn upsert_slow(
        &self,
        chat: &mut ChatState,
        messages: Vec<MessageRef>,
    ) -> Result<Vec<MessageRef>> {
        let mut edits: BTreeMap<usize, BlockEdit> = BTreeMap::new();
        let mut tail_changed = false;
        let mut fresh = Vec::new();
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
            } else if let Some((index, old)) = chat
                .blocks_may_hold(m.message_id)
                .then(|| self.find_sealed(chat, m.message_id))
                .transpose()?
                .flatten()
            {
                if old == m {
                    continue;
                }
                edits
                    .entry(index)
                    .or_default()
                    .remove_ids
                    .insert(old.message_id);
                self.account(chat, &old, false, false);
            } else {
                fresh.push(m.clone());
            }
            let sealed = chat.sealed_end().is_some_and(|end| key_of(&m) <= end);
            match chat.directory.block_for(key_of(&m), self)? {
                Some(index) if sealed => {
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
        self.write_chat(chat, edits, None, WritePlan::default())?;
        Ok(fresh)
    }

    /// Rewrites edited blocks: drops removed messages, merges inserted ones, splits what grew
    /// too large and drops what became empty, keeping postings exact.
    pub(super) fn stage_block_edits(
        &self,
        chat: &mut ChatState,
        edits: BTreeMap<usize, BlockEdit>,
        forget: Option<UserId>,
    ) -> Result<()> {
        let mut chunk_removals: HashMap<UserId, HashSet<PostingRef>> = HashMap::new();
        let mut chunk_additions: HashMap<UserId, Vec<PostingRef>> = HashMap::new();
        let mut replaced: BTreeMap<usize, Vec<BlockMeta>> = BTreeMap::new();
        for (index, edit) in edits {
            let meta = chat.directory.get_to_change(index, self)?;
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
            let pending = lock(&self.postings.pending).blocks.contains(&meta.seq);
            self.stage_block_removal(chat.id, &meta, &old);
            if !pending {
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
            let encoded = pieces
                .into_iter()
                .map(|piece| Ok((piece, self.encode(chat.id, piece)?)))
                .collect::<Result<Vec<_>>>()?;
            replaced.insert(index, self.stage_blocks(chat.id, &encoded, pending)?);
        }
        // From the last: replacing a block moves only the blocks after it.
        for (index, metas) in replaced.into_iter().rev() {
            chat.directory.replace(index, metas, self)?;
        }
        let mut staged = lock(&self.staged);
        for (user, removed) in chunk_removals {
            let chunks = self.user_chunks(user, Timestamp::MAX);
            self.rewrite_chunks(chunks, &mut *staged, |r| !removed.contains(r))?;
        }
        for (user, mut added) in chunk_additions {
            added.sort_unstable();
            self.write_chunks(user, &added, &mut *staged)?;
        }
        Ok(())
    }

    /// Deletes a user's messages in one chat or all, with postings, counters and (for all
    /// chats) the user record; then compacts the segments that held them.
    fn delete_user(&self, user: UserId, only_chat: Option<ChatId>) -> Result<u64> {
        let (deleted, chats) = {
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
            let mut chats = HashSet::new();
            for (chat_id, refs) in by_chat {
                let Some(handle) = self.chat(chat_id) else {
                    continue;
                };
                let mut chat = lock(&handle);
                deleted += self.remove_from_chat(
                    &mut chat,
                    |m| m.user_id == Some(user),
                    &refs,
                    Some(user),
                )?;
                chats.insert(chat_id);
            }
            self.apply_staged()?;
            {
                let mut staged = lock(&self.staged);
                let batch = &mut *staged;
                match only_chat {
                    None => {
                        for entry in self.user_chunks(user, Timestamp::MAX) {
                            self.drop_chunk(&entry?, batch);
                        }
                        batch.delete(&layout::user_prefix(layout::USER_INFO, user));
                    }
                    Some(chat) => {
                        let chunks = self.user_chunks(user, Timestamp::MAX);
                        self.rewrite_chunks(chunks, batch, |r| r.chat != chat)?
                    }
                }
            }
            self.apply_staged()?;
            if only_chat.is_none() {
                self.postings.forget_user(user);
                self.user_shard(user).remove(&user);
                // A record queued for the next commit would bring their name back.
                lock(&self.renamed).remove(&user);
            }
            self.db.flush().map_err(|e| self.io(e))?;
            (deleted, chats)
        };
        self.erase_deleted(&chats, Some(user))?;
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
                if let Some(index) = chat.directory.block_for(r.key(), self)? {
                    edits.entry(index).or_default();
                }
            }
        }
        for (&index, edit) in edits.iter_mut() {
            let meta = chat.directory.get(index, self)?;
            for m in self.read_block(chat.id, &meta)? {
                if doomed(&m) {
                    self.account(chat, &m, false, false);
                    edit.remove_ids.insert(m.message_id);
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            // A live tail segment may still hold copies of messages sealed since it was
            // written (replay skips them): only a rewrite of the tail leaves no copy behind.
            chat.segments_stale = true;
        }
        self.mark_dirty(chat);
        self.write_chat(chat, edits, forget, WritePlan::default())?;
        Ok(removed)
    }

    /// Drops every message older than `time` (of one chat, or of all), blocks, tails and
    /// postings alike: retention, and with `time = MAX` the purge of a chat.
    fn purge(&self, only_chat: Option<ChatId>, time: Timestamp) -> Result<u64> {
        let (purged, chats) = {
            let _locks = self.lock_for_rewrite();
            let mut purged = 0u64;
            let mut chats = HashSet::new();
            for handle in self.all_chats() {
                let mut chat = lock(&handle);
                if only_chat.is_some_and(|only| only != chat.id) {
                    continue;
                }
                let mut edits: BTreeMap<usize, BlockEdit> = BTreeMap::new();
                let mut older = Vec::new();
                chat.directory.for_each(self, |index, meta| {
                    let before = meta.first.time < time;
                    if before {
                        older.push((index, meta.clone()));
                    }
                    Ok(before)
                })?;
                for (index, meta) in older {
                    for m in self.read_block(chat.id, &meta)? {
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
                chat.tail.retain(|m| m.time >= time);
                // Also when only sealed messages go: a live tail segment may hold copies of
                // messages sealed since it was written.
                chat.segments_stale = true;
                chats.insert(chat.id);
                self.write_chat(&mut chat, edits, None, WritePlan::default())?;
            }
            self.apply_staged()?;
            // Refs of purged messages in chunks of other users: one pass over all chunks.
            let doomed = |r: &PostingRef| r.time < time && only_chat.is_none_or(|c| c == r.chat);
            let older = self
                .all_chunks()
                .filter(|e| e.as_ref().map_or(true, |e| e.first < time));
            self.rewrite_chunks(older, &mut *lock(&self.staged), |r| !doomed(r))?;
            self.apply_staged()?;
            self.db.flush().map_err(|e| self.io(e))?;
            (purged, chats)
        };
        self.erase_deleted(&chats, None)?;
        Ok(purged)
    }
}

fn user_refs(messages: &[MessageRef]) -> impl Iterator<Item = (UserId, PostingRef)> + '_ {
    messages
        .iter()
        .filter_map(|m| Some((m.user_id?, posting_of(m))))
}
