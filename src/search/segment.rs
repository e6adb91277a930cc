//! An index segment: one immutable file of postings, sorted by chat and term.
//!
//! ```text
//! header   "CHATKEEPER-SRCH\n" and a version byte
//! blocks   of about 8 KiB, each holding records of one chat; a record is
//!          varint shared-prefix length, varint suffix length, suffix bytes (the term, sharing
//!          its start with the record before it in the block), varint posting count, then the
//!          postings (`postings.rs`: one varint each, so their end is found by reading them);
//!          a list longer than RECORD_POSTINGS is split into several records of the same term
//! footer   one fixed-size entry per block: chat (i64), the block's first term (up to
//!          KEY_BYTES bytes, zero-padded, and its length), offset (u64), length and CRC-32 of
//!          the block (u32 each); all little-endian
//! trailer  footer offset (u64), entry count (u32), CRC-32 of the footer (u32), "SRCH-END"
//! ```
//!
//! A lookup binary-searches the footer with positioned reads and reads the blocks that may hold
//! the term, checking each block's CRC: nothing of a segment stays in memory but its handle, so
//! memory does not grow with the index.

use super::postings;
use crate::store::{ChatId, MessageId};
use integer_encoding::VarInt;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 16] = b"CHATKEEPER-SRCH\n";
const VERSION: u8 = 1;
const HEADER: u64 = 17;
const END: &[u8; 8] = b"SRCH-END";
const TRAILER: u64 = 24;
/// A block is closed once it holds this many bytes.
const BLOCK_BYTES: usize = 8192;
/// Postings per record at most: a block, and what a reader decodes at once, stays small.
pub const RECORD_POSTINGS: usize = 1024;
/// Bytes of a block's first term kept in its footer entry.
const KEY_BYTES: usize = 23;
const ENTRY: u64 = 8 + KEY_BYTES as u64 + 1 + 8 + 4 + 4;

/// Appends `value` as a varint.
fn put_varint(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0u8; 10];
    let len = value.encode_var(&mut buf);
    out.extend_from_slice(&buf[..len]);
}

/// Why a segment cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Damaged { path: PathBuf, what: String },
}

type Result<T> = std::result::Result<T, SegmentError>;

/// A footer entry: where a block is and what it starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    chat: ChatId,
    key: Vec<u8>,
    offset: u64,
    len: u32,
    crc: u32,
}

