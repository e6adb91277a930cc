//! The long memory people use: what they missed ([`catchup`]: `/catchup` and the daily
//! digest), answers from the whole history ([`ask`]: `/ask`), and the older messages a reply
//! should remember ([`remember`]); with what a language model is asked for each and how its
//! citations become links ([`cite`]).
//!
//! Everything here reads a bounded part of the history: a window of at most
//! [`window::READ_CAP`] messages streamed once, or the few hundred candidates a search checks.

pub mod ask;
pub mod catchup;
pub mod cite;
mod pool;
mod rank;
pub mod remember;
pub mod span;
pub mod window;

pub use ask::{evidence, Evidence, Question};
pub use catchup::{catch_up, Catchup, Thread};
pub use remember::remembered;
pub use span::{parse_catchup_args, CatchupArgs, SpanError, MAX_SPAN_SECS};
pub use window::{Coverage, Scope, Window};
