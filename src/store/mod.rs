//! The message store: sled as the index, message data in append-only logs.
//!
//! Per chat, messages live in sealed blocks of [`chat::SEAL_LEN`] messages (compressed frames) in
//! the block log, and an unsealed tail in memory whose new records each group commit appends to
//! the tail log. sled holds only small records: where each block and tail segment is, counters,
//! postings, names, settings (`layout.rs` describes every file and key). New messages touch only
//! memory; the group commit (every 100 ms by default, and on [`Store::flush`]) writes tails, seals
//! full blocks, syncs the logs and then applies one sled batch that references what it wrote.
//! Everything derived from messages — block directory, counter checkpoints, user postings — is
//! in the same atomic batch as the blocks it describes, and `verify --repair` can rebuild it.
//!
//! Memory grows with history only by a summary per run of 16 blocks of the directory (~6 bytes a
//! block, `directory.rs`): reads go to the logs with positioned reads through byte-bounded caches
//! of decoded frames and of directory runs, and everything that walks history
//! ([`Store::chat_range`], [`Store::time_range`], backup, verify) streams.
//!
//! [`Store`] is a cheap handle (`Arc` inside). Each chat has its own lock; a store-wide writer
//! lock serializes the code that changes the index (commits, block rewrites, compaction swaps).

mod accounting;
mod backup;
mod blocklog;
mod blocks;
mod cache;
mod chat;
mod chunks;
pub mod codec;
mod commit;
mod compact;
mod config;
mod counters;
mod directory;
mod error;
mod ingest;
pub mod layout;
mod load;
mod migrate;
mod model;
mod postings;
mod profiles;
mod read;
mod rewrite;
mod runtime;
mod scan;
mod settings;
mod verify;

pub use backup::{restore, BackupSummary};
pub use config::{FlushPolicy, StoreConfig};
pub use counters::TOP_USERS;
pub use error::{Result, StoreError};
pub use ingest::Saved;
pub use model::*;
pub use runtime::blocking;
pub use scan::{ChatRange, TimeRange};
pub use settings::SettingKey;
pub use verify::VerifyReport;

use blocklog::BlockLog;
use cache::ByteLru;
use chat::ChatState;
use codec::Compressor;
use commit::Staged;
use directory::BlockMeta;
use postings::Postings;
use profiles::ProfileState;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

const CHAT_SHARDS: usize = 16;
const USER_SHARDS: usize = 16;
/// Bytes of directory runs kept decoded across chats, besides those chats' directories hold: at
/// 1M messages every run fits.
const RUN_CACHE_BYTES: usize = 1 << 20;

/// One decoded frame of a block.
pub(crate) type Frame = Arc<Vec<MessageRef>>;

/// A handle to an open store. Clones share everything; the last one dropped commits and stops the
/// background group commit.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    _flusher: Arc<FlusherGuard>,
    /// Whether calls from an async runtime's threads are refused (see [`Store::checking_runtime`]).
    check_runtime: bool,
}

/// Store-wide state shared by every handle and the group-commit thread.
pub(crate) struct Shared {
    path: PathBuf,
    db: sled::Db,
    /// Sealed blocks.
    blocks: BlockLog,
    /// Tail segments and checkpoints: short-lived, so kept apart from blocks and compacted often.
    tails: BlockLog,
    /// Users' postings chunks.
    postings_log: BlockLog,
    /// Chunks of chats' profiles.
    profiles_log: BlockLog,
    profiles: ProfileState,
    compressor: Compressor,
    chats: Vec<RwLock<HashMap<ChatId, Arc<Mutex<ChatState>>>>>,
    users: Vec<Mutex<HashMap<UserId, UserEntry>>>,
    postings: Postings,
    /// Decoded frames of blocks, by block seq and frame (for context reads).
    frames: ByteLru<(u64, u32), Frame>,
    /// Directory runs read from the index, by chat and first key (removed when staged anew).
    runs: ByteLru<(ChatId, MsgKey), Arc<Vec<BlockMeta>>>,
    /// One group commit at a time, so that a commit that returns has made durable everything
    /// saved before it began, including chats another commit was still encoding. Taken before
    /// any other lock.
    committing: Mutex<()>,
    /// Serializes everything that changes the index but profile chunks (which have their own
    /// lock, `profiles.rs`). Lock order: `committing`, `rewrites`, `compaction`, the profile
    /// lock, `writer`, then chat locks; `staged` and the logs' own locks are innermost.
    writer: Mutex<()>,
    /// Held shared by code that may rewrite or move blocks and exclusively by a backup while it
    /// streams blocks (and by repair).
    rewrites: RwLock<()>,
    /// Index changes whose log records are written but not yet synced: applied together.
    staged: Mutex<Staged>,
    /// One compaction at a time.
    compaction: Mutex<()>,
    /// Chats with changes since the last commit.
    dirty: Mutex<Vec<ChatId>>,
    /// Users whose name changed since the last commit (rare: not sharded).
    renamed: Mutex<Vec<UserId>>,
    next_seq: AtomicU64,
    /// Staged batches applied to the index so far: directory runs staged before stay in memory
    /// until it passes the count they were staged at.
    applied: AtomicU64,
    /// Block count at the last dictionary training attempt (retried when it doubles).
    dictionary_attempt: AtomicUsize,
    /// A sled batch failed to apply (memory may hold changes the index lost, or the index part
    /// of a postings flush): the index takes no more changes until the store is opened again.
    halted: AtomicBool,
    totals: Totals,
    stats: StoreMetrics,
    flusher: FlusherSignal,
}

