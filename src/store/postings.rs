//! The user → messages access path.
//!
//! A per-message sled index would cost a key per message (disk, and a write on the hot path).
//! Instead:
//! - refs of tail messages live in memory (rebuilt from the tail at open);
//! - sealing a block moves its refs into a pending buffer, and the seal's atomic batch also writes
//!   an `N seq` marker, so that an open reads them back from the block and a crash loses nothing;
//! - when the buffer is large, compact chunks per user go to the postings log, sled batches of
//!   128 people write their pointers (`L user time seq`), and the last one drops the
//!   markers; an open after a crash between two of them keeps of the marked blocks' refs only
//!   those that no chunk holds and finishes the flush (`Shared::flush_postings`, and
//!   `Shared::drop_chunked` at open).

use super::codec::{self, PackedInts};
use super::layout;
use super::model::{ChatId, MessageId, MsgKey, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Pending refs that trigger a postings flush.
pub const FLUSH_REFS: usize = 32 * 1024;
const SHARDS: usize = 16;

/// Where one message of a user is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PostingRef {
    pub time: Timestamp,
    pub chat: ChatId,
    pub id: MessageId,
}

impl PostingRef {
    /// The message's key inside its chat.
    pub fn key(&self) -> MsgKey {
        MsgKey {
            time: self.time,
            id: self.id,
        }
    }
}

/// Refs of one sealed block (read from the block at open while its `N` marker is on disk).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRefs {
    pub chat: ChatId,
    pub refs: Vec<(UserId, Timestamp, MessageId)>,
}

/// Refs of sealed blocks not yet written as chunks.
#[derive(Default)]
pub struct Pending {
    pub by_user: HashMap<UserId, Vec<PostingRef>>,
    /// Block seqs whose `N` marker is still on disk.
    pub blocks: HashSet<u64>,
    pub refs: usize,
}

impl Pending {
    /// Adds a sealed block's refs.
    pub fn add_block(&mut self, seq: u64, block: &BlockRefs) {
        self.blocks.insert(seq);
        for &(user, time, id) in &block.refs {
            self.by_user.entry(user).or_default().push(PostingRef {
                time,
                chat: block.chat,
                id,
            });
        }
        self.refs += block.refs.len();
    }

    /// Removes a sealed block's refs (the block is being rewritten or dropped).
    pub fn remove_block(&mut self, seq: u64, block: &BlockRefs) {
        self.blocks.remove(&seq);
        for &(user, time, id) in &block.refs {
            let target = PostingRef {
                time,
                chat: block.chat,
                id,
            };
            if let Some(list) = self.by_user.get_mut(&user) {
                if let Some(i) = list.iter().position(|r| *r == target) {
                    list.swap_remove(i);
                    self.refs -= 1;
                }
                if list.is_empty() {
                    self.by_user.remove(&user);
                }
            }
        }
    }
}

/// In-memory part of the postings: tail refs (sharded, touched on every message) and the pending
/// buffer (touched only by writers holding the store's commit lock).
pub struct Postings {
    unsealed: Vec<Mutex<HashMap<UserId, Vec<PostingRef>>>>,
    pub pending: Mutex<Pending>,
}

impl Default for Postings {
    fn default() -> Self {
        Postings {
            unsealed: (0..SHARDS).map(|_| Mutex::default()).collect(),
            pending: Mutex::default(),
        }
    }
}

