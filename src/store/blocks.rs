//! Reading blocks and tail segments back from the logs: a block's bytes by its location, its
//! frames decoded one at a time through the byte-bounded frame cache, and the lookups built on
//! them (a message by key, a sealed message by id).

use super::blocklog::RecordError;
use super::chat::{BlockMeta, ChatState, TailSegment};
use super::codec::BlockView;
use super::frames::Frame;
use super::model::{key_of, ChatId, MessageId, MessageRef, MsgKey};
use super::{Result, Shared, StoreError};

impl Shared {
    /// The raw bytes of a block, checked against their checksum.
    pub(super) fn block_bytes(&self, chat: ChatId, meta: &BlockMeta) -> Result<Vec<u8>> {
        self.blocks
            .read(meta.location)
            .map_err(|e| self.unreadable(block_name(chat, meta), e))
    }

    /// Parses a block's header, checking that it is the chat's.
    pub(super) fn block_view<'a>(
        &self,
        chat: ChatId,
        meta: &BlockMeta,
        bytes: &'a [u8],
    ) -> Result<BlockView<'a>> {
        BlockView::parse_for(bytes, chat).map_err(|e| self.corrupt(block_name(chat, meta), e))
    }

    /// Frame `index` of a block, from the cache or decoded.
    pub(super) fn frame(&self, chat: ChatId, meta: &BlockMeta, index: usize) -> Result<Frame> {
        if let Some(frame) = self.frames.get(meta.seq, index as u32) {
            return Ok(frame);
        }
        let bytes = self.block_bytes(chat, meta)?;
        let view = self.block_view(chat, meta, &bytes)?;
        self.frame_from(chat, meta, &view, index, true)
    }

    /// Frame `index` of an already parsed block, from the cache or decoded (and then cached
    /// when `keep`: scans of history pass false so as not to push out recent context).
    pub(super) fn frame_from(
        &self,
        chat: ChatId,
        meta: &BlockMeta,
        view: &BlockView<'_>,
        index: usize,
        keep: bool,
    ) -> Result<Frame> {
        if let Some(frame) = self.frames.get(meta.seq, index as u32) {
            return Ok(frame);
        }
        let frame = Frame::new(
            view.frame(&self.compressor, index)
                .map_err(|e| self.corrupt(block_name(chat, meta), e))?,
        );
        if keep {
            self.frames.insert(meta.seq, index as u32, frame.clone());
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

    /// The messages at `keys` (sorted) in a chat, those that are stored. Each block is read
    /// and each frame decoded once however many of the keys it holds, and only the wanted
    /// messages are built; frames are not cached (these reads are scattered).
    pub(super) fn locate_many(&self, chat: &ChatState, keys: &[MsgKey]) -> Result<Vec<MessageRef>> {
        let mut out = Vec::with_capacity(keys.len());
        let sealed = chat
            .sealed_end()
            .map_or(0, |end| keys.partition_point(|k| *k <= end));
        let mut rest = &keys[..sealed];
        while let Some(&first) = rest.first() {
            let Some(index) = chat.block_for(first) else {
                break;
            };
            let meta = &chat.blocks[index];
            let in_block = rest.partition_point(|k| *k <= meta.last);
            let (here, later) = rest.split_at(in_block.max(1));
            rest = later;
            let bytes = self.block_bytes(chat.id, meta)?;
            let view = self.block_view(chat.id, meta, &bytes)?;
            for (fi, frame) in view.header.frames.iter().enumerate() {
                let lo = here.partition_point(|k| *k < frame.first);
                let hi = here.partition_point(|k| *k <= frame.last);
                if lo == hi {
                    continue;
                }
                let wanted = &here[lo..hi];
                if let Some(cached) = self.frames.get(meta.seq, fi as u32) {
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
                        .map_err(|e| self.corrupt(block_name(chat.id, meta), e))?,
                );
            }
        }
        for key in &keys[sealed..] {
            if let Ok(i) = chat.tail.binary_search_by_key(key, |m| key_of(m)) {
                out.push(chat.tail[i].clone());
            }
        }
        Ok(out)
    }

    /// Finds a sealed message by id: its block index and the message.
    pub(super) fn find_sealed(
        &self,
        chat: &ChatState,
        id: MessageId,
    ) -> Result<Option<(usize, MessageRef)>> {
        for index in (0..chat.blocks.len()).rev() {
            let meta = &chat.blocks[index];
            if !meta.may_hold_id(id) {
                continue;
            }
            let bytes = self.block_bytes(chat.id, meta)?;
            let view = self.block_view(chat.id, meta, &bytes)?;
            for (fi, frame) in view.header.frames.iter().enumerate() {
                if frame.min_id <= id && id <= frame.max_id {
                    let messages = self.frame_from(chat.id, meta, &view, fi, true)?;
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
