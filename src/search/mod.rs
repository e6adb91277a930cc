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
mod want;

pub use find::{FindError, Found, Hit, Request};
pub use index::{Deletion, IndexStatus, IndexTask, SearchError, SearchIndex};
pub use link::message_link;
pub use query::{Author, Query, QueryError, Word};
pub use snippet::Snippet;
pub use terms::searchable;
pub use want::Want;
