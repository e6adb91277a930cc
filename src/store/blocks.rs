//! Reading blocks and tail segments back from the logs: a block's bytes by its location, its
//! frames decoded one at a time through the byte-bounded frame cache, and the lookups built on
//! them (a message by key, a sealed message by id).

use super::blocklog::{read_held, RecordError, Segment};
use super::chat::{ChatState, TailSegment};
use super::codec::BlockView;
use super::directory::BlockMeta;
use super::model::{key_of, ChatId, MessageId, MessageRef, MsgKey};
use super::shared::Frame;
use super::shared::Shared;
use super::{Result, StoreError};
use std::ops::Range;
use std::sync::Arc;

impl Shared {
    /// The raw bytes of a block, checked against their checksum.
    pub(super) fn block_bytes(&self, chat: ChatId, meta: &BlockMeta) -> Result<Vec<u8>> {
        self.blocks
            .read(meta.location)
            .map_err(|e| self.unreadable(block_name(chat, meta), e))
    }

    /// Parses a block's header, checking that it is the chat's.
    pub(super) fn block_view<B: AsRef<[u8]>>(
        &self,
        chat: ChatId,
        meta: &BlockMeta,
        bytes: B,
    ) -> Result<BlockView<B>> {
        BlockView::parse_for(bytes, chat).map_err(|e| self.corrupt(block_name(chat, meta), e))
    }

    /// Frame `index` of a block, from the cache or decoded (and then cached when `keep`). The
    /// block is read and parsed into `view` at the first frame the cache lacks, so that a caller
    /// walking several frames of one block reads it once.
    pub(super) fn frame(
        &self,
        chat: ChatId,
        meta: &BlockMeta,
        index: usize,
        view: &mut Option<BlockView<Vec<u8>>>,
        keep: bool,
    ) -> Result<Frame> {
        if let Some(frame) = self.frames.get(&(meta.seq, index as u32)) {
            return Ok(frame);
        }
        let view = match view {
            Some(view) => view,
            None => view.insert(self.block_view(chat, meta, self.block_bytes(chat, meta)?)?),
        };
        self.frame_from(chat, meta, view, index, keep)
    }

    /// Frame `index` of an already parsed block, from the cache or decoded (and then cached
    /// when `keep`: scans of history pass false so as not to push out recent context).
    pub(super) fn frame_from(
        &self,
        chat: ChatId,
        meta: &BlockMeta,
        view: &BlockView<impl AsRef<[u8]>>,
        index: usize,
        keep: bool,
    ) -> Result<Frame> {
        if let Some(frame) = self.frames.get(&(meta.seq, index as u32)) {
            return Ok(frame);
        }
        let frame = Frame::new(
            view.frame(&self.compressor, index)
                .map_err(|e| self.corrupt(block_name(chat, meta), e))?,
        );
        if keep {
            let bytes = frame
                .iter()
                .map(|m| 160 + m.text.len() + m.sender_name.len())
                .sum();
            self.frames
                .insert((meta.seq, index as u32), frame.clone(), bytes);
        }
        Ok(frame)
    }

    /// Every message of a block, decoded (not cached: callers rewrite or scan it once).
    pub(super) fn read_block(&self, chat: ChatId, meta: &BlockMeta) -> Result<Vec<MessageRef>> {
        let bytes = self.block_bytes(chat, meta)?;
        self.block_view(chat, meta, &bytes)?
            .all(&self.compressor)
            .map_err(|e| self.corrupt(block_name(chat, meta), e))
    }

    /// The records of a tail segment.
    pub(super) fn read_tail_segment(
        &self,
        chat: ChatId,
        segment: &TailSegment,
    ) -> Result<Vec<MessageRef>> {
        let what = format!("tail segment {} of chat {chat}", segment.seq);
        let bytes = self
            .tails
            .read(segment.location)
            .map_err(|e| self.unreadable(&what, e))?;
        BlockView::parse_for(&bytes, chat)
            .and_then(|view| view.all(&self.compressor))
            .map_err(|e| self.corrupt(what, e))
    }

    /// Where the messages at `keys` (sorted) of a chat are: the blocks that may hold them (with
    /// their segments held open, so that a compaction meanwhile does not take the bytes away)
    /// and those of the tail. Taken under the chat's lock; [`Shared::read_located`] then reads
    /// the blocks without it, so that recording in the chat goes on meanwhile.
    pub(super) fn locate_many(&self, chat: &mut ChatState, keys: &[MsgKey]) -> Result<Located> {
        let sealed = chat
            .sealed_end()
            .map_or(0, |end| keys.partition_point(|k| *k <= end));
        let mut blocks = Vec::new();
        let mut at = 0;
        while at < sealed {
            let Some(index) = chat.directory.block_for(keys[at], self)? else {
                break;
            };
            let meta = chat.directory.get(index, self)?;
            let end = at + keys[at..sealed].partition_point(|k| *k <= meta.last).max(1);
            let segment = self.blocks.segment(meta.location.segment);
            blocks.push((meta, segment, at..end));
            at = end;
        }
        let tail = keys[sealed..]
            .iter()
            .filter_map(|key| {
                let i = chat.tail.binary_search_by_key(key, |m| key_of(m)).ok()?;
                Some(chat.tail[i].clone())
            })
            .collect();
        Ok(Located {
            chat: chat.id,
            blocks,
            tail,
        })
    }

