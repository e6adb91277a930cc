//! The search index: derived data, kept beside the store in `search/`.
//!
//! - **Segments** (`search/NNNNNNNNNN.seg`, `segment.rs`): immutable files of postings sorted by
//!   chat and term, merged four of a size at a time (`merge.rs`), so a few dozen of them cover
//!   any history.
//! - **The buffer** (`buffer.rs`): postings of blocks read since the last segment was written.
//! - **The manifest** (`search/manifest`, JSON, replaced atomically): the segments, the block
//!   seq up to which they cover the store (`covered`), and chats waiting to be written again.
//!
//! The index reads what the store sealed: every block with a seq above what it has read
//! (`Store::sealed_between`). A rewrite (an edit of an old message, a deletion, retention) gives
//! a block a new seq, so the block is read again and an edited message is found by its new
//! words; what the index still holds of old text or deleted messages, a search drops when it
//! checks each result against the store (`find.rs`), and after deletions the chats concerned
//! have their postings written again ([`SearchIndex::forget_deleted`]). Messages not yet in a
//! block (a chat's tail) and blocks not yet read are searched directly. A crash loses the
//! buffer, which the next open reads again from the blocks after `covered`; a missing, damaged
//! or outdated index is thrown away and rebuilt in the background while searches say that
//! results may be missing.

use super::buffer::{Buffer, FLUSH_POSTINGS};
use super::merge;
use super::segment::{Segment, SegmentError, SegmentWriter};
use super::terms::Terms;
use super::want::Want;
use crate::store::{ChatId, MessageId, SealedBlock, Store, StoreError};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The manifest's format: another one is rebuilt from the messages.
const FORMAT: u32 = 1;
/// Segments of one size class merged at once.
const MERGE_FACTOR: usize = 4;
/// Block seqs read before the buffer is written out and the manifest moves on, while catching
/// up with a large history: an interrupted rebuild starts again from there.
const WINDOW_SEQS: u64 = 4096;
/// How often the background task looks for new blocks.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait before trying again after a failure.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// The wait before a failed rewrite of chats after deletions is tried again.
const REINDEX_RETRY: Duration = Duration::from_secs(600);

