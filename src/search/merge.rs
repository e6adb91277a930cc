//! Merging segments into one: a streaming k-way merge by (chat, term), then by message id, so
//! memory is a block and a record per input whatever the segments' size. Postings of chats the
//! store no longer has are dropped on the way, and an id indexed twice (a block read again
//! after a rewrite) is written once.

use super::segment::{Block, BlockCursor, Segment, SegmentError, SegmentWriter};
use crate::store::{ChatId, MessageId};
use std::ops::Range;

type Result<T> = std::result::Result<T, SegmentError>;

/// A record of an input's current block: where its term and ids are in the input's buffers.
struct Record {
    term: Range<usize>,
    ids: Range<usize>,
}

/// One input, a block at a time: the block's terms and ids decoded into two buffers reused
/// from block to block.
struct Input<'a> {
    segment: &'a Segment,
    blocks: BlockCursor<'a>,
    chat: ChatId,
    terms: Vec<u8>,
    ids: Vec<MessageId>,
    records: Vec<Record>,
    /// The current record, and the next of its ids to take (an index into `ids`).
    current: usize,
    at: usize,
}

impl<'a> Input<'a> {
    fn new(segment: &'a Segment) -> Self {
        Input {
            segment,
            blocks: segment.all_blocks(),
            chat: 0,
            terms: Vec::new(),
            ids: Vec::new(),
            records: Vec::new(),
            current: 0,
            at: 0,
        }
    }

    /// Moves past a used-up record, reading the next block when the last one is used up;
    /// whether there is a current record.
    fn ready(&mut self) -> Result<bool> {
        while self
            .records
            .get(self.current)
            .is_some_and(|r| self.at >= r.ids.end)
        {
            self.current += 1;
            if let Some(next) = self.records.get(self.current) {
                self.at = next.ids.start;
            }
        }
        if self.current < self.records.len() {
            return Ok(true);
        }
        match self.blocks.next_block()? {
            Some(block) => self.decode(&block)?,
            None => return Ok(false),
        }
        Ok(true)
    }

    /// The current record's key (after [`Input::ready`] said there is one).
    fn key(&self) -> (ChatId, &[u8]) {
        (
            self.chat,
            &self.terms[self.records[self.current].term.clone()],
        )
    }

    /// The current record's ids not taken yet.
    fn rest(&self) -> &[MessageId] {
        &self.ids[self.at..self.records[self.current].ids.end]
    }

    fn decode(&mut self, block: &Block) -> Result<()> {
        let malformed = || SegmentError::Damaged {
            path: self.segment.path().to_path_buf(),
            what: "a malformed record".into(),
        };
        self.chat = block.chat;
        self.terms.clear();
        self.ids.clear();
        self.records.clear();
        let mut records = block.records();
        while let Some(record) = records.next_record().map_err(|()| malformed())? {
            let ids_from = self.ids.len();
            record.decode_into(&mut self.ids).map_err(|_| malformed())?;
            if self.ids.len() == ids_from || std::str::from_utf8(record.term).is_err() {
                return Err(malformed());
            }
            let term_from = self.terms.len();
            self.terms.extend_from_slice(record.term);
            self.records.push(Record {
                term: term_from..self.terms.len(),
                ids: ids_from..self.ids.len(),
            });
        }
        if self.records.is_empty() {
            return Err(malformed());
        }
        self.current = 0;
        self.at = 0;
        Ok(())
    }
}

