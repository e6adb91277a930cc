//! The offline engine: word-level Markov chains trained on each chat's own history.
//!
//! It needs no key and no network, so the bot can talk from the first day and keeps talking when
//! a language model is down. A chat's model is built from its last `history` messages (order 2,
//! falling back to order 1), in both directions so that a reply can grow left and right from a
//! word of the message it answers. Models live in a small LRU and are rebuilt once the chat has
//! `rebuild_after` new messages; the LRU is bounded by count and by bytes, because a chat of long
//! messages makes a larger model.

use super::config::OfflineConfig;
use super::engine::{EngineError, ReplyEngine, MIN_MESSAGES};
use super::prompt::{Prompt, Tone};
use crate::store::{ChatId, MessageKind, MessageRef, Store};
use crate::tokens::{fold, tokens, Kind, CLAUSE_MARKS, SENTENCE_ENDS};
use futures::future::BoxFuture;
use lru::LruCache;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Shortest reply worth sending, in words (shorter ones are used only when nothing else comes).
const MIN_WORDS: usize = 3;
/// Longest reply, in words: a chat message, not a speech.
const MAX_WORDS: usize = 30;
/// Tokens one walk may take in one direction, so that a loop in the chain cannot run on.
const MAX_STEPS: usize = 40;
/// Walks tried per reply to find one of the right length that is not a stored sentence.
const ATTEMPTS: usize = 24;
/// Chance to continue by the last word alone where the last two words allow only one
/// continuation: without it, a walk that enters a rare phrase copies its sentence to the end.
const BRANCH_CHANCE: f64 = 0.3;
/// Candidate seed words considered, rarest first: rare words carry the topic, common ones
/// (`і`, `the`) do not.
const SEED_CANDIDATES: usize = 3;
/// Token id marking a sentence's start and end.
const BOUNDARY: u32 = 0;

/// Offline reply engine: one Markov model per chat, built on demand from the store.
pub struct MarkovEngine {
    store: Store,
    history: usize,
    rebuild_after: u64,
    /// Shared with the model builds running off the async runtime.
    models: Arc<Mutex<Models>>,
    /// Seeds each reply's own generator, so that a seeded engine is reproducible.
    rng: Mutex<SmallRng>,
}

impl MarkovEngine {
    /// An engine reading chat histories from `store`, with a random generator seeded by the OS.
    pub fn new(store: Store, config: &OfflineConfig) -> Self {
        Self::with_rng(store, config, SmallRng::from_os_rng())
    }

    /// An engine whose choices repeat for the same seed and the same calls (for tests).
    pub fn with_seed(store: Store, config: &OfflineConfig, seed: u64) -> Self {
        Self::with_rng(store, config, SmallRng::seed_from_u64(seed))
    }

