//! The in-memory state of one chat: its block directory, its unsealed tail and its counters.
//!
//! Invariants (checked by `verify`): blocks are sorted and disjoint by message key; every tail
//! message sorts after the last block; no message id appears twice; the counters equal a recount.

use super::blocklog::Location;
use super::counters::{Counters, TopUsers};
use super::directory::Directory;
use super::model::{key_of, ChatId, ChatInfo, MessageId, MessageRef, MsgKey};

/// Messages per sealed block.
pub const SEAL_LEN: usize = 128;
/// A rewritten block larger than this is split.
pub const MAX_BLOCK_LEN: usize = 2 * SEAL_LEN;

/// A tail segment on disk: a group commit's new tail records of one chat, in the tail log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TailSegment {
    pub seq: u64,
    /// The largest key it holds: once the sealed end passes it, the segment is obsolete.
    pub max: MsgKey,
    pub location: Location,
}

/// One chat, guarded by its own mutex in the store's chat map.
#[derive(Default)]
pub struct ChatState {
    pub id: ChatId,
    pub info: Option<ChatInfo>,
    pub directory: Directory,
    /// Unsealed messages, sorted by key, all after the last block.
    pub tail: Vec<MessageRef>,
    /// Tail records (new or replaced) not yet written in a tail segment, in arrival order.
    pub unsaved: Vec<MessageRef>,
    /// Tail segments on disk, oldest first.
    pub segments: Vec<TailSegment>,
    /// The segments hold records no longer in the tail: rewrite them as one at the next write.
    pub segments_stale: bool,
    pub counters: Counters,
    pub top: TopUsers,
    /// Where the stored checkpoint is, the seq up to which it covers blocks, and seals since.
    pub checkpoint: Option<Location>,
    pub checkpoint_seq: u64,
    pub unchecked_seals: usize,
    /// Highest message id ever stored: a larger id is certainly new.
    pub max_id: MessageId,
    /// Queued for the next group commit.
    pub dirty: bool,
}

impl ChatState {
    /// An empty chat.
    pub fn new(id: ChatId) -> Self {
        ChatState {
            id,
            directory: Directory::new(id),
            max_id: MessageId::MIN,
            ..ChatState::default()
        }
    }

    /// Key of the last sealed message, if any block exists.
    pub fn sealed_end(&self) -> Option<MsgKey> {
        self.directory.last_key()
    }

    /// Position of message `id` in the tail.
    pub fn tail_position(&self, id: MessageId) -> Option<usize> {
        self.tail.iter().rposition(|m| m.message_id == id)
    }

    /// Whether some block may hold message `id`.
    pub fn blocks_may_hold(&self, id: MessageId) -> bool {
        id <= self.max_id && self.directory.may_hold_id(id)
    }

    /// Inserts a new tail message at its sorted place (usually the end).
    pub fn insert_tail(&mut self, message: MessageRef) {
        let key = key_of(&message);
        let at = self.tail.partition_point(|m| key_of(m) < key);
        self.tail.insert(at, message);
    }

    /// First and last activity: the first and last stored message.
    pub fn activity(&self) -> Option<(i64, i64)> {
        let first = self
            .directory
            .first_key()
            .map(|k| k.time)
            .or_else(|| self.tail.first().map(|m| m.time))?;
        let last = self
            .tail
            .last()
            .map(|m| m.time)
            .or_else(|| self.directory.last_key().map(|k| k.time))?;
        Some((first, last))
    }
}

/// The tail that tail segments describe: per message the record of the latest segment, minus
/// records that sort at or before the sealed end (those were sealed after being written).
pub fn replay_tail(
    segments: impl IntoIterator<Item = Vec<MessageRef>>,
    sealed_end: Option<MsgKey>,
) -> Vec<MessageRef> {
    let mut latest: std::collections::HashMap<MessageId, MessageRef> =
        std::collections::HashMap::new();
    for records in segments {
        for record in records {
            latest.insert(record.message_id, record);
        }
    }
    let mut tail: Vec<MessageRef> = latest
        .into_values()
        .filter(|m| sealed_end.is_none_or(|end| key_of(m) > end))
        .collect();
    tail.sort_by_key(|m| key_of(m));
    tail
}
