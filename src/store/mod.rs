//! The message store: sled as the index, message data in append-only logs.
//!
//! Per chat, messages live in sealed blocks of [`chat::SEAL_LEN`] messages (compressed frames) in
//! the block log, and an unsealed tail in memory whose new records each group commit appends to
//! the tail log. sled holds only small records: where each block and tail segment is, counters,
//! postings, names, settings (`layout.rs` describes every file and key). New messages touch only
//! memory; the group commit (every 100 ms by default, and on [`Store::flush`]) writes tails, seals
//! full blocks, syncs the logs and then applies one sled batch that references what it wrote.
//! Everything derived from messages — block directory, counter checkpoints, user postings — is
//! in the same atomic batch as the blocks it describes, and `verify --repair` can rebuild it.
//!
//! Memory grows with history only by a summary per run of 16 blocks of the directory (~6 bytes a
//! block, `directory.rs`): reads go to the logs with positioned reads through byte-bounded caches
//! of decoded frames and of directory runs, and everything that walks history
//! ([`Store::chat_range`], [`Store::time_range`], backup, verify) streams.
//!
//! [`Store`] is a cheap handle (`Arc` inside). Each chat has its own lock; a store-wide writer
//! lock serializes the code that changes the index (commits, block rewrites, compaction swaps).

mod accounting;
mod backup;
mod blocklog;
mod blocks;
mod cache;
mod chat;
mod chunks;
pub mod codec;
mod commit;
mod compact;
mod config;
mod counters;
mod directory;
mod error;
mod ingest;
pub mod layout;
mod load;
mod migrate;
mod model;
mod open;
mod postings;
mod profile_state;
mod profiles;
mod read;
mod rewrite;
mod runtime;
mod scan;
mod sealed;
mod settings;
mod shared;
mod staged;
mod verify;

pub use backup::{restore, BackupSummary};
pub use config::{FlushPolicy, StoreConfig};
pub use counters::TOP_USERS;
pub use error::{Result, StoreError};
pub use ingest::Saved;
pub use model::*;
pub use read::TOPIC_LOOKBACK;
pub use runtime::blocking;
pub use scan::{ChatRange, TimeRange};
pub use sealed::{SealedBlock, SealedBlocks};
pub use settings::SettingKey;
pub use shared::{Store, StoreHealth, StoreMetrics};
pub use verify::VerifyReport;
