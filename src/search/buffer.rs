//! Postings of messages read since the last segment was written, in memory until there are
//! [`FLUSH_POSTINGS`] of them (a few MiB); queries read them as they read a segment.

use super::segment::{self, SegmentWriter};
use super::want::Want;
use crate::store::{ChatId, MessageId};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Postings that make the buffer a segment.
pub const FLUSH_POSTINGS: usize = 64 * 1024;

/// See the module's documentation.
#[derive(Default)]
pub struct Buffer {
    lists: BTreeMap<ChatId, FxHashMap<Box<str>, Vec<MessageId>>>,
    postings: usize,
    /// Messages and words read (for the average message length that ranking uses).
    pub messages: u64,
    pub words: u64,
}

impl Buffer {
    /// Adds `postings` (term, message id) of `chat`.
    pub fn add(&mut self, chat: ChatId, postings: &[(String, MessageId)]) {
        let lists = self.lists.entry(chat).or_default();
        for (term, id) in postings {
            match lists.get_mut(term.as_str()) {
                Some(list) => list.push(*id),
                None => {
                    lists.insert(term.as_str().into(), vec![*id]);
                }
            }
        }
        self.postings += postings.len();
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
        let mut add = |term: &str, ids: &[MessageId]| {
            for &id in ids {
                out(term, id);
            }
        };
        if !want.starts.is_empty() {
            for (term, ids) in lists {
                if want.holds(term) {
                    add(term, ids);
                }
            }
        } else {
            for term in &want.terms {
                if let Some(ids) = lists.get(term.as_str()) {
                    add(term, ids);
                }
            }
        }
    }

    /// Writes the postings, sorted, to `writer`.
    pub fn write(&self, writer: &mut SegmentWriter) -> Result<(), segment::SegmentError> {
        let mut ids = Vec::new();
        for (chat, lists) in &self.lists {
            let mut terms: Vec<(&Box<str>, &Vec<MessageId>)> = lists.iter().collect();
            terms.sort_unstable_by_key(|(term, _)| *term);
            for (term, list) in terms {
                ids.clone_from(list);
                ids.sort_unstable();
                ids.dedup();
                writer.push_run(*chat, term.as_bytes(), &ids)?;
            }
        }
        Ok(())
    }
}
