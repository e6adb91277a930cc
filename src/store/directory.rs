//! A chat's block directory, paged from the index: what the store knows about each sealed block
//! without reading it.
//!
//! Consecutive blocks are grouped in runs, each stored as one index record `I chat first_key`
//! (`layout.rs`). Memory holds a summary of every run (its key and id ranges, its largest seq,
//! its length and the block log segments it spans: about 6 bytes a block) but the entries of
//! only a few: the last run (seals append to it), runs changed and not yet in the index, and the
//! run read last (reads come in streaks). Every other run is read from the index when it is
//! needed (through the store's cache of runs), so a chat's directory grows in memory by a
//! summary per run, not by an entry per block.
//!
//! A run holds up to [`RUN_MAX`] blocks. Seals fill runs of [`RUN_BLOCKS`]; an edit that splits
//! a block grows its run, which past [`RUN_MAX`] is split into runs of about [`RUN_BLOCKS`], and
//! a run that shrinks below [`RUN_MIN`] is merged into a neighbour, so an edit rewrites at most
//! its run and the two beside it, whatever the chat's size. A changed run is written under its
//! first block's key; a run that moved to another key, was merged away or emptied has its old
//! record removed.

use super::blocklog::Location;
use super::error::{Result, StoreError};
use super::model::{key_of, ChatId, MessageId, MessageRef, MsgKey};
use serde::{Deserialize, Serialize};

/// Blocks per run as seals fill them: about 1 KB a record, small enough to rewrite on an edit,
/// large enough that sled holds few records and a run's summary costs ~6 bytes a block.
pub const RUN_BLOCKS: usize = 16;
/// A run that an edit grows past this is split.
pub const RUN_MAX: usize = 2 * RUN_BLOCKS;
/// A run that an edit shrinks below this is merged into a neighbour.
const RUN_MIN: usize = RUN_BLOCKS / 4;

/// A directory entry: what the store knows about a block without reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Keys of its first and last message: lookups by time.
    pub first: MsgKey,
    pub last: MsgKey,
    /// Its id range: ids need not follow key order (imports, late messages), so a lookup by id
    /// skips the blocks outside it.
    pub min_id: MessageId,
    pub max_id: MessageId,
    /// Messages in it.
    pub count: u32,
    /// Unique per written block: a rewrite gets a new one, so caches keyed by it never go stale.
    pub seq: u64,
    /// Where the block is in the block log.
    pub location: Location,
}

impl BlockMeta {
    /// The entry describing `messages` (sorted, non-empty) written as block `seq` at `location`.
    pub fn describe(messages: &[MessageRef], seq: u64, location: Location) -> BlockMeta {
        BlockMeta {
            first: key_of(&messages[0]),
            last: key_of(&messages[messages.len() - 1]),
            min_id: messages.iter().map(|m| m.message_id).min().unwrap_or(0),
            max_id: messages.iter().map(|m| m.message_id).max().unwrap_or(0),
            count: messages.len() as u32,
            seq,
            location,
        }
    }

    /// Whether message `id` may be in this block.
    pub fn may_hold_id(&self, id: MessageId) -> bool {
        self.min_id <= id && id <= self.max_id
    }

    /// Frames of this block: fixed runs of `FRAME_LEN` messages, the last one shorter.
    pub fn frame_count(&self) -> usize {
        (self.count as usize).div_ceil(super::codec::FRAME_LEN)
    }
}

/// Where a directory reads the runs it does not hold.
pub trait RunSource {
    /// The entries of `chat`'s run stored under `first`.
    fn read_run(&self, chat: ChatId, first: MsgKey) -> Result<Vec<BlockMeta>>;
    /// How many staged batches the index has applied so far: a run staged while this was `n`
    /// is in the index once it passes `n`.
    fn applied(&self) -> u64;
    /// The error for a stored run that disagrees with its summary.
    fn damaged(&self, what: String) -> StoreError;
}

/// What memory keeps of a run whatever else it drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Summary {
    first: MsgKey,
    last: MsgKey,
    min_id: MessageId,
    max_id: MessageId,
    max_seq: u64,
    /// Its oldest block's seq: a walk of a window of seqs skips runs outside it.
    min_seq: u64,
    len: u32,
    /// The block log segments its blocks are in (compaction looks for a segment's blocks).
    min_segment: u32,
    max_segment: u32,
}

