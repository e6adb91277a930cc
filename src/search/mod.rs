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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    /// The terms (the stems of the word's forms), or the starts of terms.
    pub terms: Vec<String>,
    /// `word*`: any term starting with one of `terms`.
    pub prefix: bool,
}

impl Want {
    /// Whether `term` is one it looks for.
    pub fn holds(&self, term: &str) -> bool {
        self.terms.iter().any(|t| self.holds_for(t, term))
    }

    /// Whether `term` is what `looked_for`, one of its terms, looks for.
    pub fn holds_for(&self, looked_for: &str, term: &str) -> bool {
        if self.prefix {
            term.starts_with(looked_for)
        } else {
            term == looked_for
        }
    }
}
