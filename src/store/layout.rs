//! The on-disk layout of a data directory, in one place, and the order-preserving key encodings.
//!
//! # Files
//!
//! | path | what |
//! |---|---|
//! | `conf`, `db`, `snap.*`, `blobs/` | sled: the index (below). Small records only |
//! | `blocks/NNNNNNNNNN.seg` | the block log: sealed blocks of messages |
//! | `tails/NNNNNNNNNN.seg` | the tail log: segments of unsealed messages and each chat's counter checkpoint, short-lived |
//! | `postings/NNNNNNNNNN.seg` | the postings log: chunks of each user's postings |
//! | `profiles/NNNNNNNNNN.seg` | the profiles log: chunks of each chat's profiles (`profiles.rs`) |
//! | `backups/` | the bot's scheduled backups (`backup.rs` has their format) |
//!
//! A log segment (`blocklog.rs`) is a 16-byte header (`CHATKEEPER-LOG\n` and its version byte)
//! followed by records `length: u32 LE, CRC-32 of the payload: u32 LE, payload`. A block or tail
//! segment payload is what `codec::encode_block` writes: the value-version byte, a bincode header
//! (chat, dictionary, one entry per frame: first and last key, id range, count, compressed
//! length), then the zstd frames of 16 messages each, stored column by column. A checkpoint, a
//! postings chunk or a profile chunk (chat, then up to 32 `(user, profile bytes)` sorted by
//! user) is a value as `codec::encode` writes it. Segments are appended to and fsynced
//! before any index record points at them; compaction copies live records out of a segment and
//! deletes it.
//!
//! # Index (one sled tree)
//!
//! The first byte of a key names its family. Every value starts with the codec's value-version
//! byte (`codec::encode`). Signed integers in keys are big-endian with the sign bit flipped, so
//! byte order equals numeric order and negative chat ids (`-100…`) sort before positive ones.
//!
//! | key | value |
//! |---|---|
//! | `M format` | the store format, one byte: [`STORE_FORMAT`] |
//! | `M dict/N` | compression dictionary `N` |
//! | `I chat time id` | the block directory, in runs of up to 32 consecutive blocks of a chat (16 as seals fill them), keyed by the run's first message: per block its key range, id range, count, seq and [`Location`](super::blocklog::Location) in the block log (`directory.rs`) |
//! | `J chat seq` | a tail segment: its location in the tail log |
//! | `K chat` | where the chat's checkpoint is in the tail log: its counters over its blocks up to a seq |
//! | `L user time seq` | where a chunk of a user's postings (where their sealed messages are) is in the postings log, and the chunk's last time |
//! | `N seq` | empty: block `seq`'s postings are not yet in chunks (read from the block at open; a flush cut short by a crash or a failed sled batch can leave markers whose refs some chunks hold: the open leaves those out and finishes the flush) |
//! | `H chat`, `U user` | chat titles and types, user names |
//! | `R chat first_user` | a chunk of the chat's profiles: its location in the profiles log |
//! | `S c chat`, `S u user` | the bot's settings |
//! | `S p chat user` | a profile written since the last settle (it takes precedence over the chunk's) |
//!
//! Store format 4 had no forum topics: its frames end after the texts column (format 5 frames
//! add a topics column when a message of the frame is in a topic); opening one only changes
//! the format byte.
//! Store format 3 kept the directory in runs of 16 blocks (the last one filling) under `I chat run` (run `n`
//! holding blocks `16n…16n+15`, so an edit that added or dropped a block rewrote every later
//! run); opening one re-keys the runs.
//! Store format 2 kept every profile as an `S p` record; opening one settles them into chunks.
//! Store format 1 (before the logs) kept everything inside sled: blocks as `B seq`, the directory
//! as `D chat time id`, tail segments as `T chat seq`, checkpoints as `C chat`, postings chunks
//! as `P user time seq` and pending postings as `Q seq`, with their bytes; `migrate.rs` converts
//! it. Builds before this one also kept analyses of texts under `A` (dropped at open).