impl Entry {
    fn encode(&self) -> [u8; ENTRY as usize] {
        let mut out = [0u8; ENTRY as usize];
        out[..8].copy_from_slice(&self.chat.to_le_bytes());
        out[8..8 + self.key.len()].copy_from_slice(&self.key);
        out[8 + KEY_BYTES] = self.key.len() as u8;
        let at = 9 + KEY_BYTES;
        out[at..at + 8].copy_from_slice(&self.offset.to_le_bytes());
        out[at + 8..at + 12].copy_from_slice(&self.len.to_le_bytes());
        out[at + 12..at + 16].copy_from_slice(&self.crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Entry> {
        let chat = i64::from_le_bytes(bytes[..8].try_into().ok()?);
        let key_len = bytes[8 + KEY_BYTES] as usize;
        if key_len > KEY_BYTES {
            return None;
        }
        let at = 9 + KEY_BYTES;
        Some(Entry {
            chat,
            key: bytes[8..8 + key_len].to_vec(),
            offset: u64::from_le_bytes(bytes[at..at + 8].try_into().ok()?),
            len: u32::from_le_bytes(bytes[at + 8..at + 12].try_into().ok()?),
            crc: u32::from_le_bytes(bytes[at + 12..at + 16].try_into().ok()?),
        })
    }
}

/// The first [`KEY_BYTES`] of a term, as footer entries keep it.
fn key_of(term: &[u8]) -> &[u8] {
    &term[..term.len().min(KEY_BYTES)]
}

/// Writes a segment from postings pushed in (chat, term, id) order.
pub struct SegmentWriter {
    path: PathBuf,
    file: BufWriter<File>,
    footer_path: PathBuf,
    footer: BufWriter<File>,
    offset: u64,
    entries: u32,
    block: Vec<u8>,
    block_chat: ChatId,
    block_key: Vec<u8>,
    /// The term of the block's last record (the next one shares its start).
    last_term: Vec<u8>,
    /// The record being filled.
    chat: ChatId,
    term: Vec<u8>,
    record: Vec<MessageId>,
    postings: u64,
    scratch: Vec<u8>,
}

impl SegmentWriter {
    /// Starts a segment at `path` (replaced if it exists).
    pub fn create(path: &Path) -> Result<SegmentWriter> {
        let io = |source| SegmentError::Io {
            path: path.to_path_buf(),
            source,
        };
        let footer_path = path.with_extension("footer");
        let mut file = BufWriter::new(File::create(path).map_err(io)?);
        file.write_all(MAGIC).map_err(io)?;
        file.write_all(&[VERSION]).map_err(io)?;
        let footer = BufWriter::new(File::create(&footer_path).map_err(io)?);
        Ok(SegmentWriter {
            path: path.to_path_buf(),
            file,
            footer_path,
            footer,
            offset: HEADER,
            entries: 0,
            block: Vec::with_capacity(2 * BLOCK_BYTES),
            block_chat: 0,
            block_key: Vec::new(),
            last_term: Vec::new(),
            chat: 0,
            term: Vec::new(),
            record: Vec::new(),
            postings: 0,
            scratch: Vec::new(),
        })
    }

    fn io(&self, source: std::io::Error) -> SegmentError {
        SegmentError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Adds postings of one key: keys must come in order, and ids ascending within a key (a
    /// key's ids may come in several runs).
    pub fn push_run(&mut self, chat: ChatId, term: &[u8], ids: &[MessageId]) -> Result<()> {
        if chat != self.chat || term != self.term {
            self.end_record()?;
            self.chat = chat;
            self.term.clear();
            self.term.extend_from_slice(term);
        }
        for &id in ids {
            if self.record.last().is_some_and(|&last| last >= id) {
                debug_assert!(false, "postings out of order");
                continue;
            }
            if self.record.len() >= RECORD_POSTINGS {
                self.end_record()?;
            }
            self.record.push(id);
            self.postings += 1;
        }
        Ok(())
    }

    /// Writes the record being filled into the block.
    fn end_record(&mut self) -> Result<()> {
        if self.record.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        postings::encode(&self.record, &mut self.scratch);
        let large = self.scratch.len() >= BLOCK_BYTES / 2;
        if !self.block.is_empty() && (self.chat != self.block_chat || large) {
            self.end_block()?;
        }
        if self.block.is_empty() {
            self.block_chat = self.chat;
            self.block_key = key_of(&self.term).to_vec();
            self.last_term.clear();
        }
        let shared = self
            .last_term
            .iter()
            .zip(&self.term)
            .take_while(|(a, b)| a == b)
            .count();
        let suffix = &self.term[shared..];
        put_varint(&mut self.block, shared as u64);
        put_varint(&mut self.block, suffix.len() as u64);
        self.block.extend_from_slice(suffix);
        put_varint(&mut self.block, self.record.len() as u64);
        self.block.extend_from_slice(&self.scratch);
        self.last_term.clone_from(&self.term);
        self.record.clear();
        if self.block.len() >= BLOCK_BYTES || large {
            self.end_block()?;
        }
        Ok(())
    }

    fn end_block(&mut self) -> Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let entry = Entry {
            chat: self.block_chat,
            key: std::mem::take(&mut self.block_key),
            offset: self.offset,
            len: self.block.len() as u32,
            crc: crc32fast::hash(&self.block),
        };
        self.file.write_all(&self.block).map_err(|e| self.io(e))?;
        self.footer
            .write_all(&entry.encode())
            .map_err(|e| self.io(e))?;
        self.offset += self.block.len() as u64;
        self.entries += 1;
        self.block.clear();
        Ok(())
    }

    /// Writes the footer and trailer and syncs the file; returns the postings written.
    pub fn finish(mut self) -> Result<u64> {
        self.end_record()?;
        self.end_block()?;
        self.footer.flush().map_err(|e| self.io(e))?;
        let footer_offset = self.offset;
        let mut crc = crc32fast::Hasher::new();
        let mut footer = File::open(&self.footer_path).map_err(|e| self.io(e))?;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let read = footer.read(&mut chunk).map_err(|e| self.io(e))?;
            if read == 0 {
                break;
            }
            crc.update(&chunk[..read]);
            self.file
                .write_all(&chunk[..read])
                .map_err(|e| self.io(e))?;
        }
        let mut trailer = Vec::with_capacity(TRAILER as usize);
        trailer.extend_from_slice(&footer_offset.to_le_bytes());
        trailer.extend_from_slice(&self.entries.to_le_bytes());
        trailer.extend_from_slice(&crc.finalize().to_le_bytes());
        trailer.extend_from_slice(END);
        self.file.write_all(&trailer).map_err(|e| self.io(e))?;
        self.file.flush().map_err(|e| self.io(e))?;
        self.file.get_ref().sync_all().map_err(|e| self.io(e))?;
        let _ = std::fs::remove_file(&self.footer_path);
        Ok(self.postings)
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        // A writer dropped unfinished leaves its footer file; a finished one removed it already.
        let _ = std::fs::remove_file(&self.footer_path);
    }
}

/// One record read from a block.
pub struct Record<'a> {
    pub term: &'a [u8],
    pub count: usize,
    pub postings: &'a [u8],
}

impl Record<'_> {
    /// Its postings appended to `out`.
    pub fn decode_into(
        &self,
        out: &mut Vec<MessageId>,
    ) -> std::result::Result<(), postings::Malformed> {
        postings::decode(self.postings, self.count, out)
    }
}

