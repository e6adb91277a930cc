//! `verify`: every derived structure checked against the messages, and the index against the
//! logs; `repair`: what is derived rebuilt from the messages.
//!
//! Primary data is the blocks and tail segments the index points at (plus chat and user
//! records). Everything else — directory entries' descriptions, counter checkpoints, postings
//! chunks and pending postings, the logs' live-byte accounts, in-memory counters and totals —
//! must equal what the messages imply. Both walk the store a chat and a block at a time: memory
//! holds one block, per chat a bitmap of message ids and its directory entries, and per user a
//! count and a fingerprint of their postings, never the messages themselves.

use super::blocklog::Location;
use super::chat::{replay_tail, ChatState, TailSegment, SEAL_LEN};
use super::commit::{accounts_key, IndexWrites};
use super::counters::{Checkpoint, Counters};
use super::directory::BlockMeta;
use super::layout;
use super::model::*;
use super::postings::{self, PostingRef};
use super::shared::{lock, posting_of, Commit, Shared, Store};
use super::{codec, Result};
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;

/// Bytes the index references per segment of each log: blocks, tails, postings, profiles.
type LiveBytes = [HashMap<u32, u64>; 4];

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub chats: u64,
    pub blocks: u64,
    pub messages: u64,
    /// Profiles in the profiles log (those written since the last settle not counted).
    pub profiles: u64,
    /// One line per mismatch; empty when the store is consistent.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// Checks every derived structure and counter against the messages.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.check_thread();
        self.shared.commit(Commit::Close)?;
        // Profile chunks change under their own lock, taken before the writer's.
        let _profiles = lock(&self.shared.profiles.lock);
        let _writer = lock(&self.shared.writer);
        self.shared.check()
    }

    /// Rebuilds every derived structure from the messages, then verifies. Unreadable blocks and
    /// tail segments are reported and dropped from the index: only a backup can bring their
    /// messages back.
    pub fn repair(&self) -> Result<VerifyReport> {
        self.check_thread();
        self.shared.commit(Commit::Close)?;
        let dropped = {
            // The store's lock order: rewrite gate, profile lock, then writer.
            let _rewrites = self.shared.rewrites.write().expect("rewrite gate");
            let _profiles = lock(&self.shared.profiles.lock);
            let _writer = lock(&self.shared.writer);
            self.shared.rebuild()?
        };
        let mut report = self.verify()?;
        if !dropped.is_empty() && report.is_clean() {
            tracing::warn!(
                dropped = dropped.len(),
                "repair dropped unreadable records: restore a backup for their messages"
            );
        }
        report.problems.splice(0..0, dropped);
        Ok(report)
    }
}

/// A multiset of postings as a count and an order-independent sum of hashes: two sides agree
/// (but for a 2^-64 chance) exactly when they hold the same refs the same number of times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Fingerprint {
    count: u64,
    sum: u64,
}

impl Fingerprint {
    fn add(&mut self, r: &PostingRef) {
        let mut hasher = std::hash::DefaultHasher::new();
        r.hash(&mut hasher);
        self.count += 1;
        self.sum = self.sum.wrapping_add(hasher.finish());
    }
}

/// One chat's messages as its blocks and tail segments hold them, walked once.
struct Walk {
    blocks: Vec<BlockMeta>,
    sealed: Counters,
    tail: Vec<MessageRef>,
    messages: u64,
}

impl Shared {
    /// A chat's directory entries as the index holds them (noting runs out of shape).
    fn disk_blocks(&self, chat: ChatId, problems: &mut Vec<String>) -> Result<Vec<BlockMeta>> {
        let mut out: Vec<BlockMeta> = Vec::new();
        for item in self
            .db
            .scan_prefix(layout::chat_prefix(layout::DIRECTORY, chat))
        {
            match self.directory_run(item) {
                Ok((_, first, metas)) => {
                    if out.last().is_some_and(|b| first <= b.last) {
                        problems.push(format!(
                            "chat {chat}: the directory run at {first:?} is out of place"
                        ));
                    }
                    out.extend(metas);
                }
                Err(e) => problems.push(format!("chat {chat}: {e}")),
            }
        }
        Ok(out)
    }

