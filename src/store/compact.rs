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
//! - Deletions ([`Shared::erase_deleted`]) compact every segment that held a record of an
//!   affected chat, and the whole tail log, so that the deleted bytes are gone when they return.

use super::blocklog::{BlockLog, Location};
use super::layout;
use super::model::ChatId;
use super::{codec, lock, Result, Shared};
use std::collections::HashSet;
use std::sync::atomic::Ordering;

/// Records copied and repointed per batch: bounds the memory of a compaction.
const RECORDS_PER_STEP: usize = 256;

/// Which log a compaction works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Blocks,
    Tails,
}

/// One live record of a segment and who references it.
struct LiveRecord {
    chat: ChatId,
    seq: u64,
    location: Location,
}

impl Shared {
    fn log(&self, which: Which) -> &BlockLog {
        match which {
            Which::Blocks => &self.blocks,
            Which::Tails => &self.tails,
        }
    }

    /// Compacts the segments (not the active one) of which at least half is dead. A running
    /// backup (which holds the rewrite gate) postpones it.
    pub(super) fn compact_if_due(&self) -> Result<()> {
        for which in [Which::Blocks, Which::Tails] {
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
                self.compact_segment(which, id)?;
            }
        }
        Ok(())
    }

    /// Compacts away every byte that may hold a message just deleted from `chats`: the
    /// block-log segments with dead records of those chats (or of chats not known), and every
    /// tail-log segment with dead records.
    pub(super) fn erase_deleted(&self, chats: &HashSet<ChatId>) -> Result<()> {
        let _gate = self.rewrites.read().expect("rewrite gate");
        let doomed = self
            .blocks
            .segments()
            .iter()
            .filter(|s| s.may_hold_dead_of(chats))
            .map(|s| s.id)
            .collect();
        self.erase(Which::Blocks, doomed)?;
        let tails = self
            .tails
            .segments()
            .iter()
            .filter(|s| s.dead_bytes() > 0)
            .map(|s| s.id)
            .collect();
        self.erase(Which::Tails, tails)
    }

    /// Compacts the tail log's segments with dead records (on close: little is live there).
    pub(super) fn compact_tail_log(&self) -> Result<()> {
        let Ok(_gate) = self.rewrites.try_read() else {
            return Ok(());
        };
        let doomed = self
            .tails
            .segments()
            .iter()
            .filter(|s| s.dead_bytes() > 0)
            .map(|s| s.id)
            .collect();
        self.erase(Which::Tails, doomed)
    }

    /// Compacts `segments` of a log, the active one included (a new one is begun first).
    fn erase(&self, which: Which, segments: Vec<u32>) -> Result<()> {
        let log = self.log(which);
        if segments.contains(&log.active_id()) {
            log.roll()?;
        }
        for id in segments {
            if log.segment(id).is_some() {
                self.compact_segment(which, id)?;
            }
        }
        Ok(())
    }

    /// Moves the live records of segment `id` to the end of its log and deletes the segment.
    /// The caller holds the rewrite gate (shared); `id` is not the active segment.
    fn compact_segment(&self, which: Which, id: u32) -> Result<()> {
        let _one = lock(&self.compaction);
        let log = self.log(which);
        let Some(segment) = log.segment(id) else {
            return Ok(());
        };
        let live = self.live_records(which, id);
        let before = segment.len();
        for step in live.chunks(RECORDS_PER_STEP) {
            let mut payloads = Vec::with_capacity(step.len());
            for record in step {
                payloads.push(
                    log.read(record.location)
                        .map_err(|e| self.unreadable(format!("log segment {id}"), e))?,
                );
            }
            let moved = log.append(payloads.iter().map(|p| p.as_slice()))?;
            drop(payloads);
            let _writer = lock(&self.writer);
            for (record, new) in step.iter().zip(moved) {
                if !self.repoint(which, record, new) {
                    log.abandoned(new, record.chat);
                }
            }
            self.apply_staged()?;
        }
        {
            let _writer = lock(&self.writer);
            self.apply_staged()?;
        }
        // The new pointers must be on disk before the old bytes go.
        self.db.flush().map_err(|e| self.io(e))?;
        if segment.live_bytes() > 0 {
            tracing::error!(
                segment = id,
                live = segment.live_bytes(),
                "a compacted segment still has live records; it is kept"
            );
            return Ok(());
        }
        drop(segment);
        log.delete_segment(id)?;
        self.stats
            .segments_compacted
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(segment = id, log = ?which, bytes = before, moved = live.len(), "compacted a log segment");
        Ok(())
    }

    /// The records of segment `id` that the index references now.
    fn live_records(&self, which: Which, id: u32) -> Vec<LiveRecord> {
        let mut live = Vec::new();
        for handle in self.all_chats() {
            let chat = lock(&handle);
            match which {
                Which::Blocks => live.extend(
                    chat.blocks
                        .iter()
                        .filter(|b| b.location.segment == id)
                        .map(|b| LiveRecord {
                            chat: chat.id,
                            seq: b.seq,
                            location: b.location,
                        }),
                ),
                Which::Tails => live.extend(
                    chat.segments
                        .iter()
                        .filter(|s| s.location.segment == id)
                        .map(|s| LiveRecord {
                            chat: chat.id,
                            seq: s.seq,
                            location: s.location,
                        }),
                ),
            }
        }
        live.sort_by_key(|r| r.location.offset);
        live
    }

    /// Points the index at a record's copy, unless the record was rewritten or dropped since
    /// it was copied (then the copy is dead: returns false). The writer lock must be held.
    fn repoint(&self, which: Which, record: &LiveRecord, new: Location) -> bool {
        let Some(handle) = self.chat(record.chat) else {
            return false;
        };
        let mut chat = lock(&handle);
        let log = self.log(which);
        match which {
            Which::Blocks => {
                let Some(meta) = chat
                    .blocks
                    .iter_mut()
                    .find(|b| b.seq == record.seq && b.location == record.location)
                else {
                    return false;
                };
                meta.location = new;
                self.stage_insert(
                    &layout::block_key(layout::DIRECTORY, record.chat, meta.first),
                    codec::encode(meta),
                );
            }
            Which::Tails => {
                let Some(segment) = chat
                    .segments
                    .iter_mut()
                    .find(|s| s.seq == record.seq && s.location == record.location)
                else {
                    return false;
                };
                segment.location = new;
                self.stage_insert(
                    &layout::tail_key(record.chat, record.seq),
                    codec::encode(&new),
                );
            }
        }
        log.referenced(new);
        log.released(record.location, record.chat);
        true
    }
}