/// Store-wide totals kept current on every change.
#[derive(Default)]
struct Totals {
    messages: AtomicU64,
    service: AtomicU64,
    chats: AtomicU64,
    users: AtomicU64,
    /// Messages in tails (in memory until sealed), to bound that memory.
    unsealed: AtomicU64,
}

/// What a user is across chats: their counted messages and last seen name.
struct UserEntry {
    messages: u64,
    name: Arc<str>,
}

/// Figures about the store itself, for `/health` and `/metrics`.
#[derive(Default)]
pub struct StoreMetrics {
    commits: AtomicU64,
    last_commit_micros: AtomicU64,
    max_commit_micros: AtomicU64,
    blocks_sealed: AtomicU64,
    segments_compacted: AtomicU64,
}

/// A snapshot of [`StoreMetrics`].
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct StoreHealth {
    pub commits: u64,
    pub last_commit_micros: u64,
    pub max_commit_micros: u64,
    pub blocks_sealed: u64,
    pub segments_compacted: u64,
    pub size_on_disk: u64,
}

#[derive(Default)]
struct FlusherSignal {
    state: Mutex<FlusherState>,
    wake: Condvar,
}

#[derive(Default)]
struct FlusherState {
    stop: bool,
    /// A tail grew past two blocks: seal now rather than at the next interval.
    seal_now: bool,
}

/// How much a group commit does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Write changed chats and seal full blocks; sled is not synced.
    Seal,
    /// [`Commit::Seal`], then sync sled too.
    Sync,
    /// [`Commit::Sync`], bringing every checkpoint up to date too, so that the next open reads
    /// no block, and compacting the tail log (on close, and before verify).
    Close,
}

