//! Opening a store: the data directory, sled, the logs, converting an earlier format, loading
//! what memory keeps, and starting the group commit.

use super::blocklog::BlockLog;
use super::cache::ByteLru;
use super::codec::Compressor;
use super::config::{FlushPolicy, StoreConfig};
use super::error::{Result, StoreError};
use super::postings::Postings;
use super::profile_state::ProfileState;
use super::shared::{
    lock, FlusherGuard, FlusherSignal, Shared, Store, StoreMetrics, Totals, CHAT_SHARDS,
    RUN_CACHE_BYTES, USER_SHARDS,
};
use super::{layout, migrate};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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
                migrate::from_format_4(&shared)?;
            }
            Some(migrate::FORMAT_2) => {
                migrate::from_format_2(&shared)?;
                migrate::from_format_3(&shared)?;
                migrate::from_format_4(&shared)?;
            }
            Some(migrate::FORMAT_3) => {
                migrate::from_format_3(&shared)?;
                migrate::from_format_4(&shared)?;
            }
            Some(migrate::FORMAT_4) => migrate::from_format_4(&shared)?,
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