impl Summary {
    /// The summary of a non-empty run.
    fn of(blocks: &[BlockMeta]) -> Summary {
        Summary {
            first: blocks[0].first,
            last: blocks[blocks.len() - 1].last,
            min_id: blocks.iter().map(|b| b.min_id).min().unwrap_or(0),
            max_id: blocks.iter().map(|b| b.max_id).max().unwrap_or(0),
            max_seq: blocks.iter().map(|b| b.seq).max().unwrap_or(0),
            min_seq: blocks.iter().map(|b| b.seq).min().unwrap_or(0),
            len: blocks.len() as u32,
            min_segment: blocks.iter().map(|b| b.location.segment).min().unwrap_or(0),
            max_segment: blocks.iter().map(|b| b.location.segment).max().unwrap_or(0),
        }
    }
}

/// A run's entries while memory holds them.
struct Body {
    blocks: Vec<BlockMeta>,
    /// Changed since it was last staged.
    dirty: bool,
    /// The applied count when it was last staged: held until the index has it.
    staged: Option<u64>,
}

struct Run {
    /// Index of its first block in the chat.
    start: usize,
    summary: Summary,
    /// The key its record is stored under, if it has one.
    stored: Option<MsgKey>,
    body: Option<Box<Body>>,
}

impl Run {
    /// A run not yet in the index.
    fn new(start: usize, blocks: Vec<BlockMeta>) -> Run {
        Run {
            start,
            summary: Summary::of(&blocks),
            stored: None,
            body: Some(Box::new(Body {
                blocks,
                dirty: true,
                staged: None,
            })),
        }
    }

    /// Whether its entries must stay in memory: the index does not have them yet.
    fn pinned(&self, applied: u64) -> bool {
        self.body
            .as_ref()
            .is_some_and(|b| b.dirty || b.staged.is_some_and(|s| s >= applied))
    }
}

/// A chat's block directory; see the module's documentation.
#[derive(Default)]
pub struct Directory {
    chat: ChatId,
    runs: Vec<Run>,
    len: usize,
    /// Keys of stored records that no run has any longer.
    stale: Vec<MsgKey>,
    /// The run read last, kept for the next access.
    recent: Option<usize>,
    /// No run before this one holds entries that changed since the last stage, wait for the
    /// index, or were kept as the last run until a push passed them (`None`: none does), so
    /// that staging and releasing look at the few runs that may, not at the whole directory on
    /// every seal.
    first_held: Option<usize>,
}

impl Directory {
    /// An empty directory of `chat`.
    pub fn new(chat: ChatId) -> Self {
        Directory {
            chat,
            ..Directory::default()
        }
    }

    /// Blocks in the chat.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the chat has no sealed block (its checkpoint is then removed).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Key of the first sealed message.
    pub fn first_key(&self) -> Option<MsgKey> {
        self.runs.first().map(|r| r.summary.first)
    }

    /// Key of the last sealed message.
    pub fn last_key(&self) -> Option<MsgKey> {
        self.runs.last().map(|r| r.summary.last)
    }

    /// The largest block seq (0 without blocks).
    pub fn max_seq(&self) -> u64 {
        self.runs
            .iter()
            .map(|r| r.summary.max_seq)
            .max()
            .unwrap_or(0)
    }

    /// Whether some block may hold message `id` (false means none does).
    pub fn may_hold_id(&self, id: MessageId) -> bool {
        self.runs
            .iter()
            .rev()
            .any(|r| r.summary.min_id <= id && id <= r.summary.max_id)
    }

    /// Appends a run read from the index at open (runs come in key order).
    pub fn add_stored(
        &mut self,
        key: MsgKey,
        blocks: &[BlockMeta],
    ) -> std::result::Result<(), String> {
        if blocks.is_empty() || blocks.len() > RUN_MAX {
            return Err(format!("has a run of {} blocks", blocks.len()));
        }
        // Only the order of first keys is required here: blocks that overlap (damage) are
        // reported by `verify`, whose repair needs the store open.
        let sorted = blocks.windows(2).all(|w| w[0].first < w[1].first);
        let after_previous = self.runs.last().is_none_or(|r| r.summary.first < key);
        if blocks[0].first != key || !sorted || !after_previous {
            return Err(format!("has a run out of order at {key:?}"));
        }
        self.runs.push(Run {
            start: self.len,
            summary: Summary::of(blocks),
            stored: Some(key),
            body: None,
        });
        self.len += blocks.len();
        Ok(())
    }

    /// The run holding block `index`.
    fn run_of(&self, index: usize) -> usize {
        self.runs.partition_point(|r| r.start <= index) - 1
    }

