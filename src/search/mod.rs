//! Search over a chat's whole history (issue 12, in progress): what a query means
//! ([`query`]) and where a found message is ([`link`]); the index and `/search` build on them.

pub mod link;
mod postings;
pub mod query;
mod segment;
pub mod terms;

pub use link::message_link;
pub use query::{Author, Query, QueryError, Word};