    /// A chat's tail segments as the index holds them.
    fn disk_tail(&self, chat: ChatId, problems: &mut Vec<String>) -> Result<Vec<(u64, Location)>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(layout::chat_prefix(layout::TAIL, chat)) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            match (layout::parse_tail_key(&k), codec::decode::<Location>(&v)) {
                (Some((_, seq)), Ok(location)) => out.push((seq, location)),
                _ => problems.push(format!("chat {chat}: tail pointer {k:?} is malformed")),
            }
        }
        Ok(out)
    }

    /// Walks a chat's blocks and tail segments on disk, calling `each` for every message, and
    /// notes every inconsistency of the primary data itself (unreadable records, entries that
    /// do not describe their block, overlaps, ids stored twice) and of the logs' accounts.
    fn walk_chat(
        &self,
        chat: ChatId,
        problems: &mut Vec<String>,
        live: &mut LiveBytes,
        mut each: impl FnMut(&MessageRef),
    ) -> Result<Walk> {
        let mut walk = Walk {
            blocks: Vec::new(),
            sealed: Counters::default(),
            tail: Vec::new(),
            messages: 0,
        };
        let mut ids = RoaringBitmap::new();
        let mut note = |m: &MessageRef, problems: &mut Vec<String>| {
            if !ids.insert(m.message_id as u32) {
                problems.push(format!(
                    "chat {chat}: message {} is stored twice",
                    m.message_id
                ));
            }
        };
        let mut previous_end = None;
        for meta in self.disk_blocks(chat, problems)? {
            *live[0].entry(meta.location.segment).or_default() += meta.location.record_bytes();
            let messages = match self.read_block(chat, &meta) {
                Ok(messages) if !messages.is_empty() => messages,
                Ok(_) => {
                    problems.push(format!("chat {chat}: a block at {:?} is empty", meta.first));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("chat {chat}: {e}"));
                    continue;
                }
            };
            if BlockMeta::describe(&messages, meta.seq, meta.location) != meta {
                problems.push(format!(
                    "chat {chat}: directory entry at {:?} disagrees with its block",
                    meta.first
                ));
            }
            if previous_end.is_some_and(|end| meta.first <= end) {
                problems.push(format!("chat {chat}: blocks overlap at {:?}", meta.first));
            }
            previous_end = Some(meta.last);
            for m in &messages {
                note(m, problems);
                walk.sealed.add(m);
                each(m);
            }
            walk.messages += messages.len() as u64;
            walk.blocks.push(meta);
        }
        let mut segments = Vec::new();
        for (seq, location) in self.disk_tail(chat, problems)? {
            *live[1].entry(location.segment).or_default() += location.record_bytes();
            let segment = TailSegment {
                seq,
                max: MsgKey { time: 0, id: 0 },
                location,
            };
            match self.read_tail_segment(chat, &segment) {
                Ok(records) => segments.push(records),
                Err(e) => problems.push(format!("chat {chat}: {e}")),
            }
        }
        walk.tail = replay_tail(segments, previous_end);
        for m in &walk.tail {
            note(m, problems);
            each(m);
        }
        walk.messages += walk.tail.len() as u64;
        Ok(walk)
    }

    /// Compares everything derived with what the messages imply.
    pub(super) fn check(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let mut expected: HashMap<UserId, Fingerprint> = HashMap::new();
        let mut user_totals: HashMap<UserId, u64> = HashMap::new();
        let (mut total, mut service, mut chats) = (0u64, 0u64, 0u64);
        let mut live: LiveBytes = Default::default();
        let mut problems = Vec::new();
        let loaded: HashSet<ChatId> = self.chats_in_order().iter().map(|(id, _)| *id).collect();
        for chat in self.chats_on_disk()? {
            if !loaded.contains(&chat) {
                problems.push(format!("chat {chat} is on disk but was not loaded"));
            }
        }
        for (chat, handle) in self.chats_in_order() {
            let walk = self.walk_chat(chat, &mut problems, &mut live, |m| {
                if let Some(user) = m.user_id {
                    expected.entry(user).or_default().add(&posting_of(m));
                }
            })?;
            report.chats += 1;
            report.blocks += walk.blocks.len() as u64;
            report.messages += walk.messages;
            // `verify` commits everything first, so the checkpoint covers every block.
            let covered = walk.blocks.iter().map(|b| b.seq).max().unwrap_or(0);
            let stored = self.stored_checkpoint(chat, &mut problems, &mut live)?;
            if (!walk.blocks.is_empty() || stored.is_some())
                && stored.as_ref() != Some(&walk.sealed.to_checkpoint(covered))
            {
                problems.push(format!(
                    "chat {chat}: checkpoint disagrees with its blocks {:?} {:?}",
                    stored
                        .as_ref()
                        .map(|c| (c.covered_seq, c.total, c.service, c.users.len())),
                    (
                        covered,
                        walk.sealed.total,
                        walk.sealed.service,
                        walk.sealed.users.len()
                    )
                ));
            }
            let mut everything = walk.sealed;
            for m in &walk.tail {
                everything.add(m);
            }
            for (user, n) in everything.users.iter() {
                *user_totals.entry(user).or_insert(0) += n;
            }
            total += everything.total;
            service += everything.service;
            chats += u64::from(walk.messages > 0);
            let state = lock(&handle);
            // A run the index lost or changed is a finding, not a reason to stop.
            let in_memory = state
                .directory
                .check(self)
                .and_then(|found| Ok((found, state.directory.collect(self)?)));
            let in_memory = match in_memory {
                Ok((found, blocks)) => {
                    problems.extend(found);
                    blocks
                }
                Err(e) => {
                    problems.push(format!("chat {chat}: {e}"));
                    Vec::new()
                }
            };
            if state.counters != everything {
                problems.push(format!(
                    "chat {chat}: counters in memory disagree with its messages"
                ));
            }
            if in_memory != walk.blocks
                || state
                    .tail
                    .iter()
                    .map(|m| key_of(m))
                    .ne(walk.tail.iter().map(|m| key_of(m)))
            {
                problems.push(format!("chat {chat}: the in-memory view differs from disk"));
            }
        }
        for item in self.db.scan_prefix([layout::CHECKPOINT]) {
            let (k, _) = item.map_err(|e| self.io(e))?;
            if layout::parse_chat(&k).is_none_or(|chat| !loaded.contains(&chat)) {
                problems.push(format!("checkpoint {k:?} has no chat"));
            }
        }
        let stored = self.stored_postings(&mut problems, &mut live)?;
        report.profiles = self.check_profiles(&mut problems, &mut live[3])?;
        self.check_logs(&live, &mut problems);
        if stored != expected {
            let users: HashSet<&UserId> = stored.keys().chain(expected.keys()).collect();
            let wrong = users
                .into_iter()
                .filter(|u| stored.get(u) != expected.get(u))
                .count();
            problems.push(format!(
                "postings of {wrong} users disagree with the messages"
            ));
        }
        let totals = &self.totals;
        let in_memory = (
            totals.messages.load(Ordering::Relaxed),
            totals.service.load(Ordering::Relaxed),
            totals.chats.load(Ordering::Relaxed),
            totals.users.load(Ordering::Relaxed),
        );
        if in_memory != (total, service, chats, user_totals.len() as u64) {
            problems.push(format!(
                "global totals {in_memory:?} disagree with the messages {:?}",
                (total, service, chats, user_totals.len())
            ));
        }
        for (&user, &n) in &user_totals {
            if self.user_shard(user).get(&user).map(|e| e.messages) != Some(n) {
                problems.push(format!(
                    "user {user}: total in memory disagrees with the messages"
                ));
            }
        }
        report.problems = problems;
        Ok(report)
    }

    /// A chat's checkpoint as the index and the tail log hold it (counting its record as live).
    fn stored_checkpoint(
        &self,
        chat: ChatId,
        problems: &mut Vec<String>,
        live: &mut LiveBytes,
    ) -> Result<Option<Checkpoint>> {
        let Some(pointer) = self
            .db
            .get(layout::chat_prefix(layout::CHECKPOINT, chat))
            .map_err(|e| self.io(e))?
        else {
            return Ok(None);
        };
        let Ok(location) = codec::decode::<Location>(&pointer) else {
            problems.push(format!("chat {chat}: checkpoint pointer is malformed"));
            return Ok(None);
        };
        *live[1].entry(location.segment).or_default() += location.record_bytes();
        match self.tails.read(location) {
            Ok(bytes) => Ok(codec::decode(&bytes).ok()),
            Err(e) => {
                problems.push(format!("chat {chat}: checkpoint is unreadable: {e}"));
                Ok(None)
            }
        }
    }

    /// Chats with a directory entry or tail pointer in the index.
    fn chats_on_disk(&self) -> Result<Vec<ChatId>> {
        let mut out: Vec<ChatId> = Vec::new();
        for family in [layout::DIRECTORY, layout::TAIL] {
            for key in self.db.scan_prefix([family]).keys() {
                let key = key.map_err(|e| self.io(e))?;
                if let Some(chat) = layout::parse_chat(&key) {
                    if out.last() != Some(&chat) {
                        out.push(chat);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Each segment's live bytes must be what the index references in it, and every segment
    /// the index references must exist.
    fn check_logs(&self, live: &LiveBytes, problems: &mut Vec<String>) {
        for (log, live, name) in [
            (&self.blocks, &live[0], "block log"),
            (&self.tails, &live[1], "tail log"),
            (&self.postings_log, &live[2], "postings log"),
            (&self.profiles_log, &live[3], "profiles log"),
        ] {
            let segments: HashMap<u32, u64> = log
                .segments()
                .iter()
                .map(|s| (s.id, s.live_bytes()))
                .collect();
            for (id, bytes) in live {
                if segments.get(id) != Some(bytes) {
                    problems.push(format!(
                        "{name}: segment {id} holds {:?} live bytes by its account, {bytes} by \
                         the index",
                        segments.get(id)
                    ));
                }
            }
            for (id, bytes) in &segments {
                if *bytes > 0 && !live.contains_key(id) {
                    problems.push(format!(
                        "{name}: segment {id} counts {bytes} live bytes the index does not \
                         reference"
                    ));
                }
            }
        }
    }

    /// Every stored ref, by user: chunks, blocks whose postings are pending (as the pending
    /// buffer holds their refs) and tail refs in memory.
    fn stored_postings(
        &self,
        problems: &mut Vec<String>,
        live: &mut LiveBytes,
    ) -> Result<HashMap<UserId, Fingerprint>> {
        let mut out: HashMap<UserId, Fingerprint> = HashMap::new();
        for entry in self.all_chunks() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    problems.push(format!("a postings pointer is unreadable: {e}"));
                    continue;
                }
            };
            *live[2].entry(entry.pointer.location.segment).or_default() +=
                entry.pointer.location.record_bytes();
            match self.read_chunk(&entry) {
                Ok(refs) => {
                    if refs.last().map(|r| r.time) != Some(entry.pointer.last_time) {
                        problems.push(format!(
                            "postings chunk {:?}: its pointer has the wrong last time",
                            entry.key
                        ));
                    }
                    let print = out.entry(entry.user).or_default();
                    refs.iter().for_each(|r| print.add(r));
                }
                Err(e) => problems.push(format!("postings chunk {:?}: {e}", entry.key)),
            }
        }
        let mut pending_on_disk = HashSet::new();
        for key in self.db.scan_prefix([layout::PENDING_POSTINGS]).keys() {
            let key = key.map_err(|e| self.io(e))?;
            pending_on_disk.insert(layout::parse_seq_key(&key).unwrap_or(0));
        }
        {
            let pending = lock(&self.postings.pending);
            for (&user, refs) in &pending.by_user {
                let print = out.entry(user).or_default();
                refs.iter().for_each(|r| print.add(r));
            }
        }
        if lock(&self.postings.pending).blocks != pending_on_disk {
            problems.push("pending postings in memory differ from disk".into());
        }
        for (user, refs) in self.postings.all_unsealed() {
            let print = out.entry(user).or_default();
            refs.iter().for_each(|r| print.add(r));
        }
        Ok(out)
    }

    /// Rebuilds every chat's derived records from its readable messages, then reloads the
    /// in-memory state. Returns what was dropped as unreadable. The rewrite gate, the profile
    /// lock and the writer lock must be held. Only the command line repairs, with the store to
    /// itself: no reader meets the chats' old directories while their runs are rewritten.
    fn rebuild(&self) -> Result<Vec<String>> {
        let mut dropped = Vec::new();
        {
            let mut staged = lock(&self.staged);
            for entry in self.all_chunks() {
                self.drop_chunk(&entry?, &mut *staged);
            }
            for key in self.db.scan_prefix([layout::PENDING_POSTINGS]).keys() {
                staged.delete(&key.map_err(|e| self.io(e))?);
            }
        }
        self.apply_staged()?;
        self.postings.clear();
        self.drop_unreadable_profiles(&mut dropped)?;
        let mut chats = self.chats_on_disk()?;
        chats.extend(self.chats_in_order().iter().map(|(id, _)| *id));
        chats.sort_unstable();
        chats.dedup();
        for chat in chats {
            self.rebuild_chat(chat, &mut dropped)?;
            self.apply_staged()?;
            if lock(&self.postings.pending).refs >= postings::FLUSH_REFS {
                self.flush_postings()?;
            }
        }
        self.flush_postings()?;
        // The logs' accounts are counted afresh from the rebuilt index.
        self.db
            .remove(layout::meta_key(&accounts_key("postings")))
            .map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        self.reload()?;
        Ok(dropped)
    }

    /// Rebuilds one chat: drops unreadable records, rewrites directory entries that do not
    /// describe their block, re-encodes the chat if its blocks overlap or repeat a message, and
    /// stages its checkpoint and pending postings.
    fn rebuild_chat(&self, chat: ChatId, dropped: &mut Vec<String>) -> Result<()> {
        let mut scratch = Vec::new();
        let mut live: LiveBytes = Default::default();
        let walk = self.walk_chat(chat, &mut scratch, &mut live, |_| {})?;
        let broken = scratch
            .iter()
            .any(|p| p.contains("overlap") || p.contains("stored twice"));
        let on_disk = self.disk_blocks(chat, &mut Vec::new())?;
        for meta in &on_disk {
            if !walk.blocks.iter().any(|b| b.seq == meta.seq) {
                dropped.push(format!(
                    "chat {chat}: dropped an unreadable block at {:?}",
                    meta.first
                ));
            }
        }
        dropped.extend(
            scratch
                .iter()
                .filter(|p| p.contains("tail segment"))
                .map(|p| format!("dropped: {p}")),
        );
        let mut state = ChatState::new(chat);
        // Every run is written anew, and every record of the old directory removed.
        let mut stored = Vec::new();
        for key in self
            .db
            .scan_prefix(layout::chat_prefix(layout::DIRECTORY, chat))
            .keys()
        {
            let key = key.map_err(|e| self.io(e))?;
            match layout::parse_block_key(&key) {
                Some((_, first)) => stored.push(first),
                None => self.stage_remove(&key),
            }
        }
        state.directory.rebuild(stored);
        if broken {
            // Only damage makes blocks overlap or repeat a message: re-sort the whole chat (in
            // memory, once) and write it anew, newest record of each message winning.
            let mut messages: BTreeMap<MessageId, MessageRef> = BTreeMap::new();
            for meta in &walk.blocks {
                for m in self.read_block(chat, meta)? {
                    messages.insert(m.message_id, m);
                }
            }
            for m in &walk.tail {
                messages.insert(m.message_id, m.clone());
            }
            let mut messages: Vec<MessageRef> = messages.into_values().collect();
            messages.sort_by_key(|m| key_of(m));
            let sealed = messages.len() / SEAL_LEN * SEAL_LEN;
            for block in messages[..sealed].chunks(SEAL_LEN) {
                let encoded = [(block, self.encode(chat, block)?)];
                for meta in self.stage_blocks(chat, &encoded, true)? {
                    state.directory.push(meta, self)?;
                }
                block.iter().for_each(|m| {
                    state.counters.add(m);
                });
            }
            state.tail = messages[sealed..].to_vec();
        } else {
            for meta in &walk.blocks {
                let messages = self.read_block(chat, meta)?;
                let fresh = BlockMeta::describe(&messages, meta.seq, meta.location);
                self.stage_insert(
                    &layout::seq_key(layout::PENDING_POSTINGS, fresh.seq),
                    codec::encode(&()),
                );
                lock(&self.postings.pending)
                    .add_block(fresh.seq, &super::commit::block_refs(chat, &messages));
                state.directory.push(fresh, self)?;
            }
            state.counters = walk.sealed;
            state.tail = walk.tail;
        }
        // The tail is written anew as one segment; the old ones go.
        for (seq, _) in self.disk_tail(chat, &mut Vec::new())? {
            self.stage_remove(&layout::tail_key(chat, seq));
        }
        for m in &state.tail {
            state.counters.add(m);
        }
        state.unsaved = state.tail.clone();
        // The logs' live-byte accounts are recomputed by the reload that follows.
        self.stage_directory(&mut state);
        self.stage_checkpoint(&mut state)?;
        if !state.unsaved.is_empty() {
            let records = std::mem::take(&mut state.unsaved);
            let bytes = self.encode(chat, &records)?;
            let location = self.tails.append([bytes.as_slice()])?[0];
            self.stage_insert(
                &layout::tail_key(chat, self.next_seq()),
                codec::encode(&location),
            );
        }
        Ok(())
    }
}
