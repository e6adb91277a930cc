//! The block log: append-only segment files holding the store's message data, read back with
//! positioned reads.
//!
//! sled keeps every page it has read resident (its cache charges a page by its size in sled's log,
//! and a large node is a blob charged a few bytes), so message data kept inside sled makes the
//! process grow with the history it reads. Here sled holds only small index records that point
//! into these files ([`Location`]); the bytes read live in the kernel's page cache, which the
//! kernel reclaims, and in the store's own byte-bounded frame cache. This is the key-value
//! separation of WiscKey and Badger's value log.
//!
//! A log is a directory of segment files `0000000001.seg`, … Only the newest (the active segment)
//! is appended to; it rolls over at a size limit. Each record is `length, CRC-32, payload`
//! (see `layout.rs`). The log itself knows nothing of what its records mean:
//!
//! - **Crash safety** is the caller's ordering: records are appended, [`BlockLog::sync`]ed, and
//!   only then referenced from a sled batch. At open, [`BlockLog::recover`] is told what the index
//!   references and cuts off everything after the last referenced record of the active segment.
//! - **Space** is tracked per segment as live bytes (what the index references); everything else
//!   in a segment is dead. Compaction (`compact.rs`) copies a segment's live records to the
//!   active segment, repoints the index, and then [`BlockLog::delete_segment`]s it, which also
//!   removes the bytes of deleted messages from the disk.

use super::error::{Result, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The first bytes of every segment file: what it is and its format version (the last byte).
const MAGIC: &[u8; 16] = b"CHATKEEPER-LOG\n\x01";
/// Bytes before the first record.
pub const SEGMENT_HEADER: u64 = MAGIC.len() as u64;
/// Bytes in front of each record's payload: length and CRC-32, little-endian.
pub const RECORD_HEADER: u64 = 8;
/// No record of ours is larger; a larger length field means damage.
const MAX_RECORD: u32 = 64 << 20;

/// Where a record is: its segment, the offset of its header, and its payload's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    pub segment: u32,
    pub offset: u32,
    pub len: u32,
}

/// The records an index references, counted one at a time into a log's [`Accounts`] (for
/// [`BlockLog::recover_with`]) without holding their locations.
#[derive(Default)]
pub struct Referenced(BTreeMap<u32, (u64, u64)>);

impl Referenced {
    /// Counts one referenced record.
    pub fn add(&mut self, location: Location) {
        let entry = self
            .0
            .entry(location.segment)
            .or_insert((0, SEGMENT_HEADER));
        entry.0 += location.record_bytes();
        entry.1 = entry.1.max(location.end());
    }

    /// Each segment's live bytes and the end of its last referenced record.
    pub fn into_accounts(self) -> Accounts {
        Accounts(
            self.0
                .into_iter()
                .map(|(id, (live, end))| (id, live, end))
                .collect(),
        )
    }
}

impl Location {
    /// Bytes the record takes in its segment, header included.
    pub fn record_bytes(&self) -> u64 {
        RECORD_HEADER + u64::from(self.len)
    }

    /// The offset just past the record.
    pub fn end(&self) -> u64 {
        u64::from(self.offset) + self.record_bytes()
    }
}

/// One segment file. Readers hold it by `Arc`, so a segment deleted by compaction stays readable
/// for a read already under way (the open file outlives its name).
pub struct Segment {
    pub id: u32,
    file: File,
    /// Bytes of records the index references.
    live: AtomicU64,
    /// Bytes written, header included.
    len: AtomicU64,
    /// The end of the furthest record ever referenced: a crash may leave only what is after it
    /// unreferenced.
    referenced_end: AtomicU64,
    /// Dead bytes whose chat is known, and those chats: a deletion must compact every segment
    /// that may hold a dead copy of a deleted message. Dead bytes beyond these (left by a crash,
    /// or by a previous run) are of unknown chats.
    dead_attributed: AtomicU64,
    dead_chats: Mutex<HashSet<i64>>,
}

impl Segment {
    /// Live bytes: records the index references.
    pub fn live_bytes(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    /// Bytes in the file.
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }

    /// Bytes no longer referenced.
    pub fn dead_bytes(&self) -> u64 {
        self.len()
            .saturating_sub(SEGMENT_HEADER + self.live_bytes())
    }

