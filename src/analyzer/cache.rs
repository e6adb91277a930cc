//! Analyses kept for reuse: a sharded, bounded in-memory LRU in front of the store's persistent
//! cache tier (with a time to live), so that the same text is analysed once, also across
//! restarts. Hits and misses are counted for `/metrics`.

use super::{Analysis, Analyzer};
use crate::store::{Store, Timestamp};
use lru::LruCache;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

const SHARDS: usize = 16;
/// The store cache namespace of analyses.
/// (Changed whenever [`Analysis`] changes shape, so that older entries are never read.)
const NAMESPACE: u8 = b'b';

/// Where a lookup was answered from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub memory_hits: u64,
    pub store_hits: u64,
    pub misses: u64,
    pub entries: usize,
}

/// The analyzer behind its two cache tiers.
pub struct AnalysisCache {
    analyzer: Analyzer,
    store: Option<Store>,
    ttl_secs: i64,
    shards: Vec<Mutex<LruCache<u64, Arc<Analysis>>>>,
    memory_hits: AtomicU64,
    store_hits: AtomicU64,
    misses: AtomicU64,
}

impl AnalysisCache {
    /// Caches up to `capacity` analyses in memory, and in `store` (when given) for `ttl_secs`.
    pub fn new(analyzer: Analyzer, store: Option<Store>, capacity: usize, ttl_secs: i64) -> Self {
        let per_shard = NonZeroUsize::new(capacity.div_ceil(SHARDS).max(1)).expect("at least 1");
        AnalysisCache {
            analyzer,
            store,
            ttl_secs,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
            memory_hits: AtomicU64::new(0),
            store_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The analysis of `text`: from memory, else from the store (unless expired at `now`), else
    /// computed and kept in both. Store failures only cost the persistent tier, never the answer.
    pub fn analyze(&self, text: &str, now: Timestamp) -> Arc<Analysis> {
        self.analyze_all([text], now)
            .pop()
            .expect("one analysis per text")
    }

    /// [`AnalysisCache::analyze`] for many texts, writing the new analyses to the store in one
    /// batch (the bot's path: one batch of updates at a time).
    pub fn analyze_all<'a>(
        &self,
        texts: impl IntoIterator<Item = &'a str>,
        now: Timestamp,
    ) -> Vec<Arc<Analysis>> {
        let mut out = Vec::new();
        let mut computed: Vec<([u8; 8], Arc<Analysis>)> = Vec::new();
        for text in texts {
            let key = text_key(text);
            let shard = &self.shards[(key % SHARDS as u64) as usize];
            if let Some(hit) = shard.lock().expect("analysis cache").get(&key) {
                self.memory_hits.fetch_add(1, Relaxed);
                out.push(hit.clone());
                continue;
            }
            let stored = self.store.as_ref().and_then(|store| {
                store
                    .cache_get::<Analysis>(NAMESPACE, &key.to_be_bytes(), now)
                    .ok()
                    .flatten()
            });
            let analysis = match stored {
                Some(analysis) => {
                    self.store_hits.fetch_add(1, Relaxed);
                    Arc::new(analysis)
                }
                None => {
                    self.misses.fetch_add(1, Relaxed);
                    let analysis = Arc::new(self.analyzer.analyze(text));
                    computed.push((key.to_be_bytes(), analysis.clone()));
                    analysis
                }
            };
            shard
                .lock()
                .expect("analysis cache")
                .put(key, analysis.clone());
            out.push(analysis);
        }
        if let (Some(store), false) = (&self.store, computed.is_empty()) {
            let expires = now.saturating_add(self.ttl_secs);
            let entries = computed.iter().map(|(k, a)| (&k[..], a.as_ref()));
            if let Err(e) = store.cache_put_many(NAMESPACE, entries, expires) {
                tracing::warn!(error = %e, "could not keep analyses in the store");
            }
        }
        out
    }

    /// The analyzer itself, for bulk work that should not fill the caches (rebuilds).
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Hit and miss counts and the entries in memory.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Relaxed),
            store_hits: self.store_hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            entries: self
                .shards
                .iter()
                .map(|s| s.lock().expect("analysis cache").len())
                .sum(),
        }
    }
}

/// A 64-bit key of a text (the text itself would double the memory of short messages; at 64
/// bits a collision among a chat history's texts is not a practical concern).
fn text_key(text: &str) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    text.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;

    #[test]
    fn memory_is_bounded_and_evicts_the_least_recently_used() {
        let cache = AnalysisCache::new(Analyzer::default(), None, SHARDS, 60);
        for i in 0..1000 {
            cache.analyze(&format!("повідомлення {i}"), 0);
        }
        let stats = cache.stats();
        assert!(stats.entries <= SHARDS, "{stats:?}");
        assert_eq!((stats.misses, stats.memory_hits), (1000, 0));
        cache.analyze("повідомлення 999", 0);
        assert_eq!(cache.stats().memory_hits, 1, "the newest entry stays");
    }

    #[test]
    fn the_store_tier_survives_restarts_until_its_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let first = AnalysisCache::new(Analyzer::default(), Some(store.clone()), 100, 60);
        let analysis = first.analyze("Я дуже радий 😊", 1000);
        drop(first);
        // A new process: empty memory, the store still knows the text.
        let second = AnalysisCache::new(Analyzer::default(), Some(store.clone()), 100, 60);
        assert_eq!(*second.analyze("Я дуже радий 😊", 1030), *analysis);
        assert_eq!(second.stats().store_hits, 1);
        let third = AnalysisCache::new(Analyzer::default(), Some(store.clone()), 100, 60);
        third.analyze("Я дуже радий 😊", 1061);
        assert_eq!(third.stats().misses, 1, "expired after the ttl");
        assert_eq!(store.purge_expired_cache(2000).unwrap(), 1);
    }
}
