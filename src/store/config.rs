//! How a store is opened: where, how much memory, how often it commits.

use std::path::PathBuf;
use std::time::Duration;

/// When buffered writes reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// A background group commit at most this long after a write, plus every explicit
    /// [`crate::store::Store::flush`] and the final one on close.
    Every(Duration),
    /// Only explicit flushes and close (for callers that flush per batch themselves).
    Manual,
}

/// Settings of [`crate::store::Store::open`].
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub flush: FlushPolicy,
    /// sled's page cache. Sealed blocks are compressed, so a small cache goes a long way.
    pub cache_bytes: u64,
    /// Decoded recent messages kept for context reads, across all chats.
    pub decoded_cache_bytes: usize,
    /// Size at which a block log segment is closed and a new one begun. Compaction works a
    /// segment at a time, so this bounds the work of reclaiming one segment's dead space.
    pub segment_bytes: u64,
}

impl StoreConfig {
    /// Defaults for a small VPS: 100 ms group commit, 4 MiB sled cache, 4 MiB of decoded messages,
    /// 16 MiB log segments.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StoreConfig {
            path: path.into(),
            flush: FlushPolicy::Every(Duration::from_millis(100)),
            cache_bytes: 4 << 20,
            decoded_cache_bytes: 4 << 20,
            segment_bytes: 16 << 20,
        }
    }
}
