//! The in-memory side of stored profiles (`profiles.rs` has what they do): the lock that
//! serializes chunk changes, the chunk cache, and what deletions still owe the disk.

use super::blocklog::Location;
use super::model::{ChatId, UserId};
use lru::LruCache;
use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Sled records of profiles after which a settle is due.
pub(super) const SETTLE_AFTER: u64 = 1_024;
/// Decoded chunks kept in memory: an import or a chat's live traffic reads the same few again.
const CACHED_CHUNKS: usize = 64;

/// One user's profile as the settings API stored it (the codec's bytes, opaque here).
pub(super) type Entry = (UserId, Vec<u8>);

/// The in-memory side of profile storage.
pub(super) struct ProfileState {
    /// Serializes every change of chunk pointers.
    pub(super) lock: Mutex<()>,
    /// Decoded chunks by where they are; a location never holds other bytes.
    pub(super) cache: Mutex<LruCache<Location, Arc<Vec<Entry>>>>,
    /// Profile records in sled not yet settled (an estimate: it triggers a settle).
    pub(super) unsettled: AtomicU64,
    /// Deleted profiles whose bytes are still to be erased from the log.
    pub(super) erase: Mutex<EraseQueue>,
    /// Where the group commit's next settle step starts (after the last record it looked at),
    /// so that records it cannot settle do not hold back those after them.
    pub(super) settle_cursor: Mutex<Option<sled::IVec>>,
}

/// What deletions still owe the disk. The index marker `M erase-profiles`, written in each
/// deletion's own batch, says the same across a restart; it is removed, under this lock, only
/// when nothing is queued or in flight.
#[derive(Default)]
pub(super) struct EraseQueue {
    pub(super) chats: HashSet<ChatId>,
    /// Deletions between their batch and their queueing.
    pub(super) in_flight: usize,
}

impl Default for ProfileState {
    fn default() -> Self {
        ProfileState {
            lock: Mutex::new(()),
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHED_CHUNKS).expect("non-zero"),
            )),
            // An open does not count them: the first commit looks.
            unsettled: AtomicU64::new(SETTLE_AFTER),
            erase: Mutex::default(),
            settle_cursor: Mutex::default(),
        }
    }
}