    /// Whether the segment may hold dead bytes of one of `chats` (or of a chat not known).
    pub fn may_hold_dead_of(&self, chats: &HashSet<i64>) -> bool {
        let dead = self.dead_bytes();
        dead > 0
            && (dead > self.dead_attributed.load(Ordering::Relaxed)
                || self
                    .dead_chats
                    .lock()
                    .expect("segment lock")
                    .iter()
                    .any(|c| chats.contains(c)))
    }

    fn new(id: u32, file: File, len: u64) -> Segment {
        Segment {
            id,
            file,
            live: AtomicU64::new(0),
            len: AtomicU64::new(len),
            referenced_end: AtomicU64::new(SEGMENT_HEADER),
            dead_attributed: AtomicU64::new(0),
            dead_chats: Mutex::default(),
        }
    }

    fn attribute_dead(&self, bytes: u64, chat: i64) {
        self.dead_attributed.fetch_add(bytes, Ordering::Relaxed);
        self.dead_chats.lock().expect("segment lock").insert(chat);
    }
}

/// What the index references in each segment: live bytes, and the end of the furthest record
/// it ever referenced. Stored with every change of the index, so that opening a store need not
/// recount it from every index record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounts(pub Vec<(u32, u64, u64)>);

/// A record could not be read back as written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("segment {0} does not exist")]
    MissingSegment(u32),
    #[error("cannot read {location:?}: {source}")]
    Read {
        location: Location,
        source: std::io::Error,
    },
    #[error("the record at {0:?} has a damaged header")]
    Header(Location),
    #[error("the record at {0:?} fails its checksum")]
    Checksum(Location),
}

/// An append-only log of records in segment files.
pub struct BlockLog {
    dir: PathBuf,
    /// A segment rolls over once it holds this many bytes.
    segment_limit: u64,
    state: Mutex<LogState>,
}

struct LogState {
    segments: BTreeMap<u32, Arc<Segment>>,
    /// Segments written since their last sync (the active one, and one just rolled over).
    unsynced: Vec<Arc<Segment>>,
}

