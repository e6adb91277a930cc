//! Streaming reads of history: everything that walks many messages goes through these cursors,
//! whose memory is one block's bytes and one decoded frame per chat, whatever the history's size.
//!
//! A cursor remembers only the next key it has to return, and looks the chat up again under its
//! lock each time it needs more: writes and rewrites go on meanwhile, and the cursor neither
//! repeats nor skips a message that stays in place. A block is read with the segment handle taken
//! under the lock, so a compaction that moves it concurrently does not break the read.

use super::blocklog::{read_held, Segment};
use super::blocks::block_name;
use super::chat::ChatState;
use super::codec::BlockView;
use super::directory::BlockMeta;
use super::model::{key_of, ChatId, MessageId, MessageRef, MsgKey, Timestamp};
use super::shared::{lock, Shared, Store};
use super::Result;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Arc, Mutex};

/// Tail messages taken per look at a chat's tail.
const TAIL_STEP: usize = 64;

impl Store {
    /// Every message of one chat with `from <= time <= to`, oldest first, read a frame at a
    /// time (memory does not depend on how many there are).
    pub fn chat_range(&self, chat: ChatId, from: Timestamp, to: Timestamp) -> ChatRange {
        self.check_thread();
        ChatRange::new(self.shared.clone(), self.shared.chat(chat), from, to)
    }

    /// Every message with `from <= time <= to`, all chats, ordered by time, then chat and id;
    /// streamed (one frame per chat in memory).
    pub fn time_range(&self, from: Timestamp, to: Timestamp) -> TimeRange {
        self.check_thread();
        let cursors = self
            .shared
            .chats_in_order()
            .into_iter()
            .filter(|(_, handle)| {
                lock(handle)
                    .activity()
                    .is_some_and(|(first, last)| first <= to && last >= from)
            })
            .map(|(_, handle)| ChatRange::new(self.shared.clone(), Some(handle), from, to))
            .collect();
        TimeRange::new(cursors)
    }
}

/// The messages of one chat in a time range, oldest first: see [`Store::chat_range`].
pub struct ChatRange {
    shared: Arc<Shared>,
    chat: Option<(ChatId, Arc<Mutex<ChatState>>)>,
    /// The smallest key not yet returned.
    next: MsgKey,
    to: Timestamp,
    /// The block being read: its entry, the block parsed once, and the next frame to decode.
    block: Option<(BlockMeta, BlockView<Vec<u8>>, usize)>,
    ready: VecDeque<MessageRef>,
}

/// What a look at a chat found next.
enum Found {
    Block(BlockMeta, Option<Arc<Segment>>),
    Tail(Vec<MessageRef>),
    Nothing,
}

impl ChatRange {
    fn new(
        shared: Arc<Shared>,
        chat: Option<Arc<Mutex<ChatState>>>,
        from: Timestamp,
        to: Timestamp,
    ) -> ChatRange {
        ChatRange {
            shared,
            chat: chat.filter(|_| from <= to).map(|handle| {
                let id = lock(&handle).id;
                (id, handle)
            }),
            next: MsgKey {
                time: from,
                id: MessageId::MIN,
            },
            to,
            block: None,
            ready: VecDeque::new(),
        }
    }

    /// Moves past `key`.
    fn advance_past(&mut self, key: MsgKey) {
        self.next = key.successor();
    }