impl Postings {
    fn shard(&self, user: UserId) -> std::sync::MutexGuard<'_, HashMap<UserId, Vec<PostingRef>>> {
        self.unsealed[(user as u64 % SHARDS as u64) as usize]
            .lock()
            .expect("postings lock")
    }

    /// A tail message of `user` appeared.
    pub fn add_unsealed(&self, user: UserId, r: PostingRef) {
        self.shard(user).entry(user).or_default().push(r);
    }

    /// A tail message of `user` was sealed, replaced or deleted.
    pub fn remove_unsealed(&self, user: UserId, r: PostingRef) {
        let mut shard = self.shard(user);
        if let Some(list) = shard.get_mut(&user) {
            if let Some(i) = list.iter().position(|x| *x == r) {
                list.swap_remove(i);
            }
            if list.is_empty() {
                shard.remove(&user);
            }
        }
    }

    /// Every in-memory ref of `user` (tail and pending).
    pub fn in_memory(&self, user: UserId) -> Vec<PostingRef> {
        let mut refs = self.shard(user).get(&user).cloned().unwrap_or_default();
        if let Some(p) = self
            .pending
            .lock()
            .expect("postings lock")
            .by_user
            .get(&user)
        {
            refs.extend_from_slice(p);
        }
        refs
    }

    /// Forgets every in-memory ref of `user`.
    pub fn forget_user(&self, user: UserId) {
        self.shard(user).remove(&user);
        let mut pending = self.pending.lock().expect("postings lock");
        if let Some(list) = pending.by_user.remove(&user) {
            pending.refs -= list.len();
        }
    }

    /// Every unsealed ref, by user (for verify).
    pub fn all_unsealed(&self) -> HashMap<UserId, Vec<PostingRef>> {
        let mut all = HashMap::new();
        for shard in &self.unsealed {
            for (user, refs) in shard.lock().expect("postings lock").iter() {
                all.insert(*user, refs.clone());
            }
        }
        all
    }

    /// Drops all in-memory refs (before a rebuild).
    pub fn clear(&self) {
        for shard in &self.unsealed {
            shard.lock().expect("postings lock").clear();
        }
        *self.pending.lock().expect("postings lock") = Pending::default();
    }
}

/// A chunk as stored: refs grouped by chat (chats in order, each as a delta from the previous),
/// and within a chat times and message ids as deltas from the previous ref of that chat, so
/// that a ref takes about five bytes. (Its time range is in the index's pointer to it, which is
/// what range reads use to skip it.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Chunk {
    chats: Vec<i64>,
    /// Refs per chat, in `chats` order.
    counts: Vec<u32>,
    /// Per ref, in chat order: the time since the chat's previous ref (the first: since the
    /// chunk's first time, the key's).
    times: PackedInts,
    /// Per ref: the id's difference from the chat's previous ref (the first: the id).
    ids: PackedInts,
}

/// Encodes refs (sorted) as one chunk; returns the key time (the first ref's) and the value.
pub fn encode_chunk(refs: &[PostingRef]) -> (Timestamp, Vec<u8>) {
    let first = refs.first().map_or(0, |r| r.time);
    let mut by_chat: Vec<&PostingRef> = refs.iter().collect();
    by_chat.sort_by_key(|r| (r.chat, r.time, r.id));
    let (mut chats, mut counts) = (Vec::new(), Vec::<u32>::new());
    let (mut times, mut ids) = (
        Vec::with_capacity(refs.len()),
        Vec::with_capacity(refs.len()),
    );
    let (mut chat, mut time, mut id) = (0i64, first, 0i64);
    for (i, r) in by_chat.iter().enumerate() {
        if i == 0 || r.chat != chat {
            chats.push(r.chat.wrapping_sub(chat));
            counts.push(0);
            (chat, time, id) = (r.chat, first, 0);
        }
        *counts.last_mut().expect("a chat was pushed") += 1;
        times.push(r.time - time);
        ids.push(i64::from(r.id) - id);
        (time, id) = (r.time, i64::from(r.id));
    }
    let chunk = Chunk {
        chats,
        counts,
        times: PackedInts::pack(times),
        ids: PackedInts::pack(ids),
    };
    (first, codec::encode(&chunk))
}