    fn with_rng(store: Store, config: &OfflineConfig, rng: SmallRng) -> Self {
        MarkovEngine {
            store,
            history: config.history.max(1),
            rebuild_after: config.rebuild_after.max(1),
            models: Arc::new(Mutex::new(Models {
                lru: LruCache::new(
                    NonZeroUsize::new(config.max_chats).unwrap_or(NonZeroUsize::MIN),
                ),
                bytes: 0,
                budget: usize::try_from(config.max_memory_mb.saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
            })),
            rng: Mutex::new(rng),
        }
    }

    /// A message for `chat` in its members' words, grown from a word of `replying_to` when the
    /// model knows one. [`EngineError::NothingToSay`] when the chat has too little text to learn
    /// from: the caller should stay silent.
    pub async fn generate(
        &self,
        chat: ChatId,
        replying_to: Option<&str>,
    ) -> Result<String, EngineError> {
        let chain = self.model(chat).await?;
        if chain.usable < MIN_MESSAGES {
            return Err(EngineError::NothingToSay);
        }
        let mut rng = SmallRng::from_rng(&mut *lock(&self.rng));
        chain
            .reply(replying_to, &mut rng)
            .ok_or(EngineError::NothingToSay)
    }

    /// Drops the least recently used models beyond `keep` (memory pressure, maintenance) and
    /// returns how many were dropped; they are rebuilt when their chat is next answered.
    pub fn trim(&self, keep: usize) -> usize {
        let mut models = lock(&self.models);
        let mut dropped = 0;
        while models.lru.len() > keep && models.pop_lru() {
            dropped += 1;
        }
        dropped
    }

    /// Models in memory, for metrics.
    pub fn models(&self) -> usize {
        lock(&self.models).lru.len()
    }

    /// Memory of the models in memory, for metrics.
    pub fn model_bytes(&self) -> usize {
        lock(&self.models).bytes
    }

    /// Drops a chat's model so that the next reply relearns it: call after deleting messages (a
    /// user's data removal) so that their words leave the model at once.
    pub fn forget(&self, chat: ChatId) -> bool {
        lock(&self.models).remove(chat)
    }

    /// The chat's model: the cached one while fresh, else rebuilt from the store off the async
    /// threads.
    async fn model(&self, chat: ChatId) -> Result<Arc<Chain>, EngineError> {
        // The count and the build read the store: both off the async runtime, in one step.
        let store = self.store.clone();
        let models = self.models.clone();
        let (history, rebuild_after) = (self.history, self.rebuild_after);
        crate::store::blocking(move || {
            let total = store
                .chat_stats(chat)
                .map(|stats| stats.total_messages)
                .ok_or(EngineError::NothingToSay)?;
            let cached = lock(&models).lru.get(&chat).cloned();
            if let Some(chain) = cached.filter(|c| !c.is_stale(total, rebuild_after)) {
                return Ok(chain);
            }
            // Two replies racing here may both rebuild; the second build simply replaces the
            // first, which is cheaper than making every reply of the chat wait on a per-chat
            // lock.
            let messages = store
                .recent(chat, history)
                .map_err(|e| EngineError::Store(e.to_string()))?;
            let chain = Arc::new(Chain::build(&messages, total));
            lock(&models).insert(chat, chain.clone());
            Ok(chain)
        })
        .await
        .map_err(|e| EngineError::Store(format!("the model build stopped: {e}")))?
    }
}

impl ReplyEngine for MarkovEngine {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn reply<'a>(&'a self, prompt: &'a Prompt) -> BoxFuture<'a, Result<String, EngineError>> {
        // Recombined chat lines are a joke at best: not for a tense thread.
        if prompt.tone == Tone::Calm {
            return Box::pin(async { Err(EngineError::NothingToSay) });
        }
        Box::pin(self.generate(
            prompt.chat_id,
            prompt.replying_to.as_ref().map(|m| m.text.as_str()),
        ))
    }
}

/// Locks a mutex of this engine. A panic elsewhere cannot leave the cache or the generator
/// inconsistent in a way that matters (at worst a model is rebuilt), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The models in memory: an LRU of at most `max_chats` whose models together stay within
/// `budget` bytes (the newest model is kept whatever its size: it is about to be used).
struct Models {
    lru: LruCache<ChatId, Arc<Chain>>,
    bytes: usize,
    budget: usize,
}

impl Models {
    fn insert(&mut self, chat: ChatId, chain: Arc<Chain>) {
        self.bytes += chain.heap_bytes();
        if let Some((_, out)) = self.lru.push(chat, chain) {
            self.bytes -= out.heap_bytes();
        }
        while self.bytes > self.budget && self.lru.len() > 1 && self.pop_lru() {}
    }

    /// Drops the least recently used model; false when there is none.
    fn pop_lru(&mut self) -> bool {
        let Some((_, out)) = self.lru.pop_lru() else {
            return false;
        };
        self.bytes -= out.heap_bytes();
        true
    }

