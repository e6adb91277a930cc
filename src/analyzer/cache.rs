//! Analyses kept for reuse: a sharded, bounded in-memory LRU, so that a text analysed again soon
//! (`/words` over a chat's recent history, the trends' rebuild) is analysed once. Hits and misses
//! are counted for `/metrics`.
//!
//! Nothing is kept on disk: an analysis takes ~3.4 µs, less than reading it back from the store
//! and writing it there in the first place cost (earlier builds did, under `A` keys).

use super::analysis::Analysis;
use super::engine::Analyzer;
use lru::LruCache;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

const SHARDS: usize = 16;

/// Where lookups were answered from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

/// The analyzer behind a bounded cache.
pub struct AnalysisCache {
    analyzer: Analyzer,
    shards: Vec<Mutex<LruCache<u64, Arc<Analysis>>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl AnalysisCache {
    /// Keeps up to `capacity` analyses.
    pub fn new(analyzer: Analyzer, capacity: usize) -> Self {
        let per_shard = NonZeroUsize::new(capacity.div_ceil(SHARDS).max(1)).expect("at least 1");
        AnalysisCache {
            analyzer,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The analysis of `text`: from the cache, else computed and kept.
    pub fn analyze(&self, text: &str) -> Arc<Analysis> {
        let key = text_key(text);
        let shard = &self.shards[(key % SHARDS as u64) as usize];
        if let Some(hit) = shard.lock().expect("analysis cache").get(&key) {
            self.hits.fetch_add(1, Relaxed);
            return hit.clone();
        }
        self.misses.fetch_add(1, Relaxed);
        // Computed outside the lock: a shard is shared by many texts.
        let analysis = Arc::new(self.analyzer.analyze(text));
        shard
            .lock()
            .expect("analysis cache")
            .put(key, analysis.clone());
        analysis
    }

    /// [`AnalysisCache::analyze`] of each text.
    pub fn analyze_all<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Vec<Arc<Analysis>> {
        texts.into_iter().map(|text| self.analyze(text)).collect()
    }

    /// The analyzer itself, for bulk work that should not fill the cache (rebuilds).
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Hit and miss counts and the entries in memory.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
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

    #[test]
    fn memory_is_bounded_and_evicts_the_least_recently_used() {
        let cache = AnalysisCache::new(Analyzer::default(), SHARDS);
        for i in 0..1000 {
            cache.analyze(&format!("повідомлення {i}"));
        }
        let stats = cache.stats();
        assert!(stats.entries <= SHARDS, "{stats:?}");
        assert_eq!((stats.misses, stats.hits), (1000, 0));
        cache.analyze("повідомлення 999");
        assert_eq!(cache.stats().hits, 1, "the newest entry stays");
        assert_eq!(
            *cache.analyze("Я дуже радий 😊"),
            Analyzer::default().analyze("Я дуже радий 😊")
        );
    }
}