/// Walks the records of one block.
pub struct Records<'a> {
    bytes: &'a [u8],
    at: usize,
    term: Vec<u8>,
}

impl<'a> Records<'a> {
    fn new(bytes: &'a [u8]) -> Records<'a> {
        Records {
            bytes,
            at: 0,
            term: Vec::new(),
        }
    }

    fn varint(&mut self) -> Option<usize> {
        let (value, read) = u64::decode_var(self.bytes.get(self.at..)?)?;
        self.at += read;
        usize::try_from(value).ok()
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(bytes)
    }

    /// The next record, `Ok(None)` at the block's end, `Err` if the block is malformed.
    pub fn next_record(&mut self) -> std::result::Result<Option<Record<'_>>, ()> {
        if self.at >= self.bytes.len() {
            return Ok(None);
        }
        let mut parse = || {
            let shared = self.varint()?;
            let suffix_len = self.varint()?;
            let suffix = self.take(suffix_len)?;
            if shared > self.term.len() {
                return None;
            }
            self.term.truncate(shared);
            self.term.extend_from_slice(suffix);
            let count = self.varint()?;
            // The postings are `count` varints: their last bytes have the high bit clear.
            let start = self.at;
            let mut ends = 0;
            while ends < count {
                let byte = *self.bytes.get(self.at)?;
                self.at += 1;
                if byte & 0x80 == 0 {
                    ends += 1;
                }
            }
            let postings = &self.bytes[start..self.at];
            Some((count, postings))
        };
        let (count, postings) = parse().ok_or(())?;
        Ok(Some(Record {
            term: &self.term,
            count,
            postings,
        }))
    }
}

/// An open segment.
pub struct Segment {
    path: PathBuf,
    file: File,
    footer_offset: u64,
    entries: u64,
}

/// A block read and checked.
pub struct Block {
    pub chat: ChatId,
    bytes: Vec<u8>,
}

impl Block {
    /// Its records.
    pub fn records(&self) -> Records<'_> {
        Records::new(&self.bytes)
    }
}

