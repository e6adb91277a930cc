//! Search over a chat's whole history (issue 12, in progress): what a query means
//! ([`query`]) and where a found message is ([`link`]); the index and `/search` build on them.

pub mod link;
pub mod query;

pub use link::message_link;
pub use query::{Author, Query, QueryError, Word};
