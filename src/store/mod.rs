//! The message store: sled underneath, a time-series layout on top.
//!
//! Per chat, messages live in sealed blocks of [`chat::SEAL_LEN`] messages (compressed frames, keyed
//! by chat and first message) and an unsealed tail. New messages touch only memory: the tail and the
//! counters. A group commit (every 100 ms by default, and on [`Store::flush`]) writes one tail
//! segment per changed chat, seals full blocks, and syncs. Everything derived from messages —
//! block directory, counter checkpoints, user postings — is written in the same atomic batch as the
//! blocks it describes, and `verify --repair` can rebuild it from the messages.
//!
//! [`Store`] is a cheap handle (`Arc` inside). Each chat has its own lock; a store-wide writer
//! lock serializes only the code that changes sled's structure (commits and block rewrites).

mod backup;
mod cache;
mod chat;
pub mod codec;
mod config;
mod counters;
mod error;
mod frames;
pub mod keys;
mod model;
mod postings;
mod read;
mod settings;
mod verify;
mod write;

pub use backup::{restore, BackupSummary};
pub use config::{FlushPolicy, StoreConfig};
pub use counters::TOP_USERS;
pub use error::{Result, StoreError};
pub use model::*;
pub use settings::SettingKey;
pub use verify::VerifyReport;

use chat::{BlockMeta, ChatState};
use codec::Compressor;
use frames::FrameCache;
use postings::Postings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

const CHAT_SHARDS: usize = 16;
const USER_SHARDS: usize = 16;

/// A handle to an open store. Clones share everything; the last one dropped commits and stops the
/// background group commit.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    _flusher: Arc<FlusherGuard>,
}

/// Store-wide state shared by every handle and the group-commit thread.
pub(crate) struct Shared {
    path: PathBuf,
    db: sled::Db,
    compressor: Compressor,
    chats: Vec<RwLock<HashMap<ChatId, Arc<Mutex<ChatState>>>>>,
    users: Vec<Mutex<HashMap<UserId, UserEntry>>>,
    postings: Postings,
    frames: FrameCache,
    /// Serializes everything that changes sled's structure. Lock order: `rewrites`, then
    /// `writer`, then chat locks.
    writer: Mutex<()>,
    /// Held shared by code that may rewrite blocks and exclusively by a backup while it streams
    /// blocks (and by repair).
    rewrites: RwLock<()>,
    /// Chats with changes since the last commit.
    dirty: Mutex<Vec<ChatId>>,
    /// Users whose name changed since the last commit (rare: not sharded).
    renamed: Mutex<Vec<UserId>>,
    next_seq: AtomicU64,
    /// Block count at the last dictionary training attempt (retried when it doubles).
    dictionary_attempt: AtomicUsize,
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
}

/// A snapshot of [`StoreMetrics`].
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct StoreHealth {
    pub commits: u64,
    pub last_commit_micros: u64,
    pub max_commit_micros: u64,
    pub blocks_sealed: u64,
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
    /// Write changed chats and seal full blocks; no sync.
    Seal,
    /// [`Commit::Seal`], then sync to disk.
    Sync,
    /// [`Commit::Sync`], bringing every checkpoint up to date too, so that the next open reads
    /// no block (on close, and before verify).
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
    }
}

impl Store {
    /// Opens (or creates) the store at `config.path` and starts the group commit.
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
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Makes every change so far durable; returns once it is on disk.
    pub fn flush(&self) -> Result<()> {
        self.shared.commit(Commit::Sync)
    }

    /// Figures about commits and size, for monitoring.
    pub fn health(&self) -> StoreHealth {
        let m = &self.shared.stats;
        StoreHealth {
            commits: m.commits.load(Ordering::Relaxed),
            last_commit_micros: m.last_commit_micros.load(Ordering::Relaxed),
            max_commit_micros: m.max_commit_micros.load(Ordering::Relaxed),
            blocks_sealed: m.blocks_sealed.load(Ordering::Relaxed),
            size_on_disk: self.shared.db.size_on_disk().unwrap_or(0),
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
            path,
            db,
            compressor: Compressor::default(),
            chats: (0..CHAT_SHARDS).map(|_| RwLock::default()).collect(),
            users: (0..USER_SHARDS).map(|_| Mutex::default()).collect(),
            postings: Postings::default(),
            frames: FrameCache::new(config.decoded_cache_bytes),
            writer: Mutex::new(()),
            rewrites: RwLock::new(()),
            dirty: Mutex::default(),
            renamed: Mutex::default(),
            next_seq: AtomicU64::new(1),
            dictionary_attempt: AtomicUsize::new(0),
            totals: Totals::default(),
            stats: StoreMetrics::default(),
            flusher: FlusherSignal::default(),
        };
        shared.check_format()?;
        shared.load()?;
        let chats = shared.all_chats();
        tracing::info!(
            path = %shared.path.display(),
            chats = chats.len(),
            blocks = chats.iter().map(|c| lock(c).blocks.len()).sum::<usize>(),
            messages = shared.totals.messages.load(Ordering::Relaxed),
            sled_millis = sled_opened.as_secs_f64() * 1e3,
            total_millis = started.elapsed().as_secs_f64() * 1e3,
            "store opened"
        );
        Ok(shared)
    }

