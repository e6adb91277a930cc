//! The store's shared state: [`Store`], the cheap handle, and `Shared` behind it, which the
//! files of this module extend with the operations of one concept each. Opening and the group
//! commit's thread live here too.

use super::blocklog::BlockLog;
use super::cache::ByteLru;
use super::chat::ChatState;
use super::codec::Compressor;
use super::directory::BlockMeta;
use super::error::{Result, StoreError};
use super::model::{ChatId, Message, MessageRef, MsgKey, UserId, UserInfo};
use super::postings::Postings;
use super::profile_state::ProfileState;
use super::staged::Staged;
use super::{codec, layout, postings};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

pub(super) const CHAT_SHARDS: usize = 16;
pub(super) const USER_SHARDS: usize = 16;
/// Bytes of directory runs kept decoded across chats, besides those chats' directories hold: at
/// 1M messages every run fits.
pub(super) const RUN_CACHE_BYTES: usize = 1 << 20;

/// One decoded frame of a block.
pub(super) type Frame = Arc<Vec<MessageRef>>;

/// A handle to an open store. Clones share everything; the last one dropped commits and stops the
/// background group commit.
#[derive(Clone)]
pub struct Store {
    pub(super) shared: Arc<Shared>,
    pub(super) _flusher: Arc<FlusherGuard>,
    /// Whether calls from an async runtime's threads are refused (see [`Store::checking_runtime`]).
    pub(super) check_runtime: bool,
}

/// Store-wide state shared by every handle and the group-commit thread.
pub(super) struct Shared {
    pub(super) path: PathBuf,
    pub(super) db: sled::Db,
    /// Sealed blocks.
    pub(super) blocks: BlockLog,
    /// Tail segments and checkpoints: short-lived, so kept apart from blocks and compacted often.
    pub(super) tails: BlockLog,
    /// Users' postings chunks.
    pub(super) postings_log: BlockLog,
    /// Chunks of chats' profiles.
    pub(super) profiles_log: BlockLog,
    pub(super) profiles: ProfileState,
    pub(super) compressor: Compressor,
    pub(super) chats: Vec<RwLock<HashMap<ChatId, Arc<Mutex<ChatState>>>>>,
    pub(super) users: Vec<Mutex<HashMap<UserId, UserEntry>>>,
    pub(super) postings: Postings,
    /// Decoded frames of blocks, by block seq and frame (for context reads).
    pub(super) frames: ByteLru<(u64, u32), Frame>,
    /// Directory runs read from the index, by chat and first key (removed when staged anew).
    pub(super) runs: ByteLru<(ChatId, MsgKey), Arc<Vec<BlockMeta>>>,
    /// One group commit at a time, so that a commit that returns has made durable everything
    /// saved before it began, including chats another commit was still encoding. Taken before
    /// any other lock.
    pub(super) committing: Mutex<()>,
    /// Serializes everything that changes the index but profile chunks (which have their own
    /// lock, `profiles.rs`). Lock order: `committing`, `rewrites`, `compaction`, the profile
    /// lock, `writer`, then chat locks; `staged` and the logs' own locks are innermost.
    pub(super) writer: Mutex<()>,
    /// Held shared by code that may rewrite or move blocks and exclusively by a backup while it
    /// streams blocks (and by repair).
    pub(super) rewrites: RwLock<()>,
    /// Index changes whose log records are written but not yet synced: applied together.
    pub(super) staged: Mutex<Staged>,
    /// One compaction at a time.
    pub(super) compaction: Mutex<()>,
    /// Chats with changes since the last commit.
    pub(super) dirty: Mutex<Vec<ChatId>>,
    /// User records the next group commit writes, their one writer: the whole record when one
    /// was given ([`Store::set_user_info`]), `None` when only the name seen on messages changed
    /// (the username stays as stored). Rare, so not sharded.
    pub(super) renamed: Mutex<HashMap<UserId, Option<UserInfo>>>,
    pub(super) next_seq: AtomicU64,
    /// Staged batches applied to the index so far: directory runs staged before stay in memory
    /// until it passes the count they were staged at.
    pub(super) applied: AtomicU64,
    /// Block count at the last dictionary training attempt (retried when it doubles).
    pub(super) dictionary_attempt: AtomicUsize,
    /// A sled batch failed to apply (memory may hold changes the index lost, or the index part
    /// of a postings flush): the index takes no more changes until the store is opened again.
    pub(super) halted: AtomicBool,
    pub(super) totals: Totals,
    pub(super) stats: StoreMetrics,
    pub(super) flusher: FlusherSignal,
}

/// Store-wide totals kept current on every change.
#[derive(Default)]
pub(super) struct Totals {
    pub(super) messages: AtomicU64,
    pub(super) service: AtomicU64,
    pub(super) chats: AtomicU64,
    pub(super) users: AtomicU64,
    /// Messages in tails (in memory until sealed), to bound that memory.
    pub(super) unsealed: AtomicU64,
}

