//! A query answered in one chat.
//!
//! 1. Each query word becomes a [`Want`] (its stem, or a stem prefix for `word*`; the words of
//!    phrases too; stop-words dropped).
//! 2. The ids holding each want are gathered into a bitmap from every segment, the buffers, and
//!    the messages the index has not read yet (the chat's tail and newer blocks, searched
//!    directly). Bitmaps keep a chat's dense ids in about a bit each.
//! 3. Candidates are the ids in all of them (and, with `from:`, the author's).
//! 4. Candidates are read from the store newest first and checked: the message must still
//!    exist and hold every word (an edit or a deletion leaves stale postings, which this drops:
//!    privacy does not depend on the index), the phrases, none of the exclusions, and match
//!    the filters. Up to [`RANKED`] are scored by BM25 over their real text (term frequency and
//!    length) with a mild preference for recent messages; beyond that many matches, the newest
//!    are the ones ranked.

use super::index::{Result as IndexResult, SearchError, SearchIndex};
use super::query::{Author, Query, QueryError};
use super::snippet::Snippet;
use super::terms::searchable;
use super::want::Want;
use crate::store::{ChatId, MessageId, MessageRef, Timestamp, UserId};
use crate::tokens;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::ops::Range;

/// Matches ranked by relevance (newest first beyond).
pub const RANKED: usize = 50;
/// Candidates read at most for one query (stale postings, phrases and filters reject some).
const CHECKED: usize = 5_000;
/// Candidates read at most for the ranked matches (a phrase whose words are common but seldom
/// side by side would otherwise read thousands); pages past them read on.
const CHECK_BUDGET: usize = 256;
/// Blocks the index has not read yet that a query searches itself; with more, the answer says
/// that results may be missing (the index is catching up).
const UNREAD_BLOCKS: usize = 64;
/// Candidates read from the store at once.
const READ_BATCH: usize = 64;
/// BM25 parameters (the usual ones).
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// A message of today scores up to this much more than an old one; the bonus halves every
/// [`RECENCY_HALF_LIFE_DAYS`].
const RECENCY_BONUS: f64 = 0.25;
const RECENCY_HALF_LIFE_DAYS: f64 = 90.0;

/// A search in one chat.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub query: &'a Query,
    pub chat: ChatId,
    /// Who asks (`from:me`); `None` on the command line.
    pub asker: Option<UserId>,
    /// The forum topic asked from: its results come first unless the query says `all`.
    pub topic: Option<MessageId>,
    /// Now, for the preference for recent messages.
    pub now: Timestamp,
    /// The chat's time zone, seconds east of UTC: `since:` and `until:` days are its days.
    pub utc_offset_secs: i64,
    /// Results to skip (paging) and to return.
    pub offset: usize,
    pub limit: usize,
}

/// What a search found.
#[derive(Clone, Debug)]
pub struct Found {
    /// The requested page, best first.
    pub hits: Vec<Hit>,
    /// Whether there are results after this page.
    pub more: bool,
    /// Whether results may be missing because the index is still reading the history.
    pub incomplete: bool,
}

/// One result.
#[derive(Clone, Debug)]
pub struct Hit {
    pub message: MessageRef,
    pub score: f64,
    pub snippet: Snippet,
}

/// Why a search gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Index(#[from] SearchError),
}

impl From<crate::store::StoreError> for FindError {
    fn from(e: crate::store::StoreError) -> Self {
        FindError::Index(SearchError::Store(e))
    }
}

/// An order-preserving map of message ids into a bitmap's `u32`s.
fn bit(id: MessageId) -> u32 {
    (id as u32) ^ 0x8000_0000
}

fn id_of(bit: u32) -> MessageId {
    (bit ^ 0x8000_0000) as MessageId
}

/// What checking a candidate needs.
struct Plan<'a> {
    request: &'a Request<'a>,
    mode: Mode,
    wants: Vec<Want>,
    /// Inverse document frequency of each want.
    idf: Vec<f64>,
    excluded: Vec<String>,
    /// The shortest starts of every wanted and excluded term: only words they start are
    /// stemmed.
    relevant: Vec<String>,
    author: Option<UserId>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    average_words: f64,
}

/// Which candidates a search takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Messages holding every word (`/search`), newest first beyond the ranked ones.
    All,
    /// Messages holding at least `min_held` of the words, those holding the rarest ones first
    /// (a question asked in words of its own: `/ask`, and what a reply remembers).
    Any { min_held: usize },
}