    /// Makes run `r`'s entries present, reading them from the index if needed. A run read
    /// this way replaces the previous one read, unless that one must stay.
    fn load(&mut self, r: usize, source: &impl RunSource) -> Result<()> {
        if self.runs[r].body.is_some() {
            return Ok(());
        }
        let blocks = self.read(r, source)?;
        self.runs[r].body = Some(Box::new(Body {
            blocks,
            dirty: false,
            staged: None,
        }));
        if let Some(previous) = self.recent.replace(r).filter(|&p| p != r) {
            self.drop_if_unpinned(previous, source.applied());
        }
        Ok(())
    }

    /// Run `r`'s entries from the index, checked against its summary.
    fn read(&self, r: usize, source: &impl RunSource) -> Result<Vec<BlockMeta>> {
        let run = &self.runs[r];
        let key = run.stored.expect("a run memory does not hold is stored");
        let blocks = source.read_run(self.chat, key)?;
        if blocks.is_empty() || Summary::of(&blocks) != run.summary {
            return Err(source.damaged(format!(
                "the directory run at {key:?} of chat {} changed under the store",
                self.chat
            )));
        }
        Ok(blocks)
    }

    fn drop_if_unpinned(&mut self, r: usize, applied: u64) {
        let last = self.runs.len().saturating_sub(1);
        if let Some(run) = self.runs.get_mut(r) {
            if r != last && !run.pinned(applied) {
                run.body = None;
            }
        }
    }

    /// Run `r`'s entries, present.
    fn blocks(&mut self, r: usize, source: &impl RunSource) -> Result<&mut Vec<BlockMeta>> {
        self.load(r, source)?;
        Ok(&mut self.runs[r].body.as_mut().expect("loaded").blocks)
    }

    /// The entry of block `index` (which must exist).
    pub fn get(&mut self, index: usize, source: &impl RunSource) -> Result<BlockMeta> {
        let r = self.run_of(index);
        let start = self.runs[r].start;
        Ok(self.blocks(r, source)?[index - start].clone())
    }

    /// The entry of block `index`, whose run is about to change: it and its neighbours (which
    /// a short run merges into) are held, and staged, from now on, so that
    /// [`Directory::replace`] needs no read.
    pub fn get_to_change(&mut self, index: usize, source: &impl RunSource) -> Result<BlockMeta> {
        let r = self.run_of(index);
        for neighbour in r.saturating_sub(1)..(r + 2).min(self.runs.len()) {
            self.changed(neighbour, source)?;
        }
        let start = self.runs[r].start;
        Ok(self.changed(r, source)?[index - start].clone())
    }

    /// Reads the last run if memory does not hold it, so that [`Directory::push`] needs no
    /// read (a caller that must not fail half-way calls this first).
    pub fn load_last(&mut self, source: &impl RunSource) -> Result<()> {
        match self.runs.len() {
            0 => Ok(()),
            n => self.load(n - 1, source),
        }
    }

    /// Index of the block a message with `key` belongs in: the last block starting at or before
    /// it, or the first block.
    pub fn block_for(&mut self, key: MsgKey, source: &impl RunSource) -> Result<Option<usize>> {
        if self.runs.is_empty() {
            return Ok(None);
        }
        let r = self
            .runs
            .partition_point(|run| run.summary.first <= key)
            .saturating_sub(1);
        let start = self.runs[r].start;
        let blocks = self.blocks(r, source)?;
        Ok(Some(
            start + blocks.partition_point(|b| b.first <= key).saturating_sub(1),
        ))
    }

    /// The first block ending at or after `key`, if any.
    pub fn first_ending_from(
        &mut self,
        key: MsgKey,
        source: &impl RunSource,
    ) -> Result<Option<BlockMeta>> {
        let r = self.runs.partition_point(|run| run.summary.last < key);
        if r == self.runs.len() {
            return Ok(None);
        }
        let blocks = self.blocks(r, source)?;
        Ok(blocks.iter().find(|b| b.last >= key).cloned())
    }

    /// The blocks that may hold message `id`, newest first, with their indexes.
    pub fn may_hold(
        &mut self,
        id: MessageId,
        source: &impl RunSource,
    ) -> Result<Vec<(usize, BlockMeta)>> {
        let mut found = Vec::new();
        for r in (0..self.runs.len()).rev() {
            let summary = self.runs[r].summary;
            if id < summary.min_id || summary.max_id < id {
                continue;
            }
            let start = self.runs[r].start;
            let blocks = self.blocks(r, source)?;
            for (i, meta) in blocks.iter().enumerate().rev() {
                if meta.may_hold_id(id) {
                    found.push((start + i, meta.clone()));
                }
            }
        }
        Ok(found)
    }

