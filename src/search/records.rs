//! Results as the command line shows them (`chatkeeper search`, and its `--json`).

use super::find::{FindError, Request};
use super::index::SearchIndex;
use super::link::message_link;
use super::query::{Query, QueryError};
use crate::store::{ChatId, Timestamp};
use serde::Serialize;

/// One result with everything a script needs.
#[derive(Clone, Debug, Serialize)]
pub struct HitRecord {
    pub chat_id: ChatId,
    pub message_id: i32,
    /// RFC 3339, UTC.
    pub time: String,
    pub author: String,
    pub user_id: Option<i64>,
    pub text: String,
    /// The excerpt with the matched words between `**`.
    pub snippet: String,
    pub score: f64,
    pub link: Option<String>,
}

/// What a command-line search found.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub hits: Vec<HitRecord>,
    /// Whether results may be missing because the index is still reading the history.
    pub incomplete: bool,
}

/// The best `limit` results of `query` in each of `chats`, best first. A `from:@user` that
/// names no one in a chat skips that chat; if it names no one anywhere, that is the error.
pub fn search_chats(
    index: &SearchIndex,
    query: &Query,
    chats: &[ChatId],
    limit: usize,
    now: Timestamp,
) -> Result<Results, FindError> {
    let mut results = Results {
        hits: Vec::new(),
        incomplete: false,
    };
    let mut unknown_user = None;
    let mut searched = 0;
    for &chat in chats {
        let request = Request {
            query,
            chat,
            asker: None,
            topic: None,
            now,
            utc_offset_secs: 0,
            offset: 0,
            limit,
        };
        let found = match index.find(&request) {
            Ok(found) => found,
            Err(FindError::Query(e @ QueryError::UnknownUser(_))) => {
                unknown_user = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        searched += 1;
        results.incomplete |= found.incomplete;
        let info = index.store().chat_info(chat);
        results.hits.extend(found.hits.into_iter().map(|hit| {
            let m = &hit.message;
            HitRecord {
                chat_id: chat,
                message_id: m.message_id,
                time: chrono::DateTime::from_timestamp(m.time, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                author: m.sender_name.clone(),
                user_id: m.user_id,
                text: m.text.clone(),
                snippet: hit.snippet.render("**", "**", str::to_string),
                score: hit.score,
                link: message_link(chat, info.as_ref(), m.message_id, m.topic),
            }
        }));
        results
            .hits
            .sort_by(|a, b| b.score.total_cmp(&a.score).then(b.time.cmp(&a.time)));
        results.hits.truncate(limit);
    }
    if searched == 0 {
        if let Some(e) = unknown_user {
            return Err(e.into());
        }
    }
    Ok(results)
}

impl std::fmt::Display for HitRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = self.time.get(..16).unwrap_or(&self.time).replace('T', " ");
        let author = if self.author.is_empty() {
            "—"
        } else {
            &self.author
        };
        writeln!(
            f,
            "{time} · chat {} · message {} · {author} · score {:.2}",
            self.chat_id, self.message_id, self.score
        )?;
        writeln!(f, "  {}", self.snippet)?;
        if let Some(link) = &self.link {
            writeln!(f, "  {link}")?;
        }
        Ok(())
    }
}
