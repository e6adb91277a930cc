//! `/catchup` and the daily digest: what happened in a window, as counts, the main
//! conversations and their key messages, chosen offline (see [`catch_up`]).

use super::pool::{self, Candidate, Pool};
use super::rank;
use super::window::{Coverage, Window};
use crate::search::{searchable, terms::Terms};
use crate::store::{Message, MessageId, MessageRef, Store, UserId};
use rustc_hash::FxHashMap;

/// Key messages shown at most, and conversations they are grouped in.
pub const KEY_MESSAGES: usize = 8;
/// Messages a language model is given to summarise: the most telling of the window.
pub const MODEL_MESSAGES: usize = 40;
/// Distinct terms whose window frequency is counted; rarer ones met later count as seen once.
const COUNTED_TERMS: usize = 50_000;
/// Words naming a conversation, and its people shown.
const THREAD_WORDS: usize = 3;
const THREAD_PEOPLE: usize = 3;

/// What happened in a window.
#[derive(Clone, Debug)]
pub struct Catchup {
    pub window: Window,
    /// How much of the window was read, and what was left out.
    pub coverage: Coverage,
    /// People who wrote, and the three who wrote most (name, messages).
    pub people: usize,
    pub busiest: Vec<(String, u64)>,
    /// The main conversations, the most important first.
    pub threads: Vec<Thread>,
    /// The most telling messages (up to [`MODEL_MESSAGES`]), oldest first: what a language
    /// model summarises.
    pub telling: Vec<MessageRef>,
}

/// One conversation of a catch-up.
#[derive(Clone, Debug)]
pub struct Thread {
    /// Words that name it (the most telling words of its messages, as written).
    pub words: Vec<String>,
    /// Its most active people.
    pub people: Vec<String>,
    /// Its key messages, oldest first.
    pub keys: Vec<MessageRef>,
}

/// What happened in `window`, read once, about the newest [`super::window::READ_CAP`]
/// messages. People `keep` refuses (who asked not to be brought up; asked with their first
/// message) are counted but never quoted or named. Memory: the candidate pool (a few hundred messages) and per-message maps bounded by
/// what one window reads.
pub fn catch_up(
    terms: &Terms,
    store: &Store,
    window: &Window,
    mut keep: impl FnMut(&Message) -> bool,
) -> crate::store::Result<Catchup> {
    // Name, messages, and whether `keep` accepts them (asked once per person).
    let mut people: FxHashMap<Option<UserId>, (String, u64, bool)> = FxHashMap::default();
    let mut frequency: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let mut roots: FxHashMap<MessageId, MessageId> = FxHashMap::default();
    let mut replies: FxHashMap<MessageId, u32> = FxHashMap::default();
    let mut pool = Pool::default();
    let mut scratch = Vec::new();
    let coverage = window.read(store, |message, place| {
        let person = people
            .entry(message.user_id)
            .or_insert_with(|| (message.sender_name.clone(), 0, keep(message)));
        person.1 += 1;
        let kept = person.2;
        if let Some(parent) = message.reply_to {
            let root = roots.get(&parent).copied().unwrap_or(parent);
            roots.insert(message.message_id, root);
            *replies.entry(parent).or_default() += 1;
        }
        if !searchable(message) {
            return;
        }
        // A link's parts are not words: a message that is only a link says nothing yet.
        let text = without_links(&message.text);
        let (found, _) = terms.distinct_terms(&text, &mut scratch);
        for term in found {
            if let Some(n) = frequency.get_mut(term.as_str()) {
                *n += 1;
            } else if frequency.len() < COUNTED_TERMS {
                frequency.insert(term.as_str().into(), 1);
            }
        }
        if let Some(prior) = pool::prior(&text, found.len()) {
            if kept {
                let terms = found.iter().map(|t| t.as_str().into()).collect();
                pool.offer(
                    place,
                    Candidate {
                        message: message.clone(),
                        terms,
                        prior,
                    },
                );
            }
        }
    })?;
    let candidates = pool.into_candidates();
    let messages = coverage.messages.max(1) as f64;
    let idf = |term: &str| {
        let seen = frequency.get(term).copied().unwrap_or(1).max(1) as f64;
        (1.0 + messages / seen).ln()
    };
    let ranked = rank::rank(&candidates, idf, &roots, &replies);
    let threads = threads(terms, &candidates, &ranked, &idf);
    let mut telling: Vec<MessageRef> = ranked
        .pick(MODEL_MESSAGES)
        .into_iter()
        .map(|i| candidates[i].message.clone())
        .collect();
    telling.sort_by_key(|m| (m.time, m.message_id));
    // Those refused are counted, not named.
    let mut busiest: Vec<(String, u64)> = people
        .values()
        .filter(|(_, _, kept)| *kept)
        .map(|(name, n, _)| (name.clone(), *n))
        .collect();
    busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    busiest.truncate(3);
    Ok(Catchup {
        window: *window,
        coverage,
        people: people.len(),
        busiest,
        threads,
        telling,
    })
}

