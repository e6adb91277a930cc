//! Compaction: space of dead log records comes back, and deleted messages leave the disk.
//!
//! A segment is compacted by copying its live records (what the index references) to the end
//! of the log, syncing, repointing the index in one batch per group of records, syncing sled,
//! and only then deleting the segment file. Copies happen without the writer lock, so recording
//! and commits go on; a record rewritten meanwhile is simply not repointed (its copy is dead).
//! A crash at any point leaves either the old or the new pointers, both complete.
//!
//! - The background policy ([`Shared::compact_if_due`]) compacts a segment once half of it is
//!   dead.
//! - Deletions ([`Shared::erase_deleted`]) compact every block segment that may hold a dead
//!   record of an affected chat, every postings segment that may hold a forgotten user's, and
//!   the whole tail log, so that the deleted bytes are gone when they return; a deletion of
//!   profiles compacts every profiles segment that may hold a dead chunk of the chats concerned
//!   ([`Shared::erase_dead_profiles`]).
//!
//! Profile chunks change under the profile lock, not the writer lock (`profiles.rs`), so a
//! compaction of the profiles log holds that lock throughout.

use super::blocklog::{BlockLog, Location};
use super::chunks::ChunkPointer;
use super::layout;
use super::model::{ChatId, MsgKey, UserId};
use super::shared::{lock, Shared};
use super::{codec, Result};
use std::collections::HashSet;
use std::sync::atomic::Ordering;

/// Records copied and repointed per batch: bounds the memory of a compaction.
const RECORDS_PER_STEP: usize = 256;

/// Which log a compaction works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Blocks,
    Tails,
    Postings,
    Profiles,
}

/// What compaction does with a live profile chunk it cannot read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Damaged {
    Fail,
    Drop,
}

/// Who points at a live record.
enum Owner {
    Block {
        chat: ChatId,
        /// Its first message: where the directory finds it.
        first: MsgKey,
        seq: u64,
    },
    TailSegment {
        chat: ChatId,
        seq: u64,
    },
    Checkpoint {
        chat: ChatId,
    },
    Chunk {
        key: sled::IVec,
        user: UserId,
        last_time: i64,
    },
    ProfileChunk {
        key: sled::IVec,
        chat: ChatId,
    },
}

impl Owner {
    /// The chat or user the record's dead copy is attributed to.
    fn party(&self) -> i64 {
        match self {
            Owner::Block { chat, .. }
            | Owner::TailSegment { chat, .. }
            | Owner::Checkpoint { chat }
            | Owner::ProfileChunk { chat, .. } => *chat,
            Owner::Chunk { user, .. } => *user,
        }
    }
}

impl Shared {
    fn log(&self, which: Which) -> &BlockLog {
        match which {
            Which::Blocks => &self.blocks,
            Which::Tails => &self.tails,
            Which::Postings => &self.postings_log,
            Which::Profiles => &self.profiles_log,
        }
    }

    /// Compacts the segments (not the active one) of which at least half is dead. A running
    /// backup (which holds the rewrite gate) postpones it.
    pub(super) fn compact_if_due(&self) -> Result<()> {
        for which in [
            Which::Blocks,
            Which::Tails,
            Which::Postings,
            Which::Profiles,
        ] {
            let log = self.log(which);
            let active = log.active_id();
            let due: Vec<u32> = log
                .segments()
                .iter()
                .filter(|s| s.id != active && s.dead_bytes() > 0 && 2 * s.dead_bytes() >= s.len())
                .map(|s| s.id)
                .collect();
            for id in due {
                let Ok(_gate) = self.rewrites.try_read() else {
                    return Ok(());
                };
                let _one = lock(&self.compaction);
                self.compact_segment(which, id, Damaged::Fail)?;
            }
        }
        Ok(())
    }

    /// Compacts away every byte that may hold a message just deleted from `chats` (and, for a
    /// forgotten `user`, their postings): see the module's documentation.
    pub(super) fn erase_deleted(
        &self,
        chats: &HashSet<ChatId>,
        user: Option<UserId>,
    ) -> Result<()> {
        let _gate = self.rewrites.read().expect("rewrite gate");
        // Held from the choice of segments on: a background compaction that copied a record
        // before the deletion must not append its copy to a segment this one does not erase.
        let _one = lock(&self.compaction);
        self.erase(Which::Blocks, segments_with_dead_of(&self.blocks, chats))?;
        if let Some(user) = user {
            let users = HashSet::from([user]);
            let postings = segments_with_dead_of(&self.postings_log, &users);
            self.erase(Which::Postings, postings)?;
        }
        self.erase(Which::Tails, dead_segments(&self.tails))
    }