use super::model::{ChatId, MsgKey, Timestamp, UserId};

/// The store format this build writes (the `M format` record).
pub const STORE_FORMAT: u8 = 5;
/// Store metadata: format version, compression dictionaries.
pub const META: u8 = b'M';
/// The block directory: `I chat time id` → what and where the consecutive blocks of a run are,
/// keyed by its first message ([`block_key`]). Summarised at open and read a run at a time
/// when needed (`directory.rs`); a record per run rather than per block keeps sled's share of
/// memory small.
pub const DIRECTORY: u8 = b'I';
/// Unsealed messages of a chat, one segment per group commit: `J chat seq` → location.
pub const TAIL: u8 = b'J';
/// Per-chat counters over the chat's sealed blocks: `K chat` → location in the tail log.
pub const CHECKPOINT: u8 = b'K';
/// Chat titles and types: `H chat`.
pub const CHAT_INFO: u8 = b'H';
/// User names: `U user`.
pub const USER_INFO: u8 = b'U';
/// Per-user postings of sealed messages: `L user first_time seq` → chunk pointer.
pub const POSTINGS: u8 = b'L';
/// A sealed block whose postings are not yet written as chunks: `N seq`.
pub const PENDING_POSTINGS: u8 = b'N';
/// Chunks of a chat's profiles: `R chat first_user` → location in the profiles log.
pub const PROFILE_CHUNK: u8 = b'R';
/// Per-chat and per-user settings of the bot: `S c chat` / `S u user`.
pub const SETTINGS: u8 = b'S';
/// Analyses cached by builds before this one (`A namespace key`): derived data this build
/// recomputes instead, dropped at open (`migrate::drop_retired_cache`).
pub const RETIRED_CACHE: u8 = b'A';

/// Encodes `v` so that byte order equals numeric order.
pub fn ordered_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`ordered_i64`].
pub fn from_ordered_i64(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// Encodes `v` so that byte order equals numeric order.
pub fn ordered_i32(v: i32) -> [u8; 4] {
    ((v as u32) ^ (1 << 31)).to_be_bytes()
}

/// Inverse of [`ordered_i32`].
pub fn from_ordered_i32(bytes: [u8; 4]) -> i32 {
    (u32::from_be_bytes(bytes) ^ (1 << 31)) as i32
}

/// `family chat`: the prefix of all of one chat's keys in a family.
pub fn chat_prefix(family: u8, chat: ChatId) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = family;
    key[1..9].copy_from_slice(&ordered_i64(chat));
    key
}

/// `family chat time id`: a directory run's key (and, in store format 1, a directory entry's
/// key, `D`; `E` while it is converted).
pub fn block_key(family: u8, chat: ChatId, first: MsgKey) -> [u8; 21] {
    let mut key = [0u8; 21];
    key[..9].copy_from_slice(&chat_prefix(family, chat));
    key[9..17].copy_from_slice(&ordered_i64(first.time));
    key[17..21].copy_from_slice(&ordered_i32(first.id));
    key
}

/// Splits a [`block_key`] back into chat and first message.
pub fn parse_block_key(key: &[u8]) -> Option<(ChatId, MsgKey)> {
    if key.len() != 21 {
        return None;
    }
    Some((
        from_ordered_i64(key[1..9].try_into().ok()?),
        MsgKey {
            time: from_ordered_i64(key[9..17].try_into().ok()?),
            id: from_ordered_i32(key[17..21].try_into().ok()?),
        },
    ))
}

/// `J chat seq`: where one tail segment is in the tail log.
pub fn tail_key(chat: ChatId, seq: u64) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[..9].copy_from_slice(&chat_prefix(TAIL, chat));
    key[9..17].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Splits a [`tail_key`] back into chat and segment number.
