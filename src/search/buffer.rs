//! Postings of messages read since the last segment was written, in memory until there are
//! [`FLUSH_POSTINGS`] of them (about 3 MiB); queries read them as they read a segment.

use super::segment::{self, SegmentWriter};
use super::Want;
use crate::store::{ChatId, MessageId};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Postings that make the buffer a segment.
pub const FLUSH_POSTINGS: usize = 64 * 1024;

/// See the module's documentation.
#[derive(Default)]
pub struct Buffer {
    lists: BTreeMap<ChatId, BTreeMap<Box<str>, Vec<MessageId>>>,
    postings: usize,
    /// Messages and words read (for the average message length that ranking uses).
    pub messages: u64,
    pub words: u64,
}

impl Buffer {
    /// Adds message `id` of `chat` under `term`.
    pub fn add(&mut self, chat: ChatId, term: &str, id: MessageId) {
        let lists = self.lists.entry(chat).or_default();
        match lists.get_mut(term) {
            Some(list) => list.push(id),
            None => {
                lists.insert(term.into(), vec![id]);
            }
        }
        self.postings += 1;
    }

    /// Postings held.
    pub fn postings(&self) -> usize {
        self.postings
    }

    pub fn is_empty(&self) -> bool {
        self.postings == 0
    }

    /// Adds the ids of `chat` under what `want` asks for to `out`.
    pub fn find(&self, chat: ChatId, want: &Want, out: &mut impl FnMut(&str, MessageId)) {
        let Some(lists) = self.lists.get(&chat) else {
            return;
        };
        for looked_for in &want.terms {
            let from = (Bound::Included(looked_for.as_str()), Bound::Unbounded);
            for (term, ids) in lists.range::<str, _>(from) {
                // The terms a prefix wants sort right after it.
                if !want.holds_for(looked_for, term) {
                    break;
                }
                for &id in ids {
                    out(term, id);
                }
            }
        }
    }

    /// Writes the postings, sorted, to `writer`.
    pub fn write(&self, writer: &mut SegmentWriter) -> Result<(), segment::SegmentError> {
        let mut ids = Vec::new();
        for (chat, lists) in &self.lists {
            for (term, list) in lists {
                ids.clone_from(list);
                ids.sort_unstable();
                ids.dedup();
                for &id in &ids {
                    writer.push(*chat, term, id)?;
                }
            }
        }
        Ok(())
    }
}
