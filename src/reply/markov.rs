//! The offline engine: word-level Markov chains trained on each chat's own history.
//!
//! It needs no key and no network, so the bot can talk from the first day and keeps talking when
//! a language model is down. A chat's model is built from its last `history` messages (order 2,
//! falling back to order 1), in both directions so that a reply can grow left and right from a
//! word of the message it answers. Models live in a small LRU and are rebuilt once the chat has
//! `rebuild_after` new messages.

use super::config::OfflineConfig;
use super::{EngineError, Prompt, ReplyEngine, Tone};
use crate::store::{ChatId, MessageKind, MessageRef, Store};
use futures::future::BoxFuture;
use lru::LruCache;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Below this many usable messages a chain only parrots: the engine stays silent instead.
pub const MIN_MESSAGES: usize = 20;
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
    models: Mutex<LruCache<ChatId, Arc<Chain>>>,
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
            models: Mutex::new(LruCache::new(
                NonZeroUsize::new(config.max_chats).unwrap_or(NonZeroUsize::MIN),
            )),
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
        while models.len() > keep && models.pop_lru().is_some() {
            dropped += 1;
        }
        dropped
    }

    /// Models in memory, for metrics.
    pub fn models(&self) -> usize {
        lock(&self.models).len()
    }

    /// Drops a chat's model so that the next reply relearns it: call after deleting messages (a
    /// user's data removal) so that their words leave the model at once.
    pub fn forget(&self, chat: ChatId) -> bool {
        lock(&self.models).pop(&chat).is_some()
    }

    /// The chat's model: the cached one while fresh, else rebuilt from the store off the async
    /// threads.
    async fn model(&self, chat: ChatId) -> Result<Arc<Chain>, EngineError> {
        let total = self
            .store
            .chat_stats(chat)
            .map(|stats| stats.total_messages)
            .ok_or(EngineError::NothingToSay)?;
        let cached = lock(&self.models).get(&chat).cloned();
        if let Some(chain) = cached.filter(|c| !c.is_stale(total, self.rebuild_after)) {
            return Ok(chain);
        }
        // Two replies racing here may both rebuild; the second build simply replaces the first,
        // which is cheaper than making every reply of the chat wait on a per-chat lock.
        let store = self.store.clone();
        let history = self.history;
        let chain = tokio::task::spawn_blocking(move || {
            store
                .recent(chat, history)
                .map(|messages| Chain::build(&messages, total))
        })
        .await
        .map_err(|e| EngineError::Store(format!("the model build stopped: {e}")))?
        .map_err(|e| EngineError::Store(e.to_string()))?;
        let chain = Arc::new(chain);
        lock(&self.models).put(chat, chain.clone());
        Ok(chain)
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

/// One chat's trained model.
struct Chain {
    /// The chat's `total_messages` when built: the model is rebuilt once it grew enough.
    built_at: u64,
    /// Messages the model learned from.
    usable: usize,
    /// Token text by id; id 0 is [`BOUNDARY`].
    tokens: Vec<Box<str>>,
    /// Occurrences by token id, to prefer rare seed words.
    counts: Vec<u32>,
    /// Normalised word → the id of its most frequent spelling, to find seed words.
    by_norm: HashMap<Box<str>, u32>,
    forward: Direction,
    backward: Direction,
    /// Hashes of every trained sentence, to avoid answering with a verbatim copy.
    seen: HashSet<u64>,
}

/// The transitions of one reading direction.
struct Direction {
    /// Keyed by the last two tokens.
    pairs: Transitions,
    /// Keyed by the last token: the fallback when two tokens are too specific.
    singles: Transitions,
}

/// States and their weighted followers, packed flat: most states have one follower, and a map of
/// maps would take several times the memory. States are a sorted vector searched by halving:
/// a model has tens of thousands of them and a reply looks up a few hundred, so a hash map's
/// extra memory buys nothing.
struct Transitions {
    /// `(state, start, len)` by state: the state's run in `followers`.
    states: Vec<(u64, u32, u32)>,
    /// `(next token, cumulative count)` runs, one per state.
    followers: Vec<(u32, u32)>,
}

impl Transitions {
    /// Packs `(state, next)` observations.
    fn from_edges(mut edges: Vec<(u64, u32)>) -> Self {
        edges.sort_unstable();
        let mut states = Vec::new();
        let mut followers = Vec::new();
        for group in edges.chunk_by(|a, b| a.0 == b.0) {
            let start = followers.len();
            let mut cumulative = 0u32;
            for same in group.chunk_by(|a, b| a.1 == b.1) {
                cumulative += same.len() as u32;
                followers.push((same[0].1, cumulative));
            }
            states.push((group[0].0, start as u32, (followers.len() - start) as u32));
        }
        states.shrink_to_fit();
        followers.shrink_to_fit();
        Transitions { states, followers }
    }

    /// The followers of `state`, if it was ever seen.
    fn of(&self, state: u64) -> Option<&[(u32, u32)]> {
        let i = self.states.binary_search_by_key(&state, |s| s.0).ok()?;
        let (_, start, len) = self.states[i];
        Some(&self.followers[start as usize..(start + len) as usize])
    }

    /// A follower of `state`, drawn by how often it followed.
    fn pick(&self, state: u64, rng: &mut SmallRng) -> Option<u32> {
        let followers = self.of(state)?;
        let total = followers.last()?.1;
        let roll = rng.random_range(0..total);
        let index = followers.partition_point(|&(_, cumulative)| cumulative <= roll);
        Some(followers[index].0)
    }
}

/// The state key of two consecutive tokens.
fn pair(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

impl Direction {
    fn build(sequences: &[Vec<u32>]) -> Self {
        let mut pairs = Vec::new();
        let mut singles = Vec::new();
        for sequence in sequences {
            for window in sequence.windows(3) {
                pairs.push((pair(window[0], window[1]), window[2]));
                singles.push((u64::from(window[1]), window[2]));
            }
        }
        Direction {
            pairs: Transitions::from_edges(pairs),
            singles: Transitions::from_edges(singles),
        }
    }

    /// The token after `a b`: by both when they allow a choice, sometimes by `b` alone when they
    /// allow only one.
    fn step(&self, a: u32, b: u32, rng: &mut SmallRng) -> Option<u32> {
        match self.pairs.of(pair(a, b)) {
            Some(followers) if followers.len() > 1 || !rng.random_bool(BRANCH_CHANCE) => {
                self.pairs.pick(pair(a, b), rng)
            }
            _ => self.singles.pick(u64::from(b), rng),
        }
    }

    /// Tokens after `a b` up to a sentence boundary (at most [`MAX_STEPS`]).
    fn walk(&self, mut a: u32, mut b: u32, rng: &mut SmallRng) -> Vec<u32> {
        let mut out = Vec::new();
        while out.len() < MAX_STEPS {
            match self.step(a, b, rng) {
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
        let mut tokens: Vec<Box<str>> = vec!["".into()];
        let mut counts = vec![0u32];
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut forward = Vec::new();
        let mut seen = HashSet::new();
        let mut usable = 0;
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
                let mut sequence = vec![BOUNDARY, BOUNDARY];
                for token in sentence {
                    let id = *ids.entry(token).or_insert_with_key(|token| {
                        tokens.push(token.as_str().into());
                        counts.push(0);
                        (tokens.len() - 1) as u32
                    });
                    counts[id as usize] += 1;
                    sequence.push(id);
                }
                seen.insert(sentence_hash(&sequence[2..]));
                sequence.push(BOUNDARY);
                forward.push(sequence);
            }
        }
        let backward: Vec<Vec<u32>> = forward
            .iter()
            .map(|sequence| {
                let mut reversed = sequence.clone();
                reversed.reverse();
                // Reversed, the sequence ends with two boundaries and starts with one: move one.
                reversed.insert(0, BOUNDARY);
                reversed.pop();
                reversed
            })
            .collect();
        let mut by_norm: HashMap<Box<str>, u32> = HashMap::new();
        for (id, token) in tokens.iter().enumerate().skip(1) {
            if is_punctuation(token) {
                continue;
            }
            let slot = by_norm.entry(normalize(token).into()).or_insert(id as u32);
            if counts[id] > counts[*slot as usize] {
                *slot = id as u32;
            }
        }
        Chain {
            built_at: total,
            usable,
            tokens,
            counts,
            by_norm,
            forward: Direction::build(&forward),
            backward: Direction::build(&backward),
            seen,
        }
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
            if fits && !self.seen.contains(&sentence_hash(&walk)) {
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
            return self.cut(self.forward.walk(BOUNDARY, BOUNDARY, rng));
        };
        let before = self
            .backward
            .singles
            .pick(u64::from(seed), rng)
            .unwrap_or(BOUNDARY);
        let mut walk = Vec::new();
        if before != BOUNDARY {
            walk = self.backward.walk(seed, before, rng);
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
                    words += usize::from(!is_punctuation(&self.tokens[t as usize]));
                    words == keep_before
                })
                .unwrap_or(0);
            walk.drain(..start);
        }
        walk.push(seed);
        walk.extend(self.forward.walk(before, seed, rng));
        self.cut(walk)
    }

    /// `walk` cut after its [`MAX_WORDS`]th word, without a dangling comma.
    fn cut(&self, mut walk: Vec<u32>) -> Vec<u32> {
        let mut words = 0;
        if let Some(end) = walk.iter().position(|&t| {
            words += usize::from(!is_punctuation(&self.tokens[t as usize]));
            words > MAX_WORDS
        }) {
            walk.truncate(end);
        }
        while walk
            .last()
            .is_some_and(|&t| is_clause_mark(&self.tokens[t as usize]))
        {
            walk.pop();
        }
        // A walk cut short of a boundary may also start with a mark: drop it.
        while walk
            .first()
            .is_some_and(|&t| is_punctuation(&self.tokens[t as usize]))
        {
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
            .filter_map(|token| self.by_norm.get(normalize(&token).as_str()).copied())
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
            .filter(|&&t| !is_punctuation(&self.tokens[t as usize]))
            .count()
    }

    /// Tokens as text: words spaced, punctuation attached to the word before.
    fn render(&self, walk: &[u32]) -> String {
        let mut text = String::new();
        for &id in walk {
            let token = &self.tokens[id as usize];
            if !text.is_empty() && !is_punctuation(token) {
                text.push(' ');
            }
            text.push_str(token);
        }
        text
    }
}

/// A hash of a token sequence, to recognise trained sentences.
fn sentence_hash(tokens: &[u32]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    tokens.hash(&mut hasher);
    hasher.finish()
}

/// Apostrophes Ukrainian is typed with: ASCII, typographic and the modifier letter.
const APOSTROPHES: [char; 3] = ['\'', '’', 'ʼ'];
/// Marks that end a sentence (runs like `?!` or `...` stay one token).
const SENTENCE_ENDS: [char; 4] = ['.', '!', '?', '…'];
/// Marks kept inside a sentence.
const CLAUSE_MARKS: [char; 3] = [',', ';', ':'];

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
            if is_punctuation(&token) && current.is_empty() {
                continue;
            }
            let ends = token.starts_with(SENTENCE_ENDS);
            current.push(token);
            if ends {
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

/// The tokens of one chunk without spaces.
fn tokens(chunk: &str) -> Vec<String> {
    let chars: Vec<char> = chunk.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_alphanumeric() {
            i += 1;
            while i < chars.len() {
                let joins = i + 1 < chars.len()
                    && chars[i - 1].is_alphanumeric()
                    && chars[i + 1].is_alphanumeric()
                    && (APOSTROPHES.contains(&chars[i])
                        || chars[i] == '-'
                        || (chars[i] == '.'
                            && chars[i - 1].is_ascii_digit()
                            && chars[i + 1].is_ascii_digit()));
                if chars[i].is_alphanumeric() || joins {
                    i += 1;
                } else {
                    break;
                }
            }
        } else if is_emoji(c) {
            while i < chars.len() && (is_emoji(chars[i]) || is_emoji_joiner(chars[i])) {
                i += 1;
            }
        } else if SENTENCE_ENDS.contains(&c) {
            while i < chars.len() && SENTENCE_ENDS.contains(&chars[i]) {
                i += 1;
            }
        } else if CLAUSE_MARKS.contains(&c) {
            // `,,,` is one comma.
            while i < chars.len() && chars[i] == c {
                i += 1;
            }
            out.push(c.to_string());
            continue;
        } else {
            i += 1;
            continue;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

/// Pictographs, symbols and flags (regional indicators).
fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x2300..=0x23FF)
}

/// Characters that glue emoji into one picture (zero-width joiner, variation selector, keycap).
fn is_emoji_joiner(c: char) -> bool {
    matches!(c, '\u{200D}' | '\u{FE0F}' | '\u{20E3}')
}

/// Whether a token is a punctuation mark rather than a word.
fn is_punctuation(token: &str) -> bool {
    token.starts_with(SENTENCE_ENDS) || token.starts_with(CLAUSE_MARKS)
}

/// Whether a token is a mark that cannot end a reply.
fn is_clause_mark(token: &str) -> bool {
    token.starts_with(CLAUSE_MARKS)
}

/// The form words are matched by: lower case, one apostrophe.
fn normalize(word: &str) -> String {
    word.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if APOSTROPHES.contains(&c) { '\'' } else { c })
        .collect()
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
        assert_eq!(normalize("М’ЯСО"), "м'ясо");
        assert_eq!(normalize("пʼять"), normalize("П'ять"));
        assert_eq!(normalize("Hello"), "hello");
    }

    #[test]
    fn picks_followers_by_weight_from_packed_transitions() {
        let t = Transitions::from_edges(vec![(7, 1), (7, 2), (7, 2), (7, 2), (9, 5)]);
        assert_eq!(t.of(7), Some(&[(1, 1), (2, 4)][..]));
        assert_eq!(t.of(9), Some(&[(5, 1)][..]));
        assert!(t.of(8).is_none());
        let mut rng = SmallRng::seed_from_u64(1);
        let twos = (0..1000).filter(|_| t.pick(7, &mut rng) == Some(2)).count();
        assert!((650..850).contains(&twos), "{twos}");
    }
}