impl Segment {
    /// Opens a segment, checking its header, trailer and footer.
    pub fn open(path: &Path) -> Result<Segment> {
        let io = |source| SegmentError::Io {
            path: path.to_path_buf(),
            source,
        };
        let damaged = |what: &str| SegmentError::Damaged {
            path: path.to_path_buf(),
            what: what.to_string(),
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER + TRAILER {
            return Err(damaged("too short"));
        }
        let mut header = [0u8; HEADER as usize];
        file.read_exact_at(&mut header, 0).map_err(io)?;
        if &header[..16] != MAGIC {
            return Err(damaged("not a search segment"));
        }
        if header[16] != VERSION {
            return Err(damaged(&format!("segment version {}", header[16])));
        }
        let mut trailer = [0u8; TRAILER as usize];
        file.read_exact_at(&mut trailer, len - TRAILER)
            .map_err(io)?;
        if &trailer[16..] != END {
            return Err(damaged("the trailer is missing (a write cut short)"));
        }
        let footer_offset = u64::from_le_bytes(trailer[..8].try_into().unwrap_or_default());
        let entries = u32::from_le_bytes(trailer[8..12].try_into().unwrap_or_default()) as u64;
        let crc = u32::from_le_bytes(trailer[12..16].try_into().unwrap_or_default());
        let fits = entries
            .checked_mul(ENTRY)
            .and_then(|footer| footer.checked_add(footer_offset))
            .and_then(|end| end.checked_add(TRAILER))
            == Some(len);
        if footer_offset < HEADER || !fits {
            return Err(damaged("the footer does not fit the file"));
        }
        let segment = Segment {
            path: path.to_path_buf(),
            file,
            footer_offset,
            entries,
        };
        let mut hasher = crc32fast::Hasher::new();
        let mut reader = BufReader::new(&segment.file);
        reader.seek(SeekFrom::Start(footer_offset)).map_err(io)?;
        let mut left = entries * ENTRY;
        let mut chunk = vec![0u8; 64 * 1024];
        while left > 0 {
            let take = left.min(chunk.len() as u64) as usize;
            reader.read_exact(&mut chunk[..take]).map_err(io)?;
            hasher.update(&chunk[..take]);
            left -= take as u64;
        }
        if hasher.finalize() != crc {
            return Err(damaged("the footer's checksum does not match"));
        }
        Ok(segment)
    }

    /// The segment's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn damaged(&self, what: String) -> SegmentError {
        SegmentError::Damaged {
            path: self.path.clone(),
            what,
        }
    }

    fn entry(&self, index: u64) -> Result<Entry> {
        let mut bytes = [0u8; ENTRY as usize];
        self.file
            .read_exact_at(&mut bytes, self.footer_offset + index * ENTRY)
            .map_err(|source| SegmentError::Io {
                path: self.path.clone(),
                source,
            })?;
        Entry::decode(&bytes).ok_or_else(|| self.damaged(format!("footer entry {index}")))
    }

    fn read_block(&self, entry: &Entry) -> Result<Block> {
        let inside = entry.offset >= HEADER
            && entry
                .offset
                .checked_add(u64::from(entry.len))
                .is_some_and(|end| end <= self.footer_offset);
        if !inside {
            return Err(self.damaged(format!("a block at {} outside the blocks", entry.offset)));
        }
        let mut bytes = vec![0u8; entry.len as usize];
        self.file
            .read_exact_at(&mut bytes, entry.offset)
            .map_err(|source| SegmentError::Io {
                path: self.path.clone(),
                source,
            })?;
        if crc32fast::hash(&bytes) != entry.crc {
            return Err(self.damaged(format!("the block at {} fails its checksum", entry.offset)));
        }
        Ok(Block {
            chat: entry.chat,
            bytes,
        })
    }

    /// The index of the first block that may hold `(chat, term)` or a later key of the chat:
    /// the block before the first whose start is at or after the key, if it is the chat's.
    fn first_block_for(&self, chat: ChatId, term: &[u8]) -> Result<u64> {
        let wanted = (chat, key_of(term));
        let (mut low, mut high) = (0, self.entries);
        while low < high {
            let mid = (low + high) / 2;
            let entry = self.entry(mid)?;
            if (entry.chat, entry.key.as_slice()) < wanted {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        if low > 0 && self.entry(low - 1)?.chat == chat {
            Ok(low - 1)
        } else {
            Ok(low)
        }
    }

    /// Blocks of `chat` from the first that may hold `term` on, one at a time.
    pub fn blocks_from(&self, chat: ChatId, term: &[u8]) -> Result<BlockCursor<'_>> {
        Ok(BlockCursor {
            segment: self,
            chat: Some(chat),
            next: self.first_block_for(chat, term)?,
        })
    }

    /// Every block, in order (merges and checks).
    pub fn all_blocks(&self) -> BlockCursor<'_> {
        BlockCursor {
            segment: self,
            chat: None,
            next: 0,
        }
    }