    /// The messages at `keys` (the same slice) that [`Shared::locate_many`] located. Each block is read and each
    /// frame decoded once however many of the keys it holds, and only the wanted messages are
    /// built; frames are not cached (these reads are scattered).
    pub(super) fn read_located(
        &self,
        keys: &[MsgKey],
        located: Located,
    ) -> Result<Vec<MessageRef>> {
        let chat = located.chat;
        let mut out = Vec::with_capacity(keys.len());
        for (meta, segment, range) in &located.blocks {
            let here = &keys[range.clone()];
            let bytes = read_held(segment.as_deref(), meta.location)
                .map_err(|e| self.unreadable(block_name(chat, meta), e))?;
            let view = self.block_view(chat, meta, &bytes)?;
            for (fi, frame) in view.header.frames.iter().enumerate() {
                let lo = here.partition_point(|k| *k < frame.first);
                let hi = here.partition_point(|k| *k <= frame.last);
                if lo == hi {
                    continue;
                }
                let wanted = &here[lo..hi];
                if let Some(cached) = self.frames.get(&(meta.seq, fi as u32)) {
                    out.extend(
                        cached
                            .iter()
                            .filter(|m| wanted.binary_search(&key_of(m)).is_ok())
                            .cloned(),
                    );
                    continue;
                }
                out.extend(
                    view.frame_matching(&self.compressor, fi, |k| wanted.binary_search(&k).is_ok())
                        .map_err(|e| self.corrupt(block_name(chat, meta), e))?,
                );
            }
        }
        out.extend(located.tail);
        Ok(out)
    }

    /// Finds a sealed message by id: its block index and the message.
    pub(super) fn find_sealed(
        &self,
        chat: &mut ChatState,
        id: MessageId,
    ) -> Result<Option<(usize, MessageRef)>> {
        for (index, meta) in chat.directory.may_hold(id, self)? {
            let bytes = self.block_bytes(chat.id, &meta)?;
            let view = self.block_view(chat.id, &meta, &bytes)?;
            for (fi, frame) in view.header.frames.iter().enumerate() {
                if frame.min_id <= id && id <= frame.max_id {
                    let messages = self.frame_from(chat.id, &meta, &view, fi, true)?;
                    if let Some(m) = messages.iter().find(|m| m.message_id == id) {
                        return Ok(Some((index, m.clone())));
                    }
                }
            }
        }
        Ok(None)
    }

    /// A record of a log that cannot be read back.
    pub(super) fn unreadable(&self, what: impl std::fmt::Display, e: RecordError) -> StoreError {
        self.corrupt_msg(format!("{what}: {e}"))
    }
}

/// How errors name a block.
pub(super) fn block_name(chat: ChatId, meta: &BlockMeta) -> String {
    format!(
        "block of chat {chat} starting at message {} ({})",
        meta.first.id, meta.first.time
    )
}

/// Where a chat's wanted messages are, as [`Shared::locate_many`] found them.
pub(super) struct Located {
    chat: ChatId,
    /// Each block that may hold some of the keys, its segment (held open), and which keys.
    blocks: Vec<(BlockMeta, Option<Arc<Segment>>, Range<usize>)>,
    /// The wanted messages of the tail.
    tail: Vec<MessageRef>,
}

#[cfg(test)]
mod tests {
    use crate::store::shared::lock;
    use crate::store::{FlushPolicy, Message, Store, StoreConfig};

    #[test]
    fn located_blocks_read_after_their_segment_is_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.flush = FlushPolicy::Manual;
        config.segment_bytes = 16 << 10;
        let store = Store::open(config).unwrap();
        let chat = -1_001_234;
        let messages: Vec<Message> = (1..=2_000)
            .map(|i| {
                let text = format!("повідомлення {i}");
                Message::text_for_test(
                    chat,
                    i,
                    1_700_000_000 + i64::from(i),
                    i64::from(i % 2),
                    &text,
                )
            })
            .collect();
        store.save_batch(messages.clone()).unwrap();
        store.flush().unwrap();
        let keys: Vec<_> = messages
            .iter()
            .filter(|m| m.user_id == Some(1))
            .map(crate::store::model::key_of)
            .collect();
        let handle = store.shared.chat(chat).unwrap();
        let located = store.shared.locate_many(&mut lock(&handle), &keys).unwrap();
        assert!(!located.blocks.is_empty());
        assert!(located
            .blocks
            .iter()
            .all(|(_, segment, _)| segment.is_some()));
        // Without the chat's lock, the other person is forgotten: every block is rewritten and
        // the segments that held them are compacted away.
        let compacted = store.health().segments_compacted;
        store.delete_user_in_chat(0, chat).unwrap();
        assert!(store.health().segments_compacted > compacted);
        assert!(located.blocks.iter().all(|(meta, _, _)| store
            .shared
            .blocks
            .segment(meta.location.segment)
            .is_none()));
        let found = store.shared.read_located(&keys, located).unwrap();
        assert_eq!(found.len(), keys.len());
        assert!(found.iter().all(|m| m.user_id == Some(1)));
    }
}
