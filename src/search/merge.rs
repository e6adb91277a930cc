//! Merging segments into one: a streaming k-way merge by (chat, term), then by message id, so
//! memory is a block and a record per input whatever the segments' size. Postings of chats the
//! store no longer has are dropped on the way, and an id indexed twice (a block read again
//! after a rewrite) is written once.

use super::segment::{Block, BlockCursor, Segment, SegmentError, SegmentWriter};
use crate::store::{ChatId, MessageId};
use std::collections::VecDeque;

type Result<T> = std::result::Result<T, SegmentError>;

/// A record of an input, decoded.
struct Record {
    chat: ChatId,
    term: String,
    ids: Vec<MessageId>,
    /// The next id to take.
    at: usize,
}

/// One input's records, a block at a time.
struct Input<'a> {
    segment: &'a Segment,
    blocks: BlockCursor<'a>,
    records: VecDeque<Record>,
}

impl Input<'_> {
    /// The current record, reading the next block when the last one is used up.
    fn head(&mut self) -> Result<Option<&mut Record>> {
        while self.records.front().is_some_and(|r| r.at >= r.ids.len()) {
            self.records.pop_front();
        }
        if self.records.is_empty() {
            match self.blocks.next_block()? {
                Some(block) => self.decode(&block)?,
                None => return Ok(None),
            }
        }
        Ok(self.records.front_mut())
    }

    fn decode(&mut self, block: &Block) -> Result<()> {
        let mut records = block.records();
        let malformed = || SegmentError::Damaged {
            path: self.segment.path().to_path_buf(),
            what: "a malformed record".into(),
        };
        while let Some(record) = records.next_record().map_err(|()| malformed())? {
            let mut ids = Vec::with_capacity(record.count.min(super::segment::RECORD_POSTINGS));
            record.decode_into(&mut ids).map_err(|_| malformed())?;
            if ids.is_empty() {
                return Err(malformed());
            }
            let term = String::from_utf8(record.term.to_vec()).map_err(|_| malformed())?;
            self.records.push_back(Record {
                chat: block.chat,
                term,
                ids,
                at: 0,
            });
        }
        if self.records.is_empty() {
            return Err(malformed());
        }
        Ok(())
    }
}

/// Writes the union of `inputs` to `writer`, keeping only chats that `keep` accepts.
pub fn merge(
    inputs: &[&Segment],
    writer: &mut SegmentWriter,
    keep: impl Fn(ChatId) -> bool,
) -> Result<()> {
    let mut inputs: Vec<Input> = inputs
        .iter()
        .map(|segment| Input {
            segment,
            blocks: segment.all_blocks(),
            records: VecDeque::new(),
        })
        .collect();
    loop {
        // The smallest key among the inputs' current records.
        let mut key: Option<(ChatId, String)> = None;
        for input in &mut inputs {
            if let Some(record) = input.head()? {
                if key
                    .as_ref()
                    .is_none_or(|(chat, term)| (record.chat, &record.term) < (*chat, term))
                {
                    key = Some((record.chat, record.term.clone()));
                }
            }
        }
        let Some((chat, term)) = key else {
            return Ok(());
        };
        let wanted = keep(chat);
        let mut last: Option<MessageId> = None;
        loop {
            // The smallest next id of this key among the inputs.
            let mut best: Option<(MessageId, usize)> = None;
            for (i, input) in inputs.iter_mut().enumerate() {
                if let Some(record) = input.head()? {
                    if record.chat == chat && record.term == term {
                        let id = record.ids[record.at];
                        if best.is_none_or(|(b, _)| id < b) {
                            best = Some((id, i));
                        }
                    }
                }
            }
            let Some((id, i)) = best else {
                break;
            };
            if let Some(record) = inputs[i].head()? {
                record.at += 1;
            }
            if wanted && last != Some(id) {
                writer.push(chat, &term, id)?;
            }
            last = Some(id);
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
            for &id in ids {
                writer.push(*chat, term, id).unwrap();
            }
        }
        writer.finish().unwrap();
        Segment::open(&path).unwrap()
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
        let out = dir.path().join("c.seg");
        let mut writer = SegmentWriter::create(&out).unwrap();
        merge(&[&a, &b], &mut writer, |chat| chat != 2).unwrap();
        writer.finish().unwrap();
        let merged = Segment::open(&out).unwrap();
        let mut all: Vec<(ChatId, String, MessageId)> = Vec::new();
        let mut blocks = merged.all_blocks();
        while let Some(block) = blocks.next_block().unwrap() {
            let mut records = block.records();
            while let Some(record) = records.next_record().unwrap() {
                let mut ids = Vec::new();
                record.decode_into(&mut ids).unwrap();
                let term = String::from_utf8(record.term.to_vec()).unwrap();
                all.extend(ids.into_iter().map(|id| (block.chat, term.clone(), id)));
            }
        }
        let mut expected: Vec<(ChatId, String, MessageId)> = [1, 5, 7, 9]
            .iter()
            .map(|&id| (1, "кіт".to_string(), id))
            .collect();
        expected.extend((0..6000).map(|id| (1, "пес".to_string(), id)));
        expected.push((3, "сир".to_string(), 1));
        assert_eq!(all, expected);
    }
}
