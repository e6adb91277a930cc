//! Search over a chat's whole history.
//!
//! - [`query`]: what a person typed, parsed (words, `word*`, phrases, exclusions, filters);
//! - [`terms`]: the stemmed terms messages are indexed under;
//! - the index ([`SearchIndex`], `index.rs`): segments of postings on disk (`segment.rs`,
//!   `postings.rs`), merged in the background (`merge.rs`), and a buffer of the newest
//!   (`buffer.rs`);
//! - [`find`]: a query answered in one chat, every result checked against the store, ranked by
//!   BM25 with a mild preference for recent messages, with a [`snippet`] and a [`link`].

mod buffer;
pub mod find;
mod index;
pub mod link;
mod merge;
mod postings;
pub mod query;
pub mod records;
mod segment;
pub mod snippet;
pub mod terms;

pub use find::{FindError, Found, Hit, Request};
pub use index::{IndexStatus, IndexTask, SearchError, SearchIndex};
pub use link::message_link;
pub use query::{Author, Query, QueryError, Word};
pub use snippet::Snippet;

use crate::store::{Message, MessageKind};

/// Whether a message is searched: it has text, and is neither a service message nor a bot
/// command (a `/search Карпати` is not what the next search for "Карпати" wants).
pub fn searchable(message: &Message) -> bool {
    let command = message
        .text
        .strip_prefix('/')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_ascii_alphabetic());
    message.kind != MessageKind::Service && !message.text.is_empty() && !command
}

/// What one query word looks for among terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// Terms looked for as they are (the stems of a word's forms).
    pub terms: Vec<String>,
    /// Starts of terms: any term that starts so matches (`word*`, and a long word's own stem,
    /// which meets the words made from it: "футбол" finds "футбольний").
    pub starts: Vec<String>,
}

impl Want {
    /// Whether `term` is one it looks for.
    pub fn holds(&self, term: &str) -> bool {
        self.terms.iter().any(|t| t == term)
            || self.starts.iter().any(|s| term.starts_with(s.as_str()))
    }

    /// Everything it looks for, each with whether it is a start.
    pub fn looked_for(&self) -> impl Iterator<Item = (&str, bool)> {
        self.terms
            .iter()
            .map(|t| (t.as_str(), false))
            .chain(self.starts.iter().map(|s| (s.as_str(), true)))
    }
}