/// Messages read at most to answer [`Mode::Any`]: those that hold the most of the rarest words;
/// more with a filter (an author, dates), which the candidates are not chosen by.
const ANY_CANDIDATES: usize = 256;
const ANY_CANDIDATES_FILTERED: usize = 2_000;
/// Postings gathered at most to choose [`Mode::Any`]'s candidates (a map entry each, about 1.5
/// MiB in all): the rarest words' first, and of each word its newest (a common word adds
/// little, and would otherwise cost an entry per message of the chat).
const ANY_POSTINGS: u64 = 50_000;

/// The ids holding each want in one chat, and what the index has not read yet.
struct Gathered {
    bitmaps: Vec<RoaringBitmap>,
    /// Messages of the tail and of blocks the index has not read, by id.
    unread: FxHashMap<MessageId, MessageRef>,
    /// Whether more unread blocks were left than a query searches itself.
    incomplete: bool,
    average_words: f64,
}

impl SearchIndex {
    /// Answers `request` (see the module's documentation).
    pub fn find(&self, request: &Request) -> Result<Found, FindError> {
        self.answer(request, Mode::All)
    }

    /// The messages most related to the words of `request`'s query, best first: those holding
    /// one of its words (two of five or more), ranked by BM25 over the words they hold, at
    /// most [`RANKED`]. For questions asked in words of their own, which no message
    /// holds all of. Filters and phrases apply as in [`SearchIndex::find`].
    pub fn find_related(&self, request: &Request) -> Result<Found, FindError> {
        let words = self.wants(request.query)?.len();
        let min_held = if words >= 5 { 2 } else { 1 };
        self.answer(request, Mode::Any { min_held })
    }

    /// The ids of `chat` holding each of `wants`, from the index and from what it has not read.
    fn gather(&self, chat: ChatId, wants: &[Want]) -> Result<Gathered, FindError> {
        let store = self.store();
        // The tail first, then the index, then blocks the index has not read: a block sealed
        // meanwhile is seen twice rather than not at all.
        let mut unread: FxHashMap<MessageId, MessageRef> = store
            .unsealed(chat)
            .into_iter()
            .map(|m| (m.message_id, m))
            .collect();
        let mut bitmaps = vec![RoaringBitmap::new(); wants.len()];
        let view = self.view(chat, wants, |i, _, id| {
            bitmaps[i].insert(bit(id));
        })?;
        for segment in &view.segments {
            for (i, want) in wants.iter().enumerate() {
                self.read_want(segment, chat, want, &mut bitmaps[i])?;
            }
        }
        let mut incomplete = false;
        for (n, block) in store
            .sealed_in_chat(chat, view.read_upto, u64::MAX)
            .enumerate()
        {
            if n == UNREAD_BLOCKS {
                incomplete = true;
                break;
            }
            for message in block?.messages {
                unread.insert(message.message_id, message);
            }
        }
        let mut scratch = Vec::new();
        for message in unread.values() {
            if !searchable(message) {
                continue;
            }
            let (terms, _) = self.terms().distinct_terms(&message.text, &mut scratch);
            for (i, want) in wants.iter().enumerate() {
                if terms.iter().any(|term| want.holds(term)) {
                    bitmaps[i].insert(bit(message.message_id));
                }
            }
        }
        Ok(Gathered {
            bitmaps,
            unread,
            incomplete,
            average_words: view.average_words,
        })
    }