/// Why the index cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the search index is damaged ({0}); it is being rebuilt from the messages")]
    Damaged(String),
    #[error("search index in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<SegmentError> for SearchError {
    fn from(e: SegmentError) -> Self {
        match e {
            // A full disk or a missing permission is not damage: the work is tried again
            // rather than the index thrown away.
            // A file cut short or unreadable as data is damage; a full disk or a missing
            // permission is not: the work is tried again rather than the index thrown away.
            SegmentError::Io { ref source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
                ) =>
            {
                SearchError::Damaged(e.to_string())
            }
            SegmentError::Io { path, source } => SearchError::Io { path, source },
            SegmentError::Damaged { .. } => SearchError::Damaged(e.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, SearchError>;

/// What the manifest records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    /// [`Terms::fingerprint`] of the terms the segments hold.
    terms: u32,
    /// Every block with a seq up to this is in the segments.
    covered: u64,
    next_segment: u64,
    segments: Vec<SegmentInfo>,
    /// Messages and words indexed (the average length for ranking).
    messages: u64,
    words: u64,
    /// Chats whose messages someone deleted: their postings are written again from what is
    /// left at the next catch-up (kept here so that a restart still does it).
    #[serde(default)]
    reindex: BTreeSet<ChatId>,
    /// Chats whose old messages retention deleted, written again once a day at most (retention
    /// runs every hour), and since when the first of them waits (Unix seconds).
    #[serde(default)]
    expired: BTreeSet<ChatId>,
    #[serde(default)]
    expired_since: Option<i64>,
}

/// Why messages were deleted, which says how soon the index drops them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// Someone asked (`/forget_me`, `/purge_chat`): at the next catch-up.
    Asked = 0,
    /// Retention: within [`EXPIRED_WAIT_SECS`].
    Expired = 1,
}

/// How long chats noted by retention wait before their postings are written again.
pub const EXPIRED_WAIT_SECS: i64 = 86_400;

/// Whether chats noted by retention since `since` are due at `now`.
fn expired_due(since: Option<i64>, now: i64) -> bool {
    since.is_some_and(|since| now - since >= EXPIRED_WAIT_SECS)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SegmentInfo {
    number: u64,
    postings: u64,
    bytes: u64,
}

/// What queries and the writer share.
struct State {
    manifest: Manifest,
    segments: Vec<Arc<Segment>>,
    buffer: Buffer,
    /// A buffer being written out, still read by queries.
    flushing: Option<Arc<Buffer>>,
    /// Every block with a seq up to this is in the segments or the buffers.
    read_upto: u64,
    /// Why the index must be rebuilt, once a read found it damaged.
    damaged: Option<String>,
    /// Chats noted while their postings were being written again: a deletion then may have
    /// come after their blocks were read, so they are written again once more.
    noted_meanwhile: Option<[BTreeSet<ChatId>; 2]>,
    /// When a failed rewrite of chats after deletions (a full disk, say) is tried again; new
    /// blocks are read meanwhile.
    reindex_after: Option<Instant>,
}

struct Inner {
    dir: PathBuf,
    store: Store,
    terms: Terms,
    state: Mutex<State>,
    /// Held by whoever changes the index (catching up, writing, merging, rebuilding).
    work: Mutex<()>,
    /// Set to stop the background task.
    stop: Mutex<bool>,
    wake: Condvar,
}

/// A cheap handle to the index of one store.
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

/// Where the index stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexStatus {
    /// The store's newest block seq and the one the index has read up to.
    pub store_seq: u64,
    pub read_upto: u64,
    pub segments: usize,
    pub bytes: u64,
    pub postings: u64,
}

impl IndexStatus {
    /// Whether every sealed block has been read.
    pub fn is_current(&self) -> bool {
        self.read_upto >= self.store_seq
    }
}

/// What a query reads: the segments and buffers as of one instant.
pub(super) struct View {
    pub segments: Vec<Arc<Segment>>,
    pub read_upto: u64,
    pub average_words: f64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SearchIndex {
    /// Opens the index of `store` (in its `search/` directory), starting afresh when it is
    /// missing, damaged or of another format; [`SearchIndex::catch_up`] or the background
    /// task then reads what it lacks.
    pub fn open(store: &Store) -> Result<SearchIndex> {
        let dir = store.path().join("search");
        std::fs::create_dir_all(&dir).map_err(|source| SearchError::Io {
            path: dir.clone(),
            source,
        })?;
        let terms = Terms::default();
        let fingerprint = terms.fingerprint();
        let (manifest, segments) = match load(&dir, fingerprint, store.seq_mark()) {
            Ok(loaded) => loaded,
            Err(why) => {
                if dir.join("manifest").exists() {
                    tracing::warn!("search index: {why}; rebuilding it from the messages");
                }
                clear(&dir)?;
                (fresh(fingerprint), Vec::new())
            }
        };
        let read_upto = manifest.covered;
        let index = SearchIndex {
            inner: Arc::new(Inner {
                dir,
                store: store.clone(),
                terms,
                state: Mutex::new(State {
                    manifest,
                    segments,
                    buffer: Buffer::default(),
                    flushing: None,
                    read_upto,
                    damaged: None,
                    noted_meanwhile: None,
                    reindex_after: None,
                }),
                work: Mutex::new(()),
                stop: Mutex::new(false),
                wake: Condvar::new(),
            }),
        };
        index.remove_strays()?;
        Ok(index)
    }

    /// The store it indexes.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The stemmer and stop-words it indexes with: what a query word or a message is made of.
    pub fn terms(&self) -> &Terms {
        &self.inner.terms
    }

    /// Where it stands.
    pub fn status(&self) -> IndexStatus {
        let state = lock(&self.inner.state);
        IndexStatus {
            store_seq: self.inner.store.seq_mark(),
            read_upto: state.read_upto,
            segments: state.segments.len(),
            bytes: state.manifest.segments.iter().map(|s| s.bytes).sum(),
            postings: state.manifest.segments.iter().map(|s| s.postings).sum(),
        }
    }

    /// Reads every block sealed since the last call into the index (writing segments and
    /// merging as it goes); rebuilds first if a read found the index damaged, and writes again
    /// the postings of chats whose messages were deleted.
    pub fn catch_up(&self) -> Result<()> {
        let _work = lock(&self.inner.work);
        // Bound first: a guard in an `if let` scrutinee lives through its block.
        let (damaged, reindex) = {
            let state = lock(&self.inner.state);
            let mut chats = state.manifest.reindex.clone();
            if expired_due(state.manifest.expired_since, unix_now()) {
                chats.extend(&state.manifest.expired);
            }
            if state
                .reindex_after
                .is_some_and(|after| Instant::now() < after)
            {
                chats.clear();
            }
            (state.damaged.clone(), chats)
        };
        if let Some(why) = damaged {
            tracing::warn!("search index: {why}; rebuilding it from the messages");
            self.reset()?;
        } else if !reindex.is_empty() {
            tracing::info!(
                chats = reindex.len(),
                "search index: messages were deleted; writing those chats' postings again"
            );
            if let Err(e) = self.reindex(&reindex) {
                // Damage is rebuilt at the next catch-up; anything else is tried again later,
                // and new blocks are read meanwhile.
                tracing::error!("search index: writing chats again after deletions: {e}");
                lock(&self.inner.state).reindex_after = Some(Instant::now() + REINDEX_RETRY);
            }
        }
        loop {
            let from = lock(&self.inner.state).read_upto;
            let mark = self.inner.store.seq_mark();
            if from >= mark || self.stopping() {
                return Ok(());
            }
            let upto = mark.min(from + WINDOW_SEQS);
            if !self.read_blocks(from, upto)? {
                return Ok(());
            }
            let full_window = upto < mark;
            let mut state = lock(&self.inner.state);
            state.read_upto = upto;
            let buffered = state.buffer.postings();
            drop(state);
            // While catching up with much history, each window ends with a segment so that an
            // interrupted rebuild goes on from there.
            if full_window && buffered > 0 {
                self.write_buffer()?;
            }
        }
    }

    /// Whether the background task is asked to stop.
    fn stopping(&self) -> bool {
        *lock(&self.inner.stop)
    }

    /// Reads the blocks with `from < seq <= upto` into the buffer; false if a shutdown cut it
    /// short.
    fn read_blocks(&self, from: u64, upto: u64) -> Result<bool> {
        let mut reader = BlockReader::default();
        for block in self.inner.store.sealed_between(from, upto) {
            // A shutdown does not wait for a large history to be read: the manifest still
            // covers what it covered, and the next start reads on from there.
            if self.stopping() {
                return Ok(false);
            }
            reader.read(&self.inner.terms, &block?);
            let full = {
                let mut state = lock(&self.inner.state);
                reader.add_to(&mut state.buffer);
                state.buffer.postings() >= FLUSH_POSTINGS
            };
            if full {
                self.write_buffer()?;
            }
        }
        Ok(true)
    }

    /// Writes the buffer as a segment (the manifest then covers what was read before the
    /// current window), then merges if a size class is full.
    fn write_buffer(&self) -> Result<()> {
        let (buffer, number, covered) = {
            let mut state = lock(&self.inner.state);
            if state.buffer.is_empty() {
                return Ok(());
            }
            let buffer = Arc::new(std::mem::take(&mut state.buffer));
            state.flushing = Some(buffer.clone());
            state.manifest.next_segment += 1;
            (buffer, state.manifest.next_segment, state.read_upto)
        };
        let written = self.write_segment(number, |writer| buffer.write(writer));
        let mut state = lock(&self.inner.state);
        state.flushing = None;
        let (info, segment) = match written {
            Ok(written) => written,
            Err(e) => {
                // What the buffer held is read again from the blocks after `covered` (keeping
                // it would count its messages twice when the window is read again).
                state.buffer = Buffer::default();
                state.read_upto = state.manifest.covered;
                return Err(e.into());
            }
        };
        state.segments.push(segment);
        state.manifest.segments.push(info);
        state.manifest.covered = covered.max(state.manifest.covered);
        state.manifest.messages += buffer.messages;
        state.manifest.words += buffer.words;
        self.save(&state.manifest)?;
        drop(state);
        self.merge_or_log();
        Ok(())
    }

    /// Merges full size classes once new segments are in; a failed merge (damage is noted for
    /// a rebuild) is tried again after the next segment, and the work that wrote them goes on.
    fn merge_or_log(&self) {
        if let Err(e) = self.merge_full_classes() {
            tracing::error!("search index: merging segments: {e}");
        }
    }

    /// Merges segments while some size class holds [`MERGE_FACTOR`] of them.
    fn merge_full_classes(&self) -> Result<()> {
        loop {
            let chosen = {
                let state = lock(&self.inner.state);
                choose_merge(&state.manifest.segments)
            };
            let Some(numbers) = chosen else {
                return Ok(());
            };
            self.merge(&numbers)?;
        }
    }

    /// Replaces segments `numbers` with their merge.
    fn merge(&self, numbers: &[u64]) -> Result<()> {
        let (inputs, number) = {
            let mut state = lock(&self.inner.state);
            let inputs: Vec<Arc<Segment>> = state
                .manifest
                .segments
                .iter()
                .zip(&state.segments)
                .filter(|(info, _)| numbers.contains(&info.number))
                .map(|(_, segment)| segment.clone())
                .collect();
            state.manifest.next_segment += 1;
            (inputs, state.manifest.next_segment)
        };
        let chats: FxHashSet<ChatId> = self.inner.store.chats().into_iter().collect();
        let inputs: Vec<&Segment> = inputs.iter().map(|s| &**s).collect();
        let (info, segment) = self
            .write_segment(number, |writer| {
                merge::merge(&inputs, writer, |chat| chats.contains(&chat))
            })
            .map_err(|e| self.found_damage(e.into()))?;
        let mut state = lock(&self.inner.state);
        let keep: Vec<bool> = state
            .manifest
            .segments
            .iter()
            .map(|info| !numbers.contains(&info.number))
            .collect();
        let mut flags = keep.iter();
        state.segments.retain(|_| *flags.next().unwrap_or(&true));
        state
            .manifest
            .segments
            .retain(|info| !numbers.contains(&info.number));
        state.segments.push(segment);
        state.manifest.segments.push(info);
        self.save(&state.manifest)?;
        drop(state);
        // Queries still reading an input keep its open file; the name can go.
        for old in numbers {
            let _ = std::fs::remove_file(segment_path(&self.inner.dir, *old));
        }
        Ok(())
    }

    /// Writes segment `number` with what `fill` writes; its manifest entry and the open
    /// segment. A failed write leaves no file.
    fn write_segment(
        &self,
        number: u64,
        fill: impl FnOnce(&mut SegmentWriter) -> std::result::Result<(), SegmentError>,
    ) -> std::result::Result<(SegmentInfo, Arc<Segment>), SegmentError> {
        let path = segment_path(&self.inner.dir, number);
        let written = (|| {
            let mut writer = SegmentWriter::create(&path)?;
            fill(&mut writer)?;
            let postings = writer.finish()?;
            Ok((postings, Segment::open(&path)?))
        })();
        match written {
            Ok((postings, segment)) => Ok((
                SegmentInfo {
                    number,
                    postings,
                    bytes: file_len(&path),
                },
                Arc::new(segment),
            )),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(path.with_extension("footer"));
                Err(e)
            }
        }
    }

    /// Writes again the postings of `chats` from their messages as they are now, dropping
    /// what the segments held of them (deleted messages, old text of edited ones); the caller
    /// holds `work`. Segments that hold none of them stay as they are, and until the new ones
    /// replace the old, searches read the old (each result is checked against the store).
    fn reindex(&self, chats: &BTreeSet<ChatId>) -> Result<()> {
        self.write_all()?;
        lock(&self.inner.state).noted_meanwhile = Some(Default::default());
        let outcome = self.write_again(chats);
        lock(&self.inner.state).noted_meanwhile = None;
        outcome
    }

    /// [`SearchIndex::reindex`] once the buffer is written out.
    fn write_again(&self, chats: &BTreeSet<ChatId>) -> Result<()> {
        let (segments, covered) = {
            let state = lock(&self.inner.state);
            let segments: Vec<(u64, Arc<Segment>)> = state
                .manifest
                .segments
                .iter()
                .map(|info| info.number)
                .zip(state.segments.iter().cloned())
                .collect();
            (segments, state.manifest.covered)
        };
        let existing: FxHashSet<ChatId> = self.inner.store.chats().into_iter().collect();
        let keep = |chat: ChatId| existing.contains(&chat) && !chats.contains(&chat);
        let mut replaced: Vec<u64> = Vec::new();
        let mut written: Vec<(SegmentInfo, Arc<Segment>)> = Vec::new();
        let outcome = (|| {
            // The segments without those chats.
            for (number, segment) in &segments {
                if self.stopping() {
                    return Ok(false);
                }
                let mut holds = false;
                for &chat in chats {
                    holds |= segment.blocks_from(chat, b"")?.next_block()?.is_some();
                }
                if !holds {
                    continue;
                }
                let new = self.write_segment(self.next_number(), |writer| {
                    merge::merge(&[&**segment], writer, keep)
                })?;
                replaced.push(*number);
                written.push(new);
            }
            // Their messages as they are, up to what the segments cover (later blocks are
            // read by the catch-up, as always).
            let mut buffer = Buffer::default();
            let mut reader = BlockReader::default();
            for &chat in chats {
                for block in self.inner.store.sealed_in_chat(chat, 0, covered) {
                    if self.stopping() {
                        return Ok(false);
                    }
                    reader.read(&self.inner.terms, &block?);
                    reader.add_to(&mut buffer);
                    if buffer.postings() >= FLUSH_POSTINGS {
                        let full = std::mem::take(&mut buffer);
                        written.push(self.write_segment(self.next_number(), |w| full.write(w))?);
                        // Merged as they come, like the index's own: a large chat read again
                        // leaves a few segments, not hundreds.
                        self.merge_private(&mut written)?;
                    }
                }
            }
            if !buffer.is_empty() {
                written.push(self.write_segment(self.next_number(), |w| buffer.write(w))?);
            }
            Ok::<_, SearchError>(true)
        })();
        let discard = |written: &[(SegmentInfo, Arc<Segment>)]| {
            for (info, _) in written {
                let _ = std::fs::remove_file(segment_path(&self.inner.dir, info.number));
            }
        };
        match outcome {
            Ok(true) => {}
            // Stopping: the chats stay in the manifest, and the next start does it again.
            Ok(false) => {
                discard(&written);
                return Ok(());
            }
            Err(e) => {
                discard(&written);
                return Err(self.found_damage(e));
            }
        }
        let mut state = lock(&self.inner.state);
        let State {
            manifest,
            segments: open,
            noted_meanwhile,
            ..
        } = &mut *state;
        let mut gone = manifest
            .segments
            .iter()
            .map(|info| replaced.contains(&info.number));
        open.retain(|_| !gone.next().unwrap_or(false));
        manifest
            .segments
            .retain(|info| !replaced.contains(&info.number));
        for (info, segment) in written {
            // An empty segment (a purged chat's only one) is not kept.
            if info.postings == 0 {
                let _ = std::fs::remove_file(segment_path(&self.inner.dir, info.number));
                continue;
            }
            manifest.segments.push(info);
            open.push(segment);
        }
        let [asked_again, expired_again] = noted_meanwhile.take().unwrap_or_default();
        manifest
            .reindex
            .retain(|chat| !chats.contains(chat) || asked_again.contains(chat));
        manifest
            .expired
            .retain(|chat| !chats.contains(chat) || expired_again.contains(chat));
        if manifest.expired.is_empty() {
            manifest.expired_since = None;
        }
        self.save(manifest)?;
        drop(state);
        for number in replaced {
            let _ = std::fs::remove_file(segment_path(&self.inner.dir, number));
        }
        self.merge_or_log();
        Ok(())
    }

    /// Merges segments not yet in the manifest while a size class holds [`MERGE_FACTOR`] of
    /// them (the inputs' files go).
    fn merge_private(&self, segments: &mut Vec<(SegmentInfo, Arc<Segment>)>) -> Result<()> {
        loop {
            let infos: Vec<SegmentInfo> = segments.iter().map(|(info, _)| info.clone()).collect();
            let Some(numbers) = choose_merge(&infos) else {
                return Ok(());
            };
            let inputs: Vec<&Segment> = segments
                .iter()
                .filter(|(info, _)| numbers.contains(&info.number))
                .map(|(_, segment)| &**segment)
                .collect();
            let merged =
                self.write_segment(self.next_number(), |w| merge::merge(&inputs, w, |_| true))?;
            segments.retain(|(info, _)| !numbers.contains(&info.number));
            segments.push(merged);
            for number in numbers {
                let _ = std::fs::remove_file(segment_path(&self.inner.dir, number));
            }
        }
    }

    /// A number for a new segment.
    fn next_number(&self) -> u64 {
        let mut state = lock(&self.inner.state);
        state.manifest.next_segment += 1;
        state.manifest.next_segment
    }

    /// Writes the buffer out so that the manifest covers everything read (on close).
    pub fn flush(&self) -> Result<()> {
        let _work = lock(&self.inner.work);
        self.write_all()
    }

    /// [`SearchIndex::flush`] for a caller that holds `work`.
    fn write_all(&self) -> Result<()> {
        self.write_buffer()?;
        let mut state = lock(&self.inner.state);
        if state.buffer.is_empty() && state.manifest.covered < state.read_upto {
            state.manifest.covered = state.read_upto;
            self.save(&state.manifest)?;
        }
        Ok(())
    }

    /// Throws the index away and reads every block again (`verify --repair`).
    pub fn rebuild(&self) -> Result<()> {
        {
            let _work = lock(&self.inner.work);
            self.reset()?;
        }
        self.catch_up()?;
        self.flush()
    }

    /// Empties the index (the caller holds `work`).
    fn reset(&self) -> Result<()> {
        let mut state = lock(&self.inner.state);
        clear(&self.inner.dir)?;
        state.manifest = fresh(self.inner.terms.fingerprint());
        state.segments.clear();
        state.buffer = Buffer::default();
        state.flushing = None;
        state.read_upto = 0;
        state.damaged = None;
        Ok(())
    }

    /// Notes that messages of `chats` were deleted: their postings are written again from the
    /// messages left, so that the index's files keep no trace of them (searches never show
    /// them anyway: every result is checked against the store); at the next catch-up when
    /// someone asked, within a day for retention. The note is saved at once, so that a restart
    /// still does it; call it off the async runtime. A failed save is logged: the note stays
    /// in memory and goes with the next save.
    pub fn forget_deleted(&self, chats: impl IntoIterator<Item = ChatId>, why: Deletion) {
        let mut state = lock(&self.inner.state);
        let chats: Vec<ChatId> = chats.into_iter().collect();
        if let Some(meanwhile) = &mut state.noted_meanwhile {
            meanwhile[why as usize].extend(chats.iter().copied());
        }
        let manifest = &mut state.manifest;
        let noted = match why {
            Deletion::Asked => &mut manifest.reindex,
            Deletion::Expired => &mut manifest.expired,
        };
        let before = noted.len();
        noted.extend(chats);
        if noted.len() == before {
            return;
        }
        if why == Deletion::Expired && manifest.expired_since.is_none() {
            manifest.expired_since = Some(unix_now());
        }
        if let Err(e) = self.save(&state.manifest) {
            tracing::error!("search index: noting deleted messages: {e}");
        }
        self.inner.wake.notify_all();
    }

    /// Notes damage found by a read, so that the next catch-up rebuilds; returns the error.
    pub(super) fn found_damage(&self, error: SearchError) -> SearchError {
        if let SearchError::Damaged(why) = &error {
            lock(&self.inner.state).damaged = Some(why.clone());
            self.inner.wake.notify_all();
        }
        error
    }

    /// The segments and buffers as of now, with the ids the buffers hold for each of `wants`
    /// (passed to `each` with the want's index).
    pub(super) fn view(
        &self,
        chat: ChatId,
        wants: &[Want],
        mut each: impl FnMut(usize, &str, MessageId),
    ) -> Result<View> {
        let state = lock(&self.inner.state);
        if let Some(why) = &state.damaged {
            return Err(SearchError::Damaged(why.clone()));
        }
        for (i, want) in wants.iter().enumerate() {
            let mut found = |term: &str, id| each(i, term, id);
            state.buffer.find(chat, want, &mut found);
            if let Some(flushing) = &state.flushing {
                flushing.find(chat, want, &mut found);
            }
        }
        let messages = state.manifest.messages + state.buffer.messages;
        let words = state.manifest.words + state.buffer.words;
        Ok(View {
            segments: state.segments.clone(),
            read_upto: state.read_upto,
            average_words: if messages == 0 {
                10.0
            } else {
                (words as f64 / messages as f64).max(1.0)
            },
        })
    }

    /// Reads every segment back, checking each block; the problems found.
    pub fn check(&self) -> Vec<String> {
        let (segments, manifest) = {
            let state = lock(&self.inner.state);
            (state.segments.clone(), state.manifest.clone())
        };
        check_segments(&segments, &manifest)
    }

    /// What is wrong with the index of `store` on disk, read without changing anything (an open
    /// would start afresh from what it cannot use): `verify` reports it, `verify --repair`
    /// rebuilds. No index at all is not wrong: it is built when first needed.
    pub fn inspect(store: &Store) -> Vec<String> {
        let dir = store.path().join("search");
        if !dir.join("manifest").exists() {
            return Vec::new();
        }
        match load(&dir, Terms::default().fingerprint(), store.seq_mark()) {
            Ok((manifest, segments)) => check_segments(&segments, &manifest),
            Err(why) => vec![format!("search index: {why}")],
        }
    }

    /// Starts the background task that keeps the index current; stop it with
    /// [`IndexTask::stop`] before the store closes.
    pub fn spawn(&self) -> std::io::Result<IndexTask> {
        *lock(&self.inner.stop) = false;
        let index = self.clone();
        let thread = std::thread::Builder::new()
            .name("search-index".into())
            .spawn(move || index.run())?;
        Ok(IndexTask {
            index: self.clone(),
            thread: Some(thread),
        })
    }

    fn run(&self) {
        lower_priority();
        let mut pause = POLL;
        loop {
            // After a failure (a full disk, say), it waits longer each time before trying again.
            pause = match self.catch_up() {
                Ok(()) => POLL,
                Err(e) => {
                    tracing::error!("search index: {e}");
                    (pause * 2).min(MAX_PAUSE)
                }
            };
            let stop = lock(&self.inner.stop);
            // A stop asked for while it worked has already been notified.
            if *stop {
                break;
            }
            let (stop, _) = self
                .inner
                .wake
                .wait_timeout(stop, pause)
                .unwrap_or_else(|p| p.into_inner());
            if *stop {
                break;
            }
        }
        if let Err(e) = self.flush() {
            tracing::error!("search index: {e}");
        }
    }

    fn save(&self, manifest: &Manifest) -> Result<()> {
        let io = |source| SearchError::Io {
            path: self.inner.dir.join("manifest"),
            source,
        };
        let temporary = self.inner.dir.join("manifest.new");
        let bytes = serde_json::to_vec_pretty(manifest).map_err(|e| io(e.into()))?;
        std::fs::write(&temporary, bytes).map_err(io)?;
        std::fs::File::open(&temporary)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&temporary, self.inner.dir.join("manifest")).map_err(io)?;
        std::fs::File::open(&self.inner.dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    /// Deletes files the manifest does not name (a segment written before a crash).
    fn remove_strays(&self) -> Result<()> {
        let state = lock(&self.inner.state);
        let listed: Vec<PathBuf> = state
            .manifest
            .segments
            .iter()
            .map(|s| segment_path(&self.inner.dir, s.number))
            .collect();
        let entries = std::fs::read_dir(&self.inner.dir).map_err(|source| SearchError::Io {
            path: self.inner.dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name != "manifest" && !listed.contains(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }
}

/// The background task of [`SearchIndex::spawn`].
pub struct IndexTask {
    index: SearchIndex,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IndexTask {
    /// Stops the task after it has read what was sealed and written its buffer out.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        *lock(&self.index.inner.stop) = true;
        self.index.inner.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for IndexTask {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Every segment read back and counted against the manifest.
fn check_segments(segments: &[Arc<Segment>], manifest: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    for (segment, info) in segments.iter().zip(&manifest.segments) {
        match segment.check() {
            Ok(postings) if postings == info.postings => {}
            Ok(postings) => problems.push(format!(
                "search index: {} holds {postings} postings, the manifest says {}",
                segment.path().display(),
                info.postings
            )),
            Err(e) => problems.push(format!("search index: {e}")),
        }
    }
    problems
}

/// Lowers this thread's scheduling priority (Linux: a thread's own nice value), so that a long
/// build of the index takes the CPU the bot's recording and replies leave.
fn lower_priority() {
    // SAFETY: plain system calls on this thread's own id; a failure only leaves the priority.
    unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, 10);
    }
}

/// The postings of one block, in strings reused from block to block so that indexing
/// allocates almost nothing.
#[derive(Default)]
struct BlockReader {
    chat: ChatId,
    postings: Vec<(String, MessageId)>,
    used: usize,
    messages: u64,
    words: u64,
    scratch: Vec<String>,
}

impl BlockReader {
    /// Turns `block`'s searchable messages into postings.
    fn read(&mut self, terms: &Terms, block: &SealedBlock) {
        self.chat = block.chat;
        self.used = 0;
        self.messages = 0;
        self.words = 0;
        for message in &block.messages {
            if !super::terms::searchable(message) {
                continue;
            }
            let (distinct, length) = terms.distinct_terms(&message.text, &mut self.scratch);
            self.messages += 1;
            self.words += length as u64;
            for term in distinct {
                if self.used == self.postings.len() {
                    self.postings.push((String::new(), 0));
                }
                self.postings[self.used].0.clone_from(term);
                self.postings[self.used].1 = message.message_id;
                self.used += 1;
            }
        }
    }

    /// Adds the postings of the block read last to `buffer`.
    fn add_to(&self, buffer: &mut Buffer) {
        buffer.add(self.chat, &self.postings[..self.used]);
        buffer.messages += self.messages;
        buffer.words += self.words;
    }
}

fn fresh(terms: u32) -> Manifest {
    Manifest {
        format: FORMAT,
        terms,
        ..Manifest::default()
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:010}.seg"))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The manifest and its segments, or why they cannot be used.
fn load(
    dir: &Path,
    terms: u32,
    store_seq: u64,
) -> std::result::Result<(Manifest, Vec<Arc<Segment>>), String> {
    let bytes = std::fs::read(dir.join("manifest")).map_err(|e| format!("no manifest ({e})"))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("the manifest is unreadable ({e})"))?;
    if manifest.format != FORMAT {
        return Err(format!(
            "index format {} (this build writes {FORMAT})",
            manifest.format
        ));
    }
    if manifest.terms != terms {
        return Err("it was built with other stemming or stop-words".into());
    }
    if manifest.covered > store_seq {
        return Err(
            "it covers blocks the store does not have (a store restored or replaced)".into(),
        );
    }
    let mut manifest = manifest;
    // A new segment's number must not be a listed one's, whatever the manifest says.
    let highest = manifest
        .segments
        .iter()
        .map(|s| s.number)
        .max()
        .unwrap_or(0);
    manifest.next_segment = manifest.next_segment.max(highest);
    let segments = manifest
        .segments
        .iter()
        .map(|info| Segment::open(&segment_path(dir, info.number)).map(Arc::new))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok((manifest, segments))
}

/// Deletes every file of the index.
fn clear(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| SearchError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        std::fs::remove_file(entry.path()).map_err(|source| SearchError::Io {
            path: entry.path(),
            source,
        })?;
    }
    Ok(())
}

/// Segments to merge: [`MERGE_FACTOR`] of the smallest size class that has that many. A class
/// spans a factor of four in postings, so a posting is rewritten once per class it climbs.
fn choose_merge(segments: &[SegmentInfo]) -> Option<Vec<u64>> {
    let class = |postings: u64| {
        let mut class = 0;
        let mut bound = FLUSH_POSTINGS as u64 * 2;
        while postings > bound {
            bound *= MERGE_FACTOR as u64;
            class += 1;
        }
        class
    };
    let mut by_class: std::collections::BTreeMap<u32, Vec<&SegmentInfo>> = Default::default();
    for info in segments {
        by_class.entry(class(info.postings)).or_default().push(info);
    }
    by_class
        .into_values()
        .find(|members| members.len() >= MERGE_FACTOR)
        .map(|mut members| {
            members.sort_by_key(|m| m.postings);
            members
                .iter()
                .take(MERGE_FACTOR)
                .map(|m| m.number)
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(number: u64, postings: u64) -> SegmentInfo {
        SegmentInfo {
            number,
            postings,
            bytes: 0,
        }
    }

    #[test]
    fn retention_notes_wait_a_day() {
        assert!(!expired_due(None, 1_000_000));
        assert!(!expired_due(
            Some(1_000_000),
            1_000_000 + EXPIRED_WAIT_SECS - 1
        ));
        assert!(expired_due(Some(1_000_000), 1_000_000 + EXPIRED_WAIT_SECS));
    }

    #[test]
    fn merges_take_four_of_the_smallest_full_class() {
        let small = FLUSH_POSTINGS as u64;
        assert_eq!(
            choose_merge(&[info(1, small), info(2, small), info(3, small)]),
            None
        );
        let four = [
            info(1, small * 40),
            info(2, small),
            info(3, small),
            info(4, small / 2),
            info(5, small),
        ];
        assert_eq!(choose_merge(&four), Some(vec![4, 2, 3, 5]));
    }
}