    /// Appends a newly sealed block (after every block).
    pub fn push(&mut self, meta: BlockMeta, source: &impl RunSource) -> Result<()> {
        debug_assert!(self.last_key().is_none_or(|end| end < meta.first));
        match self.runs.last() {
            Some(run) if (run.summary.len as usize) < RUN_BLOCKS => {
                let r = self.runs.len() - 1;
                self.changed(r, source)?.push(meta);
                self.summarize(r);
            }
            _ => {
                // The run that was last stops being kept for that: the next release looks at it.
                self.hold(self.runs.len().saturating_sub(1));
                let run = Run::new(self.len, vec![meta]);
                self.runs.push(run);
            }
        }
        self.len += 1;
        Ok(())
    }

    /// Replaces block `index` with `metas` (none when it became empty, several when it was
    /// split), which must sort where it did. Reads nothing after [`Directory::get_to_change`]
    /// of the same block: a run left short merges into a neighbour only if memory holds both
    /// (short runs are valid, just less compact), and the one read otherwise comes before any
    /// change.
    pub fn replace(
        &mut self,
        index: usize,
        metas: Vec<BlockMeta>,
        source: &impl RunSource,
    ) -> Result<()> {
        // Run indexes may shift below, so the recent run is let go first (a run this change
        // needs is held already, or read again).
        if let Some(recent) = self.recent.take() {
            self.drop_if_unpinned(recent, source.applied());
        }
        let r = self.run_of(index);
        let offset = index - self.runs[r].start;
        let len = self.runs[r].summary.len as usize + metas.len() - 1;
        // A run left short is merged: into the previous run when there is one, else the next
        // takes it in.
        let merge = (len > 0 && len < RUN_MIN && self.runs.len() > 1)
            .then(|| if r > 0 { r - 1 } else { r })
            .filter(|&into| {
                let other = if into == r { into + 1 } else { into };
                self.runs[other].body.is_some()
                    && len + self.runs[other].summary.len as usize <= RUN_MAX
            });
        if let Some(into) = merge {
            // Both held: marked changed, this reads nothing.
            self.changed(into, source)?;
            self.changed(into + 1, source)?;
        }
        let added = metas.len();
        self.changed(r, source)?.splice(offset..=offset, metas);
        self.len = self.len + added - 1;
        for run in &mut self.runs[r + 1..] {
            run.start = run.start + added - 1;
        }
        if len == 0 {
            self.remove_run(r);
        } else {
            self.summarize(r);
            if let Some(into) = merge {
                self.merge_next_into(into);
            } else if len > RUN_MAX {
                self.split(r);
            }
        }
        // A run read above is held as changed: none is left to count as the recent one.
        self.recent = None;
        Ok(())
    }

    /// Points block `first` (with `seq`) at its new place, if it is still at `old`. Returns
    /// whether it was.
    pub fn relocate(
        &mut self,
        first: MsgKey,
        seq: u64,
        old: Location,
        new: Location,
        source: &impl RunSource,
    ) -> Result<bool> {
        let Some(index) = self.block_for(first, source)? else {
            return Ok(false);
        };
        let r = self.run_of(index);
        let offset = index - self.runs[r].start;
        let meta = &self.blocks(r, source)?[offset];
        if meta.first != first || meta.seq != seq || meta.location != old {
            return Ok(false);
        }
        self.changed(r, source)?[offset].location = new;
        self.summarize(r);
        Ok(true)
    }

    /// Calls `each` with every entry in order until it returns false. Runs memory does not
    /// hold are read from the index one at a time and not kept by the directory (the store's
    /// cache of runs may keep them).
    pub fn for_each(
        &self,
        source: &impl RunSource,
        each: impl FnMut(usize, &BlockMeta) -> Result<bool>,
    ) -> Result<()> {
        self.for_each_where(|_| true, source, each)
    }

    /// [`Directory::for_each`] over the runs that may have blocks in block log `segment`.
    pub fn for_each_in_segment(
        &self,
        segment: u32,
        source: &impl RunSource,
        each: impl FnMut(usize, &BlockMeta) -> Result<bool>,
    ) -> Result<()> {
        let holds = |s: &Summary| s.min_segment <= segment && segment <= s.max_segment;
        self.for_each_where(holds, source, each)
    }

    /// [`Directory::for_each`] over the runs that may have blocks with a seq above `seq`.
    pub fn for_each_newer_than(
        &self,
        seq: u64,
        source: &impl RunSource,
        each: impl FnMut(usize, &BlockMeta) -> Result<bool>,
    ) -> Result<()> {
        self.for_each_where(|s| s.max_seq > seq, source, each)
    }