    fn answer(&self, request: &Request, mode: Mode) -> Result<Found, FindError> {
        let store = self.store();
        let query = request.query;
        let chat = request.chat;
        let wants = self.wants(query)?;
        let author = match &query.from {
            None => None,
            Some(Author::Me) => Some(request.asker.ok_or(QueryError::NoOneAsking)?),
            Some(Author::Username(name)) => Some(
                store
                    .user_by_username(chat, name)
                    .ok_or_else(|| QueryError::UnknownUser(name.clone()))?,
            ),
            Some(Author::User(user)) => Some(*user),
        };
        let Gathered {
            bitmaps,
            unread,
            incomplete,
            average_words,
        } = self.gather(chat, &wants)?;

        // The author is checked on each candidate: a prefilter from the person's postings
        // would read all of their history.
        let total = store
            .chat_stats(chat)
            .map_or(0, |s| s.total_messages)
            .max(bitmaps.iter().map(|b| b.len()).max().unwrap_or(0)) as f64;
        let idf: Vec<f64> = bitmaps
            .iter()
            .map(|b| {
                let df = b.len() as f64;
                (1.0 + (total - df + 0.5) / (df + 0.5)).ln()
            })
            .collect();
        let candidates: Box<dyn Iterator<Item = MessageId>> = match mode {
            Mode::All => {
                let all = bitmaps
                    .iter()
                    .skip(1)
                    .fold(bitmaps[0].clone(), |all, next| all & next);
                Box::new(all.into_iter().rev().map(id_of))
            }
            Mode::Any { .. } => {
                let filtered =
                    query.from.is_some() || query.since.is_some() || query.until.is_some();
                let wanted = match filtered {
                    true => ANY_CANDIDATES_FILTERED,
                    false => ANY_CANDIDATES,
                };
                Box::new(rarest_first(&bitmaps, &idf, wanted).into_iter())
            }
        };
        let excluded: Vec<String> = query
            .excluded
            .iter()
            .map(|word| self.terms().stem(word))
            .collect();
        let plan = Plan {
            request,
            mode,
            relevant: shortest_starts(
                wants
                    .iter()
                    .flat_map(|w| w.terms.iter().chain(&w.starts))
                    .chain(&excluded),
            ),
            idf,
            wants,
            excluded,
            author,
            since: query
                .since
                .map(|day| day_start(day) - request.utc_offset_secs),
            until: query
                .until
                .map(|day| day_start(day) + 86_399 - request.utc_offset_secs),
            average_words,
        };
        drop(bitmaps);

        // What is ranked does not depend on the page asked for, so that pages neither repeat
        // nor skip: the newest candidates are read until RANKED of them match (or
        // CHECK_BUDGET were read), and those are ranked; a page past them goes on with later
        // matches, newest first.
        let page_end = request.offset + request.limit;
        let mut ranked: Vec<(bool, Hit)> = Vec::new();
        let mut later: Vec<Hit> = Vec::new();
        let mut queue = candidates.peekable();
        let mut checked = 0;
        let mut ranking = true;
        let mut buffers = Scratch::default();
        while ranked.len() + later.len() <= page_end
            || ranking && ranked.len() < RANKED && checked < CHECK_BUDGET
        {
            if checked >= CHECKED || queue.peek().is_none() {
                break;
            }
            let batch: Vec<MessageId> = queue.by_ref().take(READ_BATCH).collect();
            let stored: Vec<MessageId> = batch
                .iter()
                .copied()
                .filter(|id| !unread.contains_key(id))
                .collect();
            let read: FxHashMap<MessageId, MessageRef> = store
                .messages_by_id(chat, &stored)?
                .into_iter()
                .map(|m| (m.message_id, m))
                .collect();
            for id in batch {
                checked += 1;
                if ranking && (ranked.len() >= RANKED || checked > CHECK_BUDGET) {
                    ranking = false;
                }
                let message = unread.get(&id).or_else(|| read.get(&id)).cloned();
                let Some(hit) = message.and_then(|m| self.matches(&plan, m, &mut buffers)) else {
                    continue;
                };
                if ranking {
                    ranked.push(hit);
                } else {
                    later.push(hit.1);
                }
            }
        }
        ranked.sort_by(|(a_topic, a), (b_topic, b)| {
            b_topic
                .cmp(a_topic)
                .then(b.score.total_cmp(&a.score))
                .then(b.message.message_id.cmp(&a.message.message_id))
        });
        let unchecked = queue.peek().is_some() && checked < CHECKED;
        let hits: Vec<(bool, Hit)> = ranked
            .into_iter()
            .chain(later.into_iter().map(|hit| (false, hit)))
            .collect();
        let more = hits.len() > page_end || unchecked;
        Ok(Found {
            hits: hits
                .into_iter()
                .skip(request.offset)
                .take(request.limit)
                .map(|(_, hit)| hit)
                .collect(),
            more,
            incomplete,
        })
    }

    /// The wants of a query: its words and the words of its phrases, without stop-words.
    fn wants(&self, query: &Query) -> Result<Vec<Want>, QueryError> {
        let mut wants: Vec<Want> = Vec::new();
        let words = query
            .words
            .iter()
            .map(|w| (w.text.as_str(), w.prefix))
            .chain(query.phrases.iter().flatten().map(|w| (w.as_str(), false)));
        for (text, prefix) in words {
            let want = if prefix {
                Want {
                    terms: Vec::new(),
                    starts: vec![self.terms().stem(text)],
                }
            } else {
                match self.terms().want(text) {
                    Some(want) => want,
                    None => continue,
                }
            };
            if !wants.contains(&want) {
                wants.push(want);
            }
        }
        if wants.is_empty() {
            return Err(QueryError::OnlyCommonWords);
        }
        Ok(wants)
    }

