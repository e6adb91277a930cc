//! Users' postings chunks as stored: the bytes in the postings log, a pointer per chunk in the
//! index (`L user first_time seq` → where it is and its last time, so that a range read skips
//! chunks without reading them). Every write of chunks goes through here.

use super::blocklog::Location;
use super::commit::IndexWrites;
use super::layout;
use super::model::{Timestamp, UserId};
use super::postings::{self, PostingRef};
use super::shared::Shared;
use super::{codec, Result};
use serde::{Deserialize, Serialize};

/// Refs per postings chunk at most (about 2.5 KB).
const MAX_CHUNK_REFS: usize = 512;

/// What the index holds for one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ChunkPointer {
    pub location: Location,
    pub last_time: Timestamp,
}

/// One chunk as found in the index.
pub(super) struct ChunkEntry {
    pub key: sled::IVec,
    pub user: UserId,
    pub first: Timestamp,
    pub pointer: ChunkPointer,
}

impl Shared {
    fn chunk_entry(&self, item: sled::Result<(sled::IVec, sled::IVec)>) -> Result<ChunkEntry> {
        let (key, value) = item.map_err(|e| self.io(e))?;
        let (user, first, _) = postings::parse_key(&key)
            .ok_or_else(|| self.corrupt_msg("a postings key is malformed"))?;
        let pointer: ChunkPointer =
            codec::decode(&value).map_err(|e| self.corrupt("postings pointer", e))?;
        Ok(ChunkEntry {
            key,
            user,
            first,
            pointer,
        })
    }

    /// The chunk entries of `user` whose first time is at most `to`, oldest first.
    pub(super) fn user_chunks(
        &self,
        user: UserId,
        to: Timestamp,
    ) -> impl DoubleEndedIterator<Item = Result<ChunkEntry>> + '_ {
        let start = layout::postings_key(user, Timestamp::MIN, 0);
        let end = layout::postings_key(user, to, u64::MAX);
        self.db
            .range(start..=end)
            .map(move |item| self.chunk_entry(item))
    }

    /// Every chunk entry, by user.
    pub(super) fn all_chunks(&self) -> impl Iterator<Item = Result<ChunkEntry>> + '_ {
        self.db
            .scan_prefix([layout::POSTINGS])
            .map(move |item| self.chunk_entry(item))
    }

    /// The refs of a chunk.
    ///
    /// Readers hold no lock, so compaction may have moved the chunk (and deleted its segment)
    /// since `entry` was read from the index: then the index is asked again. A chunk dropped
    /// meanwhile was merged into a newer one, whose refs are read there.
    pub(super) fn read_chunk(&self, entry: &ChunkEntry) -> Result<Vec<PostingRef>> {
        let mut location = entry.pointer.location;
        let bytes = loop {
            match self.postings_log.read(location) {
                Ok(bytes) => break bytes,
                Err(e) => {
                    let now = match self.db.get(&entry.key).map_err(|e| self.io(e))? {
                        None => return Ok(Vec::new()),
                        Some(value) => codec::decode::<ChunkPointer>(&value)
                            .map_err(|e| self.corrupt("postings pointer", e))?,
                    };
                    if now.location == location {
                        return Err(self.unreadable("a postings chunk", e));
                    }
                    location = now.location;
                }
            }
        };
        postings::decode_chunk(entry.first, &bytes).map_err(|e| self.corrupt("postings chunk", e))
    }

    /// Appends `refs` (sorted) of `user` as new chunks and puts their pointers into `batch`;
    /// returns where the chunks are. The postings log must be synced before `batch` is applied.
    pub(super) fn write_chunks(
        &self,
        user: UserId,
        refs: &[PostingRef],
        batch: &mut impl IndexWrites,
    ) -> Result<Vec<Location>> {
        let encoded: Vec<(Timestamp, Timestamp, Vec<u8>)> = refs
            .chunks(MAX_CHUNK_REFS)
            .map(|chunk| {
                let (first, bytes) = postings::encode_chunk(chunk);
                (first, chunk[chunk.len() - 1].time, bytes)
            })
            .collect();
        let locations = self
            .postings_log
            .append(encoded.iter().map(|(_, _, bytes)| bytes.as_slice()))?;
        for ((first, last_time, _), &location) in encoded.iter().zip(&locations) {
            self.postings_log.referenced(location);
            batch.put(
                &layout::postings_key(user, *first, self.next_seq()),
                codec::encode(&ChunkPointer {
                    location,
                    last_time: *last_time,
                }),
            );
        }
        Ok(locations)
    }

    /// Leaves out of `refs` (of `user`, sorted then) the duplicates and the refs that a chunk
    /// already holds: those a postings flush wrote before a crash that kept their blocks'
    /// markers. Only chunks whose time span meets that of `refs` are read.
    pub(super) fn drop_chunked(&self, user: UserId, refs: &mut Vec<PostingRef>) -> Result<()> {
        refs.sort_unstable();
        refs.dedup();
        let (Some(from), Some(to)) = (refs.first().map(|r| r.time), refs.last().map(|r| r.time))
        else {
            return Ok(());
        };
        for entry in self.user_chunks(user, to) {
            let entry = entry?;
            if entry.pointer.last_time >= from {
                let held = self.read_chunk(&entry)?;
                refs.retain(|r| held.binary_search(r).is_err());
            }
        }
        Ok(())
    }

    /// Drops a chunk: its pointer from the index (in `batch`), its bytes dead.
    pub(super) fn drop_chunk(&self, entry: &ChunkEntry, batch: &mut impl IndexWrites) {
        batch.delete(&entry.key);
        self.postings_log
            .released(entry.pointer.location, entry.user);
    }

    /// Rewrites the chunks among `entries`, keeping the refs `keep` accepts (a chunk that keeps
    /// all is left alone).
    pub(super) fn rewrite_chunks(
        &self,
        entries: impl IntoIterator<Item = Result<ChunkEntry>>,
        batch: &mut impl IndexWrites,
        keep: impl Fn(&PostingRef) -> bool,
    ) -> Result<()> {
        for entry in entries {
            let entry = entry?;
            let refs = self.read_chunk(&entry)?;
            let kept: Vec<PostingRef> = refs.iter().copied().filter(|r| keep(r)).collect();
            if kept.len() == refs.len() {
                continue;
            }
            self.drop_chunk(&entry, batch);
            if !kept.is_empty() {
                self.write_chunks(entry.user, &kept, batch)?;
            }
        }
        Ok(())
    }
}
