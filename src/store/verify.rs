//! `verify`: every derived structure checked against the messages; `repair`: rebuilt from them.
//!
//! Primary data is the blocks and tail segments (plus chat and user records). Everything else — the
//! block directory, counter checkpoints, postings chunks and pending postings, and the in-memory
//! counters and totals — must equal what the messages imply.

use super::chat::{replay_tail, BlockMeta, SEAL_LEN};
use super::codec::{self, key_of, BlockView};
use super::counters::{Checkpoint, Counters};
use super::keys;
use super::model::*;
use super::postings::{self, BlockRefs, PostingRef};
use super::{lock, Commit, Result, Shared, Store};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub chats: u64,
    pub blocks: u64,
    pub messages: u64,
    /// One line per mismatch; empty when the store is consistent.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One chat as its primary data says it is.
#[derive(Default)]
struct ChatTruth {
    blocks: Vec<(BlockMeta, Vec<MessageRef>)>,
    tail: Vec<MessageRef>,
}

impl Store {
    /// Checks every derived structure and counter against the messages.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.shared.commit(Commit::Close)?;
        let _writer = lock(&self.shared.writer);
        let (truth, mut report) = self.shared.read_truth()?;
        self.shared.check(&truth, &mut report)?;
        Ok(report)
    }

    /// Rebuilds every derived structure from the messages, then verifies. Unreadable blocks are
    /// reported and left in place: only a backup can bring their messages back.
    pub fn repair(&self) -> Result<VerifyReport> {
        self.shared.commit(Commit::Close)?;
        {
            // The store's lock order: rewrite gate, then writer.
            let _rewrites = self.shared.rewrites.write().expect("rewrite gate");
            let _writer = lock(&self.shared.writer);
            let (truth, _) = self.shared.read_truth()?;
            self.shared.rebuild(truth)?;
        }
        self.verify()
    }
}

impl Shared {
    /// Reads all blocks and tail segments from disk, noting what cannot be read.
    fn read_truth(&self) -> Result<(BTreeMap<ChatId, ChatTruth>, VerifyReport)> {
        let mut report = VerifyReport::default();
        let mut truth: BTreeMap<ChatId, ChatTruth> = BTreeMap::new();
        for item in self.db.scan_prefix([keys::BLOCK]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let Some(seq) = keys::parse_seq_key(&k) else {
                report.problems.push(format!("malformed block key {k:?}"));
                continue;
            };
            let decoded = BlockView::parse(&v)
                .and_then(|view| Ok((view.header.chat, view.all(&self.compressor)?)));
            match decoded {
                Ok((chat, messages)) if !messages.is_empty() => {
                    let meta = BlockMeta::describe(&messages, seq);
                    truth.entry(chat).or_default().blocks.push((meta, messages));
                }
                Ok((chat, _)) => report
                    .problems
                    .push(format!("block {seq} of chat {chat} is empty")),
                Err(e) => report
                    .problems
                    .push(format!("block {seq} is unreadable: {e}")),
            }
        }
        for t in truth.values_mut() {
            t.blocks.sort_by_key(|(meta, _)| meta.first);
        }
        // Key order is seq order within a chat, as replay needs.
        let mut segments: BTreeMap<ChatId, Vec<Vec<MessageRef>>> = BTreeMap::new();
        for item in self.db.scan_prefix([keys::TAIL]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let Some((chat, seq)) = keys::parse_tail_key(&k) else {
                report.problems.push(format!("malformed tail key {k:?}"));
                continue;
            };
            match BlockView::parse_for(&v, chat).and_then(|view| view.all(&self.compressor)) {
                Ok(records) => segments.entry(chat).or_default().push(records),
                Err(e) => report.problems.push(format!(
                    "tail segment {seq} of chat {chat} is unreadable: {e}"
                )),
            }
        }
        for (chat, records) in segments {
            let t = truth.entry(chat).or_default();
            t.tail = replay_tail(records, t.blocks.last().map(|(meta, _)| meta.last));
        }
        Ok((truth, report))
    }