    /// Drops `chat`'s model; false when there is none.
    fn remove(&mut self, chat: ChatId) -> bool {
        let Some(out) = self.lru.pop(&chat) else {
            return false;
        };
        self.bytes -= out.heap_bytes();
        true
    }
}

/// One chat's trained model.
struct Chain {
    /// The chat's `total_messages` when built: the model is rebuilt once it grew enough.
    built_at: u64,
    /// Messages the model learned from.
    usable: usize,
    /// Token texts one after another; token `id` ends at `token_ends[id]`. One string rather
    /// than a string per token: thousands of small allocations cost more than their text.
    token_text: String,
    /// Where each token's text ends in `token_text`; id 0 is [`BOUNDARY`] (empty).
    token_ends: Vec<u32>,
    /// Occurrences by token id, to prefer rare seed words.
    counts: Vec<u32>,
    /// `(hash of a normalised word, the id of its most frequent spelling)`, sorted: finds seed
    /// words. A hash collision between two words costs at most another seed word.
    by_norm: Vec<(u64, u32)>,
    /// Every three consecutive tokens (with two boundaries before and after each sentence).
    triples: Grams<3>,
    /// Every two consecutive tokens (one boundary before and after): the fallback when two
    /// tokens of state are too specific.
    doubles: Grams<2>,
    /// Hashes of every trained sentence, sorted, to avoid answering with a verbatim copy.
    seen: Vec<u64>,
}

/// Which way a walk reads the text: forwards grows a reply to the right, backwards to the left.
#[derive(Clone, Copy)]
enum Reading {
    Forward,
    Backward,
}

/// The distinct `N`-grams of the training text with their counts, stored once and ordered both
/// ways. Read in either direction, the first `N - 1` tokens of a gram are a state and the last
/// one its follower; a state's followers are a run of consecutive entries, found by halving.
/// The backward order is a permutation of the forward one rather than a second copy of the grams
/// (a model of 1,000 messages holds tens of thousands of them, most seen once).
struct Grams<const N: usize> {
    /// Distinct grams, ascending by their token ids.
    grams: Vec<[u32; N]>,
    /// Per gram: the cumulative count of its state's followers up to and including it.
    forward: Vec<u32>,
    /// `(index into grams, cumulative count)`, ascending by the gram read backwards.
    backward: Vec<(u32, u32)>,
}

impl<const N: usize> Grams<N> {
    /// Counts and orders `all` (every occurrence, in any order).
    fn build(mut all: Vec<[u32; N]>) -> Self {
        all.sort_unstable();
        let mut grams = Vec::new();
        let mut counts = Vec::new();
        for same in all.chunk_by(|a, b| a == b) {
            grams.push(same[0]);
            counts.push(same.len() as u32);
        }
        drop(all);
        grams.shrink_to_fit();
        let forward = cumulative(grams.iter().copied().zip(counts.iter().copied()));
        let mut order: Vec<u32> = (0..grams.len() as u32).collect();
        order.sort_unstable_by_key(|&i| read(grams[i as usize], Reading::Backward));
        let backward_cumulative = cumulative(order.iter().map(|&i| {
            (
                read(grams[i as usize], Reading::Backward),
                counts[i as usize],
            )
        }));
        let backward = order.into_iter().zip(backward_cumulative).collect();
        Grams {
            grams,
            forward,
            backward,
        }
    }

    fn len(&self) -> usize {
        self.grams.len()
    }

    /// Entry `i` of the `reading` order: the gram read that way and its cumulative count.
    fn entry(&self, reading: Reading, i: usize) -> ([u32; N], u32) {
        match reading {
            Reading::Forward => (self.grams[i], self.forward[i]),
            Reading::Backward => {
                let (gram, cumulative) = self.backward[i];
                (read(self.grams[gram as usize], reading), cumulative)
            }
        }
    }

    /// The entries of `reading` whose state is `state` (`N - 1` tokens in reading order).
    fn followers(&self, reading: Reading, state: &[u32]) -> std::ops::Range<usize> {
        let start = first(0, self.len(), |i| {
            self.entry(reading, i).0[..N - 1] >= *state
        });
        let end = first(start, self.len(), |i| {
            self.entry(reading, i).0[..N - 1] > *state
        });
        start..end
    }