    /// Fills `ready` with the next messages, if any are left.
    fn fill(&mut self) -> Result<()> {
        while self.ready.is_empty() {
            if self.next.time > self.to {
                self.chat = None;
            }
            let Some((chat, handle)) = self.chat.clone() else {
                return Ok(());
            };
            if let Some((meta, view, frame)) = self.block.take() {
                if self.decode_frame(chat, &meta, &view, frame)? {
                    self.block = Some((meta, view, frame + 1));
                }
                continue;
            }
            // Look the chat up again: blocks may have been sealed, rewritten or moved.
            let found = {
                let mut state = lock(&handle);
                match state
                    .directory
                    .first_ending_from(self.next, &*self.shared)?
                {
                    Some(meta) if meta.first.time <= self.to => {
                        let segment = self.shared.blocks.segment(meta.location.segment);
                        Found::Block(meta, segment)
                    }
                    Some(_) => Found::Nothing,
                    None => Found::Tail(
                        state
                            .tail
                            .iter()
                            .skip_while(|m| key_of(m) < self.next)
                            .take_while(|m| m.time <= self.to)
                            .take(TAIL_STEP)
                            .cloned()
                            .collect(),
                    ),
                }
            };
            match found {
                Found::Block(meta, segment) => {
                    let bytes = read_held(segment.as_deref(), meta.location)
                        .map_err(|e| self.shared.unreadable(block_name(chat, &meta), e))?;
                    let view = self.shared.block_view(chat, &meta, bytes)?;
                    self.block = Some((meta, view, 0));
                }
                Found::Tail(messages) => match messages.last() {
                    Some(last) => {
                        self.advance_past(key_of(last));
                        self.ready.extend(messages);
                    }
                    None => self.chat = None,
                },
                Found::Nothing => self.chat = None,
            }
        }
        Ok(())
    }

    /// Decodes frame `index` of a block into `ready` (what is in range). Returns false once
    /// `index` is past the block's last frame: the next look then starts after the block.
    fn decode_frame(
        &mut self,
        chat: ChatId,
        meta: &BlockMeta,
        view: &BlockView<Vec<u8>>,
        index: usize,
    ) -> Result<bool> {
        let Some(info) = view.header.frames.get(index) else {
            self.advance_past(meta.last);
            return Ok(false);
        };
        if info.last >= self.next && info.first.time <= self.to {
            let frame = self.shared.frame_from(chat, meta, view, index, false)?;
            self.ready.extend(
                frame
                    .iter()
                    .filter(|m| key_of(m) >= self.next && m.time <= self.to)
                    .cloned(),
            );
        }
        if let Some(last) = self.ready.back() {
            let key = key_of(last);
            self.advance_past(key);
        }
        Ok(true)
    }
}

impl Iterator for ChatRange {
    type Item = Result<MessageRef>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.fill() {
            self.chat = None;
            self.ready.clear();
            return Some(Err(e));
        }
        self.ready.pop_front().map(Ok)
    }
}

/// Messages of all chats in time order: see [`Store::time_range`].
pub struct TimeRange {
    cursors: Vec<ChatRange>,
    /// The next message of each cursor that has one, smallest first.
    heads: BinaryHeap<Reverse<(Timestamp, ChatId, MessageId, usize)>>,
    pending: Vec<Option<MessageRef>>,
    started: bool,
}

impl TimeRange {
    fn new(cursors: Vec<ChatRange>) -> TimeRange {
        let n = cursors.len();
        TimeRange {
            cursors,
            heads: BinaryHeap::with_capacity(n),
            pending: vec![None; n],
            started: false,
        }
    }

    /// Takes cursor `i`'s next message into the heap.
    fn pull(&mut self, i: usize) -> Result<()> {
        if let Some(m) = self.cursors[i].next().transpose()? {
            self.heads
                .push(Reverse((m.time, m.chat_id, m.message_id, i)));
            self.pending[i] = Some(m);
        }
        Ok(())
    }
}

impl Iterator for TimeRange {
    type Item = Result<MessageRef>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            for i in 0..self.cursors.len() {
                if let Err(e) = self.pull(i) {
                    self.heads.clear();
                    return Some(Err(e));
                }
            }
        }
        let Reverse((_, _, _, i)) = self.heads.pop()?;
        let message = self.pending[i].take();
        if let Err(e) = self.pull(i) {
            self.heads.clear();
            return Some(Err(e));
        }
        message.map(Ok)
    }
}
