//! What a reply remembers: the few older messages of the chat most related to what the bot
//! was asked, for its prompt (see [`remembered`]).

use super::ask::question_query;
use crate::search::{FindError, Request, SearchIndex};
use crate::store::{ChatId, Message, MessageId, MessageRef, Timestamp};

/// Older messages a reply's prompt carries at most.
pub const REMEMBERED: usize = 5;
/// Related messages looked at to find them (some are recent or left out).
const LOOKED_AT: usize = 20;

/// The messages of `chat` older than `before` (the recent context starts there) most related
/// to `text` (less `names`, the bot's, that it is called by), oldest first, at most
/// [`REMEMBERED`]; messages `keep` refuses (people who opted out of mentions) and the bots' are
/// left out. In a forum `topic`, its messages come first. Blocking: reads the index and the
/// store.
#[allow(clippy::too_many_arguments)]
pub fn remembered(
    index: &SearchIndex,
    chat: ChatId,
    topic: Option<MessageId>,
    text: &str,
    names: &[String],
    before: Timestamp,
    now: Timestamp,
    keep: impl Fn(&Message) -> bool,
) -> Result<Vec<MessageRef>, FindError> {
    let Some(query) = question_query(index, chat, text, names) else {
        return Ok(Vec::new());
    };
    let request = Request {
        query: &query,
        chat,
        asker: None,
        topic,
        now,
        utc_offset_secs: 0,
        offset: 0,
        limit: LOOKED_AT,
    };
    let mut older: Vec<MessageRef> = index
        .find_related(&request)?
        .hits
        .into_iter()
        .map(|hit| hit.message)
        .filter(|m| m.time < before && !m.is_bot && keep(m))
        .take(REMEMBERED)
        .collect();
    older.sort_by_key(|m| (m.time, m.message_id));
    Ok(older)
}