    /// Up to `limit` entries with `after < seq <= upto` among the blocks from the one starting
    /// at or after `from`, in key order: a resumable walk of what a derived index has not seen
    /// (the caller goes on after the last block returned). Runs wholly outside the seqs are not
    /// read, so walking a long history window by window reads each run about once.
    pub fn newer_than_from(
        &self,
        (after, upto): (u64, u64),
        from: MsgKey,
        limit: usize,
        source: &impl RunSource,
    ) -> Result<Vec<BlockMeta>> {
        let mut found = Vec::new();
        let start = self.runs.partition_point(|run| run.summary.last < from);
        for (r, run) in self.runs.iter().enumerate().skip(start) {
            if found.len() >= limit {
                break;
            }
            if run.summary.max_seq <= after || run.summary.min_seq > upto {
                continue;
            }
            let blocks = self.entries_of(r, source)?;
            found.extend(
                blocks
                    .iter()
                    .filter(|b| after < b.seq && b.seq <= upto && b.first >= from)
                    .take(limit - found.len())
                    .cloned(),
            );
        }
        Ok(found)
    }

    /// The entries of run `r`: those memory holds, or read (not kept).
    fn entries_of(
        &self,
        r: usize,
        source: &impl RunSource,
    ) -> Result<std::borrow::Cow<'_, [BlockMeta]>> {
        Ok(match &self.runs[r].body {
            Some(body) => std::borrow::Cow::Borrowed(&body.blocks),
            None => std::borrow::Cow::Owned(self.read(r, source)?),
        })
    }

    fn for_each_where(
        &self,
        wanted: impl Fn(&Summary) -> bool,
        source: &impl RunSource,
        mut each: impl FnMut(usize, &BlockMeta) -> Result<bool>,
    ) -> Result<()> {
        for (r, run) in self.runs.iter().enumerate() {
            if !wanted(&run.summary) {
                continue;
            }
            let blocks = self.entries_of(r, source)?;
            for (i, meta) in blocks.iter().enumerate() {
                if !each(run.start + i, meta)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Every entry, in order (for checks and tests: it holds the whole directory).
    pub fn collect(&self, source: &impl RunSource) -> Result<Vec<BlockMeta>> {
        let mut all = Vec::with_capacity(self.len);
        self.for_each(source, |_, meta| {
            all.push(meta.clone());
            Ok(true)
        })?;
        Ok(all)
    }

    /// Hands the index changes since the last stage to `write` (`None` removes the key): the
    /// records of runs that went away first, then every changed run under its first key. The
    /// runs staged stay in memory until the index has applied the batch they went into
    /// (`applied` is the count now, see [`RunSource::applied`]).
    pub fn stage(&mut self, applied: u64, mut write: impl FnMut(MsgKey, Option<Vec<u8>>)) {
        self.release(applied);
        for key in self.stale.drain(..) {
            write(key, None);
        }
        let from = self.first_held.unwrap_or(self.runs.len());
        for run in &self.runs[from..] {
            if run.body.as_ref().is_some_and(|b| b.dirty) {
                if let Some(old) = run.stored.filter(|&old| old != run.summary.first) {
                    write(old, None);
                }
            }
        }
        for run in &mut self.runs[from..] {
            let Some(body) = run.body.as_mut().filter(|b| b.dirty) else {
                continue;
            };
            write(run.summary.first, Some(super::codec::encode(&body.blocks)));
            run.stored = Some(run.summary.first);
            body.dirty = false;
            body.staged = Some(applied);
        }
    }

    /// Drops the entries of runs the index has, but those of the last and the recent run.
    pub fn release(&mut self, applied: u64) {
        let Some(from) = self.first_held else {
            return;
        };
        let last = self.runs.len().saturating_sub(1);
        self.first_held = None;
        for r in from..self.runs.len() {
            let run = &mut self.runs[r];
            if run.body.is_none() {
                continue;
            }
            if run.pinned(applied) {
                self.first_held.get_or_insert(r);
            } else if r != last && Some(r) != self.recent {
                run.body = None;
            }
        }
    }

    /// Notes that run `r` holds entries that are changed, wait for the index, or were kept as
    /// the last run.
    fn hold(&mut self, r: usize) {
        self.first_held = Some(self.first_held.map_or(r, |first| first.min(r)));
    }

    /// Forgets every stored record (whose keys are given) and every block: the directory is
    /// built anew (a repair).
    pub fn rebuild(&mut self, stored_keys: Vec<MsgKey>) {
        self.runs.clear();
        self.len = 0;
        self.recent = None;
        self.first_held = None;
        self.stale = stored_keys;
    }

    /// What is wrong with the summaries (for `verify`): each must describe its run's entries.
    pub fn check(&self, source: &impl RunSource) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut start = 0;
        for (r, run) in self.runs.iter().enumerate() {
            let blocks = match &run.body {
                Some(body) => {
                    if !body.dirty && run.stored != Some(run.summary.first) {
                        problems.push(format!("run {r} is stored under another key"));
                    }
                    body.blocks.clone()
                }
                None => self.read(r, source)?,
            };
            if run.start != start || blocks.is_empty() || Summary::of(&blocks) != run.summary {
                problems.push(format!("run {r} disagrees with its summary"));
            }
            start += blocks.len();
        }
        if start != self.len {
            problems.push("the directory's length disagrees with its runs".into());
        }
        Ok(problems
            .into_iter()
            .map(|p| format!("chat {}: {p}", self.chat))
            .collect())
    }

    /// Run `r`'s entries, present and marked changed.
    fn changed(&mut self, r: usize, source: &impl RunSource) -> Result<&mut Vec<BlockMeta>> {
        self.load(r, source)?;
        self.hold(r);
        let body = self.runs[r].body.as_mut().expect("loaded");
        body.dirty = true;
        Ok(&mut body.blocks)
    }

    fn summarize(&mut self, r: usize) {
        let run = &mut self.runs[r];
        run.summary = Summary::of(&run.body.as_ref().expect("changed").blocks);
    }

    fn remove_run(&mut self, r: usize) {
        let run = self.runs.remove(r);
        self.stale.extend(run.stored);
    }

    /// Splits run `r` into runs of about [`RUN_BLOCKS`], of equal length (so that no piece is
    /// left short).
    fn split(&mut self, r: usize) {
        let blocks = std::mem::take(&mut self.runs[r].body.as_mut().expect("changed").blocks);
        let mut start = self.runs[r].start;
        let size = blocks.len().div_ceil(blocks.len().div_ceil(RUN_BLOCKS));
        let mut pieces = blocks.chunks(size);
        let first = pieces.next().expect("a run to split is long").to_vec();
        start += first.len();
        self.runs[r].body.as_mut().expect("changed").blocks = first;
        self.summarize(r);
        let more: Vec<Run> = pieces
            .map(|piece| {
                let run = Run::new(start, piece.to_vec());
                start += piece.len();
                run
            })
            .collect();
        self.runs.splice(r + 1..r + 1, more);
    }

    /// Moves run `r + 1`'s entries to the end of run `r` (both held and marked changed).
    fn merge_next_into(&mut self, r: usize) {
        let moved = std::mem::take(&mut self.runs[r + 1].body.as_mut().expect("held").blocks);
        self.runs[r]
            .body
            .as_mut()
            .expect("held")
            .blocks
            .extend(moved);
        self.summarize(r);
        self.remove_run(r + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;

    /// An index in memory, applying staged writes when told.
    #[derive(Default)]
    struct Index {
        records: RefCell<BTreeMap<MsgKey, Vec<u8>>>,
        staged: RefCell<Vec<(MsgKey, Option<Vec<u8>>)>>,
        applied: Cell<u64>,
        reads: Cell<usize>,
    }

    impl Index {
        fn apply(&self) {
            for (key, value) in self.staged.borrow_mut().drain(..) {
                match value {
                    Some(v) => self.records.borrow_mut().insert(key, v),
                    None => self.records.borrow_mut().remove(&key),
                };
            }
            self.applied.set(self.applied.get() + 1);
        }

        fn stage(&self, directory: &mut Directory) {
            directory.stage(self.applied.get(), |key, value| {
                self.staged.borrow_mut().push((key, value))
            });
        }

        /// The directory an open would build from the index.
        fn reopen(&self) -> Directory {
            let mut directory = Directory::new(-1);
            for (key, value) in self.records.borrow().iter() {
                let blocks: Vec<BlockMeta> = super::super::codec::decode(value).unwrap();
                directory.add_stored(*key, &blocks).unwrap();
            }
            directory
        }
    }

    impl RunSource for Index {
        fn read_run(&self, _chat: ChatId, first: MsgKey) -> Result<Vec<BlockMeta>> {
            self.reads.set(self.reads.get() + 1);
            let records = self.records.borrow();
            Ok(super::super::codec::decode(records.get(&first).expect("a stored run")).unwrap())
        }
        fn applied(&self) -> u64 {
            self.applied.get()
        }
        fn damaged(&self, what: String) -> StoreError {
            StoreError::Corrupt {
                path: "index".into(),
                what,
            }
        }
    }

    /// A block of one message at time `t` (its id too).
    fn block(t: i64, seq: u64) -> BlockMeta {
        let key = MsgKey {
            time: t,
            id: t as i32,
        };
        BlockMeta {
            first: key,
            last: key,
            min_id: key.id,
            max_id: key.id,
            count: 1,
            seq,
            location: Location {
                segment: 1,
                offset: seq as u32,
                len: 1,
            },
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Seal the next block.
        Push,
        /// Replace the block at this share of the length with so many pieces (0: empty it).
        Replace(f64, usize),
        /// Move the block at this share of the length.
        Relocate(f64),
        /// Read the block at this share of the length.
        Get(f64),
        /// Stage the changes.
        Stage,
        /// Apply what was staged.
        Apply,
        /// Open the index anew (after staging and applying everything).
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => Just(Op::Push),
            2 => (0.0..1.0f64, 0..4usize).prop_map(|(at, n)| Op::Replace(at, n)),
            1 => (0.0..1.0f64).prop_map(Op::Relocate),
            2 => (0.0..1.0f64).prop_map(Op::Get),
            2 => Just(Op::Stage),
            2 => Just(Op::Apply),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        /// Whatever the edits, the directory reads like a plain list of its blocks, its
        /// summaries describe its runs, and an open of what was applied reads the same.
        #[test]
        fn a_paged_directory_reads_like_a_list(ops in proptest::collection::vec(op(), 1..300)) {
            let index = Index::default();
            let mut directory = Directory::new(-1);
            let mut model: Vec<BlockMeta> = Vec::new();
            // Blocks are spaced apart so that split pieces fit between their neighbours.
            let mut next = 0i64;
            const STEP: i64 = 1 << 20;
            let mut seq = 0u64;
            for op in ops {
                match op {
                    Op::Push => {
                        next += STEP;
                        seq += 1;
                        directory.push(block(next, seq), &index).unwrap();
                        model.push(block(next, seq));
                    }
                    Op::Replace(at, pieces) if !model.is_empty() => {
                        let i = ((at * model.len() as f64) as usize).min(model.len() - 1);
                        prop_assert_eq!(&directory.get_to_change(i, &index).unwrap(), &model[i]);
                        let base = model[i].first.time;
                        let end = model.get(i + 1).map_or(next + STEP, |b| b.first.time);
                        let gap = (end - base) / 4;
                        let pieces = if gap == 0 { pieces.min(1) } else { pieces };
                        let metas: Vec<BlockMeta> = (0..pieces as i64)
                            .map(|p| {
                                seq += 1;
                                block(base + p * gap, seq)
                            })
                            .collect();
                        directory.replace(i, metas.clone(), &index).unwrap();
                        model.splice(i..=i, metas);
                    }
                    Op::Relocate(at) if !model.is_empty() => {
                        let i = ((at * model.len() as f64) as usize).min(model.len() - 1);
                        let old = model[i].location;
                        let new = Location { segment: old.segment + 1, ..old };
                        prop_assert!(directory.relocate(model[i].first, model[i].seq, old, new, &index).unwrap());
                        prop_assert!(!directory.relocate(model[i].first, model[i].seq, old, new, &index).unwrap());
                        model[i].location = new;
                    }
                    Op::Get(at) if !model.is_empty() => {
                        let i = ((at * model.len() as f64) as usize).min(model.len() - 1);
                        prop_assert_eq!(&directory.get(i, &index).unwrap(), &model[i]);
                        let key = model[i].first;
                        prop_assert_eq!(directory.block_for(key, &index).unwrap(), Some(i));
                        let ending = directory.first_ending_from(key, &index).unwrap();
                        prop_assert_eq!(ending.as_ref(), Some(&model[i]));
                        let holding = directory.may_hold(model[i].min_id, &index).unwrap();
                        prop_assert_eq!(holding, vec![(i, model[i].clone())]);
                    }
                    Op::Stage => index.stage(&mut directory),
                    Op::Apply => index.apply(),
                    Op::Reopen => {
                        index.stage(&mut directory);
                        index.apply();
                        directory = index.reopen();
                    }
                    _ => {}
                }
                prop_assert_eq!(directory.len(), model.len());
                prop_assert_eq!(directory.collect(&index).unwrap(), model.clone());
                prop_assert_eq!(directory.check(&index).unwrap(), Vec::<String>::new());
                for segment in 1..4 {
                    let mut found = Vec::new();
                    directory.for_each_in_segment(segment, &index, |i, meta| {
                        found.push((i, meta.clone()));
                        Ok(true)
                    }).unwrap();
                    found.retain(|(_, meta)| meta.location.segment == segment);
                    let expected: Vec<(usize, BlockMeta)> = model.iter().cloned().enumerate()
                        .filter(|(_, meta)| meta.location.segment == segment).collect();
                    prop_assert_eq!(found, expected);
                }
                prop_assert_eq!(directory.last_key(), model.last().map(|b| b.last));
                prop_assert_eq!(directory.max_seq(), model.iter().map(|b| b.seq).max().unwrap_or(0));
                prop_assert!(directory.runs.iter().all(|r| r.summary.len as usize <= RUN_MAX));
            }
            index.stage(&mut directory);
            index.apply();
            // Once the index has everything, memory holds the last run and the recent one.
            directory.release(index.applied());
            prop_assert!(directory.runs.iter().filter(|r| r.body.is_some()).count() <= 2);
            prop_assert_eq!(index.reopen().collect(&index).unwrap(), model);
        }
    }

    #[test]
    fn a_short_run_split_in_pieces_is_not_merged_past_the_longest_run() {
        let index = Index::default();
        let mut directory = Directory::new(-1);
        for k in 0..=RUN_BLOCKS as i64 {
            directory
                .push(block(1000 * k, k as u64 + 1), &index)
                .unwrap();
        }
        // The first run grows to 30 blocks; the last holds one.
        let pieces = (0..15).map(|t| block(t, 100 + t as u64)).collect();
        directory.replace(0, pieces, &index).unwrap();
        let last = directory.len() - 1;
        // Split in 3, the last run is short, but too long to join the first.
        let pieces = (0..3).map(|t| block(16_000 + t, 200 + t as u64)).collect();
        directory.replace(last, pieces, &index).unwrap();
        let lengths: Vec<u32> = directory.runs.iter().map(|r| r.summary.len).collect();
        assert_eq!(lengths, vec![30, 3]);
        index.stage(&mut directory);
        index.apply();
        assert_eq!(index.reopen().len(), 33);
    }

    #[test]
    fn a_run_read_before_an_edit_is_let_go_once_the_index_has_everything() {
        let index = Index::default();
        let mut directory = Directory::new(-1);
        for k in 0..4 * RUN_BLOCKS as i64 {
            directory
                .push(block(1000 * k, k as u64 + 1), &index)
                .unwrap();
        }
        index.stage(&mut directory);
        index.apply();
        directory.release(index.applied());
        // An edit near the end holds runs 1 to 3; then run 0 is read; then a second edit there
        // reads nothing.
        let edited = 3 * RUN_BLOCKS as i64 - 2;
        let again = |directory: &mut Directory, seq: u64| {
            let i = edited as usize;
            directory.get_to_change(i, &index).unwrap();
            let piece = block(1000 * edited, seq);
            directory.replace(i, vec![piece], &index).unwrap();
        };
        again(&mut directory, 100);
        directory.get(0, &index).unwrap();
        again(&mut directory, 101);
        index.stage(&mut directory);
        index.apply();
        directory.release(index.applied());
        let held: Vec<usize> = (0..directory.runs.len())
            .filter(|&r| directory.runs[r].body.is_some())
            .collect();
        assert_eq!(
            held,
            vec![directory.runs.len() - 1],
            "only the last run stays"
        );
    }

    #[test]
    fn memory_holds_few_runs_whatever_the_length() {
        let index = Index::default();
        let mut directory = Directory::new(-1);
        for n in 0..10_000 {
            directory.push(block(n * 10, n as u64 + 1), &index).unwrap();
            // Staged as commits stage: often, and again by commits that seal nothing here. A
            // run that filled up, was staged and is then passed by a push must be let go like
            // any other.
            for _ in 0..(n % 3) {
                index.stage(&mut directory);
                index.apply();
            }
        }
        index.stage(&mut directory);
        index.apply();
        for i in (0..10_000).step_by(7) {
            assert_eq!(
                directory.get(i, &index).unwrap(),
                block(i as i64 * 10, i as u64 + 1)
            );
        }
        directory.release(index.applied());
        let held = directory.runs.iter().filter(|r| r.body.is_some()).count();
        assert!(held <= 2, "{held} runs held");
        // Reads within one run read the index once.
        let reads = index.reads.get();
        for i in 160..176 {
            directory.get(i, &index).unwrap();
        }
        assert_eq!(index.reads.get(), reads + 1);
    }
}
