//! Writing a chat's changes: tail segments, sealed blocks, checkpoints, and the group commit.
//!
//! Every change to the index is *staged*: its log records are appended (not yet synced) and its
//! sled operations collected into [`Staged`]. [`Shared::apply_staged`] then syncs the logs and
//! applies the collected operations as one sled batch, so that no index record can reach the disk
//! before the log bytes it points at. In-memory state changes when a change is staged (readers can
//! read appended records before they are synced); a crash before the apply loses only what was
//! never acknowledged, since the tail segments the index still references hold the same messages.
//! The one exception is the postings flush, which applies its own batches
//! ([`Shared::flush_postings`]).

use super::blocklog::{BlockLog, Location};
use super::chat::{ChatState, TailSegment, SEAL_LEN};
use super::codec::{self, Compressor};
use super::directory::BlockMeta;
use super::layout;
use super::model::{key_of, ChatId, MessageId, MessageRef, Timestamp, UserId, UserInfo};
use super::postings::{self, BlockRefs, PostingRef};
use super::shared::{lock, Commit, Shared};
use super::staged::Staged;
use super::{Result, StoreError};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Tail segments a chat may have before its tail is rewritten as one.
const MAX_SEGMENTS: usize = 16;
/// Seals between checkpoint writes (each seal would otherwise rewrite the chat's counters).
const CHECKPOINT_EVERY: usize = 16;
/// A user's last postings chunk smaller than this takes in new refs instead of a new chunk.
const SMALL_CHUNK_REFS: usize = 256;
/// People whose postings pointers one sled batch of a postings flush writes.
const FLUSH_BATCH_USERS: usize = 128;
/// The value of a pending-postings marker: the refs are read from the block itself.
const MARKER: () = ();
/// Sealed blocks needed before a compression dictionary is trained (blocks sealed before keep
/// plain compression).
const DICTIONARY_AFTER_BLOCKS: usize = 64;
/// Frames the dictionary is trained on.
const DICTIONARY_SAMPLES: usize = 512;
/// Staged blocks after which a bulk writer applies the staged changes itself rather than waiting
/// for the group commit: bounds the staged batch's memory.
const APPLY_AFTER_BLOCKS: usize = 256;

/// Changes to one sealed block.
#[derive(Default)]
pub(super) struct BlockEdit {
    pub remove_ids: HashSet<MessageId>,
    pub remove_before: Option<Timestamp>,
    pub insert: Vec<MessageRef>,
}

/// One sled batch of a postings flush, and what building it changed in the postings log's
/// accounts (taken back if it is not applied).
#[derive(Default)]
pub(super) struct FlushBatch {
    pub batch: sled::Batch,
    written: Vec<(Location, UserId)>,
    dropped: Vec<(Location, UserId)>,
}

/// Somewhere index writes go: a sled batch applied at once, or the staged changes.
pub(super) trait IndexWrites {
    fn put(&mut self, key: &[u8], value: Vec<u8>);
    fn delete(&mut self, key: &[u8]);
}

impl IndexWrites for sled::Batch {
    fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.insert(key, value);
    }
    fn delete(&mut self, key: &[u8]) {
        self.remove(key);
    }
}

impl IndexWrites for Staged {
    fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.batch.insert(key, value);
    }
    fn delete(&mut self, key: &[u8]) {
        self.batch.remove(key);
    }
}

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
    pub checkpoint_now: bool,
    /// Write the unsaved tail records now. Otherwise they wait for the group commit, unless the
    /// segments on disk are stale: then the tail is rewritten in the same batch, or a sealed
    /// message could come back from an old segment after a crash.
    pub persist_tail: bool,
}

/// The index key of the next seq to hand out.
pub(super) const NEXT_SEQ: &str = "next-seq";

/// The index key of a log's accounts.
pub(super) fn accounts_key(log: &str) -> String {
    format!("log/{log}")
}