    /// A follower from `run` (a result of [`Grams::followers`]), drawn by how often it followed.
    fn pick(
        &self,
        reading: Reading,
        run: std::ops::Range<usize>,
        rng: &mut SmallRng,
    ) -> Option<u32> {
        let last = run.end.checked_sub(1).filter(|&last| last >= run.start)?;
        let roll = rng.random_range(0..self.entry(reading, last).1);
        let i = first(run.start, last, |i| self.entry(reading, i).1 > roll);
        Some(self.entry(reading, i).0[N - 1])
    }
}

/// `gram` as read in `reading`: as it is, or reversed.
fn read<const N: usize>(mut gram: [u32; N], reading: Reading) -> [u32; N] {
    if let Reading::Backward = reading {
        gram.reverse();
    }
    gram
}

/// Per `(gram, count)` in order: the running count within the gram's state (all but its last
/// token).
fn cumulative<const N: usize>(grams: impl Iterator<Item = ([u32; N], u32)>) -> Vec<u32> {
    let mut out = Vec::new();
    let mut state: Option<[u32; N]> = None;
    let mut total = 0;
    for (gram, count) in grams {
        if state.is_none_or(|s| s[..N - 1] != gram[..N - 1]) {
            total = 0;
            state = Some(gram);
        }
        total += count;
        out.push(total);
    }
    out.shrink_to_fit();
    out
}

/// The first index in `start..end` for which `above` holds (`end` if none), for a predicate that
/// is false and then true over the range: `partition_point` over indices rather than a slice,
/// since the backward order reads its grams through a permutation.
fn first(mut start: usize, mut end: usize, above: impl Fn(usize) -> bool) -> usize {
    while start < end {
        let middle = start + (end - start) / 2;
        if above(middle) {
            end = middle;
        } else {
            start = middle + 1;
        }
    }
    start
}

/// Walking one way through the model's grams.
impl Chain {
    /// The token after `a b` read in `reading`: by both when they allow a choice, sometimes by
    /// `b` alone when they allow only one.
    fn step(&self, reading: Reading, a: u32, b: u32, rng: &mut SmallRng) -> Option<u32> {
        let by_two = self.triples.followers(reading, &[a, b]);
        if by_two.len() > 1 || (by_two.len() == 1 && !rng.random_bool(BRANCH_CHANCE)) {
            return self.triples.pick(reading, by_two, rng);
        }
        let by_one = self.doubles.followers(reading, &[b]);
        self.doubles.pick(reading, by_one, rng)
    }

    /// Tokens after `a b` read in `reading`, up to a sentence boundary (at most [`MAX_STEPS`]).
    fn walk(&self, reading: Reading, mut a: u32, mut b: u32, rng: &mut SmallRng) -> Vec<u32> {
        let mut out = Vec::new();
        while out.len() < MAX_STEPS {
            match self.step(reading, a, b, rng) {
                Some(next) if next != BOUNDARY => {
                    out.push(next);
                    (a, b) = (b, next);
                }
                _ => break,
            }
        }
        out
    }
}

impl Chain {
    /// Learns from `messages`, skipping the bot's own, service messages, media without text and
    /// commands. `total` is the chat's message count at the time.
    fn build(messages: &[MessageRef], total: u64) -> Chain {
        let mut token_text = String::new();
        let mut token_ends = vec![0u32];
        let mut counts = vec![0u32];
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut triples = Vec::new();
        let mut doubles = Vec::new();
        let mut seen = Vec::new();
        let mut usable = 0;
        let mut sequence = Vec::new();
        for message in messages {
            if message.is_bot
                || message.kind == MessageKind::Service
                || message.text.trim().is_empty()
                || message.text.trim_start().starts_with('/')
            {
                continue;
            }
            usable += 1;
            for sentence in sentences(&message.text) {
                sequence.clear();
                sequence.extend([BOUNDARY, BOUNDARY]);
                for token in sentence {
                    let id = *ids.entry(token).or_insert_with_key(|token| {
                        token_text.push_str(token);
                        token_ends.push(token_text.len() as u32);
                        counts.push(0);
                        (token_ends.len() - 1) as u32
                    });
                    counts[id as usize] += 1;
                    sequence.push(id);
                }
                seen.push(sentence_hash(&sequence[2..]));
                sequence.extend([BOUNDARY, BOUNDARY]);
                // Padded alike at both ends, the sentence reads the same way backwards.
                triples.extend(sequence.windows(3).map(|w| [w[0], w[1], w[2]]));
                doubles.extend(
                    sequence[1..sequence.len() - 1]
                        .windows(2)
                        .map(|w| [w[0], w[1]]),
                );
            }
        }
        drop(ids);
        seen.sort_unstable();
        seen.dedup();
        seen.shrink_to_fit();
        token_text.shrink_to_fit();
        token_ends.shrink_to_fit();
        counts.shrink_to_fit();
        let mut chain = Chain {
            built_at: total,
            usable,
            token_text,
            token_ends,
            counts,
            by_norm: Vec::new(),
            triples: Grams::build(triples),
            doubles: Grams::build(doubles),
            seen,
        };
        // The most frequent spelling of each normalised word (the first seen among equals).
        let mut by_norm: Vec<(u64, u32)> = (1..chain.token_ends.len() as u32)
            .filter(|&id| !is_punctuation(chain.token(id)))
            .map(|id| (norm_hash(chain.token(id)), id))
            .collect();
        by_norm.sort_unstable_by_key(|&(hash, id)| {
            (hash, std::cmp::Reverse(chain.counts[id as usize]), id)
        });
        by_norm.dedup_by_key(|(hash, _)| *hash);
        by_norm.shrink_to_fit();
        chain.by_norm = by_norm;
        chain
    }