    /// Reads every block and record, checking checksums and encodings; the postings counted.
    pub fn check(&self) -> Result<u64> {
        let mut postings = 0u64;
        let mut decoded = Vec::new();
        let mut previous: Option<(ChatId, Vec<u8>)> = None;
        let mut blocks = self.all_blocks();
        while let Some(block) = blocks.next_block()? {
            let mut records = block.records();
            loop {
                let record = match records.next_record() {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    Err(()) => return Err(self.damaged("a malformed record".into())),
                };
                decoded.clear();
                record
                    .decode_into(&mut decoded)
                    .map_err(|e| self.damaged(e.to_string()))?;
                let key = (block.chat, record.term.to_vec());
                if previous.as_ref().is_some_and(|p| *p > key) {
                    return Err(self.damaged("terms out of order".into()));
                }
                previous = Some(key);
                postings += decoded.len() as u64;
            }
        }
        Ok(postings)
    }
}

/// Reads a segment's blocks in order (see [`Segment::blocks_from`]).
pub struct BlockCursor<'a> {
    segment: &'a Segment,
    /// Only this chat's blocks.
    chat: Option<ChatId>,
    next: u64,
}

impl BlockCursor<'_> {
    /// The next block, or `None` past the end (or past the chat's blocks).
    pub fn next_block(&mut self) -> Result<Option<Block>> {
        if self.next >= self.segment.entries {
            return Ok(None);
        }
        let entry = self.segment.entry(self.next)?;
        if self.chat.is_some_and(|chat| chat != entry.chat) {
            self.next = self.segment.entries;
            return Ok(None);
        }
        self.next += 1;
        self.segment.read_block(&entry).map(Some)
    }
}

/// Every (chat, term, ids) of a segment, read back block by block (tests).
#[cfg(test)]
pub(super) fn read_all(segment: &Segment) -> Vec<(ChatId, String, Vec<MessageId>)> {
    let mut out: Vec<(ChatId, String, Vec<MessageId>)> = Vec::new();
    let mut blocks = segment.all_blocks();
    while let Some(block) = blocks.next_block().unwrap() {
        let mut records = block.records();
        while let Some(record) = records.next_record().unwrap() {
            let mut list = Vec::new();
            record.decode_into(&mut list).unwrap();
            let term = String::from_utf8(record.term.to_vec()).unwrap();
            let ids = list.iter().copied();
            match out.last_mut() {
                Some(last) if last.0 == block.chat && last.1 == term => last.2.extend(ids),
                _ => out.push((block.chat, term, ids.collect())),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_reads_back_what_was_written_and_finds_each_term() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        let mut writer = SegmentWriter::create(&path).unwrap();
        let mut expected = Vec::new();
        for chat in [-100_i64, 5, 7] {
            for t in 0..400 {
                let term = format!("слово{t:04}");
                // One long list that spans several records and blocks.
                let n = if t == 17 { 5_000 } else { 1 + t % 7 };
                let ids: Vec<i32> = (0..n).map(|i| i * 3 + t).collect();
                writer.push_run(chat, term.as_bytes(), &ids).unwrap();
                expected.push((chat, term, ids));
            }
        }
        let written = writer.finish().unwrap();
        assert!(!dir.path().join("1.footer").exists());
        let segment = Segment::open(&path).unwrap();
        assert_eq!(segment.check().unwrap(), written);
        assert_eq!(read_all(&segment), expected);
        for (chat, term, ids) in &expected {
            let mut cursor = segment.blocks_from(*chat, term.as_bytes()).unwrap();
            let mut found = Vec::new();
            while let Some(block) = cursor.next_block().unwrap() {
                let mut records = block.records();
                while let Some(record) = records.next_record().unwrap() {
                    if record.term == term.as_bytes() {
                        let mut list = Vec::new();
                        record.decode_into(&mut list).unwrap();
                        found.extend(list);
                    }
                }
            }
            assert_eq!(&found, ids, "{chat} {term}");
        }
    }

    #[test]
    fn damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        let mut writer = SegmentWriter::create(&path).unwrap();
        for t in 0..2000 {
            writer
                .push_run(1, format!("t{t:05}").as_bytes(), &[t])
                .unwrap();
        }
        writer.finish().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[100] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let segment = Segment::open(&path).unwrap();
        assert!(matches!(segment.check(), Err(SegmentError::Damaged { .. })));
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(Segment::open(&path).is_err());
    }
}