/// Whether `list` starts with exactly the messages of `prefix` (the same records, not equal ones).
fn starts_with(list: &[MessageRef], prefix: &[MessageRef]) -> bool {
    list.len() >= prefix.len() && list.iter().zip(prefix).all(|(a, b)| Arc::ptr_eq(a, b))
}

impl Shared {
    /// Queues a chat for the next group commit.
    pub(super) fn mark_dirty(&self, chat: &mut ChatState) {
        if !chat.dirty {
            chat.dirty = true;
            lock(&self.dirty).push(chat.id);
        }
    }

    /// Stages a sled insert.
    pub(super) fn stage_insert(&self, key: &[u8], value: Vec<u8>) {
        lock(&self.staged).batch.insert(key, value);
    }

    /// Stages a sled removal.
    pub(super) fn stage_remove(&self, key: &[u8]) {
        lock(&self.staged).batch.remove(key);
    }

    /// Syncs the logs, then applies every staged change as one sled batch, with the logs'
    /// accounts of live bytes (so that an open need not recount them from the whole index). A
    /// sled batch may reach the disk at any moment once applied, so the log records it points
    /// at must be there first. The writer lock must be held.
    pub(super) fn apply_staged(&self) -> Result<()> {
        self.index_writable()?;
        let mut staged = lock(&self.staged);
        for (name, log) in self.logs() {
            log.sync()?;
            self.stamp_accounts(&mut *staged, name, log);
        }
        self.stamp_next_seq(&mut *staged);
        let batch = std::mem::take(&mut *staged).batch;
        if let Err(e) = self.db.apply_batch(batch) {
            // The batch is lost, but memory already holds what it wrote (directory runs that
            // would then be read back from the index as they were before).
            self.halted.store(true, Ordering::SeqCst);
            return Err(self.io(e));
        }
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Refuses index changes after a sled batch failed to apply: a staged batch (memory holds
    /// changes the index lost) or one of a postings flush (see [`Shared::flush_postings`]; until
    /// an open finishes it, the in-memory postings and the postings log's accounts may disagree
    /// with the index).
    fn index_writable(&self) -> Result<()> {
        if self.halted.load(Ordering::SeqCst) {
            return Err(StoreError::Halted {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Puts a log's accounts of live bytes into `batch`, so that an open need not recount them.
    fn stamp_accounts(&self, batch: &mut impl IndexWrites, name: &str, log: &BlockLog) {
        batch.put(
            &layout::meta_key(&accounts_key(name)),
            codec::encode(&log.accounts()),
        );
    }

    /// Puts the seq high-water mark into `batch`: seqs name chunks too, which an open does not
    /// read.
    fn stamp_next_seq(&self, batch: &mut impl IndexWrites) {
        batch.put(
            &layout::meta_key(NEXT_SEQ),
            codec::encode(&self.next_seq.load(Ordering::SeqCst)),
        );
    }

    /// Applies the staged changes once they hold many blocks (bounding their memory); fewer
    /// wait for the group commit, so that bulk writers sync the logs rarely. The writer lock
    /// must be held.
    pub(super) fn apply_if_many_staged(&self) -> Result<()> {
        if lock(&self.staged).blocks >= APPLY_AFTER_BLOCKS {
            self.apply_staged()?;
            // Writers without a group commit (a restore) flush the postings buffer here.
            if lock(&self.postings.pending).refs >= postings::FLUSH_REFS {
                self.flush_postings()?;
            }
        }
        Ok(())
    }

    /// The group commit: writes every changed chat, flushes postings when the buffer is large,
    /// applies it all, trains the dictionary when due, then (unless only sealing) syncs sled.
    pub(super) fn commit(&self, kind: Commit) -> Result<()> {
        self.index_writable()?;
        let _committing = lock(&self.committing);
        let everything = kind == Commit::Close;
        let persist_tail = kind != Commit::Seal;
        let started = Instant::now();
        let dirty = std::mem::take(&mut *lock(&self.dirty));
        for (i, &id) in dirty.iter().enumerate() {
            let Some(handle) = self.chat(id) else {
                continue;
            };
            if kind == Commit::Seal && lock(&handle).tail.len() < SEAL_LEN {
                // Only full blocks are worth an early commit; the rest waits for the sync.
                lock(&self.dirty).push(id);
                continue;
            }
            // Compression runs before the writer lock is taken, so that a writer who must seal
            // (tails piling up) waits for one chat's write, not for a whole commit's encoding.
            let written = self.prepare(&handle, persist_tail).and_then(|prepared| {
                let plan = WritePlan {
                    checkpoint_now: everything,
                    persist_tail,
                    ..prepared
                };
                let _writer = lock(&self.writer);
                self.write_chat(&mut lock(&handle), BTreeMap::new(), None, plan)
            });
            if let Err(e) = written {
                // Keep the rest queued for the next attempt.
                lock(&self.dirty).extend_from_slice(&dirty[i..]);
                return Err(e);
            }
        }
        {
            let _writer = lock(&self.writer);
            if everything {
                for handle in self.all_chats() {
                    let mut chat = lock(&handle);
                    if chat.unchecked_seals > 0 {
                        let plan = WritePlan {
                            checkpoint_now: true,
                            persist_tail: true,
                            ..WritePlan::default()
                        };
                        self.write_chat(&mut chat, BTreeMap::new(), None, plan)?;
                    }
                }
            }
            // A seal-only commit leaves its changes staged (their tails stay referenced, so
            // nothing is at risk): syncing the logs every few milliseconds would slow it down
            // enough to let tails pile up in memory.
            if kind != Commit::Seal || lock(&self.staged).blocks >= APPLY_AFTER_BLOCKS {
                // User records leave their queue only in a commit that applies them: until
                // then the queue is what reads see.
                self.stage_renamed();
                self.apply_staged()?;
                // On close, so that the next open has no pending postings to read from blocks.
                let pending = lock(&self.postings.pending).refs;
                if pending >= postings::FLUSH_REFS || (everything && pending > 0) {
                    self.flush_postings()?;
                }
            }
        }
        self.maybe_train_dictionary()?;
        if kind == Commit::Seal {
            return Ok(());
        }
        // The sync covers every batch applied above; writers need not wait for the disk.
        self.db.flush().map_err(|e| self.io(e))?;
        if everything {
            self.compact_tail_log()?;
        }
        self.record_commit(started);
        Ok(())
    }

    /// Stages the user records given or renamed since the last commit: the one place they are
    /// written.
    fn stage_renamed(&self) {
        let renamed = std::mem::take(&mut *lock(&self.renamed));
        for (user, given) in renamed {
            let info = match given {
                Some(info) => info,
                None => {
                    let Some(name) = self.user_shard(user).get(&user).map(|e| e.name.to_string())
                    else {
                        continue;
                    };
                    UserInfo {
                        display_name: name,
                        username: self.stored_user(user).and_then(|u| u.username),
                    }
                }
            };
            self.stage_insert(
                &layout::user_prefix(layout::USER_INFO, user),
                codec::encode(&info),
            );
        }
    }

    /// Stages one chat's pending changes: block edits, newly full blocks, tail segments and the
    /// checkpoint. The writer lock must be held; with `edits`, [`Shared::lock_for_rewrite`] too.
    pub(super) fn write_chat(
        &self,
        chat: &mut ChatState,
        edits: BTreeMap<usize, BlockEdit>,
        forget: Option<UserId>,
        plan: WritePlan,
    ) -> Result<()> {
        let rewrite = !edits.is_empty();
        let end_before = chat.sealed_end();
        if rewrite {
            self.stage_block_edits(chat, edits, forget)?;
            // Tail records of messages sealed before may now sort after the sealed end: only a
            // rewrite of the tail keeps them from coming back at the next open.
            if chat.sealed_end() < end_before {
                chat.segments_stale = true;
            }
        }
        if chat.tail.len() >= SEAL_LEN {
            self.stage_seal(chat, plan.blocks)?;
        }
        if plan.persist_tail || chat.segments_stale {
            self.stage_tail(chat, plan.segment)?;
        }
        if rewrite
            || chat.unchecked_seals >= CHECKPOINT_EVERY
            || (plan.checkpoint_now && chat.unchecked_seals > 0)
        {
            self.stage_checkpoint(chat)?;
        }
        self.stage_directory(chat);
        chat.dirty = false;
        if !chat.unsaved.is_empty() {
            self.mark_dirty(chat);
        }
        if rewrite {
            // Applied now: the next rewrite reads users' chunks from the index.
            self.apply_staged()?;
            // The runs it rewrote are in the index: memory need not hold them.
            chat.directory.release(self.applied.load(Ordering::SeqCst));
        }
        Ok(())
    }

    /// Stages the directory runs of a chat that changed since they were last staged, and the
    /// removal of records no run has any longer.
    pub(super) fn stage_directory(&self, chat: &mut ChatState) {
        let id = chat.id;
        let mut staged = lock(&self.staged);
        chat.directory
            .stage(self.applied.load(Ordering::SeqCst), |first, value| {
                // The directory holds a staged run until the index has it; read again after,
                // it comes from the index.
                self.runs.remove(&(id, first));
                let key = layout::block_key(layout::DIRECTORY, id, first);
                match value {
                    Some(value) => staged.put(&key, value),
                    None => staged.delete(&key),
                }
            });
    }

    /// Stages the chat's checkpoint covering every current block (or its removal if none is
    /// left): the counters of its sealed messages, written to the tail log.
    pub(super) fn stage_checkpoint(&self, chat: &mut ChatState) -> Result<()> {
        let key = layout::chat_prefix(layout::CHECKPOINT, chat.id);
        let covered = chat.directory.max_seq();
        if let Some(old) = chat.checkpoint.take() {
            self.tails.released(old, chat.id);
        }
        if chat.directory.is_empty() {
            self.stage_remove(&key);
        } else {
            let mut sealed = chat.counters.clone();
            for m in &chat.tail {
                sealed.remove(m);
            }
            let bytes = codec::encode(&sealed.to_checkpoint(covered));
            let location = self.tails.append([bytes.as_slice()])?[0];
            self.tails.referenced(location);
            self.stage_insert(&key, codec::encode(&location));
            chat.checkpoint = Some(location);
        }
        chat.checkpoint_seq = covered;
        chat.unchecked_seals = 0;
        Ok(())
    }

    /// Seals full blocks off the front of the tail.
    fn stage_seal(&self, chat: &mut ChatState, prepared: Vec<EncodedBlock>) -> Result<()> {
        // Whatever may fail comes before the tail gives up its messages: the directory's one
        // read, the encoding and the append to the block log.
        chat.directory.load_last(self)?;
        let full = chat.tail.len() / SEAL_LEN * SEAL_LEN;
        let sealed: Vec<MessageRef> = chat.tail[..full].to_vec();
        let mut prepared = prepared.into_iter();
        let mut encoded = Vec::new();
        for block in sealed.chunks(SEAL_LEN) {
            // Use the encoding made outside the lock if the tail still starts with those messages.
            let bytes = match prepared
                .next()
                .filter(|p| p.messages.len() == block.len() && starts_with(block, &p.messages))
            {
                Some(p) => p.bytes,
                None => self.encode(chat.id, block)?,
            };
            encoded.push((block, bytes));
        }
        for meta in self.stage_blocks(chat.id, &encoded, true)? {
            chat.directory.push(meta, self)?;
        }
        chat.tail.drain(..full);
        self.totals
            .unsealed
            .fetch_sub(full as u64, Ordering::Relaxed);
        for m in &sealed {
            if let Some(user) = m.user_id {
                self.postings
                    .remove_unsealed(user, super::shared::posting_of(m));
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
            .take_while(|s| end.is_some_and(|end| s.max <= end))
            .count();
        let gone: Vec<TailSegment> = chat.segments.drain(..obsolete).collect();
        for segment in gone {
            self.release_tail_segment(chat.id, &segment);
        }
        chat.unsaved
            .retain(|m| end.is_none_or(|end| key_of(m) > end));
        Ok(())
    }

    /// Appends encoded blocks to the block log and stages, if their postings are pending, their
    /// markers. Returns their directory entries, in order (the caller puts them in the chat's
    /// directory, which [`Shared::stage_directory`] writes).
    pub(super) fn stage_blocks(
        &self,
        chat: ChatId,
        encoded: &[(&[MessageRef], Vec<u8>)],
        postings_pending: bool,
    ) -> Result<Vec<BlockMeta>> {
        let locations = self
            .blocks
            .append(encoded.iter().map(|(_, bytes)| bytes.as_slice()))?;
        let mut metas = Vec::with_capacity(encoded.len());
        for ((messages, _), location) in encoded.iter().zip(locations) {
            let meta = BlockMeta::describe(messages, self.next_seq(), location);
            self.blocks.referenced(location);
            if postings_pending {
                self.stage_insert(
                    &layout::seq_key(layout::PENDING_POSTINGS, meta.seq),
                    codec::encode(&MARKER),
                );
                lock(&self.postings.pending).add_block(meta.seq, &block_refs(chat, messages));
            }
            metas.push(meta);
        }
        lock(&self.staged).blocks += encoded.len();
        Ok(metas)
    }

    /// Releases a block being dropped from the directory (and stages the removal of its
    /// pending postings).
    pub(super) fn stage_block_removal(&self, chat: ChatId, meta: &BlockMeta, old: &[MessageRef]) {
        self.blocks.released(meta.location, chat);
        let mut pending = lock(&self.postings.pending);
        if pending.blocks.contains(&meta.seq) {
            self.stage_remove(&layout::seq_key(layout::PENDING_POSTINGS, meta.seq));
            pending.remove_block(meta.seq, &block_refs(chat, old));
        }
    }

    /// Stages the removal of a tail segment.
    fn release_tail_segment(&self, chat: ChatId, segment: &TailSegment) {
        self.stage_remove(&layout::tail_key(chat, segment.seq));
        self.tails.released(segment.location, chat);
    }

    pub(super) fn encode(&self, chat: ChatId, messages: &[MessageRef]) -> Result<Vec<u8>> {
        codec::encode_block(&self.compressor, chat, messages)
            .map_err(|e| self.corrupt(format!("encoding a block of chat {chat}"), e))
    }

    /// Encodes what the next write of a chat will seal (and, with `segment`, append to its
    /// tail), without holding the chat's lock or the writer lock, so that writers never wait for
    /// compression. Whatever changed meanwhile is found by the write, which encodes again.
    pub(super) fn prepare(&self, handle: &Mutex<ChatState>, segment: bool) -> Result<WritePlan> {
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
        let segment = if !segment || unsaved.is_empty() {
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
    fn stage_tail(&self, chat: &mut ChatState, prepared: Option<EncodedBlock>) -> Result<()> {
        let rewrite = chat.segments_stale || chat.segments.len() >= MAX_SEGMENTS;
        if rewrite {
            for segment in std::mem::take(&mut chat.segments) {
                self.release_tail_segment(chat.id, &segment);
            }
            chat.unsaved = chat.tail.clone();
        }
        let (records, bytes) =
            match prepared.filter(|p| !rewrite && starts_with(&chat.unsaved, &p.messages)) {
                Some(p) => (chat.unsaved.drain(..p.messages.len()).collect(), p.bytes),
                None => {
                    let records: Vec<MessageRef> = std::mem::take(&mut chat.unsaved);
                    let bytes = if records.is_empty() {
                        Vec::new()
                    } else {
                        self.encode(chat.id, &records)?
                    };
                    (records, bytes)
                }
            };
        if let Some(max) = records.iter().map(|m| key_of(m)).max() {
            let location = self.tails.append([bytes.as_slice()])?[0];
            self.tails.referenced(location);
            let seq = self.next_seq();
            self.stage_insert(&layout::tail_key(chat.id, seq), codec::encode(&location));
            chat.segments.push(TailSegment { seq, max, location });
        }
        chat.segments_stale = false;
        Ok(())
    }

    /// Writes the pending postings as chunks and drops their markers. The writer lock must be
    /// held (or the store not yet shared, at open), and the staged changes applied (the markers
    /// are in the index). If building or syncing fails, nothing was applied: the log's accounts
    /// are taken back and the refs stay pending. If a batch fails to apply, sled may hold part
    /// of it, and chunks may hold some refs of blocks still marked: the index takes no more
    /// changes until the store is opened again, which finishes the flush.
    pub(super) fn flush_postings(&self) -> Result<()> {
        self.index_writable()?;
        let mut pending = lock(&self.postings.pending);
        let batches = self.postings_batches(&pending)?;
        if let Err(e) = self.postings_log.sync() {
            batches.iter().for_each(|b| self.abandon(b));
            return Err(e);
        }
        for flush in batches {
            if let Err(e) = self.db.apply_batch(flush.batch) {
                self.halted.store(true, Ordering::SeqCst);
                return Err(self.io(e));
            }
        }
        *pending = postings::Pending::default();
        Ok(())
    }

    /// The sled batches of a postings flush, [`FLUSH_BATCH_USERS`] people at a time; the last
    /// one drops the markers. The chunks are appended to the postings log meanwhile, which must
    /// be synced before any batch is applied.
    ///
    /// sled copies every leaf a batch changes and keeps the old copies until the batch ends (one
    /// epoch guard), so one batch of every person's pointers held ~10 MB of copies at 5M
    /// messages. Each batch carries the postings log's accounts and the seq mark as of its own
    /// end, so that a crash between two of them leaves the index consistent: the markers stay,
    /// and the next open reads those blocks' refs again but keeps only those no chunk holds.
    pub(super) fn postings_batches(&self, pending: &postings::Pending) -> Result<Vec<FlushBatch>> {
        let mut users: Vec<UserId> = pending.by_user.keys().copied().collect();
        users.sort_unstable();
        let mut batches: Vec<FlushBatch> = Vec::new();
        for group in users.chunks(FLUSH_BATCH_USERS) {
            let mut flush = FlushBatch::default();
            for user in group {
                if let Err(e) = self.flush_user_postings(*user, &pending.by_user[user], &mut flush)
                {
                    batches.iter().chain([&flush]).for_each(|b| self.abandon(b));
                    return Err(e);
                }
            }
            self.stamp_accounts(&mut flush.batch, "postings", &self.postings_log);
            self.stamp_next_seq(&mut flush.batch);
            batches.push(flush);
        }
        if !pending.blocks.is_empty() {
            let mut markers = FlushBatch::default();
            for seq in &pending.blocks {
                markers
                    .batch
                    .remove(&layout::seq_key(layout::PENDING_POSTINGS, *seq));
            }
            batches.push(markers);
        }
        Ok(batches)
    }

    /// Writes one person's pending `refs` as chunks into `flush`; a last chunk that is still
    /// small takes in the new refs instead of another small chunk.
    fn flush_user_postings(
        &self,
        user: UserId,
        refs: &[PostingRef],
        flush: &mut FlushBatch,
    ) -> Result<()> {
        let mut merged = refs.to_vec();
        // Forward: sled's reverse iteration costs far more than walking a user's few chunks.
        if let Some(last) = self.user_chunks(user, Timestamp::MAX).last().transpose()? {
            let old = self.read_chunk(&last)?;
            if old.len() < SMALL_CHUNK_REFS {
                self.drop_chunk(&last, &mut flush.batch);
                flush.dropped.push((last.pointer.location, user));
                merged.extend(old);
            }
        }
        merged.sort_unstable();
        let written = self.write_chunks(user, &merged, &mut flush.batch)?;
        flush
            .written
            .extend(written.into_iter().map(|location| (location, user)));
        Ok(())
    }

    /// Takes back what building a flush batch did to the postings log's accounts, for a batch
    /// that is not applied: its chunks were never referenced, and those it dropped still are.
    fn abandon(&self, flush: &FlushBatch) {
        for &(location, user) in &flush.written {
            self.postings_log.released(location, user);
        }
        for &(location, _) in &flush.dropped {
            self.postings_log.unreleased(location);
        }
    }

    /// Once enough blocks exist, trains a dictionary on them; blocks sealed from then on use it.
    pub(super) fn maybe_train_dictionary(&self) -> Result<()> {
        if self.compressor.current_dictionary() != codec::NO_DICTIONARY {
            return Ok(());
        }
        let chats = self.all_chats();
        let blocks: usize = chats.iter().map(|c| lock(c).directory.len()).sum();
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
                // Every block gives a frame or more: no more blocks than samples are needed.
                let (chat, metas) = {
                    let chat = lock(handle);
                    let mut metas = Vec::new();
                    chat.directory.for_each(self, |_, meta| {
                        metas.push(meta.clone());
                        Ok(metas.len() < DICTIONARY_SAMPLES)
                    })?;
                    (chat.id, metas)
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
            .insert(layout::meta_key(&format!("dict/{id}")), codec::encode(&raw))
            .map_err(|e| self.io(e))?;
        self.compressor
            .add_dictionary(id, raw)
            .map_err(|e| self.corrupt("new dictionary", e))?;
        tracing::info!(samples = samples.len(), "trained a compression dictionary");
        Ok(())
    }
}

/// The postings of a block's messages.
pub(super) fn block_refs(chat: ChatId, messages: &[MessageRef]) -> BlockRefs {
    BlockRefs {
        chat,
        refs: messages
            .iter()
            .filter_map(|m| Some((m.user_id?, m.time, m.message_id)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FlushPolicy, Message, Store, StoreConfig};
    use std::path::Path;

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    fn open(path: &Path) -> Store {
        let mut config = StoreConfig::new(path);
        config.flush = FlushPolicy::Manual;
        Store::open(config).unwrap()
    }

    fn message(i: i32, people: i64) -> Message {
        let time = 1_700_000_000 + i64::from(i);
        let text = format!("повідомлення {i}");
        Message::text_for_test(-1_009, i, time, 1 + i64::from(i) % people, &text)
    }

    /// Two waves of 4,000 messages of `people` people: the first in chunks (each person's last
    /// chunk small, so the next flush merges it), the second's sealed blocks' refs pending.
    fn two_waves(store: &Store, people: i64) {
        store
            .save_batch((1..=4_000).map(|i| message(i, people)).collect())
            .unwrap();
        store.shared.commit(Commit::Close).unwrap();
        store
            .save_batch((4_001..=8_000).map(|i| message(i, people)).collect())
            .unwrap();
        store.flush().unwrap();
    }

    /// What `verify` finds, without the commit it begins with (which would flush postings).
    fn problems(store: &Store) -> Vec<String> {
        let _profiles = lock(&store.shared.profiles.lock);
        let _writer = lock(&store.shared.writer);
        store.shared.check().unwrap().problems
    }

    #[test]
    fn a_postings_flush_cut_short_writes_no_ref_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("store"));
        let people = 3 * FLUSH_BATCH_USERS as i64;
        two_waves(&store, people);
        let shared = &store.shared;
        assert!(lock(&shared.postings.pending).by_user.len() > 2 * FLUSH_BATCH_USERS);
        // The first batch of a flush is applied, and then the process stops: its people's refs
        // are in chunks (their small chunks merged), and every marker stays.
        {
            let _writer = lock(&shared.writer);
            let batches = shared
                .postings_batches(&lock(&shared.postings.pending))
                .unwrap();
            assert!(batches.len() > 2);
            let first = batches.into_iter().next().unwrap();
            shared.postings_log.sync().unwrap();
            shared.db.apply_batch(first.batch).unwrap();
            shared.db.flush().unwrap();
        }
        let crashed = dir.path().join("crashed");
        copy_dir(&dir.path().join("store"), &crashed);
        drop(store);

        // The open reads the marked blocks' refs again, keeps those no chunk holds, and
        // finishes the flush: no marker is left.
        let store = open(&crashed);
        assert_eq!(lock(&store.shared.postings.pending).refs, 0);
        assert_eq!(
            store
                .shared
                .db
                .scan_prefix([layout::PENDING_POSTINGS])
                .count(),
            0
        );
        assert_eq!(problems(&store), Vec::<String>::new());
        // Rewrites of blocks that were marked keep the postings exact: an edit, and a person
        // of the flushed batch forgotten in the chat.
        let mut edited = message(4_100, people);
        edited.text = "виправлено".into();
        edited.edit_time = Some(edited.time + 60);
        store.save_message(edited).unwrap();
        let forgotten = 1 + 4_100 % people;
        assert!(store.delete_user_in_chat(forgotten, -1_009).unwrap() > 0);
        store.flush().unwrap();
        assert_eq!(problems(&store), Vec::<String>::new());
        assert_eq!(store.verify().unwrap().problems, Vec::<String>::new());
        for user in [1, 1 + FLUSH_BATCH_USERS as i64, forgotten] {
            let found = store
                .user_messages(user, Timestamp::MIN, Timestamp::MAX)
                .unwrap();
            assert_eq!(found.len() as u64, store.user_total(user), "user {user}");
        }
    }

    #[test]
    fn a_postings_flush_that_is_not_applied_leaves_the_accounts_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        two_waves(&store, 3 * FLUSH_BATCH_USERS as i64);
        let shared = &store.shared;
        {
            // Built (chunks appended, small ones merged), then given up, as on an error.
            let _writer = lock(&shared.writer);
            let batches = shared
                .postings_batches(&lock(&shared.postings.pending))
                .unwrap();
            assert!(batches.iter().any(|b| !b.dropped.is_empty()));
            batches.iter().for_each(|b| shared.abandon(b));
        }
        assert_eq!(problems(&store), Vec::<String>::new());
        assert_eq!(store.verify().unwrap().problems, Vec::<String>::new());
    }

    #[test]
    fn after_a_flush_batch_fails_to_apply_the_index_takes_no_more_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .save_batch((1..=300).map(|i| message(i, 7)).collect())
            .unwrap();
        store.flush().unwrap();
        // What `flush_postings` records when a batch fails in sled.
        store.shared.halted.store(true, Ordering::SeqCst);
        store.save_message(message(301, 7)).unwrap();
        let refused = store.flush().unwrap_err();
        assert!(matches!(refused, StoreError::Halted { .. }), "{refused}");
        assert!(refused.to_string().contains("Restart chatkeeper"));
        assert!(store.verify().is_err());
        drop(store);
        // The open starts afresh from what the index holds.
        let store = open(dir.path());
        assert_eq!(store.global_stats().total_messages, 300);
        assert_eq!(store.verify().unwrap().problems, Vec::<String>::new());
    }

    #[test]
    fn user_records_stay_readable_through_a_seal_only_commit_and_go_with_their_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let info = UserInfo {
            display_name: "user 7".into(),
            username: Some("olya".into()),
        };
        store.set_user_info(7, info.clone()).unwrap();
        // A seal-only commit applies nothing to the index: the record stays queued and read.
        store.shared.commit(Commit::Seal).unwrap();
        assert_eq!(store.user_info(7), Some(info.clone()));
        let mut renamed = Message::text_for_test(-1_009, 1, 1_700_000_000, 7, "привіт");
        renamed.sender_name = "Оля".into();
        store.save_batch(vec![renamed]).unwrap();
        store.flush().unwrap();
        assert_eq!(
            store.user_info(7),
            Some(info),
            "the given record wins its commit"
        );
        // Deleting the user takes a queued record with them.
        store
            .set_user_info(
                7,
                UserInfo {
                    display_name: "Оля".into(),
                    username: Some("olya2".into()),
                },
            )
            .unwrap();
        store.delete_user(7).unwrap();
        assert_eq!(store.user_info(7), None);
        store.flush().unwrap();
        drop(store);
        assert_eq!(open(dir.path()).user_info(7), None);
    }
}
