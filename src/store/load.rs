//! Opening: everything the store keeps in memory is read from the index at start-up —
//! dictionaries, the block directory's run summaries (a run's entries are read again when
//! needed), checkpoints, tail segments (from the tail log), users, chat
//! titles and pending postings. Sealed blocks are not read, except those sealed after their
//! chat's last checkpoint, whose counts are added. An open writes only to finish a postings
//! flush that a crash cut short.

use super::blocklog::{Accounts, Location, Referenced};
use super::chat::{self, ChatState, TailSegment};
use super::commit::{accounts_key, block_refs, NEXT_SEQ};
use super::counters::{Checkpoint, Counters};
use super::directory::{BlockMeta, RunSource, RUN_MAX};
use super::layout;
use super::model::{key_of, ChatId, MessageRef, MsgKey, UserId, UserInfo};
use super::shared::{lock, posting_of, Shared, UserEntry};
use super::{codec, Result, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

impl Shared {
    /// Reads the in-memory state from the index and tells the logs what it references.
    pub(super) fn load(&self) -> Result<()> {
        let mut max_seq = 0u64;
        for item in self.db.scan_prefix(layout::meta_key("dict/")) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let id = std::str::from_utf8(&k[6..])
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .ok_or_else(|| self.corrupt_msg("a dictionary key is malformed"))?;
            let raw: Vec<u8> = codec::decode(&v).map_err(|e| self.corrupt("dictionary", e))?;
            self.compressor
                .add_dictionary(id, raw)
                .map_err(|e| self.corrupt("dictionary", e))?;
        }
        // The directory's runs are read once: their summaries stay, and what the block log
        // must know of every block (where it is) is counted on the way.
        let mut states: HashMap<ChatId, ChatState> = HashMap::new();
        let mut referenced_blocks = Referenced::default();
        for item in self.db.scan_prefix([layout::DIRECTORY]) {
            let (chat, first, metas) = self.directory_run(item)?;
            let state = states.entry(chat).or_insert_with(|| ChatState::new(chat));
            state.directory.add_stored(first, &metas).map_err(|e| {
                self.corrupt_msg(format!(
                    "the block directory of chat {chat} {e}: restore a backup"
                ))
            })?;
            for meta in &metas {
                max_seq = max_seq.max(meta.seq);
                state.max_id = state.max_id.max(meta.max_id);
                referenced_blocks.add(meta.location);
            }
        }
        let mut checkpoints: Vec<(ChatId, Location)> = Vec::new();
        for item in self.db.scan_prefix([layout::CHECKPOINT]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let chat = layout::parse_chat(&k)
                .ok_or_else(|| self.corrupt_msg("a checkpoint key is malformed"))?;
            let location: Location =
                codec::decode(&v).map_err(|e| self.corrupt("checkpoint pointer", e))?;
            checkpoints.push((chat, location));
        }
        let mut tail_pointers: Vec<(ChatId, u64, Location)> = Vec::new();
        for item in self.db.scan_prefix([layout::TAIL]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let (chat, seq) = layout::parse_tail_key(&k)
                .ok_or_else(|| self.corrupt_msg("a tail key is malformed"))?;
            let location: Location =
                codec::decode(&v).map_err(|e| self.corrupt("tail pointer", e))?;
            max_seq = max_seq.max(seq);
            tail_pointers.push((chat, seq, location));
        }
        if let Some(stored) = self
            .db
            .get(layout::meta_key(NEXT_SEQ))
            .map_err(|e| self.io(e))?
        {
            let next: u64 = codec::decode(&stored).map_err(|e| self.corrupt("next seq", e))?;
            max_seq = max_seq.max(next.saturating_sub(1));
        }
        // What the index references is all that counts: a crash may have left records after it.
        // The directory and tails are in memory already; the postings chunks' pointers are many,
        // so their log's accounts are read as stored (counted from the index only when absent);
        // profile chunks are few (one per 32 people of a chat) and counted.
        let cut = self
            .blocks
            .recover_with(&referenced_blocks.into_accounts())?
            + self.tails.recover(
                tail_pointers
                    .iter()
                    .map(|&(_, _, loc)| loc)
                    .chain(checkpoints.iter().map(|&(_, loc)| loc)),
            )?
            + self.recover_postings_log(&mut max_seq)?
            + self.profiles_log.recover(self.profile_locations()?)?;
        if cut > 0 {
            tracing::info!(
                bytes = cut,
                "cut off log records that no index entry references"
            );
        }
        for (chat, location) in checkpoints {
            let bytes = self
                .tails
                .read(location)
                .map_err(|e| self.unreadable(format!("the checkpoint of chat {chat}"), e))?;
            let checkpoint: Checkpoint =
                codec::decode(&bytes).map_err(|e| self.corrupt("checkpoint", e))?;
            let covered = checkpoint.covered_seq;
            let counters = Counters::from_checkpoint(checkpoint).ok_or_else(|| {
                self.corrupt_msg(format!("checkpoint of chat {chat} is malformed"))
            })?;
            let state = states.entry(chat).or_insert_with(|| ChatState::new(chat));
            state.counters = counters;
            state.checkpoint = Some(location);
            state.checkpoint_seq = covered;
        }
        let mut segments: HashMap<ChatId, Vec<(TailSegment, Vec<MessageRef>)>> = HashMap::new();
        for (chat, seq, location) in tail_pointers {
            let mut segment = TailSegment {
                seq,
                max: Default::default(),
                location,
            };
            let records = self.read_tail_segment(chat, &segment)?;
            let Some(max) = records.iter().map(|m| key_of(m)).max() else {
                return Err(self.corrupt_msg(format!("tail segment {seq} of chat {chat} is empty")));
            };
            segment.max = max;
            segments.entry(chat).or_default().push((segment, records));
        }
        for (chat, mut list) in segments {
            list.sort_by_key(|(segment, _)| segment.seq);
            let state = states.entry(chat).or_insert_with(|| ChatState::new(chat));
            state.segments = list.iter().map(|(segment, _)| *segment).collect();
            state.tail = chat::replay_tail(list.into_iter().map(|(_, r)| r), state.sealed_end());
            state.max_id = state
                .tail
                .iter()
                .map(|m| m.message_id)
                .fold(state.max_id, i32::max);
        }
        for item in self.db.scan_prefix([layout::CHAT_INFO]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let chat = layout::parse_chat(&k)
                .ok_or_else(|| self.corrupt_msg("a chat key is malformed"))?;
            let info = codec::decode(&v).map_err(|e| self.corrupt("chat info", e))?;
            states
                .entry(chat)
                .or_insert_with(|| ChatState::new(chat))
                .info = Some(info);
        }
        for item in self.db.scan_prefix([layout::USER_INFO]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let user = layout::parse_chat(&k)
                .ok_or_else(|| self.corrupt_msg("a user key is malformed"))?;
            let info: UserInfo = codec::decode(&v).map_err(|e| self.corrupt("user info", e))?;
            self.user_shard(user).insert(
                user,
                UserEntry {
                    messages: 0,
                    name: info.display_name.into(),
                },
            );
        }
        // Blocks whose postings are not yet in chunks: their refs are read from the blocks.
        let mut pending_seqs = HashSet::new();
        let mut flush_cut_short = false;
        for key in self.db.scan_prefix([layout::PENDING_POSTINGS]).keys() {
            let key = key.map_err(|e| self.io(e))?;
            pending_seqs.insert(
                layout::parse_seq_key(&key)
                    .ok_or_else(|| self.corrupt_msg("a pending postings key is malformed"))?,
            );
        }
        if !pending_seqs.is_empty() {
            let mut pending = lock(&self.postings.pending);
            // Markers are the newest blocks' (older ones are flushed): runs without a newer
            // block are not read.
            let oldest = pending_seqs.iter().min().copied().unwrap_or(0);
            for state in states.values() {
                state.directory.for_each_newer_than(
                    oldest.saturating_sub(1),
                    self,
                    |_, meta| {
                        if pending_seqs.contains(&meta.seq) {
                            let messages = self.read_block(state.id, meta)?;
                            pending.add_block(meta.seq, &block_refs(state.id, &messages));
                        }
                        Ok(true)
                    },
                )?;
            }
            // A crash in the middle of a postings flush leaves the markers of blocks whose refs
            // some chunks already hold.
            let mut dropped = 0;
            for (&user, refs) in pending.by_user.iter_mut() {
                let before = refs.len();
                self.drop_chunked(user, refs)?;
                dropped += before - refs.len();
            }
            pending.refs -= dropped;
            pending.by_user.retain(|_, refs| !refs.is_empty());
            flush_cut_short = dropped > 0;
        }
        // Summed here, then one update per user rather than one per user and chat.
        let mut user_totals: HashMap<UserId, u64> = HashMap::new();
        for (chat, mut state) in states {
            // Blocks sealed after the checkpoint was written are counted now.
            let mut unchecked: Vec<BlockMeta> = Vec::new();
            let covered = state.checkpoint_seq;
            state
                .directory
                .for_each_newer_than(covered, self, |_, meta| {
                    if meta.seq > covered {
                        unchecked.push(meta.clone());
                    }
                    Ok(true)
                })?;
            for meta in &unchecked {
                for m in self.read_block(chat, meta)? {
                    state.counters.add(&m);
                }
            }
            state.unchecked_seals = unchecked.len();
            self.totals
                .unsealed
                .fetch_add(state.tail.len() as u64, Ordering::Relaxed);
            for m in &state.tail {
                state.counters.add(m);
                if let Some(user) = m.user_id {
                    self.postings.add_unsealed(user, posting_of(m));
                }
            }
            state.top.decreased();
            let stored = state.counters.total + state.counters.service;
            self.totals
                .messages
                .fetch_add(state.counters.total, Ordering::Relaxed);
            self.totals
                .service
                .fetch_add(state.counters.service, Ordering::Relaxed);
            if stored > 0 {
                self.totals.chats.fetch_add(1, Ordering::Relaxed);
            }
            for (user, n) in state.counters.users.iter() {
                *user_totals.entry(user).or_insert(0) += n;
            }
            self.chat_shard_mut(chat)
                .insert(chat, Arc::new(Mutex::new(state)));
        }
        for (user, n) in user_totals {
            self.user_count_changed(user, None, n as i64);
        }
        self.next_seq.store(max_seq + 1, Ordering::SeqCst);
        if flush_cut_short {
            // Finished now: a marker must mean that no chunk holds its block's refs, or the
            // rewrite of such a block (an edit, a deletion) would put them back in the buffer.
            // (Within a process, a batch that fails to apply stops every later index change.)
            self.flush_postings()?;
        }
        Ok(())
    }

    /// One run of a chat's block directory, as the index holds it: chat, first key, entries.
    pub(super) fn directory_run(
        &self,
        item: sled::Result<(sled::IVec, sled::IVec)>,
    ) -> Result<(ChatId, MsgKey, Vec<BlockMeta>)> {
        let (k, v) = item.map_err(|e| self.io(e))?;
        let (chat, first) = layout::parse_block_key(&k)
            .ok_or_else(|| self.corrupt_msg("a directory key is malformed"))?;
        let metas: Vec<BlockMeta> =
            codec::decode(&v).map_err(|e| self.corrupt("directory run", e))?;
        if metas.is_empty() || metas.len() > RUN_MAX || metas[0].first != first {
            return Err(self.corrupt_msg(format!(
                "the directory run at {first:?} of chat {chat} is malformed: restore a backup"
            )));
        }
        Ok((chat, first, metas))
    }

    /// Recovers the postings log from its stored accounts, or, without them (a store just
    /// converted or repaired), from every chunk pointer, which also gives their highest seq.
    fn recover_postings_log(&self, max_seq: &mut u64) -> Result<u64> {
        let key = layout::meta_key(&accounts_key("postings"));
        if let Some(stored) = self.db.get(key).map_err(|e| self.io(e))? {
            let accounts: Accounts =
                codec::decode(&stored).map_err(|e| self.corrupt("postings log accounts", e))?;
            return self.postings_log.recover_with(&accounts);
        }
        let mut chunks = Vec::new();
        for entry in self.all_chunks() {
            let entry = entry?;
            chunks.push(entry.pointer.location);
            if let Some((_, _, seq)) = super::postings::parse_key(&entry.key) {
                *max_seq = (*max_seq).max(seq);
            }
        }
        self.postings_log.recover(chunks)
    }

    /// Drops all in-memory state and loads it again from the index. The caller holds the
    /// profile lock (the profiles log is recovered again).
    pub(super) fn reload(&self) -> Result<()> {
        for shard in &self.chats {
            shard.write().expect("chat map lock").clear();
        }
        for shard in &self.users {
            lock(shard).clear();
        }
        lock(&self.dirty).clear();
        self.postings.clear();
        self.frames.clear();
        self.runs.clear();
        self.clear_profile_cache();
        for counter in [
            &self.totals.messages,
            &self.totals.service,
            &self.totals.chats,
            &self.totals.users,
            &self.totals.unsealed,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.load()
    }
}

/// The block directory's runs are read from the index when memory does not hold them.
impl RunSource for Shared {
    fn read_run(&self, chat: ChatId, first: MsgKey) -> Result<Vec<BlockMeta>> {
        if let Some(cached) = self.runs.get(&(chat, first)) {
            return Ok(cached.to_vec());
        }
        let key = layout::block_key(layout::DIRECTORY, chat, first);
        let stored = self.db.get(key).map_err(|e| self.io(e))?.ok_or_else(|| {
            self.corrupt_msg(format!(
                "the directory run at {first:?} of chat {chat} is missing: restore a backup"
            ))
        })?;
        let blocks: Vec<BlockMeta> =
            codec::decode(&stored).map_err(|e| self.corrupt("directory run", e))?;
        let bytes = 64 + blocks.len() * std::mem::size_of::<BlockMeta>();
        self.runs
            .insert((chat, first), Arc::new(blocks.clone()), bytes);
        Ok(blocks)
    }

    fn applied(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }

    fn damaged(&self, what: String) -> StoreError {
        self.corrupt_msg(what)
    }
}