/// Stops the group-commit thread and commits once more when the last handle goes.
struct FlusherGuard {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for FlusherGuard {
    fn drop(&mut self) {
        lock(&self.shared.flusher.state).stop = true;
        self.shared.flusher.wake.notify_all();
        if let Some(thread) = self.thread.lock().expect("flusher lock").take() {
            let _ = thread.join();
        }
        if let Err(e) = self.shared.commit(Commit::Close) {
            tracing::error!(error = %e, "final commit failed");
        }
        if let Err(e) = self.shared.erase_profiles_at_close() {
            tracing::error!(error = %e, "erasing deleted profiles failed; the next open does it");
        }
    }
}

impl Store {
    /// Opens (or creates) the store at `config.path` and starts the group commit. A data
    /// directory of an earlier store format (1 to 3) is converted first (logged with progress).
    pub fn open(config: StoreConfig) -> Result<Store> {
        let shared = Arc::new(Shared::open(&config)?);
        let thread = match config.flush {
            FlushPolicy::Every(interval) => {
                let shared = shared.clone();
                Some(
                    std::thread::Builder::new()
                        .name("chatkeeper-commit".into())
                        .spawn(move || shared.run_flusher(interval))
                        .map_err(|e| {
                            StoreError::Invalid(format!("cannot start commit thread: {e}"))
                        })?,
                )
            }
            FlushPolicy::Manual => None,
        };
        Ok(Store {
            _flusher: Arc::new(FlusherGuard {
                shared: shared.clone(),
                thread: Mutex::new(thread),
            }),
            shared,
            check_runtime: false,
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Makes every change so far durable; returns once it is on disk.
    pub fn flush(&self) -> Result<()> {
        self.check_thread();
        self.shared.commit(Commit::Sync)
    }

    /// Figures about commits and size, for monitoring.
    pub fn health(&self) -> StoreHealth {
        self.check_thread();
        let m = &self.shared.stats;
        StoreHealth {
            commits: m.commits.load(Ordering::Relaxed),
            last_commit_micros: m.last_commit_micros.load(Ordering::Relaxed),
            max_commit_micros: m.max_commit_micros.load(Ordering::Relaxed),
            blocks_sealed: m.blocks_sealed.load(Ordering::Relaxed),
            segments_compacted: m.segments_compacted.load(Ordering::Relaxed),
            size_on_disk: self.shared.db.size_on_disk().unwrap_or(0)
                + self.shared.blocks.size_on_disk()
                + self.shared.tails.size_on_disk()
                + self.shared.postings_log.size_on_disk()
                + self.shared.profiles_log.size_on_disk(),
        }
    }
}

/// Locks a mutex, treating poisoning as fatal to the store (a panic mid-update leaves state that
/// must not be written).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
        .expect("a store thread panicked while holding a lock")
}

impl Shared {
    fn open(config: &StoreConfig) -> Result<Shared> {
        let path = config.path.clone();
        if path.exists() && !path.is_dir() {
            return Err(StoreError::Invalid(format!(
                "{} is a file, not a data directory: pass --data-dir with a directory",
                path.display()
            )));
        }
        let started = Instant::now();
        let db = open_sled(config)?;
        let sled_opened = started.elapsed();
        let shared = Shared {
            blocks: BlockLog::open(&path.join("blocks"), config.segment_bytes)?,
            tails: BlockLog::open(
                &path.join("tails"),
                config.segment_bytes.min(TAIL_SEGMENT_BYTES),
            )?,
            postings_log: BlockLog::open(
                &path.join("postings"),
                config.segment_bytes.min(POSTINGS_SEGMENT_BYTES),
            )?,
            profiles_log: BlockLog::open(
                &path.join("profiles"),
                config.segment_bytes.min(PROFILES_SEGMENT_BYTES),
            )?,
            profiles: ProfileState::default(),
            path,
            db,
            compressor: Compressor::default(),
            chats: (0..CHAT_SHARDS).map(|_| RwLock::default()).collect(),
            users: (0..USER_SHARDS).map(|_| Mutex::default()).collect(),
            postings: Postings::default(),
            frames: ByteLru::new(config.decoded_cache_bytes),
            runs: ByteLru::new(RUN_CACHE_BYTES),
            committing: Mutex::new(()),
            writer: Mutex::new(()),
            rewrites: RwLock::new(()),
            staged: Mutex::default(),
            compaction: Mutex::new(()),
            dirty: Mutex::default(),
            renamed: Mutex::default(),
            next_seq: AtomicU64::new(1),
            applied: AtomicU64::new(0),
            dictionary_attempt: AtomicUsize::new(0),
            halted: AtomicBool::new(false),
            totals: Totals::default(),
            stats: StoreMetrics::default(),
            flusher: FlusherSignal::default(),
        };
        match shared.stored_format()? {
            Some(layout::STORE_FORMAT) => {}
            Some(migrate::FORMAT_1) => {
                migrate::from_format_1(&shared)?;
                migrate::from_format_2(&shared)?;
                migrate::from_format_3(&shared)?;
            }
            Some(migrate::FORMAT_2) => {
                migrate::from_format_2(&shared)?;
                migrate::from_format_3(&shared)?;
            }
            Some(migrate::FORMAT_3) => migrate::from_format_3(&shared)?,
            Some(other) => {
                return Err(shared.corrupt_msg(format!(
                    "store format {other} is not {} (the one this build writes); use the \
                     chatkeeper release that wrote it, or restore a backup",
                    layout::STORE_FORMAT
                )))
            }
            None => shared.mark_new()?,
        }
        migrate::drop_retired_cache(&shared)?;
        shared.load()?;
        shared.erase_queued_profiles()?;
        let chats = shared.all_chats();
        let live_mb = |log: &BlockLog| {
            log.segments().iter().map(|s| s.live_bytes()).sum::<u64>() as f64 / 1e6
        };
        tracing::info!(
            path = %shared.path.display(),
            chats = chats.len(),
            blocks = chats.iter().map(|c| lock(c).directory.len()).sum::<usize>(),
            messages = shared.totals.messages.load(Ordering::Relaxed),
            sled_millis = sled_opened.as_secs_f64() * 1e3,
            total_millis = started.elapsed().as_secs_f64() * 1e3,
            blocks_mb = shared.blocks.size_on_disk() as f64 / 1e6,
            blocks_live_mb = live_mb(&shared.blocks),
            postings_mb = shared.postings_log.size_on_disk() as f64 / 1e6,
            postings_live_mb = live_mb(&shared.postings_log),
            "store opened"
        );
        Ok(shared)
    }

    /// The store format recorded in the index, if any.
    fn stored_format(&self) -> Result<Option<u8>> {
        match self
            .db
            .get(layout::meta_key("format"))
            .map_err(|e| self.io(e))?
        {
            Some(v) if v.len() == 1 => Ok(Some(v[0])),
            Some(_) => Err(self.corrupt_msg("its format marker is malformed")),
            None if self.db.is_empty() => Ok(None),
            None => {
                Err(self
                    .corrupt_msg("it has data but no format marker: it is not a chatkeeper store"))
            }
        }
    }

    /// Marks a new, empty store with this build's format. Log files without an index are not
    /// taken for a new store: they hold messages that only a backup can bring back.
    fn mark_new(&self) -> Result<()> {
        if self.blocks.size_on_disk()
            + self.tails.size_on_disk()
            + self.postings_log.size_on_disk()
            + self.profiles_log.size_on_disk()
            > 0
        {
            return Err(self
                .corrupt_msg("its index (sled's files) is missing but its block logs are there"));
        }
        self.db
            .insert(layout::meta_key("format"), &[layout::STORE_FORMAT])
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    /// The group-commit thread: syncs every `interval`, seals in between when a writer says a
    /// tail is long (so that writers never wait for compression), compacts a log segment
    /// when one has become mostly dead, and settles profile records into chunks when many piled
    /// up.
    fn run_flusher(&self, interval: Duration) {
        let mut last_sync = Instant::now();
        let mut state = lock(&self.flusher.state);
        loop {
            let due = interval.saturating_sub(last_sync.elapsed());
            if !state.stop && !state.seal_now && !due.is_zero() {
                state = self
                    .flusher
                    .wake
                    .wait_timeout(state, due)
                    .expect("flusher lock")
                    .0;
            }
            if state.stop {
                return;
            }
            state.seal_now = false;
            drop(state);
            let kind = if last_sync.elapsed() >= interval {
                last_sync = Instant::now();
                Commit::Sync
            } else {
                Commit::Seal
            };
            if let Err(e) = self.commit(kind) {
                tracing::error!(error = %e, "group commit failed; retrying at the next interval");
            } else if kind == Commit::Sync {
                if let Err(e) = self.compact_if_due() {
                    tracing::error!(error = %e, "compaction failed; retrying later");
                }
                if let Err(e) = self.maintain_profiles() {
                    tracing::error!(error = %e, "settling profiles failed; retrying later");
                }
            }
            state = lock(&self.flusher.state);
        }
    }

    /// Asks the group-commit thread to seal now.
    pub(super) fn wake_flusher(&self) {
        lock(&self.flusher.state).seal_now = true;
        self.flusher.wake.notify_one();
    }

    /// The logs by the names their accounts are stored under.
    fn logs(&self) -> [(&'static str, &BlockLog); 3] {
        [
            ("blocks", &self.blocks),
            ("tails", &self.tails),
            ("postings", &self.postings_log),
        ]
    }

    fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    fn chat_shard(
        &self,
        chat: ChatId,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<ChatId, Arc<Mutex<ChatState>>>> {
        self.chats[shard_of(chat, CHAT_SHARDS)]
            .read()
            .expect("chat map lock")
    }

    fn chat_shard_mut(
        &self,
        chat: ChatId,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<ChatId, Arc<Mutex<ChatState>>>> {
        self.chats[shard_of(chat, CHAT_SHARDS)]
            .write()
            .expect("chat map lock")
    }

    /// The chat's state, if the store has seen it.
    fn chat(&self, chat: ChatId) -> Option<Arc<Mutex<ChatState>>> {
        self.chat_shard(chat).get(&chat).cloned()
    }

    /// The chat's state, created empty on first sight.
    fn chat_or_new(&self, chat: ChatId) -> Arc<Mutex<ChatState>> {
        if let Some(state) = self.chat(chat) {
            return state;
        }
        self.chat_shard_mut(chat)
            .entry(chat)
            .or_insert_with(|| Arc::new(Mutex::new(ChatState::new(chat))))
            .clone()
    }

    /// Every chat handle (a snapshot of the map).
    fn all_chats(&self) -> Vec<Arc<Mutex<ChatState>>> {
        self.chats
            .iter()
            .flat_map(|shard| {
                shard
                    .read()
                    .expect("chat map lock")
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every chat handle, ordered by chat id.
    fn chats_in_order(&self) -> Vec<(ChatId, Arc<Mutex<ChatState>>)> {
        let mut all: Vec<(ChatId, Arc<Mutex<ChatState>>)> = self
            .all_chats()
            .into_iter()
            .map(|h| {
                let id = lock(&h).id;
                (id, h)
            })
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    fn user_shard(&self, user: UserId) -> MutexGuard<'_, HashMap<UserId, UserEntry>> {
        lock(&self.users[shard_of(user, USER_SHARDS)])
    }

    fn stored_user(&self, user: UserId) -> Option<UserInfo> {
        let bytes = self
            .db
            .get(layout::user_prefix(layout::USER_INFO, user))
            .ok()??;
        codec::decode(&bytes).ok()
    }

    fn io(&self, source: sled::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, what: impl std::fmt::Display, e: codec::CodecError) -> StoreError {
        StoreError::corrupt(&self.path, what, e)
    }

    fn corrupt_msg(&self, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    fn record_commit(&self, started: Instant) {
        let micros = started.elapsed().as_micros() as u64;
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.stats
            .last_commit_micros
            .store(micros, Ordering::Relaxed);
        self.stats
            .max_commit_micros
            .fetch_max(micros, Ordering::Relaxed);
    }
}

fn open_sled(config: &StoreConfig) -> Result<sled::Db> {
    let path = &config.path;
    let sled_config = sled::Config::new()
        .path(path)
        .cache_capacity(config.cache_bytes)
        .flush_every_ms(None)
        .mode(sled::Mode::LowSpace)
        .segment_size(SLED_SEGMENT_BYTES);
    // sled releases its file lock a moment after the previous handle is dropped, so a lock held
    // by this very process (a reopen) is waited for briefly; another process keeps it.
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        // sled panics on some damage instead of returning an error; a damaged directory must be
        // a clear error, so the panic is caught and reported with the path.
        let attempt = sled_config.clone();
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || attempt.open()));
        let source = match opened {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(source)) => source,
            Err(_) => sled::Error::Unsupported("sled could not read its files".into()),
        };
        let locked = source.to_string().contains("could not acquire lock");
        if !locked || Instant::now() >= deadline {
            return Err(if locked {
                StoreError::Locked { path: path.clone() }
            } else {
                StoreError::Open {
                    path: path.clone(),
                    source,
                }
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// sled's log segment size. sled now holds only small index records, so the segment size mostly
/// sets how large a node may grow before sled writes it as a blob file (a quarter of a segment),
/// and blob pages are never evicted from sled's cache. Fixed for the life of a store: sled
/// records it, so stores of format 1 keep their 64 KiB.
const SLED_SEGMENT_BYTES: usize = 64 << 10;

/// The tail log's segments: its live data is small (the unsealed tails), so small segments let
/// compaction reclaim its dead records quickly and cheaply.
const TAIL_SEGMENT_BYTES: u64 = 4 << 20;

/// The postings log's segments: chunks are rewritten as they grow, so their log has much dead
/// space; small segments roll over and are compacted early, not once 16 MiB of it piled up.
const POSTINGS_SEGMENT_BYTES: u64 = 2 << 20;

/// The profiles log's segments: chunks are rewritten as profiles change, so, as with postings,
/// small segments are compacted early.
const PROFILES_SEGMENT_BYTES: u64 = 2 << 20;

/// How long `open` waits for sled's file lock.
const LOCK_WAIT: Duration = Duration::from_secs(3);

fn shard_of(id: i64, shards: usize) -> usize {
    (id.unsigned_abs() % shards as u64) as usize
}

/// The posting of a message.
fn posting_of(m: &Message) -> postings::PostingRef {
    postings::PostingRef {
        time: m.time,
        chat: m.chat_id,
        id: m.message_id,
    }
}