    /// Compares everything derived with `truth`.
    fn check(&self, truth: &BTreeMap<ChatId, ChatTruth>, report: &mut VerifyReport) -> Result<()> {
        let problems = &mut report.problems;
        let directory = self.read_directory()?;
        let checkpoints = self.read_checkpoints()?;
        let mut expected_refs: HashMap<UserId, HashSet<PostingRef>> = HashMap::new();
        let mut user_totals: HashMap<UserId, u64> = HashMap::new();
        let (mut total, mut service, mut chats) = (0u64, 0u64, 0u64);
        for (&chat, t) in truth {
            report.chats += 1;
            report.blocks += t.blocks.len() as u64;
            let mut ids = HashSet::new();
            let mut previous_end = None;
            let mut sealed = Counters::default();
            for (meta, messages) in &t.blocks {
                if previous_end.is_some_and(|end| meta.first <= end) {
                    problems.push(format!("chat {chat}: blocks overlap at {:?}", meta.first));
                }
                previous_end = Some(meta.last);
                match directory.get(&(chat, meta.first)) {
                    Some(d) if d == meta => {}
                    Some(_) => problems.push(format!(
                        "chat {chat}: directory entry at {:?} disagrees with its block",
                        meta.first
                    )),
                    None => problems.push(format!(
                        "chat {chat}: block at {:?} has no directory entry",
                        meta.first
                    )),
                }
                for m in messages {
                    sealed.add(m);
                }
            }
            if let (Some(end), Some(first)) = (previous_end, t.tail.first()) {
                if key_of(first) <= end {
                    problems.push(format!(
                        "chat {chat}: tail message {} sorts inside the sealed blocks",
                        first.message_id
                    ));
                }
            }
            let all: Vec<&MessageRef> = t
                .blocks
                .iter()
                .flat_map(|(_, m)| m)
                .chain(&t.tail)
                .collect();
            for m in &all {
                if !ids.insert(m.message_id) {
                    problems.push(format!(
                        "chat {chat}: message {} is stored twice",
                        m.message_id
                    ));
                }
                if let Some(user) = m.user_id {
                    expected_refs
                        .entry(user)
                        .or_default()
                        .insert(super::posting_of(m));
                }
            }
            report.messages += all.len() as u64;
            // `verify` commits everything first, so the checkpoint covers every block.
            let covered = t
                .blocks
                .iter()
                .filter_map(|(meta, _)| directory.get(&(chat, meta.first)).map(|d| d.seq))
                .max()
                .unwrap_or(0);
            let stored_checkpoint = checkpoints.get(&chat).cloned();
            if (!t.blocks.is_empty() || stored_checkpoint.is_some())
                && stored_checkpoint.as_ref() != Some(&sealed.to_checkpoint(covered))
            {
                problems.push(format!(
                    "chat {chat}: checkpoint disagrees with its blocks {:?} {:?}",
                    stored_checkpoint.as_ref().map(|c| (
                        c.covered_seq,
                        c.total,
                        c.service,
                        c.users.len()
                    )),
                    (covered, sealed.total, sealed.service, sealed.users.len())
                ));
            }
            let mut everything = sealed;
            for m in &t.tail {
                everything.add(m);
            }
            for (user, n) in everything.users.iter() {
                *user_totals.entry(user).or_insert(0) += n;
            }
            total += everything.total;
            service += everything.service;
            chats += u64::from(!all.is_empty());
            match self.chat(chat) {
                Some(handle) => {
                    let state = lock(&handle);
                    if state.counters != everything {
                        problems.push(format!(
                            "chat {chat}: counters in memory disagree with its messages"
                        ));
                    }
                    let on_disk: Vec<BlockMeta> = t.blocks.iter().map(|(m, _)| m.clone()).collect();
                    if state.blocks != on_disk
                        || state
                            .tail
                            .iter()
                            .map(|m| key_of(m))
                            .ne(t.tail.iter().map(|m| key_of(m)))
                    {
                        problems.push(format!("chat {chat}: the in-memory view differs from disk"));
                    }
                }
                None => problems.push(format!("chat {chat} is on disk but was not loaded")),
            }
        }
        for (chat, first) in directory.keys() {
            if !truth
                .get(chat)
                .is_some_and(|t| t.blocks.iter().any(|(m, _)| m.first == *first))
            {
                problems.push(format!(
                    "chat {chat}: directory entry at {first:?} has no block"
                ));
            }
        }
        for chat in checkpoints.keys() {
            if !truth.contains_key(chat) {
                problems.push(format!("chat {chat}: checkpoint without messages"));
            }
        }
        let stored_refs = self.read_postings(problems)?;
        if stored_refs != expected_refs {
            let users: HashSet<&UserId> = stored_refs.keys().chain(expected_refs.keys()).collect();
            let wrong = users
                .into_iter()
                .filter(|u| stored_refs.get(u) != expected_refs.get(u))
                .count();
            problems.push(format!(
                "postings of {wrong} users disagree with the messages"
            ));
        }
        let totals = &self.totals;
        let loaded = (
            totals.messages.load(Ordering::Relaxed),
            totals.service.load(Ordering::Relaxed),
            totals.chats.load(Ordering::Relaxed),
            totals.users.load(Ordering::Relaxed),
        );
        if loaded != (total, service, chats, user_totals.len() as u64) {
            problems.push(format!(
                "global totals {loaded:?} disagree with the messages {:?}",
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
        Ok(())
    }

    fn read_directory(&self) -> Result<HashMap<(ChatId, keys::MsgKey), BlockMeta>> {
        let mut out = HashMap::new();
        for item in self.db.scan_prefix([keys::DIRECTORY]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            if let (Some(key), Ok(meta)) =
                (keys::parse_block_key(&k), codec::decode::<BlockMeta>(&v))
            {
                out.insert(key, meta);
            }
        }
        Ok(out)
    }

    fn read_checkpoints(&self) -> Result<HashMap<ChatId, Checkpoint>> {
        let mut out = HashMap::new();
        for item in self.db.scan_prefix([keys::CHECKPOINT]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            if let (Some(chat), Ok(c)) = (keys::parse_chat(&k), codec::decode(&v)) {
                out.insert(chat, c);
            }
        }
        Ok(out)
    }

    /// Every stored ref: chunks, pending records and tail refs in memory. A ref stored twice is
    /// a problem of its own.
    fn read_postings(
        &self,
        problems: &mut Vec<String>,
    ) -> Result<HashMap<UserId, HashSet<PostingRef>>> {
        let mut out: HashMap<UserId, HashSet<PostingRef>> = HashMap::new();
        let mut duplicates = 0usize;
        let mut add = |user: UserId, r: PostingRef| {
            if !out.entry(user).or_default().insert(r) {
                duplicates += 1;
            }
        };
        for item in self.db.scan_prefix([keys::POSTINGS]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            match postings::parse_key(&k)
                .map(|(u, first, _)| (u, postings::decode_chunk(first, &v)))
            {
                Some((user, Ok(refs))) => refs.into_iter().for_each(|r| add(user, r)),
                _ => problems.push(format!("postings chunk {k:?} is unreadable")),
            }
        }
        let mut pending_on_disk = HashSet::new();
        for item in self.db.scan_prefix([keys::PENDING_POSTINGS]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            pending_on_disk.insert(k.to_vec());
            match codec::decode::<BlockRefs>(&v) {
                Ok(block) => {
                    for (user, time, id) in block.refs {
                        add(
                            user,
                            PostingRef {
                                time,
                                chat: block.chat,
                                id,
                            },
                        );
                    }
                }
                Err(e) => problems.push(format!("pending postings {k:?} are unreadable: {e}")),
            }
        }
        let in_memory: HashSet<Vec<u8>> = lock(&self.postings.pending)
            .blocks
            .iter()
            .map(|&seq| keys::seq_key(keys::PENDING_POSTINGS, seq).to_vec())
            .collect();
        if in_memory != pending_on_disk {
            problems.push("pending postings in memory differ from disk".into());
        }
        for (user, refs) in self.postings.all_unsealed() {
            refs.into_iter().for_each(|r| add(user, r));
        }
        if duplicates > 0 {
            problems.push(format!("{duplicates} postings are stored twice"));
        }
        Ok(out)
    }

    /// Rewrites every chat from its readable messages and reloads the in-memory state.
    fn rebuild(&self, truth: BTreeMap<ChatId, ChatTruth>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for family in [
            keys::DIRECTORY,
            keys::CHECKPOINT,
            keys::POSTINGS,
            keys::PENDING_POSTINGS,
            keys::TAIL,
        ] {
            for item in self.db.scan_prefix([family]) {
                batch.remove(item.map_err(|e| self.io(e))?.0);
            }
        }
        for item in self.db.scan_prefix([keys::BLOCK]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let readable = BlockView::parse(&v)
                .and_then(|view| view.all(&self.compressor))
                .is_ok();
            // Unreadable blocks stay where they are: only a backup can restore their messages.
            if readable {
                batch.remove(k);
            }
        }
        let mut refs: HashMap<UserId, Vec<PostingRef>> = HashMap::new();
        for (chat, t) in truth {
            let mut messages: BTreeMap<MessageId, MessageRef> = BTreeMap::new();
            for m in t.blocks.into_iter().flat_map(|(_, m)| m).chain(t.tail) {
                messages.insert(m.message_id, m);
            }
            let mut messages: Vec<MessageRef> = messages.into_values().collect();
            messages.sort_by_key(|m| key_of(m));
            let sealed_len = messages.len() / SEAL_LEN * SEAL_LEN;
            let mut sealed = Counters::default();
            let mut last_seq = None;
            for block in messages[..sealed_len].chunks(SEAL_LEN) {
                let meta = BlockMeta::describe(block, self.next_seq());
                last_seq = Some(meta.seq);
                let bytes = codec::encode_block(&self.compressor, chat, block)
                    .map_err(|e| self.corrupt("re-encoding", e))?;
                batch.insert(&keys::seq_key(keys::BLOCK, meta.seq), bytes);
                batch.insert(
                    &keys::block_key(keys::DIRECTORY, chat, meta.first),
                    codec::encode(&meta),
                );
                for m in block {
                    sealed.add(m);
                    if let Some(user) = m.user_id {
                        refs.entry(user).or_default().push(super::posting_of(m));
                    }
                }
            }
            if let Some(covered) = last_seq {
                batch.insert(
                    &keys::chat_prefix(keys::CHECKPOINT, chat),
                    codec::encode(&sealed.to_checkpoint(covered)),
                );
            }
            if sealed_len < messages.len() {
                let bytes = codec::encode_block(&self.compressor, chat, &messages[sealed_len..])
                    .map_err(|e| self.corrupt("re-encoding", e))?;
                batch.insert(&keys::tail_key(chat, self.next_seq()), bytes);
            }
        }
        for (user, mut list) in refs {
            list.sort_unstable();
            for chunk in list.chunks(4096) {
                let (first, bytes) = postings::encode_chunk(chunk);
                batch.insert(&keys::postings_key(user, first, self.next_seq()), bytes);
            }
        }
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        self.reload()
    }

    /// Drops all in-memory state and loads it again from disk.
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
        for counter in [
            &self.totals.messages,
            &self.totals.service,
            &self.totals.chats,
            &self.totals.users,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.load()
    }
}