    /// Compacts every profiles segment that may hold dead chunks of `chats`: profiles of theirs
    /// were just deleted. The caller holds the rewrite gate (shared).
    pub(super) fn erase_dead_profiles(&self, chats: &HashSet<ChatId>) -> Result<()> {
        let _one = lock(&self.compaction);
        let segments = segments_with_dead_of(&self.profiles_log, chats);
        self.erase(Which::Profiles, segments)
    }

    /// Compacts every profiles segment with dead records (an open after a deletion whose erase
    /// had not run).
    pub(super) fn erase_all_dead_profiles(&self) -> Result<()> {
        let _gate = self.rewrites.read().expect("rewrite gate");
        let _one = lock(&self.compaction);
        self.erase(Which::Profiles, dead_segments(&self.profiles_log))
    }

    /// Compacts the tail log's segments with dead records (on close: little is live there).
    pub(super) fn compact_tail_log(&self) -> Result<()> {
        let Ok(_gate) = self.rewrites.try_read() else {
            return Ok(());
        };
        let _one = lock(&self.compaction);
        self.erase(Which::Tails, dead_segments(&self.tails))
    }

    /// Compacts `segments` of a log, the active one included (a new one is begun first).
    fn erase(&self, which: Which, segments: Vec<u32>) -> Result<()> {
        let log = self.log(which);
        if segments.contains(&log.active_id()) {
            log.roll()?;
        }
        for id in segments {
            // A record a writer appended but had not yet applied is not seen as live by the
            // first pass, and keeps the segment: a second pass finds it applied.
            if !self.compact_segment(which, id, Damaged::Drop)?
                && !self.compact_segment(which, id, Damaged::Drop)?
            {
                tracing::error!(segment = id, log = ?which, "a segment could not be erased; its dead records go at a later compaction");
            }
        }
        Ok(())
    }

    /// Moves the live records of segment `id` to the end of its log and deletes the segment;
    /// says whether it is gone. The caller holds the rewrite gate (shared) and the compaction
    /// lock; `id` is not the active segment.
    fn compact_segment(&self, which: Which, id: u32, damaged: Damaged) -> Result<bool> {
        let log = self.log(which);
        let Some(segment) = log.segment(id) else {
            return Ok(true);
        };
        let _profiles = (which == Which::Profiles).then(|| lock(&self.profiles.lock));
        let live = self.live_records(which, id)?;
        let before = segment.len();
        for step in live.chunks(RECORDS_PER_STEP) {
            let mut payloads = Vec::with_capacity(step.len());
            for (owner, location) in step {
                match log.read(*location) {
                    Ok(payload) => payloads.push(Some(payload)),
                    // A damaged profile chunk must not keep a deletion's bytes on disk: an
                    // erase drops it, as a repair would (its profiles start again). Routine
                    // compaction leaves it to `verify`.
                    Err(e)
                        if damaged == Damaged::Drop
                            && matches!(owner, Owner::ProfileChunk { .. }) =>
                    {
                        tracing::warn!(segment = id, error = %e, "dropped an unreadable profile chunk");
                        payloads.push(None);
                    }
                    Err(e) => return Err(self.unreadable(format!("log segment {id}"), e)),
                }
            }
            let mut moved = log
                .append(payloads.iter().flatten().map(|p| p.as_slice()))?
                .into_iter();
            // The copies must be on disk before the index points at them (`apply_staged` syncs
            // the logs with stored accounts, not the profiles log).
            log.sync()?;
            let _writer = lock(&self.writer);
            for ((owner, old), payload) in step.iter().zip(&payloads) {
                let Some(new) = payload.as_ref().and_then(|_| moved.next()) else {
                    if let Owner::ProfileChunk { key, .. } = owner {
                        self.stage_remove(key);
                        log.released(*old, owner.party());
                    }
                    continue;
                };
                if self.repoint(owner, *old, new)? {
                    log.referenced(new);
                    log.released(*old, owner.party());
                } else {
                    log.abandoned(new, owner.party());
                }
            }
            drop(payloads);
            self.apply_staged()?;
        }
        // Changes staged by writers since the last step (a seal's release of a tail segment,
        // say) are applied first: otherwise the index on disk could still point into the
        // segment after it is gone. Then nothing on disk or in memory does, unless it is
        // still live; nothing new can, as only the active segment takes records.
        let live_bytes = {
            let _writer = lock(&self.writer);
            self.apply_staged()?;
            segment.live_bytes()
        };
        // The new pointers must be on disk before the old bytes go.
        self.db.flush().map_err(|e| self.io(e))?;
        if live_bytes > 0 {
            tracing::debug!(
                segment = id,
                live = live_bytes,
                "a compacted segment still has live records; it is kept"
            );
            return Ok(false);
        }
        drop(segment);
        log.delete_segment(id)?;
        self.stats
            .segments_compacted
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(segment = id, log = ?which, bytes = before, moved = live.len(), "compacted a log segment");
        Ok(true)
    }