/// `text` without its links (parts with `://`, or starting with `www.` or `t.me/`).
fn without_links(text: &str) -> std::borrow::Cow<'_, str> {
    let link =
        |part: &str| part.contains("://") || part.starts_with("www.") || part.starts_with("t.me/");
    if !text.split_whitespace().any(link) {
        return text.into();
    }
    text.split_whitespace()
        .filter(|part| !link(part))
        .collect::<Vec<_>>()
        .join(" ")
        .into()
}

/// The key messages grouped by conversation, the conversation of the best one first.
fn threads(
    terms: &Terms,
    candidates: &[Candidate],
    ranked: &rank::Ranked,
    idf: &impl Fn(&str) -> f64,
) -> Vec<Thread> {
    let mut order: Vec<usize> = Vec::new();
    let mut keys: FxHashMap<usize, Vec<usize>> = FxHashMap::default();
    for pick in ranked.pick(KEY_MESSAGES) {
        let thread = ranked.thread[pick];
        if !keys.contains_key(&thread) {
            order.push(thread);
        }
        keys.entry(thread).or_default().push(pick);
    }
    order
        .into_iter()
        .map(|thread| {
            let members: Vec<&Candidate> = (0..candidates.len())
                .filter(|&i| ranked.thread[i] == thread)
                .map(|i| &candidates[i])
                .collect();
            let mut picked = keys.remove(&thread).unwrap_or_default();
            picked.sort_by_key(|&i| (candidates[i].message.time, candidates[i].message.message_id));
            Thread {
                words: naming_words(terms, &members, idf),
                people: most_active(&members),
                keys: picked
                    .into_iter()
                    .map(|i| candidates[i].message.clone())
                    .collect(),
            }
        })
        .collect()
}

/// The terms that tell a conversation's messages apart from the rest of the window (those in
/// more than one of its messages, weighted by rarity), each shown as one of its members wrote
/// it.
fn naming_words(terms: &Terms, members: &[&Candidate], idf: &impl Fn(&str) -> f64) -> Vec<String> {
    let mut weight: FxHashMap<&str, (u32, f64)> = FxHashMap::default();
    for member in members {
        for term in &member.terms {
            let entry = weight.entry(term).or_insert((0, idf(term)));
            entry.0 += 1;
        }
    }
    let needed = if members.len() > 1 { 2 } else { 1 };
    let mut best: Vec<(&str, f64)> = weight
        .into_iter()
        .filter(|(_, (n, _))| *n >= needed)
        .map(|(term, (n, idf))| (term, n as f64 * idf))
        .collect();
    best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    best.into_iter()
        .filter_map(|(term, _)| {
            members.iter().find_map(|m| {
                crate::tokens::words(&m.message.text)
                    .find(|w| terms.term(w).as_deref() == Some(term))
                    .map(crate::tokens::fold)
            })
        })
        .filter(|word| word.chars().count() > 2 && !word.chars().any(|c| c.is_ascii_digit()))
        .take(THREAD_WORDS)
        .collect()
}

/// The names of a conversation's most active people.
fn most_active(members: &[&Candidate]) -> Vec<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for member in members {
        let name = member.message.sender_name.as_str();
        if name.is_empty() {
            continue;
        }
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 += 1,
            None => counts.push((name, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
        .into_iter()
        .take(THREAD_PEOPLE)
        .map(|(name, _)| name.to_string())
        .collect()
}
