//! Blocks sealed after a seq: what an index derived from the messages (search) has not read yet.
//!
//! Block seqs are handed out under the chat's lock in the same step that puts the block in the
//! chat's directory (a seal, a rewrite, a repair), so once [`Store::seq_mark`] has returned `m`,
//! every block with a seq up to `m` is in its chat's directory or was replaced by a newer one,
//! and a walk of `(after, m]` misses nothing. A block rewritten during the walk comes back with
//! a seq above `m`, for the next walk.

use super::blocklog::{read_held, Segment};
use super::blocks::block_name;
use super::chat::ChatState;
use super::directory::BlockMeta;
use super::model::{ChatId, MessageRef, MsgKey};
use super::shared::{lock, Shared, Store};
use super::Result;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Directory entries taken per look at a chat.
const STEP: usize = 16;

/// One sealed block's messages.
pub struct SealedBlock {
    pub chat: ChatId,
    pub seq: u64,
    pub messages: Vec<MessageRef>,
}

impl Store {
    /// The highest block seq handed out so far (see the module's documentation).
    pub fn seq_mark(&self) -> u64 {
        self.shared
            .next_seq
            .load(Ordering::SeqCst)
            .saturating_sub(1)
    }

    /// Every block of every chat with `after < seq <= upto`, a chat at a time, in key order
    /// within a chat; streamed (one block in memory).
    pub fn sealed_between(&self, after: u64, upto: u64) -> SealedBlocks {
        self.check_thread();
        let chats = self.shared.chats_in_order().into();
        SealedBlocks::new(self.shared.clone(), chats, after, upto)
    }

    /// [`Store::sealed_between`] for one chat.
    pub fn sealed_in_chat(&self, chat: ChatId, after: u64, upto: u64) -> SealedBlocks {
        self.check_thread();
        let chats = self.shared.chat(chat).map(|handle| (chat, handle));
        SealedBlocks::new(
            self.shared.clone(),
            chats.into_iter().collect(),
            after,
            upto,
        )
    }

    /// The messages of a chat that no block holds yet (its tail), oldest first.
    pub fn unsealed(&self, chat: ChatId) -> Vec<MessageRef> {
        self.check_thread();
        self.shared
            .chat(chat)
            .map(|handle| lock(&handle).tail.clone())
            .unwrap_or_default()
    }
}

/// See [`Store::sealed_between`].
pub struct SealedBlocks {
    shared: Arc<Shared>,
    chats: VecDeque<(ChatId, Arc<Mutex<ChatState>>)>,
    after: u64,
    upto: u64,
    /// Where the current chat's walk goes on.
    from: MsgKey,
    queue: VecDeque<(BlockMeta, Option<Arc<Segment>>)>,
}

impl SealedBlocks {
    fn new(
        shared: Arc<Shared>,
        chats: VecDeque<(ChatId, Arc<Mutex<ChatState>>)>,
        after: u64,
        upto: u64,
    ) -> SealedBlocks {
        SealedBlocks {
            shared,
            chats,
            after,
            upto,
            from: MsgKey::MIN,
            queue: VecDeque::new(),
        }
    }

    fn next_block(&mut self) -> Result<Option<SealedBlock>> {
        loop {
            if let Some((meta, segment)) = self.queue.pop_front() {
                let (chat, _) = &self.chats[0];
                let chat = *chat;
                let bytes = read_held(segment.as_deref(), meta.location)
                    .map_err(|e| self.shared.unreadable(block_name(chat, &meta), e))?;
                let view = self.shared.block_view(chat, &meta, bytes)?;
                let mut messages = Vec::with_capacity(meta.count as usize);
                for frame in 0..view.header.frames.len() {
                    let decoded = self.shared.frame_from(chat, &meta, &view, frame, false)?;
                    messages.extend(decoded.iter().cloned());
                }
                return Ok(Some(SealedBlock {
                    chat,
                    seq: meta.seq,
                    messages,
                }));
            }
            let Some((_, handle)) = self.chats.front() else {
                return Ok(None);
            };
            let found = {
                let state = lock(handle);
                let metas = state.directory.newer_than_from(
                    (self.after, self.upto),
                    self.from,
                    STEP,
                    &*self.shared,
                )?;
                metas
                    .into_iter()
                    .map(|meta| {
                        let segment = self.shared.blocks.segment(meta.location.segment);
                        (meta, segment)
                    })
                    .collect::<Vec<_>>()
            };
            match found.last() {
                Some((last, _)) if last.last.successor() > last.last => {
                    self.from = last.last.successor();
                    let upto = self.upto;
                    self.queue
                        .extend(found.into_iter().filter(|(meta, _)| meta.seq <= upto));
                }
                // The chat's blocks are read (or the last ends at the largest key there is).
                _ => {
                    self.queue
                        .extend(found.into_iter().filter(|(meta, _)| meta.seq <= self.upto));
                    self.chats.pop_front();
                    self.from = MsgKey::MIN;
                }
            }
        }
    }
}

impl Iterator for SealedBlocks {
    type Item = Result<SealedBlock>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_block() {
            Ok(block) => block.map(Ok),
            Err(e) => {
                self.chats.clear();
                self.queue.clear();
                Some(Err(e))
            }
        }
    }
}