pub fn parse_tail_key(key: &[u8]) -> Option<(ChatId, u64)> {
    if key.len() != 17 {
        return None;
    }
    Some((
        from_ordered_i64(key[1..9].try_into().ok()?),
        u64::from_be_bytes(key[9..17].try_into().ok()?),
    ))
}

/// The chat id of any `family chat …` key.
pub fn parse_chat(key: &[u8]) -> Option<ChatId> {
    Some(from_ordered_i64(key.get(1..9)?.try_into().ok()?))
}

/// `U user` / `L user`: the prefix of a user's keys in a family.
pub fn user_prefix(family: u8, user: UserId) -> [u8; 9] {
    chat_prefix(family, user)
}

/// `L user first_time seq`: one postings chunk; `seq` keeps chunks with equal times apart.
pub fn postings_key(user: UserId, first_time: Timestamp, seq: u64) -> [u8; 25] {
    let mut key = [0u8; 25];
    key[..9].copy_from_slice(&user_prefix(POSTINGS, user));
    key[9..17].copy_from_slice(&ordered_i64(first_time));
    key[17..25].copy_from_slice(&seq.to_be_bytes());
    key
}

/// `R chat first_user`: one chunk of a chat's profiles.
pub fn profile_chunk_key(chat: ChatId, first_user: UserId) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[..9].copy_from_slice(&chat_prefix(PROFILE_CHUNK, chat));
    key[9..17].copy_from_slice(&ordered_i64(first_user));
    key
}

/// Splits a [`profile_chunk_key`] back into chat and first user.
pub fn parse_profile_chunk_key(key: &[u8]) -> Option<(ChatId, UserId)> {
    if key.len() != 17 || key[0] != PROFILE_CHUNK {
        return None;
    }
    Some((
        from_ordered_i64(key[1..9].try_into().ok()?),
        from_ordered_i64(key[9..17].try_into().ok()?),
    ))
}

/// `family seq`: a block's pending postings marker (`N`), or a block of store format 1 (`B`).
pub fn seq_key(family: u8, seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = family;
    key[1..9].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The seq of a [`seq_key`].
pub fn parse_seq_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

/// `M name`: a metadata entry.
pub fn meta_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(META);
    key.extend_from_slice(name.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn block_keys_sort_like_chat_time_id(
            a in (any::<i64>(), any::<i64>(), any::<i32>()),
            b in (any::<i64>(), any::<i64>(), any::<i32>()),
        ) {
            let ka = block_key(DIRECTORY, a.0, MsgKey { time: a.1, id: a.2 });
            let kb = block_key(DIRECTORY, b.0, MsgKey { time: b.1, id: b.2 });
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(parse_block_key(&ka), Some((a.0, MsgKey { time: a.1, id: a.2 })));
        }

        #[test]
        fn telegram_group_ids_sort_numerically(a in -1_009_999_999_999i64..-1, b in -1_009_999_999_999i64..-1) {
            prop_assert_eq!(chat_prefix(TAIL, a).cmp(&chat_prefix(TAIL, b)), a.cmp(&b));
        }

        #[test]
        fn tail_and_postings_keys_round_trip(chat in any::<i64>(), seq in any::<u64>()) {
            prop_assert_eq!(parse_tail_key(&tail_key(chat, seq)), Some((chat, seq)));
            prop_assert_eq!(parse_chat(&postings_key(chat, 5, seq)), Some(chat));
            let user = seq as i64;
            prop_assert_eq!(parse_profile_chunk_key(&profile_chunk_key(chat, user)), Some((chat, user)));
        }
    }

    #[test]
    fn negative_before_positive_and_extremes_in_order() {
        let ids = [i64::MIN, -1_001_234_567_890, -100, -1, 0, 1, 42, i64::MAX];
        let keys: Vec<_> = ids.iter().map(|&c| chat_prefix(DIRECTORY, c)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
}