    /// Adds the ids of `chat` that `segment` holds for `want`.
    fn read_want(
        &self,
        segment: &super::segment::Segment,
        chat: ChatId,
        want: &Want,
        bitmap: &mut RoaringBitmap,
    ) -> IndexResult<()> {
        let damaged = |e: super::segment::SegmentError| self.found_damage(e.into());
        let malformed = |what: String| {
            self.found_damage(SearchError::Damaged(format!(
                "{}: {what}",
                segment.path().display()
            )))
        };
        let mut ids = Vec::new();
        // A word's forms mostly share their start ("вокз", "вокза", "вокзал"), so they sit
        // together in the dictionary: one seek per group of terms with the same first three
        // letters, then a walk to the group's last term.
        let mut looked_for: Vec<(&str, bool)> = want.looked_for().collect();
        looked_for.sort_unstable();
        let mut groups: Vec<&[(&str, bool)]> = Vec::new();
        let mut rest = &looked_for[..];
        while let Some((first, _)) = rest.first() {
            let start: String = first.chars().take(3).collect();
            let n = rest
                .iter()
                .take_while(|(t, _)| t.starts_with(start.as_str()))
                .count();
            groups.push(&rest[..n]);
            rest = &rest[n..];
        }
        for group in groups {
            let (first, last) = (group[0].0, group[group.len() - 1].0);
            let mut blocks = segment
                .blocks_from(chat, first.as_bytes())
                .map_err(damaged)?;
            'blocks: while let Some(block) = blocks.next_block().map_err(damaged)? {
                let mut records = block.records();
                while let Some(record) = records
                    .next_record()
                    .map_err(|()| malformed("a malformed record".into()))?
                {
                    let term = std::str::from_utf8(record.term).unwrap_or("");
                    let in_a_start = group
                        .iter()
                        .any(|(start, is_start)| *is_start && term.starts_with(start));
                    if in_a_start || group.iter().any(|(t, is_start)| !is_start && *t == term) {
                        ids.clear();
                        record
                            .decode_into(&mut ids)
                            .map_err(|e| malformed(e.to_string()))?;
                        // A record's postings are ascending: built as one, they join the
                        // bitmap a container at a time rather than an id at a time.
                        match RoaringBitmap::from_sorted_iter(ids.iter().map(|&id| bit(id))) {
                            Ok(record) => *bitmap |= record,
                            Err(_) => bitmap.extend(ids.iter().map(|&id| bit(id))),
                        }
                    } else if term > last && !in_a_start {
                        break 'blocks;
                    }
                }
            }
        }
        Ok(())
    }

    /// The result `message` makes, if it still matches (see the module's documentation); with
    /// whether it is in the topic asked from.
    fn matches(
        &self,
        plan: &Plan,
        message: MessageRef,
        scratch: &mut Scratch,
    ) -> Option<(bool, Hit)> {
        let request = plan.request;
        let query = request.query;
        if !searchable(&message) || message.chat_id != request.chat {
            return None;
        }
        if plan.author.is_some_and(|a| message.user_id != Some(a))
            || plan.since.is_some_and(|t| message.time < t)
            || plan.until.is_some_and(|t| message.time > t)
        {
            return None;
        }
        let text = message.text.as_str();
        // Each word's folded form (in one reused buffer: a candidate costs few allocations,
        // and a phrase query may read thousands) and place in the text.
        let Scratch {
            folded,
            word,
            places,
        } = scratch;
        folded.clear();
        places.clear();
        for w in tokens::words(text) {
            let start = w.as_ptr() as usize - text.as_ptr() as usize;
            tokens::fold_into(w, word);
            places.push((
                folded.len()..folded.len() + word.len(),
                start..start + w.len(),
            ));
            folded.push_str(word);
        }
        let words: Vec<&str> = places.iter().map(|(f, _)| &folded[f.clone()]).collect();
        let mut marks: Vec<Range<usize>> = Vec::new();
        for phrase in &query.phrases {
            let at = find_phrase(&words, phrase)?;
            marks.extend(places[at..at + phrase.len()].iter().map(|(_, p)| p.clone()));
        }
        if query
            .excluded_phrases
            .iter()
            .any(|phrase| find_phrase(&words, phrase).is_some())
        {
            return None;
        }
        // A stem is a start of the folded word, so a word that no wanted or excluded term
        // starts is not stemmed.
        let stems: Vec<Option<String>> = words
            .iter()
            .map(|folded| {
                let relevant = plan.relevant.iter().any(|start| folded.starts_with(start));
                relevant.then(|| self.terms().stem(folded))
            })
            .collect();
        if stems
            .iter()
            .flatten()
            .any(|stem| plan.excluded.iter().any(|x| x == stem))
        {
            return None;
        }
        let mut score = 0.0;
        let mut held = 0;
        let length = words.len().max(1) as f64;
        for (want, idf) in plan.wants.iter().zip(&plan.idf) {
            let before = marks.len();
            marks.extend(
                words
                    .iter()
                    .zip(&stems)
                    .zip(places.iter())
                    .filter(|((folded, stem), _)| {
                        stem.as_deref().is_some_and(|stem| want.holds(stem))
                            || want.starts.iter().any(|s| folded.starts_with(s.as_str()))
                    })
                    .map(|(_, (_, place))| place.clone()),
            );
            let tf = (marks.len() - before) as f64;
            if tf == 0.0 {
                match plan.mode {
                    Mode::All => return None,
                    Mode::Any { .. } => continue,
                }
            }
            held += 1;
            score +=
                idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / plan.average_words));
        }
        if let Mode::Any { min_held } = plan.mode {
            if held < min_held {
                return None;
            }
        }
        let age_days = (request.now - message.time).max(0) as f64 / 86_400.0;
        score *= 1.0 + RECENCY_BONUS * 0.5f64.powf(age_days / RECENCY_HALF_LIFE_DAYS);
        marks.sort_by_key(|m| m.start);
        marks.dedup();
        let in_topic =
            request.topic.is_some() && !query.whole_chat && message.topic == request.topic;
        Some((
            in_topic,
            Hit {
                snippet: Snippet::new(text, &marks),
                message,
                score,
            },
        ))
    }
}