    /// The records of segment `id` that the index references now, in file order.
    fn live_records(&self, which: Which, id: u32) -> Result<Vec<(Owner, Location)>> {
        let mut live = Vec::new();
        if which == Which::Profiles {
            for pointer in self.valid_profile_chunks() {
                let pointer = pointer?;
                if pointer.location.segment == id {
                    live.push((
                        Owner::ProfileChunk {
                            key: pointer.key,
                            chat: pointer.chat,
                        },
                        pointer.location,
                    ));
                }
            }
        }
        if which == Which::Postings {
            for entry in self.all_chunks() {
                let entry = entry?;
                if entry.pointer.location.segment == id {
                    live.push((
                        Owner::Chunk {
                            key: entry.key,
                            user: entry.user,
                            last_time: entry.pointer.last_time,
                        },
                        entry.pointer.location,
                    ));
                }
            }
        }
        for handle in self.all_chats() {
            let chat = lock(&handle);
            let id_of = chat.id;
            match which {
                Which::Blocks => chat.directory.for_each_in_segment(id, self, |_, b| {
                    if b.location.segment == id {
                        let owner = Owner::Block {
                            chat: id_of,
                            first: b.first,
                            seq: b.seq,
                        };
                        live.push((owner, b.location));
                    }
                    Ok(true)
                })?,
                Which::Tails => {
                    live.extend(
                        chat.segments
                            .iter()
                            .filter(|s| s.location.segment == id)
                            .map(|s| {
                                (
                                    Owner::TailSegment {
                                        chat: id_of,
                                        seq: s.seq,
                                    },
                                    s.location,
                                )
                            }),
                    );
                    live.extend(
                        chat.checkpoint
                            .filter(|c| c.segment == id)
                            .map(|c| (Owner::Checkpoint { chat: id_of }, c)),
                    );
                }
                Which::Postings | Which::Profiles => {}
            }
        }
        live.sort_by_key(|(_, location)| location.offset);
        Ok(live)
    }

    /// Points the index at a record's copy, unless the record was rewritten or dropped since
    /// it was copied (then the copy is dead: returns false). The writer lock must be held.
    fn repoint(&self, owner: &Owner, old: Location, new: Location) -> Result<bool> {
        if let Owner::Chunk { key, last_time, .. } = owner {
            let current = self.db.get(key).map_err(|e| self.io(e))?;
            let expected = codec::encode(&ChunkPointer {
                location: old,
                last_time: *last_time,
            });
            if current.as_deref() != Some(expected.as_slice()) {
                return Ok(false);
            }
            self.stage_insert(
                key,
                codec::encode(&ChunkPointer {
                    location: new,
                    last_time: *last_time,
                }),
            );
            return Ok(true);
        }
        if let Owner::ProfileChunk { key, .. } = owner {
            // The profile lock is held: the pointer cannot change meanwhile.
            let current = self.db.get(key).map_err(|e| self.io(e))?;
            if current.as_deref() != Some(codec::encode(&old).as_slice()) {
                return Ok(false);
            }
            self.stage_insert(key, codec::encode(&new));
            return Ok(true);
        }
        let (Owner::Block { chat, .. }
        | Owner::TailSegment { chat, .. }
        | Owner::Checkpoint { chat }) = owner
        else {
            return Ok(false);
        };
        let Some(handle) = self.chat(*chat) else {
            return Ok(false);
        };
        let mut state = lock(&handle);
        match owner {
            Owner::Block { first, seq, .. } => {
                if !state.directory.relocate(*first, *seq, old, new, self)? {
                    return Ok(false);
                }
                self.stage_directory(&mut state);
            }
            Owner::TailSegment { chat, seq } => {
                let Some(segment) = state
                    .segments
                    .iter_mut()
                    .find(|s| s.seq == *seq && s.location == old)
                else {
                    return Ok(false);
                };
                segment.location = new;
                self.stage_insert(&layout::tail_key(*chat, *seq), codec::encode(&new));
            }
            Owner::Checkpoint { chat } => {
                if state.checkpoint != Some(old) {
                    return Ok(false);
                }
                state.checkpoint = Some(new);
                self.stage_insert(
                    &layout::chat_prefix(layout::CHECKPOINT, *chat),
                    codec::encode(&new),
                );
            }
            Owner::Chunk { .. } | Owner::ProfileChunk { .. } => return Ok(false),
        }
        Ok(true)
    }
}

/// The segments of a log that may hold dead records of `parties` (chats or users).
fn segments_with_dead_of(log: &BlockLog, parties: &HashSet<i64>) -> Vec<u32> {
    log.segments()
        .iter()
        .filter(|s| s.may_hold_dead_of(parties))
        .map(|s| s.id)
        .collect()
}

/// The segments of a log with dead records.
fn dead_segments(log: &BlockLog) -> Vec<u32> {
    log.segments()
        .iter()
        .filter(|s| s.dead_bytes() > 0)
        .map(|s| s.id)
        .collect()
}
