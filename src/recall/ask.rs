//! `/ask`: the messages of a chat's history that answer a question, and the reply threads
//! around them (see [`evidence`]).

use crate::search::{Author, FindError, Hit, Query, Request, SearchIndex, Word};
use crate::store::{ChatId, MessageId, MessageRef, Timestamp};
use crate::tokens;

/// Best matches an answer rests on, and messages given to a language model with them.
pub const ANSWER_HITS: usize = 6;
pub const MODEL_MESSAGES: usize = 20;
/// Matches looked at for them (the bot's own are left out).
const LOOKED_AT: usize = 12;
/// Replies to a match looked for among the messages that follow it: how many, how long after,
/// and how many messages are looked through.
const REPLIES_PER_HIT: usize = 2;
const REPLY_WINDOW_SECS: i64 = 6 * 3_600;
const REPLY_LOOKAHEAD: usize = 300;
/// Starts of words that ask what someone said, wrote or told: they are how a question is
/// put, not what it is about.
const SAYING: [&str; 14] = [
    "сказ",
    "казал",
    "казав",
    "писал",
    "писав",
    "говор",
    "розпов",
    "пропону",
    "said",
    "say",
    "told",
    "wrote",
    "write",
    "mention",
];

/// Words that make a question a question (folded): they say what kind of answer is wanted,
/// not what it is about, and would otherwise match every message that asks something.
const ASKING: [&str; 30] = [
    "коли",
    "де",
    "куди",
    "хто",
    "що",
    "шо",
    "скільки",
    "котрій",
    "котра",
    "котрої",
    "який",
    "яка",
    "яке",
    "які",
    "чи",
    "як",
    "чому",
    "когда",
    "где",
    "кто",
    "что",
    "сколько",
    "какой",
    "when",
    "where",
    "who",
    "what",
    "how",
    "which",
    "much",
];

/// What a chat's history holds about a question.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The best matching messages, best first (at most [`ANSWER_HITS`]).
    pub hits: Vec<Hit>,
    /// The matches with the messages they reply to and the replies they drew, oldest first
    /// (at most [`MODEL_MESSAGES`]): what a language model answers from.
    pub context: Vec<MessageRef>,
    /// Whether the index is still reading the history (results may be missing).
    pub incomplete: bool,
}

/// A question asked of a chat's history.
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    pub chat: ChatId,
    pub text: &'a str,
    /// The forum topic asked from: its messages come first.
    pub topic: Option<MessageId>,
    pub now: Timestamp,
}

/// A question as a search: its words, less the words of asking ("казала", "said"), mentions
/// (`@name`) and `ignored` names (the bot's, which a reply's question calls it by, also with a
/// case ending); a word naming one of the chat's most active people ("Оксана", "Оксани")
/// becomes an author filter. `None` when nothing is left to look for.
pub fn question_query(
    index: &SearchIndex,
    chat: ChatId,
    text: &str,
    ignored: &[String],
) -> Option<Query> {
    let terms = index.terms();
    let people: Vec<(String, crate::store::UserId)> = index
        .store()
        .chat_stats(chat)
        .map(|s| s.top_users)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|u| {
            let first = u.name.split_whitespace().next().map(tokens::fold)?;
            (first.chars().count() >= 3).then(|| (terms.stem(&first), u.user_id))
        })
        .collect();
    let ignored: Vec<String> = ignored.iter().map(|name| tokens::fold(name)).collect();
    let mut query = Query::default();
    let unmentioned: Vec<&str> = text
        .split_whitespace()
        .filter(|part| !part.starts_with('@'))
        .collect();
    for word in unmentioned.iter().flat_map(|part| tokens::words(part)) {
        let folded = tokens::fold(word);
        let asking =
            ASKING.contains(&folded.as_str()) || SAYING.iter().any(|s| folded.starts_with(s));
        let calling = ignored.iter().any(|name| {
            !name.is_empty()
                && folded.starts_with(name.as_str())
                && folded.chars().count() <= name.chars().count() + 2
        });
        if asking || calling {
            continue;
        }
        let named = people.iter().find(|(stem, _)| {
            folded.starts_with(stem.as_str()) && folded.chars().count() <= stem.chars().count() + 3
        });
        match named {
            Some(&(_, user)) if query.from.is_none() => query.from = Some(Author::User(user)),
            _ => {
                if !query.words.iter().any(|w| w.text == folded) {
                    query.words.push(Word {
                        text: folded,
                        prefix: false,
                    });
                }
            }
        }
    }
    let anything = query.words.iter().any(|w| terms.term(&w.text).is_some());
    anything.then_some(query)
}

/// The messages of the chat that answer `question` best (any of its words, rarest first,
/// checked against the store and ranked by BM25), with the reply threads around them.
/// Blocking: reads the index and the store.
pub fn evidence(index: &SearchIndex, question: &Question) -> Result<Evidence, FindError> {
    let Some(query) = question_query(index, question.chat, question.text, &[]) else {
        return Ok(Evidence::default());
    };
    let request = Request {
        query: &query,
        chat: question.chat,
        asker: None,
        topic: question.topic,
        now: question.now,
        utc_offset_secs: 0,
        offset: 0,
        limit: LOOKED_AT,
    };
    let found = index.find_related(&request)?;
    // The bot's own messages are not history to answer from: they may be its inventions.
    let hits: Vec<Hit> = found
        .hits
        .into_iter()
        .filter(|hit| !hit.message.is_bot)
        .take(ANSWER_HITS)
        .collect();
    let store = index.store();
    let (mut parents, mut replies) = (Vec::new(), Vec::new());
    for hit in &hits {
        let message = &hit.message;
        if let Some(parent) = message.reply_to {
            parents.extend(store.message(question.chat, parent)?);
        }
        let mut drawn = 0;
        let after = store
            .chat_range(
                question.chat,
                message.time,
                message.time + REPLY_WINDOW_SECS,
            )
            .take(REPLY_LOOKAHEAD);
        for next in after {
            let next = next?;
            if next.reply_to == Some(message.message_id) && !next.is_bot {
                replies.push(next);
                drawn += 1;
                if drawn == REPLIES_PER_HIT {
                    break;
                }
            }
        }
    }
    // The matches first, then what they reply to, then their replies: what is cut at
    // MODEL_MESSAGES is the least telling.
    let mut context: Vec<MessageRef> = Vec::new();
    let around = parents.into_iter().chain(replies).filter(|m| !m.is_bot);
    for message in hits.iter().map(|hit| hit.message.clone()).chain(around) {
        if context.len() == MODEL_MESSAGES {
            break;
        }
        if !context.iter().any(|m| m.message_id == message.message_id) {
            context.push(message);
        }
    }
    context.sort_by_key(|m| (m.time, m.message_id));
    Ok(Evidence {
        hits,
        context,
        incomplete: found.incomplete,
    })
}