    /// The memory the model holds (its vectors' capacities), which the engine's budget counts.
    fn heap_bytes(&self) -> usize {
        fn of<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        fn grams<const N: usize>(g: &Grams<N>) -> usize {
            of(&g.grams) + of(&g.forward) + of(&g.backward)
        }
        self.token_text.capacity()
            + of(&self.token_ends)
            + of(&self.counts)
            + of(&self.by_norm)
            + of(&self.seen)
            + grams(&self.triples)
            + grams(&self.doubles)
    }

    /// The text of token `id`.
    fn token(&self, id: u32) -> &str {
        let id = id as usize;
        let start = if id == 0 { 0 } else { self.token_ends[id - 1] };
        &self.token_text[start as usize..self.token_ends[id] as usize]
    }

    /// The id of the most frequent spelling of `word`'s normalised form, if the model knows it.
    fn known(&self, word: &str) -> Option<u32> {
        let hash = norm_hash(word);
        let i = self.by_norm.binary_search_by_key(&hash, |e| e.0).ok()?;
        Some(self.by_norm[i].1)
    }

    /// Whether the chat changed enough since the build: `rebuild_after` new messages, any new
    /// message while the model was too small to talk, or fewer messages (deletions must leave the
    /// model too).
    fn is_stale(&self, total: u64, rebuild_after: u64) -> bool {
        total < self.built_at
            || total - self.built_at >= rebuild_after
            || (self.usable < MIN_MESSAGES && total > self.built_at)
    }

    /// A reply: the first walk of the right length that is not a stored sentence, else the best
    /// walk seen. `None` when the model has no words at all.
    fn reply(&self, replying_to: Option<&str>, rng: &mut SmallRng) -> Option<String> {
        let seed = replying_to.and_then(|text| self.seed(text, rng));
        let mut best: Option<(bool, usize, Vec<u32>)> = None;
        for _ in 0..ATTEMPTS {
            let walk = self.walk_from(seed, rng);
            let words = self.words_in(&walk);
            if words == 0 {
                continue;
            }
            let fits = words >= MIN_WORDS;
            if fits && self.seen.binary_search(&sentence_hash(&walk)).is_err() {
                return Some(self.render(&walk));
            }
            // Prefer the right length (even if verbatim), then more words.
            let better = best
                .as_ref()
                .is_none_or(|(best_fits, best_words, _)| (fits, words) > (*best_fits, *best_words));
            if better {
                best = Some((fits, words, walk));
            }
        }
        best.map(|(_, _, walk)| self.render(&walk))
    }

    /// A sentence through `seed` (grown backwards to a sentence start, then forwards to an end),
    /// or from a sentence start; cut to [`MAX_WORDS`].
    fn walk_from(&self, seed: Option<u32>, rng: &mut SmallRng) -> Vec<u32> {
        let Some(seed) = seed else {
            return self.cut(self.walk(Reading::Forward, BOUNDARY, BOUNDARY, rng));
        };
        let before = self
            .doubles
            .pick(
                Reading::Backward,
                self.doubles.followers(Reading::Backward, &[seed]),
                rng,
            )
            .unwrap_or(BOUNDARY);
        let mut walk = Vec::new();
        if before != BOUNDARY {
            walk = self.walk(Reading::Backward, seed, before, rng);
            walk.reverse();
            walk.push(before);
        }
        // Keep room for the part after the seed: the seed's own phrase is the point of the reply.
        let keep_before = MAX_WORDS / 2;
        if self.words_in(&walk) > keep_before {
            let mut words = 0;
            let start = walk
                .iter()
                .rposition(|&t| {
                    words += usize::from(!is_punctuation(self.token(t)));
                    words == keep_before
                })
                .unwrap_or(0);
            walk.drain(..start);
        }
        walk.push(seed);
        walk.extend(self.walk(Reading::Forward, before, seed, rng));
        self.cut(walk)
    }