/// Buffers reused from candidate to candidate.
#[derive(Default)]
struct Scratch {
    /// The candidate's folded words, one after another.
    folded: String,
    /// One folded word.
    word: String,
    /// Each word's place in `folded` and in the text.
    places: Vec<(Range<usize>, Range<usize>)>,
}

/// [`Mode::Any`]'s candidates: the ids whose wants weigh the most (the sum of the inverse
/// document frequencies of the wants they hold), at most `wanted`, best first (newest first
/// among equals). Wants are counted rarest first, the newest postings of each, until
/// [`ANY_POSTINGS`] are counted (later words only weigh in for the ids gathered), so the map is
/// bounded however common the words are.
fn rarest_first(bitmaps: &[RoaringBitmap], idf: &[f64], wanted: usize) -> Vec<MessageId> {
    let mut order: Vec<usize> = (0..bitmaps.len()).collect();
    order.sort_by_key(|&i| bitmaps[i].len());
    let mut weights: FxHashMap<u32, f64> = FxHashMap::default();
    let mut budget = ANY_POSTINGS as usize;
    for i in order {
        if budget == 0 {
            // Past the budget a word still weighs in for the ids gathered, adding none.
            for (id, weight) in weights.iter_mut() {
                if bitmaps[i].contains(*id) {
                    *weight += idf[i];
                }
            }
            continue;
        }
        for id in bitmaps[i].iter().rev().take(budget) {
            *weights.entry(id).or_default() += idf[i];
            budget -= 1;
        }
    }
    let mut best: Vec<(f64, u32)> = weights.into_iter().map(|(id, w)| (w, id)).collect();
    let by_weight = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1));
    if best.len() > wanted {
        best.select_nth_unstable_by(wanted, by_weight);
        best.truncate(wanted);
    }
    best.sort_unstable_by(by_weight);
    best.into_iter().map(|(_, id)| id_of(id)).collect()
}

/// The shortest of `terms` that no other one starts: a word that none of them starts is not
/// one of the terms (nor has one as its start).
fn shortest_starts<'a>(terms: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut terms: Vec<&String> = terms.collect();
    terms.sort_unstable_by_key(|t| t.len());
    let mut starts: Vec<String> = Vec::new();
    for term in terms {
        if !starts.iter().any(|s| term.starts_with(s.as_str())) {
            starts.push(term.clone());
        }
    }
    starts
}

/// Where `phrase` (folded words) starts in `words`, if it is there.
fn find_phrase(words: &[&str], phrase: &[String]) -> Option<usize> {
    if phrase.is_empty() || phrase.len() > words.len() {
        return None;
    }
    words
        .windows(phrase.len())
        .position(|window| window.iter().zip(phrase).all(|(w, p)| *w == p))
}

/// The first second of a UTC day.
fn day_start(day: chrono::NaiveDate) -> Timestamp {
    day.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp())
}
