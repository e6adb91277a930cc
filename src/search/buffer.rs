//! Postings of messages read since the last segment was written, in memory until there are
//! [`FLUSH_POSTINGS`] of them; queries read them as they read a segment.
//!
//! Compact because the bot always holds one: each distinct term once in one string (found again
//! through a table of 4-byte indexes), and per chat its (term, message id) pairs as read, 8 bytes
//! each. A map per chat and term held a string, a list and a table entry per pair, about 110
//! bytes each.

use super::segment::{self, SegmentWriter};
use super::want::Want;
use crate::store::{ChatId, MessageId};
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::collections::BTreeMap;
use std::hash::BuildHasher;

/// Postings that make the buffer a segment.
pub const FLUSH_POSTINGS: usize = 64 * 1024;

/// See the module's documentation.
#[derive(Default)]
pub struct Buffer {
    /// Every distinct term, one after another.
    text: String,
    /// Where each term is in `text`: (start, end).
    terms: Vec<(u32, u32)>,
    /// Indexes into `terms`, by the term's text.
    lookup: HashTable<u32>,
    /// Per chat, (term index, message id) in the order read.
    lists: BTreeMap<ChatId, Vec<(u32, MessageId)>>,
    postings: usize,
    /// Messages and words read (for the average message length that ranking uses).
    pub messages: u64,
    pub words: u64,
}

impl Buffer {
    /// Adds `postings` (term, message id) of `chat`.
    pub fn add(&mut self, chat: ChatId, postings: &[(String, MessageId)]) {
        let mut list = self.lists.remove(&chat).unwrap_or_default();
        for (term, id) in postings {
            list.push((self.intern(term), *id));
        }
        self.lists.insert(chat, list);
        self.postings += postings.len();
    }

    /// The index of `term`, added if new.
    fn intern(&mut self, term: &str) -> u32 {
        let hash = FxBuildHasher.hash_one(term);
        let Buffer {
            text,
            terms,
            lookup,
            ..
        } = self;
        let text_of = |i: u32| {
            let (start, end) = terms[i as usize];
            &text[start as usize..end as usize]
        };
        if let Some(&i) = lookup.find(hash, |&i| text_of(i) == term) {
            return i;
        }
        let i = terms.len() as u32;
        let start = text.len() as u32;
        text.push_str(term);
        terms.push((start, text.len() as u32));
        let (text, terms) = (&*text, &*terms);
        lookup.insert_unique(hash, i, |&i| {
            let (start, end) = terms[i as usize];
            FxBuildHasher.hash_one(&text[start as usize..end as usize])
        });
        i
    }

    fn term(&self, i: u32) -> &str {
        let (start, end) = self.terms[i as usize];
        &self.text[start as usize..end as usize]
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
        let Some(list) = self.lists.get(&chat) else {
            return;
        };
        // The terms it holds, marked by index: its forms looked up, and for starts the
        // distinct terms that begin so (a few thousand prefix tests at most).
        let mut wanted = vec![false; self.terms.len()];
        let mut any = false;
        for term in &want.terms {
            if let Some(i) = self.index_of(term) {
                wanted[i as usize] = true;
                any = true;
            }
        }
        if !want.starts.is_empty() {
            for (i, mark) in wanted.iter_mut().enumerate() {
                let term = self.term(i as u32);
                if want.starts.iter().any(|s| term.starts_with(s.as_str())) {
                    *mark = true;
                    any = true;
                }
            }
        }
        if !any {
            return;
        }
        for &(term, id) in list {
            if wanted[term as usize] {
                out(self.term(term), id);
            }
        }
    }

    /// The index of `term`, if the buffer holds it.
    fn index_of(&self, term: &str) -> Option<u32> {
        let hash = FxBuildHasher.hash_one(term);
        self.lookup.find(hash, |&i| self.term(i) == term).copied()
    }

    /// Writes the postings, sorted, to `writer`.
    pub fn write(&self, writer: &mut SegmentWriter) -> Result<(), segment::SegmentError> {
        let mut sorted = Vec::new();
        let mut ids = Vec::new();
        for (chat, list) in &self.lists {
            sorted.clone_from(list);
            sorted.sort_unstable_by(|a, b| self.term(a.0).cmp(self.term(b.0)).then(a.1.cmp(&b.1)));
            sorted.dedup();
            for run in sorted.chunk_by(|a, b| a.0 == b.0) {
                ids.clear();
                ids.extend(run.iter().map(|&(_, id)| id));
                writer.push_run(*chat, self.term(run[0].0).as_bytes(), &ids)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::segment::{read_all, Segment};

    fn postings(list: &[(&str, MessageId)]) -> Vec<(String, MessageId)> {
        list.iter().map(|&(t, id)| (t.to_string(), id)).collect()
    }

    #[test]
    fn finds_and_writes_each_chats_postings_sorted_once() {
        let mut buffer = Buffer::default();
        buffer.add(2, &postings(&[("кіт", 5), ("пес", 5), ("кіт", 3)]));
        buffer.add(1, &postings(&[("пес", 9), ("котик", 9)]));
        buffer.add(2, &postings(&[("кіт", 5), ("котик", 7)]));
        assert_eq!(buffer.postings(), 7);
        let found = |chat, want: &Want| {
            let mut ids = Vec::new();
            buffer.find(chat, want, &mut |term, id| ids.push((term.to_string(), id)));
            ids.sort();
            ids
        };
        let exact = Want {
            terms: vec!["кіт".into(), "нема".into()],
            starts: vec![],
        };
        assert_eq!(
            found(2, &exact),
            [("кіт".into(), 3), ("кіт".into(), 5), ("кіт".into(), 5)]
        );
        assert_eq!(found(1, &exact), []);
        let start = Want {
            terms: vec![],
            starts: vec!["ко".into()],
        };
        assert_eq!(found(2, &start), [("котик".into(), 7)]);
        assert_eq!(found(3, &start), []);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        let mut writer = SegmentWriter::create(&path).unwrap();
        buffer.write(&mut writer).unwrap();
        assert_eq!(writer.finish().unwrap(), 6);
        let all = read_all(&Segment::open(&path).unwrap());
        assert_eq!(
            all,
            [
                (1, "котик".into(), vec![9]),
                (1, "пес".into(), vec![9]),
                // Byte order: "о" (U+043E) before "і" (U+0456).
                (2, "котик".into(), vec![7]),
                (2, "кіт".into(), vec![3, 5]),
                (2, "пес".into(), vec![5]),
            ]
        );
    }
}