    /// `walk` cut after its [`MAX_WORDS`]th word, without a dangling comma.
    fn cut(&self, mut walk: Vec<u32>) -> Vec<u32> {
        let mut words = 0;
        if let Some(end) = walk.iter().position(|&t| {
            words += usize::from(!is_punctuation(self.token(t)));
            words > MAX_WORDS
        }) {
            walk.truncate(end);
        }
        while walk.last().is_some_and(|&t| is_clause_mark(self.token(t))) {
            walk.pop();
        }
        // A walk cut short of a boundary may also start with a mark: drop it.
        while walk.first().is_some_and(|&t| is_punctuation(self.token(t))) {
            walk.remove(0);
        }
        walk
    }

    /// A word of `text` the model knows, rare ones first; `None` when it knows none.
    fn seed(&self, text: &str, rng: &mut SmallRng) -> Option<u32> {
        let mut known: Vec<(u32, u32)> = sentences(text)
            .into_iter()
            .flatten()
            .filter(|token| !is_punctuation(token))
            .filter_map(|token| self.known(&token))
            .map(|id| (self.counts[id as usize], id))
            .collect();
        known.sort_unstable();
        known.dedup();
        known.truncate(SEED_CANDIDATES);
        if known.is_empty() {
            return None;
        }
        // Weighted by 1/count, so a word seen once is picked far more often than a common one.
        let weights: Vec<f64> = known
            .iter()
            .map(|&(count, _)| 1.0 / f64::from(count))
            .collect();
        let mut roll = rng.random_range(0.0..weights.iter().sum::<f64>());
        for (&(_, id), weight) in known.iter().zip(&weights) {
            if roll < *weight {
                return Some(id);
            }
            roll -= weight;
        }
        known.last().map(|&(_, id)| id)
    }

    fn words_in(&self, walk: &[u32]) -> usize {
        walk.iter()
            .filter(|&&t| !is_punctuation(self.token(t)))
            .count()
    }

    /// Tokens as text: words spaced, punctuation attached to the word before.
    fn render(&self, walk: &[u32]) -> String {
        let mut text = String::new();
        for &id in walk {
            let token = self.token(id);
            if !text.is_empty() && !is_punctuation(token) {
                text.push(' ');
            }
            text.push_str(token);
        }
        text
    }
}

/// The hash `by_norm` is keyed by: of the word's normalised form.
fn norm_hash(word: &str) -> u64 {
    stable_hash(fold(word))
}

/// A hash of a token sequence, to recognise trained sentences.
fn sentence_hash(tokens: &[u32]) -> u64 {
    stable_hash(tokens)
}

/// A hash that is the same in every run (std's hasher with its fixed keys), so that a seeded
/// engine repeats itself.
fn stable_hash(value: impl Hash) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(value)
}