    fn check_format(&self) -> Result<()> {
        let key = keys::meta_key("format");
        match self.db.get(&key).map_err(|e| self.io(e))? {
            Some(v) if v.as_ref() == [codec::FORMAT_VERSION] => Ok(()),
            Some(v) => Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: format!(
                    "store format {:?} is not {} (the one this build writes); use the chatkeeper \
                     release that wrote it, or restore a backup",
                    v.as_ref(),
                    codec::FORMAT_VERSION
                ),
            }),
            None if self.db.is_empty() => {
                self.db
                    .insert(key, &[codec::FORMAT_VERSION])
                    .map_err(|e| self.io(e))?;
                Ok(())
            }
            None => Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: "it has data but no format marker: it is not a chatkeeper store".into(),
            }),
        }
    }

    /// Reads everything kept in memory: dictionaries, directory, checkpoints, tails, users,
    /// chat infos and pending postings. Sealed blocks themselves are not read.
    fn load(&self) -> Result<()> {
        let mut max_seq = 0u64;
        for item in self.db.scan_prefix(keys::meta_key("dict/")) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let id = std::str::from_utf8(&k[6..])
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .ok_or_else(|| self.corrupt_msg("a dictionary key is malformed"))?;
            let raw: Vec<u8> = codec::decode(&v).map_err(|e| self.corrupt("dictionary", e))?;
            self.compressor
                .add_dictionary(id, raw)
                .map_err(|e| self.corrupt("dictionary", e))?;
        }
        let mut states: HashMap<ChatId, ChatState> = HashMap::new();
        for item in self.db.scan_prefix([keys::DIRECTORY]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let (chat, first) = keys::parse_block_key(&k)
                .ok_or_else(|| self.corrupt_msg("a directory key is malformed"))?;
            let meta: BlockMeta =
                codec::decode(&v).map_err(|e| self.corrupt("directory entry", e))?;
            if meta.first != first {
                return Err(self.corrupt_msg(format!(
                    "directory entry of chat {chat} disagrees with its key"
                )));
            }
            max_seq = max_seq.max(meta.seq);
            let state = states.entry(chat).or_insert_with(|| ChatState::new(chat));
            state.max_id = state.max_id.max(meta.max_id);
            state.blocks.push(meta);
        }
        for item in self.db.scan_prefix([keys::CHECKPOINT]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let chat = keys::parse_chat(&k)
                .ok_or_else(|| self.corrupt_msg("a checkpoint key is malformed"))?;
            let checkpoint: counters::Checkpoint =
                codec::decode(&v).map_err(|e| self.corrupt("checkpoint", e))?;
            let covered = checkpoint.covered_seq;
            let counters = counters::Counters::from_checkpoint(checkpoint).ok_or_else(|| {
                self.corrupt_msg(format!("checkpoint of chat {chat} is malformed"))
            })?;
            let state = states.entry(chat).or_insert_with(|| ChatState::new(chat));
            state.counters = counters;
            state.checkpoint_seq = covered;
        }
        let mut segments: HashMap<ChatId, Vec<(u64, Vec<MessageRef>)>> = HashMap::new();
        for item in self.db.scan_prefix([keys::TAIL]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let (chat, seq) = keys::parse_tail_key(&k)
                .ok_or_else(|| self.corrupt_msg("a tail key is malformed"))?;
            max_seq = max_seq.max(seq);
            let records = codec::BlockView::parse_for(&v, chat)
                .and_then(|view| view.all(&self.compressor))
                .map_err(|e| self.corrupt(format!("tail segment {seq} of chat {chat}"), e))?;
            segments.entry(chat).or_default().push((seq, records));
        }
        for (chat, mut list) in segments {
            list.sort_by_key(|(seq, _)| *seq);
            let state = states.entry(chat).or_insert_with(|| ChatState::new(chat));
            state.blocks.sort_by_key(|b| b.first);
            state.segments = list
                .iter()
                .filter_map(|(seq, records)| {
                    Some((*seq, records.iter().map(|m| codec::key_of(m)).max()?))
                })
                .collect();
            state.tail = chat::replay_tail(list.into_iter().map(|(_, r)| r), state.sealed_end());
            state.max_id = state
                .tail
                .iter()
                .map(|m| m.message_id)
                .fold(state.max_id, i32::max);
        }
        for item in self.db.scan_prefix([keys::CHAT_INFO]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let chat =
                keys::parse_chat(&k).ok_or_else(|| self.corrupt_msg("a chat key is malformed"))?;
            let info = codec::decode(&v).map_err(|e| self.corrupt("chat info", e))?;
            states
                .entry(chat)
                .or_insert_with(|| ChatState::new(chat))
                .info = Some(info);
        }
        for item in self.db.scan_prefix([keys::USER_INFO]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let user =
                keys::parse_chat(&k).ok_or_else(|| self.corrupt_msg("a user key is malformed"))?;
            let info: UserInfo = codec::decode(&v).map_err(|e| self.corrupt("user info", e))?;
            self.user_shard(user).insert(
                user,
                UserEntry {
                    messages: 0,
                    name: info.display_name.into(),
                },
            );
        }
        {
            let mut pending = lock(&self.postings.pending);
            for item in self.db.scan_prefix([keys::PENDING_POSTINGS]) {
                let (k, v) = item.map_err(|e| self.io(e))?;
                let seq = u64::from_be_bytes(
                    k.get(1..9)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| self.corrupt_msg("a pending postings key is malformed"))?,
                );
                let refs = codec::decode(&v).map_err(|e| self.corrupt("pending postings", e))?;
                pending.add_block(seq, &refs);
            }
        }
        // Summed here, then one update per user rather than one per user and chat.
        let mut user_totals: HashMap<UserId, u64> = HashMap::new();
        for (chat, mut state) in states {
            state.blocks.sort_by_key(|b| b.first);
            // Blocks sealed after the checkpoint was written are counted now.
            let unchecked: Vec<BlockMeta> = state
                .blocks
                .iter()
                .filter(|b| b.seq > state.checkpoint_seq)
                .cloned()
                .collect();
            for meta in &unchecked {
                for m in self.read_block(chat, meta)? {
                    state.counters.add(&m);
                }
            }
            state.unchecked_seals = unchecked.len();
            let tail = state.tail.clone();
            for m in &tail {
                state.counters.add(m);
                if let Some(user) = m.user_id {
                    self.postings.add_unsealed(user, posting_of(m));
                }
            }
            state.top.decreased();
            let stored = state.counters.total + state.counters.service;
            self.totals
                .messages
                .fetch_add(state.counters.total, Ordering::Relaxed);
            self.totals
                .service
                .fetch_add(state.counters.service, Ordering::Relaxed);
            if stored > 0 {
                self.totals.chats.fetch_add(1, Ordering::Relaxed);
            }
            for (user, n) in state.counters.users.iter() {
                *user_totals.entry(user).or_insert(0) += n;
            }
            self.chat_shard_mut(chat)
                .insert(chat, Arc::new(Mutex::new(state)));
        }
        for (user, n) in user_totals {
            self.user_count_changed(user, None, n as i64);
        }
        self.next_seq.store(max_seq + 1, Ordering::SeqCst);
        Ok(())
    }

    /// The group-commit thread: syncs every `interval`, and seals in between when a writer says a
    /// tail is long, so that writers never wait for compression.
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
            }
            state = lock(&self.flusher.state);
        }
    }

    /// Asks the group-commit thread to seal now.
    fn wake_flusher(&self) {
        lock(&self.flusher.state).seal_now = true;
        self.flusher.wake.notify_one();
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

    fn user_shard(&self, user: UserId) -> MutexGuard<'_, HashMap<UserId, UserEntry>> {
        lock(&self.users[shard_of(user, USER_SHARDS)])
    }

    /// Applies a change of `delta` messages to a user's store-wide count; `name` updates their
    /// last seen name (written to the users family when it changes).
    fn user_count_changed(&self, user: UserId, name: Option<&str>, delta: i64) {
        let mut shard = self.user_shard(user);
        let entry = shard.entry(user).or_insert_with(|| UserEntry {
            messages: 0,
            name: Arc::from(""),
        });
        let before = entry.messages;
        entry.messages = entry.messages.saturating_add_signed(delta);
        if before == 0 && entry.messages > 0 {
            self.totals.users.fetch_add(1, Ordering::Relaxed);
        } else if before > 0 && entry.messages == 0 {
            self.totals.users.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(name) = name {
            if !name.is_empty() && *entry.name != *name {
                entry.name = Arc::from(name);
                // Written by the next group commit: writers never wait for sled.
                drop(shard);
                lock(&self.renamed).push(user);
            }
        }
    }

    /// Stages the user records of users whose name changed since the last commit.
    fn stage_renamed(&self, batch: &mut sled::Batch) {
        let renamed = std::mem::take(&mut *lock(&self.renamed));
        for user in renamed {
            let Some(name) = self.user_shard(user).get(&user).map(|e| e.name.to_string()) else {
                continue;
            };
            let info = UserInfo {
                display_name: name,
                username: self.stored_user(user).and_then(|u| u.username),
            };
            batch.insert(
                &keys::user_prefix(keys::USER_INFO, user),
                codec::encode(&info),
            );
        }
    }

    fn stored_user(&self, user: UserId) -> Option<UserInfo> {
        let bytes = self
            .db
            .get(keys::user_prefix(keys::USER_INFO, user))
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
        .segment_size(SEGMENT_BYTES);
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

/// sled's log segment size: a trade between disk and write speed. Values over a quarter of it are
/// written once as blob files instead of being copied with every rewrite of their leaf, but its IO
/// buffers are segment-sized, so small segments stall writers. Measured at 1M messages (live
/// msg/s, disk bytes/msg): 32 KiB 77k / 125, 64 KiB 281k / 162, 128 KiB 217k / 209, 512 KiB
/// (sled's default) 353k / 255. Fixed for the life of a store: sled records it.
const SEGMENT_BYTES: usize = 64 << 10;

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