/// What a user is across chats: their counted messages and last seen name.
pub(super) struct UserEntry {
    pub(super) messages: u64,
    pub(super) name: Arc<str>,
}

/// Figures about the store itself, for `/health` and `/metrics`.
#[derive(Default)]
pub struct StoreMetrics {
    pub(super) commits: AtomicU64,
    pub(super) last_commit_micros: AtomicU64,
    pub(super) max_commit_micros: AtomicU64,
    pub(super) blocks_sealed: AtomicU64,
    pub(super) segments_compacted: AtomicU64,
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
pub(super) struct FlusherSignal {
    pub(super) state: Mutex<FlusherState>,
    pub(super) wake: Condvar,
}

#[derive(Default)]
pub(super) struct FlusherState {
    pub(super) stop: bool,
    /// A tail grew past two blocks: seal now rather than at the next interval.
    pub(super) seal_now: bool,
}

/// How much a group commit does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// Write changed chats and seal full blocks; sled is not synced.
    Seal,
    /// [`Commit::Seal`], then sync sled too.
    Sync,
    /// [`Commit::Sync`], bringing every checkpoint up to date too, so that the next open reads
    /// no block, and compacting the tail log (on close, and before verify).
    Close,
}

/// Stops the group-commit thread and commits once more when the last handle goes.
pub(super) struct FlusherGuard {
    pub(super) shared: Arc<Shared>,
    pub(super) thread: Mutex<Option<std::thread::JoinHandle<()>>>,
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
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
        .expect("a store thread panicked while holding a lock")
}

impl Shared {
    /// The group-commit thread: syncs every `interval`, seals in between when a writer says a
    /// tail is long (so that writers never wait for compression), compacts a log segment
    /// when one has become mostly dead, and settles profile records into chunks when many piled
    /// up.
    pub(super) fn run_flusher(&self, interval: Duration) {
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
    pub(super) fn logs(&self) -> [(&'static str, &BlockLog); 3] {
        [
            ("blocks", &self.blocks),
            ("tails", &self.tails),
            ("postings", &self.postings_log),
        ]
    }

    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    pub(super) fn chat_shard(
        &self,
        chat: ChatId,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<ChatId, Arc<Mutex<ChatState>>>> {
        self.chats[shard_of(chat, CHAT_SHARDS)]
            .read()
            .expect("chat map lock")
    }

    pub(super) fn chat_shard_mut(
        &self,
        chat: ChatId,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<ChatId, Arc<Mutex<ChatState>>>> {
        self.chats[shard_of(chat, CHAT_SHARDS)]
            .write()
            .expect("chat map lock")
    }

    /// The chat's state, if the store has seen it.
    pub(super) fn chat(&self, chat: ChatId) -> Option<Arc<Mutex<ChatState>>> {
        self.chat_shard(chat).get(&chat).cloned()
    }

    /// The chat's state, created empty on first sight.
    pub(super) fn chat_or_new(&self, chat: ChatId) -> Arc<Mutex<ChatState>> {
        if let Some(state) = self.chat(chat) {
            return state;
        }
        self.chat_shard_mut(chat)
            .entry(chat)
            .or_insert_with(|| Arc::new(Mutex::new(ChatState::new(chat))))
            .clone()
    }

    /// Every chat handle (a snapshot of the map).
    pub(super) fn all_chats(&self) -> Vec<Arc<Mutex<ChatState>>> {
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
    pub(super) fn chats_in_order(&self) -> Vec<(ChatId, Arc<Mutex<ChatState>>)> {
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

    pub(super) fn user_shard(&self, user: UserId) -> MutexGuard<'_, HashMap<UserId, UserEntry>> {
        lock(&self.users[shard_of(user, USER_SHARDS)])
    }

    pub(super) fn stored_user(&self, user: UserId) -> Option<UserInfo> {
        if let Some(Some(info)) = lock(&self.renamed).get(&user) {
            return Some(info.clone());
        }
        let bytes = self
            .db
            .get(layout::user_prefix(layout::USER_INFO, user))
            .ok()??;
        codec::decode(&bytes).ok()
    }

    pub(super) fn io(&self, source: sled::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    pub(super) fn corrupt(&self, what: impl std::fmt::Display, e: codec::CodecError) -> StoreError {
        StoreError::corrupt(&self.path, what, e)
    }

    pub(super) fn corrupt_msg(&self, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    pub(super) fn record_commit(&self, started: Instant) {
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

pub(super) fn shard_of(id: i64, shards: usize) -> usize {
    (id.unsigned_abs() % shards as u64) as usize
}

/// The posting of a message.
pub(super) fn posting_of(m: &Message) -> postings::PostingRef {
    postings::PostingRef {
        time: m.time,
        chat: m.chat_id,
        id: m.message_id,
    }
}