/// `text` as sentences of tokens: words (letters, digits, inner apostrophes and hyphens, `3.5`),
/// emoji runs, and punctuation marks. Links, mentions and e-mail addresses are left out: a reply
/// must not ping people or spread links. Other symbols (quotes, brackets) separate words.
fn sentences(text: &str) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for chunk in text.split_whitespace() {
        if is_link_or_mention(chunk) {
            continue;
        }
        for token in tokens(chunk) {
            let text = match token.kind {
                Kind::Symbol => continue,
                // `,,,` is one comma.
                Kind::ClauseMark => {
                    let first = token.text.chars().next().map_or(0, char::len_utf8);
                    &token.text[..first]
                }
                Kind::Word | Kind::Emoji | Kind::SentenceEnd => token.text,
            };
            let mark = matches!(token.kind, Kind::SentenceEnd | Kind::ClauseMark);
            if mark && current.is_empty() {
                continue;
            }
            current.push(text.to_owned());
            if token.kind == Kind::SentenceEnd {
                all.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        all.push(current);
    }
    all
}

/// Whether a whitespace-separated chunk is a link, a mention or an address.
fn is_link_or_mention(chunk: &str) -> bool {
    if chunk.contains('@') || chunk.contains("://") || chunk.starts_with("www.") {
        return true;
    }
    // `t.me/name`, `example.com/page`: a dotted ASCII host before the first slash.
    chunk.split_once('/').is_some_and(|(host, _)| {
        host.contains('.')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    })
}

/// Whether a token is a punctuation mark rather than a word.
fn is_punctuation(token: &str) -> bool {
    token.starts_with(SENTENCE_ENDS) || token.starts_with(CLAUSE_MARKS)
}

/// Whether a token is a mark that cannot end a reply.
fn is_clause_mark(token: &str) -> bool {
    token.starts_with(CLAUSE_MARKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(text: &str) -> Vec<String> {
        sentences(text).into_iter().flatten().collect()
    }

    #[test]
    fn keeps_ukrainian_words_with_apostrophes_and_hyphens() {
        assert_eq!(
            flat("Пʼять м'ясних з’їв, будь-ласка!"),
            ["Пʼять", "м'ясних", "з’їв", ",", "будь-ласка", "!"]
        );
        assert_eq!(flat("Ґанок і їжак є"), ["Ґанок", "і", "їжак", "є"]);
        // A quote mark is not an apostrophe: it separates.
        assert_eq!(flat("'так' -ні-"), ["так", "ні"]);
    }

    #[test]
    fn keeps_emoji_and_numbers_and_drops_links_and_mentions() {
        assert_eq!(
            flat("Ціна 3.5 грн 😂😂 👍🏻 @petro https://t.me/x t.me/chat ok@mail.com 🇺🇦"),
            ["Ціна", "3.5", "грн", "😂😂", "👍🏻", "🇺🇦"]
        );
        assert_eq!(flat("👨‍👩‍👧 родина"), ["👨‍👩‍👧", "родина"]);
    }

    #[test]
    fn splits_sentences_at_end_marks_and_drops_leading_marks() {
        assert_eq!(
            sentences("Привіт... Як справи?! , добре"),
            vec![
                vec!["Привіт", "..."],
                vec!["Як", "справи", "?!"],
                vec!["добре"]
            ]
        );
        assert_eq!(sentences("(так) так/ні"), vec![vec!["так", "так", "ні"]]);
    }

    #[test]
    fn normalizes_case_and_apostrophes() {
        assert_eq!(fold("М’ЯСО"), "м'ясо");
        assert_eq!(fold("пʼять"), fold("П'ять"));
        assert_eq!(fold("Hello"), "hello");
    }

    #[test]
    fn picks_followers_by_weight_in_both_readings() {
        let grams = Grams::build(vec![[7, 1], [7, 2], [7, 2], [7, 2], [9, 5], [3, 2]]);
        let run = grams.followers(Reading::Forward, &[7]);
        let followers: Vec<_> = run.map(|i| grams.entry(Reading::Forward, i)).collect();
        assert_eq!(followers, [([7, 1], 1), ([7, 2], 4)]);
        assert_eq!(grams.followers(Reading::Forward, &[8]).len(), 0);
        // Read backwards, 2 was preceded by 7 three times and by 3 once.
        let run = grams.followers(Reading::Backward, &[2]);
        let before: Vec<_> = run.map(|i| grams.entry(Reading::Backward, i)).collect();
        assert_eq!(before, [([2, 3], 1), ([2, 7], 4)]);
        assert_eq!(grams.followers(Reading::Backward, &[7]).len(), 0);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut rolls = |reading, state: u32| {
            (0..1000)
                .filter(|_| {
                    grams.pick(reading, grams.followers(reading, &[state]), &mut rng)
                        == Some(if state == 7 { 2 } else { 7 })
                })
                .count()
        };
        let twos = rolls(Reading::Forward, 7);
        assert!((650..850).contains(&twos), "{twos}");
        let sevens = rolls(Reading::Backward, 2);
        assert!((650..850).contains(&sevens), "{sevens}");
        assert_eq!(
            grams.pick(
                Reading::Forward,
                grams.followers(Reading::Forward, &[8]),
                &mut rng
            ),
            None
        );
    }

    #[test]
    fn a_model_of_a_thousand_messages_stays_small() {
        use crate::bench::workload::{Workload, WorkloadSpec};
        // The workload's messages are long (1-40 words, 20 on average): a heavy chat.
        let spec = WorkloadSpec {
            messages: 1000,
            chats: 1,
            ..WorkloadSpec::default()
        };
        let messages: Vec<MessageRef> = Workload::new(spec).map(Arc::new).collect();
        let chain = Chain::build(&messages, 1000);
        let bytes = chain.heap_bytes();
        // 946 KB (each distinct gram once, ordered both ways); the layout before, with a sorted
        // state table per reading and a string per token, took 1.9 MB.
        assert!(bytes < 1_050_000, "{bytes} bytes");
        let mut rng = SmallRng::seed_from_u64(42);
        for m in messages.iter().take(50) {
            assert!(chain.reply(Some(&m.text), &mut rng).is_some());
        }
    }
}