/// Writes the union of `inputs` to `writer`, keeping only chats that `keep` accepts.
pub fn merge(
    inputs: &[&Segment],
    writer: &mut SegmentWriter,
    keep: impl Fn(ChatId) -> bool,
) -> Result<()> {
    let mut inputs: Vec<Input> = inputs.iter().map(|segment| Input::new(segment)).collect();
    let mut term = Vec::new();
    loop {
        // The smallest key among the inputs' current records.
        let mut chat: Option<ChatId> = None;
        for input in &mut inputs {
            if input.ready()? && chat.is_none_or(|chat| input.key() < (chat, &term)) {
                let (input_chat, input_term) = input.key();
                chat = Some(input_chat);
                term.clear();
                term.extend_from_slice(input_term);
            }
        }
        let Some(chat) = chat else {
            return Ok(());
        };
        let wanted = keep(chat);
        let mut last: Option<MessageId> = None;
        loop {
            // The input holding the key's smallest next id, and the smallest next id of the
            // others: its ids up to that one go at once (a key's ids are mostly in one input,
            // or in disjoint ranges of several, newer segments holding newer messages).
            let mut best: Option<(MessageId, usize)> = None;
            let mut bound = MessageId::MAX;
            for (i, input) in inputs.iter_mut().enumerate() {
                if !input.ready()? || input.key() != (chat, &term[..]) {
                    continue;
                }
                let id = input.rest()[0];
                match best {
                    Some((b, _)) if id >= b => bound = bound.min(id),
                    _ => {
                        if let Some((b, _)) = best {
                            bound = bound.min(b);
                        }
                        best = Some((id, i));
                    }
                }
            }
            let Some((_, i)) = best else {
                break;
            };
            let input = &mut inputs[i];
            let run = input.rest().partition_point(|&id| id <= bound);
            let mut ids = &input.rest()[..run];
            // An id equal to another input's next one is written once.
            if last.is_some_and(|l| ids.first() == Some(&l)) {
                ids = &ids[1..];
            }
            if wanted {
                writer.push_run(chat, &term, ids)?;
            }
            if let Some(&id) = ids.last() {
                last = Some(id);
            }
            input.at += run;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(
        dir: &std::path::Path,
        name: &str,
        lists: &[(ChatId, &str, Vec<MessageId>)],
    ) -> Segment {
        let path = dir.join(name);
        let mut writer = SegmentWriter::create(&path).unwrap();
        for (chat, term, ids) in lists {
            writer.push_run(*chat, term.as_bytes(), ids).unwrap();
        }
        writer.finish().unwrap();
        Segment::open(&path).unwrap()
    }

    /// Every posting of a segment, in order.
    fn postings_of(segment: &Segment) -> Vec<(ChatId, String, MessageId)> {
        crate::search::segment::read_all(segment)
            .into_iter()
            .flat_map(|(chat, term, ids)| ids.into_iter().map(move |id| (chat, term.clone(), id)))
            .collect()
    }

    fn merged(
        dir: &std::path::Path,
        inputs: &[&Segment],
        keep: impl Fn(ChatId) -> bool,
    ) -> Vec<(ChatId, String, MessageId)> {
        let out = dir.join("merged.seg");
        let mut writer = SegmentWriter::create(&out).unwrap();
        merge(inputs, &mut writer, keep).unwrap();
        writer.finish().unwrap();
        postings_of(&Segment::open(&out).unwrap())
    }

    #[test]
    fn merged_lists_are_sorted_without_repeats_or_dropped_chats() {
        let dir = tempfile::tempdir().unwrap();
        let long: Vec<MessageId> = (0..3000).map(|i| i * 2).collect();
        let long_odd: Vec<MessageId> = (0..3000).map(|i| i * 2 + 1).collect();
        let a = write(
            dir.path(),
            "a.seg",
            &[
                (1, "кіт", vec![1, 5, 9]),
                (1, "пес", long.clone()),
                (2, "кіт", vec![4]),
            ],
        );
        let b = write(
            dir.path(),
            "b.seg",
            &[
                (1, "кіт", vec![5, 7]),
                (1, "пес", long_odd.clone()),
                (3, "сир", vec![1]),
            ],
        );
        let mut expected: Vec<(ChatId, String, MessageId)> = [1, 5, 7, 9]
            .iter()
            .map(|&id| (1, "кіт".to_string(), id))
            .collect();
        expected.extend((0..6000).map(|id| (1, "пес".to_string(), id)));
        expected.push((3, "сир".to_string(), 1));
        assert_eq!(merged(dir.path(), &[&a, &b], |chat| chat != 2), expected);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the inputs (overlapping, interleaved or disjoint ids, keys in some inputs
        /// only, lists longer than a record or a block), the merge is their sorted union
        /// without repeats.
        #[test]
        fn a_merge_is_the_union_of_its_inputs(
            inputs in proptest::collection::vec(
                proptest::collection::btree_map(
                    (1..4i64, proptest::sample::select(vec!["а", "аб", "б", "ві", "віз"])),
                    // Up to 5,000 ids over a wide range: a key's list spans several records
                    // and blocks of an input.
                    proptest::collection::btree_set(0..100_000i32, 1..5_000),
                    1..6,
                ),
                1..5,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let segments: Vec<Segment> = inputs
                .iter()
                .enumerate()
                .map(|(n, lists)| {
                    let lists: Vec<(ChatId, &str, Vec<MessageId>)> = lists
                        .iter()
                        .map(|(&(chat, term), ids)| (chat, term, ids.iter().copied().collect()))
                        .collect();
                    write(dir.path(), &format!("{n}.seg"), &lists)
                })
                .collect();
            let mut expected = std::collections::BTreeSet::new();
            for lists in &inputs {
                for (&(chat, term), ids) in lists {
                    expected.extend(ids.iter().map(|&id| (chat, term.to_string(), id)));
                }
            }
            let refs: Vec<&Segment> = segments.iter().collect();
            let all = merged(dir.path(), &refs, |_| true);
            proptest::prop_assert_eq!(all, expected.into_iter().collect::<Vec<_>>());
        }
    }
}