/// Decodes a chunk whose key time is `first`; refs come back in time order.
pub fn decode_chunk(first: Timestamp, bytes: &[u8]) -> Result<Vec<PostingRef>, codec::CodecError> {
    let chunk: Chunk = codec::decode(bytes)?;
    let (times, ids) = (chunk.times.unpack()?, chunk.ids.unpack()?);
    let total: u64 = chunk.counts.iter().map(|&n| u64::from(n)).sum();
    if chunk.chats.len() != chunk.counts.len()
        || times.len() != ids.len()
        || total != times.len() as u64
    {
        return Err(codec::CodecError::Malformed(
            "postings columns disagree".into(),
        ));
    }
    let mut refs = Vec::with_capacity(times.len());
    let (mut chat, mut at) = (0i64, 0usize);
    for (&delta, &count) in chunk.chats.iter().zip(&chunk.counts) {
        chat = chat.wrapping_add(delta);
        let (mut time, mut id) = (first, 0i64);
        for i in at..at + count as usize {
            time += times[i];
            id += ids[i];
            refs.push(PostingRef {
                time,
                chat,
                id: MessageId::try_from(id)
                    .map_err(|_| codec::CodecError::Malformed("postings message id".into()))?,
            });
        }
        at += count as usize;
    }
    refs.sort_unstable();
    Ok(refs)
}

/// Decodes a chunk of store format 1 (refs in time order, chats by index), for the conversion.
pub fn decode_chunk_v1(
    first: Timestamp,
    bytes: &[u8],
) -> Result<Vec<PostingRef>, codec::CodecError> {
    #[derive(Deserialize)]
    struct ChunkV1 {
        _last_time: Timestamp,
        chats: Vec<ChatId>,
        times: Vec<i64>,
        chat_of: Vec<u32>,
        ids: Vec<MessageId>,
    }
    let chunk: ChunkV1 = codec::decode(bytes)?;
    if chunk.times.len() != chunk.chat_of.len() || chunk.times.len() != chunk.ids.len() {
        return Err(codec::CodecError::Malformed(
            "postings columns disagree".into(),
        ));
    }
    let mut time = first;
    let mut refs = Vec::with_capacity(chunk.times.len());
    for i in 0..chunk.times.len() {
        time += chunk.times[i];
        let chat = *chunk
            .chats
            .get(chunk.chat_of[i] as usize)
            .ok_or_else(|| codec::CodecError::Malformed("postings chat index".into()))?;
        refs.push(PostingRef {
            time,
            chat,
            id: chunk.ids[i],
        });
    }
    Ok(refs)
}

/// Splits a postings key into user, first time and seq.
pub fn parse_key(key: &[u8]) -> Option<(UserId, Timestamp, u64)> {
    if key.len() != 25 || key[0] != layout::POSTINGS {
        return None;
    }
    Some((
        layout::from_ordered_i64(key[1..9].try_into().ok()?),
        layout::from_ordered_i64(key[9..17].try_into().ok()?),
        u64::from_be_bytes(key[17..25].try_into().ok()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_compactly() {
        let refs: Vec<PostingRef> = (0..50)
            .map(|i| PostingRef {
                time: 1_700_000_000 + i * 13,
                chat: if i % 3 == 0 { -1001 } else { -1002 },
                id: 100 + i as i32,
            })
            .collect();
        let (first, bytes) = encode_chunk(&refs);
        assert_eq!(first, refs[0].time);
        assert_eq!(decode_chunk(first, &bytes).unwrap(), refs);
        assert!(
            bytes.len() < refs.len() * 3,
            "{} bytes for 50 refs",
            bytes.len()
        );
    }

    #[test]
    fn pending_blocks_add_and_remove_exactly() {
        let block = BlockRefs {
            chat: -5,
            refs: vec![(1, 10, 1), (2, 11, 2), (1, 12, 3)],
        };
        let mut p = Pending::default();
        p.add_block(7, &block);
        assert_eq!((p.refs, p.by_user[&1].len()), (3, 2));
        p.remove_block(7, &block);
        assert_eq!((p.refs, p.by_user.len(), p.blocks.len()), (0, 0, 0));
    }
}
