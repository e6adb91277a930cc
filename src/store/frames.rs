//! Decoded frames of sealed blocks, kept for context reads.
//!
//! Keyed by the block's seq, which changes whenever a block is rewritten, so an entry can never be
//! stale: rewritten blocks' frames simply age out. Bounded by an estimate of decoded bytes and
//! sharded so that readers of different chats do not contend.

use super::model::MessageRef;
use lru::LruCache;
use std::sync::{Arc, Mutex};

const SHARDS: usize = 8;

/// One decoded frame.
pub type Frame = Arc<Vec<MessageRef>>;

struct Shard {
    frames: LruCache<(u64, u32), (Frame, usize)>,
    bytes: usize,
}

/// A byte-bounded LRU of decoded frames.
pub struct FrameCache {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
}

impl FrameCache {
    /// A cache holding about `budget` bytes of decoded messages.
    pub fn new(budget: usize) -> Self {
        FrameCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        frames: LruCache::unbounded(),
                        bytes: 0,
                    })
                })
                .collect(),
            shard_budget: budget / SHARDS,
        }
    }

    fn shard(&self, seq: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[(seq % SHARDS as u64) as usize]
            .lock()
            .expect("frame cache lock")
    }

    /// The decoded frame `index` of block `seq`, if cached.
    pub fn get(&self, seq: u64, index: u32) -> Option<Frame> {
        self.shard(seq)
            .frames
            .get(&(seq, index))
            .map(|(f, _)| f.clone())
    }

    /// Caches a decoded frame, evicting the least recently used beyond the budget.
    pub fn insert(&self, seq: u64, index: u32, frame: Frame) {
        let size = frame
            .iter()
            .map(|m| 160 + m.text.len() + m.sender_name.len())
            .sum::<usize>();
        let mut shard = self.shard(seq);
        if let Some((_, old)) = shard.frames.put((seq, index), (frame, size)) {
            shard.bytes -= old;
        }
        shard.bytes += size;
        while shard.bytes > self.shard_budget {
            match shard.frames.pop_lru() {
                Some((_, (_, evicted))) => shard.bytes -= evicted,
                None => break,
            }
        }
    }

    /// Empties the cache.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().expect("frame cache lock");
            shard.frames.clear();
            shard.bytes = 0;
        }
    }
}