impl BlockLog {
    /// Opens the log in `dir` (created if absent). Call [`BlockLog::recover`] once the index is
    /// loaded, before appending.
    pub fn open(dir: &Path, segment_limit: u64) -> Result<BlockLog> {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        let mut segments = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| file_error(dir, e))? {
            let entry = entry.map_err(|e| file_error(dir, e))?;
            let path = entry.path();
            let Some(id) = segment_id(&path) else {
                continue;
            };
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| file_error(&path, e))?;
            let len = file.metadata().map_err(|e| file_error(&path, e))?.len();
            let mut magic = [0u8; MAGIC.len()];
            if len < SEGMENT_HEADER || file.read_exact_at(&mut magic, 0).is_err() || &magic != MAGIC
            {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    what: "it is not a segment of this chatkeeper version's block log".into(),
                });
            }
            segments.insert(id, Arc::new(Segment::new(id, file, len)));
        }
        Ok(BlockLog {
            dir: dir.to_path_buf(),
            segment_limit,
            state: Mutex::new(LogState {
                segments,
                unsynced: Vec::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().expect("block log lock")
    }

    /// Takes what the index references, counted from every record of it: see
    /// [`BlockLog::recover_with`].
    pub fn recover(&self, referenced: impl IntoIterator<Item = Location>) -> Result<u64> {
        let mut counted = Referenced::default();
        referenced
            .into_iter()
            .for_each(|location| counted.add(location));
        self.recover_with(&counted.into_accounts())
    }

    /// Takes what the index references: sets each segment's live bytes, cuts the active segment
    /// after its last referenced record (what a crash left unreferenced), and deletes segments
    /// nothing references. Returns how many bytes were cut off.
    pub fn recover_with(&self, accounts: &Accounts) -> Result<u64> {
        let live: BTreeMap<u32, (u64, u64)> = accounts
            .0
            .iter()
            .map(|&(id, live, end)| (id, (live, end)))
            .collect();
        let mut state = self.state();
        for (&id, &(bytes, _)) in &live {
            if bytes > 0 && !state.segments.contains_key(&id) {
                return Err(StoreError::Corrupt {
                    path: self.segment_path(id),
                    what: "the index references this log segment, but the file is missing".into(),
                });
            }
        }
        let mut cut = 0;
        let newest = state.segments.keys().next_back().copied();
        let mut unreferenced = Vec::new();
        for (&id, segment) in &state.segments {
            let (bytes, end) = live.get(&id).copied().unwrap_or((0, SEGMENT_HEADER));
            if end > segment.len() {
                return Err(StoreError::Corrupt {
                    path: self.segment_path(id),
                    what: format!(
                        "the index references {end} bytes of it but it holds only {}",
                        segment.len()
                    ),
                });
            }
            segment.live.store(bytes, Ordering::Relaxed);
            segment.referenced_end.store(end, Ordering::Relaxed);
            if Some(id) == newest {
                if segment.len() > end {
                    cut = segment.len() - end;
                    segment
                        .file
                        .set_len(end)
                        .and_then(|()| segment.file.sync_data())
                        .map_err(|e| file_error(&self.segment_path(id), e))?;
                    segment.len.store(end, Ordering::Relaxed);
                }
            } else if bytes == 0 {
                unreferenced.push(id);
            }
        }
        for id in &unreferenced {
            state.segments.remove(id);
        }
        drop(state);
        for id in unreferenced {
            let path = self.segment_path(id);
            std::fs::remove_file(&path).map_err(|e| file_error(&path, e))?;
        }
        Ok(cut)
    }

    /// What the index references in each segment now (see [`Accounts`]).
    pub fn accounts(&self) -> Accounts {
        Accounts(
            self.state()
                .segments
                .values()
                .map(|s| {
                    (
                        s.id,
                        s.live_bytes(),
                        s.referenced_end.load(Ordering::Relaxed),
                    )
                })
                .collect(),
        )
    }

    fn segment_path(&self, id: u32) -> PathBuf {
        self.dir.join(format!("{id:010}.seg"))
    }

    /// Appends records (each a payload) in one write; returns where each went. Not durable
    /// until [`BlockLog::sync`]: no index may reference them before that.
    pub fn append<'a>(
        &self,
        payloads: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<Location>> {
        let mut state = self.state();
        let mut locations = Vec::new();
        let mut buffer = Vec::new();
        let mut segment = self.active(&mut state, 0)?;
        let mut start = segment.len();
        for payload in payloads {
            let record = RECORD_HEADER + payload.len() as u64;
            if payload.len() as u64 > u64::from(MAX_RECORD) {
                return Err(StoreError::Invalid(format!(
                    "a record of {} bytes is larger than the block log takes",
                    payload.len()
                )));
            }
            if start + buffer.len() as u64 + record > self.segment_limit
                && start + buffer.len() as u64 > SEGMENT_HEADER
            {
                self.write(&segment, start, &buffer)?;
                buffer.clear();
                segment = self.active(&mut state, record)?;
                start = segment.len();
            }
            let offset = start + buffer.len() as u64;
            locations.push(Location {
                segment: segment.id,
                offset: u32::try_from(offset)
                    .map_err(|_| StoreError::Invalid("a log segment grew past 4 GiB".into()))?,
                len: payload.len() as u32,
            });
            buffer.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            buffer.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            buffer.extend_from_slice(payload);
        }
        self.write(&segment, start, &buffer)?;
        Ok(locations)
    }

    fn write(&self, segment: &Segment, at: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = segment.file.write_all_at(bytes, at) {
            // Leave nothing half-written behind: the next append starts where this one did.
            let _ = segment.file.set_len(at);
            return Err(file_error(&self.segment_path(segment.id), e));
        }
        segment
            .len
            .store(at + bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The segment to append `next` bytes to: the newest, or a new one when it is full.
    fn active(&self, state: &mut LogState, next: u64) -> Result<Arc<Segment>> {
        if let Some(segment) = state.segments.values().next_back() {
            if segment.len() == SEGMENT_HEADER
                || segment.len().saturating_add(next) <= self.segment_limit
            {
                let segment = segment.clone();
                if !state.unsynced.iter().any(|s| s.id == segment.id) {
                    state.unsynced.push(segment.clone());
                }
                return Ok(segment);
            }
        }
        let id = state.segments.keys().next_back().map_or(1, |id| id + 1);
        let path = self.segment_path(id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| file_error(&path, e))?;
        file.write_all_at(MAGIC, 0)
            .and_then(|()| file.sync_all())
            .map_err(|e| file_error(&path, e))?;
        // The new file's name must survive a crash as well as its contents.
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| file_error(&self.dir, e))?;
        let segment = Arc::new(Segment::new(id, file, SEGMENT_HEADER));
        state.segments.insert(id, segment.clone());
        state.unsynced.push(segment.clone());
        Ok(segment)
    }

    /// Makes every record appended so far durable.
    pub fn sync(&self) -> Result<()> {
        let unsynced = std::mem::take(&mut self.state().unsynced);
        for segment in &unsynced {
            if let Err(e) = segment.file.sync_data() {
                // Keep them queued: a later sync must not report success for these bytes.
                self.state().unsynced.extend(unsynced.iter().cloned());
                return Err(file_error(&self.segment_path(segment.id), e));
            }
        }
        Ok(())
    }

    /// The segment with `id`, for reads that must outlive a concurrent deletion.
    pub fn segment(&self, id: u32) -> Option<Arc<Segment>> {
        self.state().segments.get(&id).cloned()
    }

    /// Every segment, oldest first.
    pub fn segments(&self) -> Vec<Arc<Segment>> {
        self.state().segments.values().cloned().collect()
    }

    /// The id of the segment appends go to (0 when the log is empty).
    pub fn active_id(&self) -> u32 {
        self.state()
            .segments
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
    }

    /// Reads the payload at `location`, checking its length and checksum.
    pub fn read(&self, location: Location) -> Result<Vec<u8>, RecordError> {
        let segment = self
            .segment(location.segment)
            .ok_or(RecordError::MissingSegment(location.segment))?;
        read_record(&segment, location)
    }

    /// The index now references `location`.
    pub fn referenced(&self, location: Location) {
        if let Some(segment) = self.segment(location.segment) {
            segment
                .live
                .fetch_add(location.record_bytes(), Ordering::Relaxed);
            segment
                .referenced_end
                .fetch_max(location.end(), Ordering::Relaxed);
        }
    }

    /// The index no longer references `location`, a record of `chat`: its bytes are dead.
    pub fn released(&self, location: Location, chat: i64) {
        if let Some(segment) = self.segment(location.segment) {
            let _ = segment
                .live
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |live| {
                    Some(live.saturating_sub(location.record_bytes()))
                });
            segment.attribute_dead(location.record_bytes(), chat);
        }
    }

    /// Takes back [`BlockLog::released`] for a record the index references after all (its
    /// release was never applied).
    pub fn unreleased(&self, location: Location) {
        if let Some(segment) = self.segment(location.segment) {
            segment
                .live
                .fetch_add(location.record_bytes(), Ordering::Relaxed);
            let _ = segment.dead_attributed.fetch_update(
                Ordering::Relaxed,
                Ordering::Relaxed,
                |dead| Some(dead.saturating_sub(location.record_bytes())),
            );
        }
    }

    /// `location`, a record of `chat`, was written but never referenced: its bytes are dead.
    pub fn abandoned(&self, location: Location, chat: i64) {
        if let Some(segment) = self.segment(location.segment) {
            segment.attribute_dead(location.record_bytes(), chat);
        }
    }

    /// Begins a new segment if the active one holds records, so that it can be compacted.
    pub fn roll(&self) -> Result<()> {
        let mut state = self.state();
        self.active(&mut state, u64::MAX).map(|_| ())
    }

    /// Deletes a segment the index no longer references (after compaction moved its live
    /// records and that move is durable). Reads under way keep their handle.
    pub fn delete_segment(&self, id: u32) -> Result<()> {
        self.state().segments.remove(&id);
        let path = self.segment_path(id);
        std::fs::remove_file(&path).map_err(|e| file_error(&path, e))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| file_error(&self.dir, e))
    }

    /// Bytes of every segment file.
    pub fn size_on_disk(&self) -> u64 {
        self.state().segments.values().map(|s| s.len()).sum()
    }
}

/// Reads the record at `location` from a segment a reader took hold of earlier (without a lock
/// since): `None` when the segment was already gone then.
pub fn read_held(segment: Option<&Segment>, location: Location) -> Result<Vec<u8>, RecordError> {
    match segment {
        Some(segment) => read_record(segment, location),
        None => Err(RecordError::MissingSegment(location.segment)),
    }
}

/// Reads and checks one record of `segment`.
pub fn read_record(segment: &Segment, location: Location) -> Result<Vec<u8>, RecordError> {
    // A damaged index could claim gigabytes: no record of ours is that long.
    if location.len > MAX_RECORD || location.end() > segment.len() {
        return Err(RecordError::Header(location));
    }
    let mut record = vec![0u8; location.record_bytes() as usize];
    segment
        .file
        .read_exact_at(&mut record, u64::from(location.offset))
        .map_err(|source| RecordError::Read { location, source })?;
    let len = u32::from_le_bytes(record[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(record[4..8].try_into().expect("4 bytes"));
    if len != location.len {
        return Err(RecordError::Header(location));
    }
    record.drain(..RECORD_HEADER as usize);
    if crc32fast::hash(&record) != crc {
        return Err(RecordError::Checksum(location));
    }
    Ok(record)
}

fn segment_id(path: &Path) -> Option<u32> {
    if path.extension()? != "seg" {
        return None;
    }
    path.file_stem()?.to_str()?.parse().ok()
}

fn file_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::File {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let log = BlockLog::open(dir.path(), 1 << 20).unwrap();
        log.recover([]).unwrap();
        let locs = log.append([&b"first"[..], &b"second record"[..]]).unwrap();
        log.sync().unwrap();
        assert_eq!(log.read(locs[0]).unwrap(), b"first");
        assert_eq!(log.read(locs[1]).unwrap(), b"second record");
        assert_eq!(locs[1].offset as u64, locs[0].end());
        // Flip a byte of the second payload: its checksum fails, the first still reads.
        let path = dir.path().join("0000000001.seg");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = (locs[1].offset as u64 + RECORD_HEADER + 2) as usize;
        bytes[at] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(log.read(locs[1]), Err(RecordError::Checksum(_))));
        assert_eq!(log.read(locs[0]).unwrap(), b"first");
        let wrong = Location { len: 3, ..locs[0] };
        assert!(matches!(log.read(wrong), Err(RecordError::Header(_))));
    }

    #[test]
    fn recovery_cuts_unreferenced_bytes_and_drops_unreferenced_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = BlockLog::open(dir.path(), 64).unwrap();
        log.recover([]).unwrap();
        // 30-byte payloads: one record per 64-byte segment.
        let payload = [7u8; 30];
        let locs = log
            .append([&payload[..], &payload[..], &payload[..]])
            .unwrap();
        assert_eq!(
            locs.iter().map(|l| l.segment).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let more = log.append([&payload[..]]).unwrap();
        log.sync().unwrap();
        drop(log);
        // The index references the first and the third record; the fourth never made it.
        let log = BlockLog::open(dir.path(), 64).unwrap();
        let cut = log.recover([locs[0], locs[2]]).unwrap();
        assert_eq!(more[0].segment, 4);
        assert_eq!(
            cut,
            more[0].record_bytes(),
            "the newest segment is cut back"
        );
        let ids: Vec<u32> = log.segments().iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![1, 3, 4]);
        assert_eq!(log.read(locs[2]).unwrap(), payload);
        assert_eq!(log.segment(4).unwrap().len(), SEGMENT_HEADER);
        assert_eq!(log.segment(1).unwrap().live_bytes(), locs[0].record_bytes());
        let chats = HashSet::from([-5]);
        assert!(!log.segment(1).unwrap().may_hold_dead_of(&chats));
        log.released(locs[0], -7);
        assert_eq!(log.segment(1).unwrap().dead_bytes(), locs[0].record_bytes());
        assert!(!log.segment(1).unwrap().may_hold_dead_of(&chats));
        assert!(log
            .segment(1)
            .unwrap()
            .may_hold_dead_of(&HashSet::from([-7])));
        // Dead bytes of no known chat (segment 3 after the reopen) count for every chat.
        assert!(log.segment(4).unwrap().dead_bytes() == 0);
        log.delete_segment(1).unwrap();
        assert!(matches!(
            log.read(locs[0]),
            Err(RecordError::MissingSegment(1))
        ));
    }

    #[test]
    fn a_crash_between_append_and_index_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let log = BlockLog::open(dir.path(), 1 << 20).unwrap();
        log.recover([]).unwrap();
        let kept = log.append([&b"kept"[..]]).unwrap()[0];
        log.append([&b"lost"[..]]).unwrap();
        drop(log);
        let log = BlockLog::open(dir.path(), 1 << 20).unwrap();
        let cut = log.recover([kept]).unwrap();
        assert_eq!(cut, RECORD_HEADER + 4);
        let next = log.append([&b"next"[..]]).unwrap()[0];
        assert_eq!(next.offset as u64, kept.end());
        assert_eq!(log.read(kept).unwrap(), b"kept");
        assert_eq!(log.read(next).unwrap(), b"next");
    }

    #[test]
    fn a_foreign_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0000000001.seg"), b"not a segment at all").unwrap();
        let err = BlockLog::open(dir.path(), 1 << 20)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a segment"), "{err}");
    }
}
