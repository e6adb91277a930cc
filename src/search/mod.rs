//! Search over a chat's whole history (issue 12, in progress): what a query means
//! ([`query`]); the index and `/search` build on it.

pub mod query;

pub use query::{Author, Query, QueryError, Word};
