//! A byte-bounded, sharded LRU: the store's caches of what it decoded from disk (frames of
//! blocks, runs of the block directory).
//!
//! Each cache is keyed so that an entry can never be stale (a block's frames by its seq, which a
//! rewrite changes) or is removed when what it caches changes (a directory run when it is
//! staged). Sharded so that readers of different chats do not contend.

use lru::LruCache;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 8;

struct Shard<K: Hash + Eq, V> {
    entries: LruCache<K, (V, usize)>,
    bytes: usize,
}

/// An LRU of values holding about a budget of bytes (as their inserter counts them).
pub struct ByteLru<K: Hash + Eq, V> {
    shards: Vec<Mutex<Shard<K, V>>>,
    shard_budget: usize,
    hasher: RandomState,
}

impl<K: Hash + Eq, V: Clone> ByteLru<K, V> {
    /// A cache holding about `budget` bytes.
    pub fn new(budget: usize) -> Self {
        ByteLru {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        entries: LruCache::unbounded(),
                        bytes: 0,
                    })
                })
                .collect(),
            shard_budget: budget / SHARDS,
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, Shard<K, V>> {
        let index = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        self.shards[index].lock().expect("cache lock")
    }

    /// The value under `key`, if cached.
    pub fn get(&self, key: &K) -> Option<V> {
        self.shard(key).entries.get(key).map(|(v, _)| v.clone())
    }

    /// Caches `value` of `size` bytes, evicting the least recently used beyond the budget.
    pub fn insert(&self, key: K, value: V, size: usize) {
        let mut shard = self.shard(&key);
        if let Some((_, old)) = shard.entries.put(key, (value, size)) {
            shard.bytes -= old;
        }
        shard.bytes += size;
        while shard.bytes > self.shard_budget {
            match shard.entries.pop_lru() {
                Some((_, (_, evicted))) => shard.bytes -= evicted,
                None => break,
            }
        }
    }

    /// Forgets the value under `key`.
    pub fn remove(&self, key: &K) {
        let mut shard = self.shard(key);
        if let Some((_, size)) = shard.entries.pop(key) {
            shard.bytes -= size;
        }
    }

    /// Empties the cache.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().expect("cache lock");
            shard.entries.clear();
            shard.bytes = 0;
        }
    }
}
