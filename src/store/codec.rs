//! Every on-disk encoding of the store, in one place.
//!
//! Stored values start with a format-version byte, then bincode 2 (serde, varint integers). Messages
//! are stored column by column in frames of [`FRAME_LEN`], each frame zstd-compressed on its own with
//! a dictionary trained on the store's own messages: a frame of short chat messages compresses as
//! well as a whole block would, and reading one message decodes about 2 KB instead of a block.

use super::model::{key_of, ChatId, Message, MessageId, MessageKind, MessageRef, MsgKey};
use integer_encoding::VarInt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use zstd::zstd_safe::{CCtx, CDict, DCtx, DDict};

/// The version byte in front of every stored value: the encoding of values (bincode 2 with these
/// settings). Distinct from the store format (`layout::STORE_FORMAT`), which names the layout of
/// the data directory: the layout changed in store format 2, the encoding of values did not.
pub const VALUE_VERSION: u8 = 1;
/// Messages per compressed frame.
pub const FRAME_LEN: usize = 16;
/// Size of a trained compression dictionary.
pub const DICTIONARY_BYTES: usize = 64 * 1024;
/// Dictionary id meaning "compressed without a dictionary".
pub const NO_DICTIONARY: u32 = 0;
const COMPRESSION_LEVEL: i32 = 3;
/// No frame of ours decompresses to more; a larger claim means a damaged value.
const MAX_FRAME_BYTES: u64 = 64 << 20;

/// Why stored bytes could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value")]
    Empty,
    #[error("format version {0} is not one this build reads (it reads {VALUE_VERSION}); use the chatkeeper release that wrote the data")]
    Version(u8),
    #[error("malformed value: {0}")]
    Malformed(String),
    #[error("compressed frame is damaged: {0}")]
    Compression(String),
    #[error("value needs compression dictionary {0}, which the store does not have")]
    UnknownDictionary(u32),
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a value with the version byte in front.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = vec![VALUE_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, bincode_config())
        .expect("writing to a Vec cannot fail");
    out
}

/// Decodes a value written by [`encode`]; returns it and the bytes it used (version byte included).
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(&VALUE_VERSION) => {
            let (value, used) = bincode::serde::decode_from_slice(&bytes[1..], bincode_config())
                .map_err(|e| CodecError::Malformed(e.to_string()))?;
            Ok((value, used + 1))
        }
        Some(&other) => Err(CodecError::Version(other)),
    }
}

/// Decodes a value written by [`encode`], rejecting trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) = decode_prefix(bytes)?;
    if used != bytes.len() {
        return Err(CodecError::Malformed(format!(
            "{} trailing bytes",
            bytes.len() - used
        )));
    }
    Ok(value)
}

/// Integers packed as zig-zag LEB128 varints, seven bits a byte: a delta below 64 takes one byte
/// and below 8,192 two, where bincode's own varint takes three from 251 up. For the columns of
/// small uncompressed values (postings chunks), where those bytes add up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedInts(Vec<u8>);

impl PackedInts {
    /// Packs `values` in order.
    pub fn pack(values: impl IntoIterator<Item = i64>) -> Self {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 10];
        for v in values {
            let n = v.encode_var(&mut buf);
            bytes.extend_from_slice(&buf[..n]);
        }
        PackedInts(bytes)
    }

    /// The values, in order.
    pub fn unpack(&self) -> Result<Vec<i64>, CodecError> {
        let mut values = Vec::new();
        let mut rest = self.0.as_slice();
        while !rest.is_empty() {
            let (v, used) = i64::decode_var(rest)
                .ok_or_else(|| CodecError::Malformed("truncated packed integer".into()))?;
            values.push(v);
            rest = &rest[used..];
        }
        Ok(values)
    }
}

/// One frame's messages, column by column: similar values sit together and compress well.
/// Times and ids are deltas from the previous message. The strings are borrowed from the
/// messages: sealing copies each text once, into the encoding.
///
/// When a message of the frame is in a forum topic, a second value follows the columns: the
/// topics column (`Vec<Option<i32>>`, one per message). Frames of chats without topics, and all
/// frames of store format 4, end after the texts; they read as messages in no topic.
#[derive(Serialize)]
struct Columns<'a> {
    times: Vec<i64>,
    ids: Vec<i64>,
    users: Vec<Option<i64>>,
    kinds: Vec<u8>,
    bots: Vec<bool>,
    edits: Vec<Option<i64>>,
    replies: Vec<Option<i64>>,
    forwards: Vec<Option<&'a str>>,
    names: Vec<&'a str>,
    texts: Vec<&'a str>,
}

/// The uncompressed column encoding of `messages` (all of one chat, which is not stored).
pub fn encode_columns(messages: &[MessageRef]) -> Vec<u8> {
    // Sized once: this runs for every frame sealed, and growing ten vectors by doubling was a
    // good share of the sealing thread's allocations.
    let n = messages.len();
    let mut c = Columns {
        times: Vec::with_capacity(n),
        ids: Vec::with_capacity(n),
        users: Vec::with_capacity(n),
        kinds: Vec::with_capacity(n),
        bots: Vec::with_capacity(n),
        edits: Vec::with_capacity(n),
        replies: Vec::with_capacity(n),
        forwards: Vec::with_capacity(n),
        names: Vec::with_capacity(n),
        texts: Vec::with_capacity(n),
    };
    let (mut prev_time, mut prev_id) = (0i64, 0i64);
    for m in messages {
        c.times.push(m.time.wrapping_sub(prev_time));
        c.ids.push(i64::from(m.message_id) - prev_id);
        (prev_time, prev_id) = (m.time, i64::from(m.message_id));
        c.users.push(m.user_id);
        c.kinds.push(m.kind as u8);
        c.bots.push(m.is_bot);
        c.edits.push(m.edit_time.map(|t| t.wrapping_sub(m.time)));
        c.replies
            .push(m.reply_to.map(|r| i64::from(m.message_id) - i64::from(r)));
        c.forwards.push(m.forwarded_from.as_deref());
        c.names.push(&m.sender_name);
        c.texts.push(&m.text);
    }
    let text_bytes: usize = messages
        .iter()
        .map(|m| m.text.len() + m.sender_name.len())
        .sum();
    let mut out = Vec::with_capacity(text_bytes + messages.len() * 24);
    bincode::serde::encode_into_std_write(&c, &mut out, bincode_config())
        .expect("writing to a Vec cannot fail");
    if messages.iter().any(|m| m.topic.is_some()) {
        let topics: Vec<Option<MessageId>> = messages.iter().map(|m| m.topic).collect();
        bincode::serde::encode_into_std_write(&topics, &mut out, bincode_config())
            .expect("writing to a Vec cannot fail");
    }
    out
}

/// [`Columns`] as read back: the strings borrowed from the decompressed frame as bytes, so that
/// only the messages a reader wants become owned, checked strings (a point read of one message
/// would otherwise check and copy all sixteen). Same wire format: bincode writes a string and a
/// byte slice alike.
#[derive(Deserialize)]
struct RawColumns<'a> {
    times: Vec<i64>,
    ids: Vec<i64>,
    users: Vec<Option<i64>>,
    kinds: Vec<u8>,
    bots: Vec<bool>,
    edits: Vec<Option<i64>>,
    replies: Vec<Option<i64>>,
    #[serde(borrow)]
    forwards: Vec<Option<&'a [u8]>>,
    #[serde(borrow)]
    names: Vec<&'a [u8]>,
    #[serde(borrow)]
    texts: Vec<&'a [u8]>,
}

/// Inverse of [`encode_columns`].
pub fn decode_columns(chat: ChatId, bytes: &[u8]) -> Result<Vec<MessageRef>, CodecError> {
    decode_matching(chat, bytes, |_| true)
}

/// The messages of an encoded frame whose key `wanted` accepts.
pub fn decode_matching(
    chat: ChatId,
    bytes: &[u8],
    wanted: impl Fn(MsgKey) -> bool,
) -> Result<Vec<MessageRef>, CodecError> {
    let (c, used): (RawColumns<'_>, usize) =
        bincode::serde::borrow_decode_from_slice(bytes, bincode_config())
            .map_err(|e| CodecError::Malformed(e.to_string()))?;
    let n = c.times.len();
    // Most frames have no topics column: no vector is made for them.
    let topics: Option<Vec<Option<MessageId>>> = if used == bytes.len() {
        None
    } else {
        let (topics, more): (Vec<Option<MessageId>>, usize) =
            bincode::serde::decode_from_slice(&bytes[used..], bincode_config())
                .map_err(|e| CodecError::Malformed(format!("topics column: {e}")))?;
        if used + more != bytes.len() {
            return Err(CodecError::Malformed(
                "frame has bytes after its columns".into(),
            ));
        }
        Some(topics)
    };
    if topics.as_ref().is_some_and(|t| t.len() != n)
        || [
            c.ids.len(),
            c.users.len(),
            c.kinds.len(),
            c.bots.len(),
            c.edits.len(),
            c.replies.len(),
            c.forwards.len(),
            c.names.len(),
            c.texts.len(),
        ]
        .iter()
        .any(|&len| len != n)
    {
        return Err(CodecError::Malformed("frame columns disagree".into()));
    }
    let to_id = |v: i64| {
        MessageId::try_from(v).map_err(|_| CodecError::Malformed("message id out of range".into()))
    };
    let text = |bytes: &[u8]| {
        simdutf8::basic::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CodecError::Malformed("a text is not UTF-8".into()))
    };
    let mut out = Vec::with_capacity(n);
    let (mut time, mut id) = (0i64, 0i64);
    let damaged_id = || CodecError::Malformed("message id out of range".into());
    for i in 0..n {
        time = time.wrapping_add(c.times[i]);
        id = id.checked_add(c.ids[i]).ok_or_else(damaged_id)?;
        let message_id = to_id(id)?;
        if !wanted(MsgKey {
            time,
            id: message_id,
        }) {
            continue;
        }
        let kind = MessageKind::from_byte(c.kinds[i])
            .ok_or_else(|| CodecError::Malformed(format!("unknown kind {}", c.kinds[i])))?;
        out.push(Arc::new(Message {
            chat_id: chat,
            message_id,
            time,
            edit_time: c.edits[i].map(|d| time.wrapping_add(d)),
            user_id: c.users[i],
            sender_name: text(c.names[i])?,
            text: text(c.texts[i])?,
            kind,
            reply_to: c.replies[i]
                .map(|d| id.checked_sub(d).ok_or_else(damaged_id).and_then(to_id))
                .transpose()?,
            forwarded_from: c.forwards[i].map(text).transpose()?,
            is_bot: c.bots[i],
            topic: topics.as_ref().and_then(|t| t[i]),
        }));
    }
    Ok(out)
}

/// A dictionary, prepared once for compression and decompression.
struct Dictionary {
    raw: Arc<Vec<u8>>,
    compress: CDict<'static>,
    decompress: DDict<'static>,
}

/// Compresses and decompresses frames, holding the store's dictionaries and a pool of zstd
/// contexts (creating a context costs more than compressing one frame).
pub struct Compressor {
    dictionaries: RwLock<HashMap<u32, Arc<Dictionary>>>,
    current: RwLock<u32>,
    compress_pool: Mutex<Vec<CCtx<'static>>>,
    decompress_pool: Mutex<Vec<DCtx<'static>>>,
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor {
            dictionaries: RwLock::new(HashMap::new()),
            current: RwLock::new(NO_DICTIONARY),
            compress_pool: Mutex::new(Vec::new()),
            decompress_pool: Mutex::new(Vec::new()),
        }
    }
}

impl Compressor {
    /// Registers dictionary `id`; new frames use the highest registered id.
    pub fn add_dictionary(&self, id: u32, raw: Vec<u8>) -> Result<(), CodecError> {
        let compress = CDict::try_create(&raw, COMPRESSION_LEVEL)
            .ok_or_else(|| CodecError::Compression(format!("dictionary {id} is unusable")))?;
        let decompress = DDict::try_create(&raw)
            .ok_or_else(|| CodecError::Compression(format!("dictionary {id} is unusable")))?;
        let dictionary = Arc::new(Dictionary {
            raw: Arc::new(raw),
            compress,
            decompress,
        });
        self.dictionaries
            .write()
            .expect("dictionary lock")
            .insert(id, dictionary);
        let mut current = self.current.write().expect("dictionary lock");
        *current = (*current).max(id);
        Ok(())
    }

    /// The dictionary new frames are compressed with.
    pub fn current_dictionary(&self) -> u32 {
        *self.current.read().expect("dictionary lock")
    }

    /// The raw bytes of every registered dictionary, by id (for backups).
    pub fn dictionaries(&self) -> Vec<(u32, Arc<Vec<u8>>)> {
        let mut all: Vec<_> = self
            .dictionaries
            .read()
            .expect("dictionary lock")
            .iter()
            .map(|(&id, d)| (id, d.raw.clone()))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    fn dictionary(&self, id: u32) -> Result<Option<Arc<Dictionary>>, CodecError> {
        if id == NO_DICTIONARY {
            return Ok(None);
        }
        self.dictionaries
            .read()
            .expect("dictionary lock")
            .get(&id)
            .cloned()
            .map(Some)
            .ok_or(CodecError::UnknownDictionary(id))
    }

    /// Trains a dictionary from sample frames (raw column encodings).
    pub fn train(samples: &[Vec<u8>]) -> Result<Vec<u8>, CodecError> {
        zstd::dict::from_samples(samples, DICTIONARY_BYTES)
            .map_err(|e| CodecError::Compression(format!("dictionary training failed: {e}")))
    }

    /// Compresses `raw` with dictionary `dict`.
    pub fn compress(&self, dict: u32, raw: &[u8]) -> Result<Vec<u8>, CodecError> {
        let dictionary = self.dictionary(dict)?;
        let mut ctx = self
            .compress_pool
            .lock()
            .expect("pool lock")
            .pop()
            .unwrap_or_else(CCtx::create);
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(raw.len()));
        let result = match &dictionary {
            Some(d) => ctx.compress_using_cdict(&mut out, raw, &d.compress),
            None => ctx.compress(&mut out, raw, COMPRESSION_LEVEL),
        };
        self.compress_pool.lock().expect("pool lock").push(ctx);
        result.map_err(|code| {
            CodecError::Compression(zstd::zstd_safe::get_error_name(code).into())
        })?;
        Ok(out)
    }

    /// Decompresses a frame written by [`Compressor::compress`].
    pub fn decompress(&self, dict: u32, compressed: &[u8]) -> Result<Vec<u8>, CodecError> {
        let size = match zstd::zstd_safe::get_frame_content_size(compressed) {
            Ok(Some(size)) if size <= MAX_FRAME_BYTES => size as usize,
            _ => return Err(CodecError::Compression("frame size unreadable".into())),
        };
        let dictionary = self.dictionary(dict)?;
        let mut ctx = self
            .decompress_pool
            .lock()
            .expect("pool lock")
            .pop()
            .unwrap_or_else(DCtx::create);
        let mut out = Vec::with_capacity(size);
        let result = match &dictionary {
            Some(d) => ctx.decompress_using_ddict(&mut out, compressed, &d.decompress),
            None => ctx.decompress(&mut out, compressed),
        };
        self.decompress_pool.lock().expect("pool lock").push(ctx);
        match result {
            Ok(n) if n == size => Ok(out),
            Ok(_) => Err(CodecError::Compression(
                "frame shorter than its header says".into(),
            )),
            Err(code) => Err(CodecError::Compression(
                zstd::zstd_safe::get_error_name(code).into(),
            )),
        }
    }
}

/// Where a frame sits in a block and what it holds, so one frame can be found and decoded alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameInfo {
    pub first: MsgKey,
    pub last: MsgKey,
    pub min_id: MessageId,
    pub max_id: MessageId,
    pub count: u32,
    pub len: u32,
}

/// The header of a block or tail segment; the compressed frames follow it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    pub chat: ChatId,
    pub dictionary: u32,
    pub frames: Vec<FrameInfo>,
}

/// A parsed block: the header and where each frame's bytes start. It borrows the block's bytes
/// or owns them (`B` is `&[u8]` or `Vec<u8>`), so that a scan keeps one parsed block while it
/// decodes its frames one at a time.
pub struct BlockView<B> {
    pub header: BlockHeader,
    frames_at: usize,
    bytes: B,
}

impl<B: AsRef<[u8]>> BlockView<B> {
    /// Parses a block's header (cheap: no frame is decompressed).
    pub fn parse(bytes: B) -> Result<Self, CodecError> {
        let (header, frames_at): (BlockHeader, usize) = decode_prefix(bytes.as_ref())?;
        let total: usize = header.frames.iter().map(|f| f.len as usize).sum();
        if frames_at + total != bytes.as_ref().len() {
            return Err(CodecError::Malformed(
                "block length disagrees with its header".into(),
            ));
        }
        Ok(BlockView {
            header,
            frames_at,
            bytes,
        })
    }

    /// Parses a block that must belong to `chat`.
    pub fn parse_for(bytes: B, chat: ChatId) -> Result<Self, CodecError> {
        let view = Self::parse(bytes)?;
        if view.header.chat != chat {
            return Err(CodecError::Malformed(format!(
                "holds chat {} where chat {chat} belongs",
                view.header.chat
            )));
        }
        Ok(view)
    }

    /// Decodes frame `index`.
    pub fn frame(
        &self,
        compressor: &Compressor,
        index: usize,
    ) -> Result<Vec<MessageRef>, CodecError> {
        let messages = self.frame_matching(compressor, index, |_| true)?;
        if messages.len() != self.header.frames[index].count as usize {
            return Err(CodecError::Malformed(
                "frame count disagrees with header".into(),
            ));
        }
        Ok(messages)
    }

    /// The messages of frame `index` whose key `wanted` accepts.
    pub fn frame_matching(
        &self,
        compressor: &Compressor,
        index: usize,
        wanted: impl Fn(MsgKey) -> bool,
    ) -> Result<Vec<MessageRef>, CodecError> {
        let info = self
            .header
            .frames
            .get(index)
            .ok_or_else(|| CodecError::Malformed("frame index out of range".into()))?;
        let start = self.frames_at
            + self.header.frames[..index]
                .iter()
                .map(|f| f.len as usize)
                .sum::<usize>();
        let raw = compressor.decompress(
            self.header.dictionary,
            &self.bytes.as_ref()[start..start + info.len as usize],
        )?;
        decode_matching(self.header.chat, &raw, wanted)
    }

    /// Decodes every frame, in order.
    pub fn all(&self, compressor: &Compressor) -> Result<Vec<MessageRef>, CodecError> {
        let mut out = Vec::new();
        for i in 0..self.header.frames.len() {
            out.extend(self.frame(compressor, i)?);
        }
        Ok(out)
    }
}

/// Encodes messages (sorted by key, all of one chat) as a block of compressed frames.
pub fn encode_block(
    compressor: &Compressor,
    chat: ChatId,
    messages: &[MessageRef],
) -> Result<Vec<u8>, CodecError> {
    let dictionary = compressor.current_dictionary();
    let mut frames = Vec::new();
    let mut body = Vec::new();
    for chunk in messages.chunks(FRAME_LEN) {
        let compressed = compressor.compress(dictionary, &encode_columns(chunk))?;
        frames.push(FrameInfo {
            first: key_of(&chunk[0]),
            last: key_of(&chunk[chunk.len() - 1]),
            min_id: chunk.iter().map(|m| m.message_id).min().unwrap_or(0),
            max_id: chunk.iter().map(|m| m.message_id).max().unwrap_or(0),
            count: chunk.len() as u32,
            len: compressed.len() as u32,
        });
        body.extend_from_slice(&compressed);
    }
    let mut out = encode(&BlockHeader {
        chat,
        dictionary,
        frames,
    });
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packed_ints_round_trip_and_small_deltas_take_one_or_two_bytes() {
        let values = [0, 1, -1, 63, -64, 8191, i64::MAX, i64::MIN, 1_700_000_000];
        let packed = PackedInts::pack(values);
        assert_eq!(packed.unpack().unwrap(), values);
        assert_eq!(PackedInts::pack([63, -64]).0.len(), 2);
        assert_eq!(PackedInts::pack([64, 8191]).0.len(), 4);
        let truncated = PackedInts(vec![0x80]);
        assert!(truncated.unpack().is_err());
    }

    fn message(id: i32, time: i64, text: &str) -> MessageRef {
        Arc::new(Message {
            chat_id: -100,
            message_id: id,
            time,
            edit_time: (id % 3 == 0).then_some(time + 60),
            user_id: (id % 5 != 0).then_some(1000 + i64::from(id % 7)),
            sender_name: format!("Олена {}", id % 7),
            text: text.to_string(),
            kind: MessageKind::ALL[id as usize % MessageKind::ALL.len()],
            reply_to: (id % 4 == 0).then_some(id - 2),
            forwarded_from: (id % 6 == 0).then(|| "Канал новин".to_string()),
            is_bot: id % 9 == 0,
            // Messages 17–32 (the second frame of 16) are in no topic.
            topic: (!(17..=32).contains(&id) && id % 2 == 0).then_some(id % 3 + 1),
        })
    }

    #[test]
    fn values_carry_a_version_byte_and_reject_others() {
        let bytes = encode(&(1u32, "привіт".to_string()));
        assert_eq!(bytes[0], VALUE_VERSION);
        let back: (u32, String) = decode(&bytes).unwrap();
        assert_eq!(back, (1, "привіт".into()));
        let mut other = bytes.clone();
        other[0] = 99;
        assert!(matches!(
            decode::<(u32, String)>(&other),
            Err(CodecError::Version(99))
        ));
        assert!(decode::<(u32, String)>(&bytes[..bytes.len() - 1]).is_err());
        assert!(matches!(decode::<u32>(&[]), Err(CodecError::Empty)));
    }

    #[test]
    fn a_frame_has_a_topics_column_only_when_a_message_is_in_a_topic() {
        let in_topics: Vec<MessageRef> =
            (1..=16).map(|i| message(i, i64::from(i), "так")).collect();
        let in_none: Vec<MessageRef> = (17..=32).map(|i| message(i, i64::from(i), "так")).collect();
        let bytes = encode_columns(&in_topics);
        assert_eq!(decode_columns(-100, &bytes).unwrap(), in_topics);
        // Without topics the frame is what store format 4 wrote: the columns and nothing after.
        let plain = encode_columns(&in_none);
        let (_, used): (RawColumns<'_>, usize) =
            bincode::serde::borrow_decode_from_slice(&plain, bincode_config()).unwrap();
        assert_eq!(used, plain.len());
        assert!(decode_columns(-100, &plain)
            .unwrap()
            .iter()
            .all(|m| m.topic.is_none()));
        // A topics column of the wrong length, or bytes after it, are damage.
        let mut short = plain.clone();
        bincode::serde::encode_into_std_write(vec![Some(1); 3], &mut short, bincode_config())
            .unwrap();
        assert!(matches!(
            decode_columns(-100, &short),
            Err(CodecError::Malformed(_))
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode_columns(-100, &trailing),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn blocks_round_trip_with_and_without_dictionary() {
        let messages: Vec<MessageRef> = (1..=40)
            .map(|i| {
                message(
                    i,
                    1_700_000_000 + i64::from(i) * 7,
                    &"слово word ".repeat(i as usize % 9),
                )
            })
            .collect();
        let compressor = Compressor::default();
        let plain = encode_block(&compressor, -100, &messages).unwrap();
        let view = BlockView::parse(&plain).unwrap();
        assert_eq!(view.header.frames.len(), 3);
        assert_eq!(view.all(&compressor).unwrap(), messages);

        let samples: Vec<Vec<u8>> = (0..400)
            .map(|i| encode_columns(&messages[i % 30..i % 30 + 8]))
            .collect();
        compressor
            .add_dictionary(1, Compressor::train(&samples).unwrap())
            .unwrap();
        let with_dict = encode_block(&compressor, -100, &messages).unwrap();
        // Owned bytes parse and decode like borrowed ones (a scan keeps a block so).
        let view = BlockView::parse_for(with_dict.clone(), -100).unwrap();
        assert_eq!(view.all(&compressor).unwrap(), messages);
        let view = BlockView::parse(&with_dict).unwrap();
        assert_eq!(view.header.dictionary, 1);
        assert_eq!(
            view.frame(&compressor, 1).unwrap(),
            messages[16..32].to_vec()
        );
        // A store without the dictionary says so instead of decoding garbage.
        assert!(matches!(
            view.frame(&Compressor::default(), 0),
            Err(CodecError::UnknownDictionary(1))
        ));
    }

    /// Columns of one message whose text is `bytes` (UTF-8 or not), as a damaged frame could
    /// hold them.
    fn columns_with_text(bytes: &[u8]) -> Vec<u8> {
        let placeholder = "a".repeat(bytes.len());
        let mut columns = encode_columns(&[message(1, 1_700_000_000, &placeholder)]);
        // The last match: the text's length prefix may itself be an `a` (97 bytes).
        let at = columns
            .windows(bytes.len())
            .rposition(|w| w == placeholder.as_bytes())
            .unwrap();
        columns[at..at + bytes.len()].copy_from_slice(bytes);
        columns
    }

    /// Texts of 40–160 letters (80–320 bytes: past the 64 bytes from which the check runs in
    /// SIMD) with one byte replaced and cut anywhere, and arbitrary bytes.
    fn text_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..300),
            (
                "[а-яєіїґa-z0-9 ]{40,160}",
                any::<prop::sample::Index>(),
                any::<u8>(),
                any::<prop::sample::Index>()
            )
                .prop_map(|(text, at, byte, cut)| {
                    let mut bytes = text.into_bytes();
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                    bytes.truncate(cut.index(bytes.len()) + 1);
                    bytes
                }),
        ]
    }

    proptest! {
        #[test]
        fn texts_are_accepted_exactly_when_they_are_utf8(bytes in text_bytes()) {
            let decoded = decode_columns(-100, &columns_with_text(&bytes));
            match std::str::from_utf8(&bytes) {
                Ok(text) => prop_assert_eq!(&decoded.unwrap()[0].text, text),
                Err(_) => prop_assert!(
                    matches!(&decoded, Err(CodecError::Malformed(m)) if m.contains("UTF-8")),
                    "{:?}",
                    decoded
                ),
            }
        }
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let messages: Vec<MessageRef> = (1..=20)
            .map(|i| message(i, i64::from(i), "текст"))
            .collect();
        let compressor = Compressor::default();
        let block = encode_block(&compressor, -100, &messages).unwrap();
        for cut in 0..block.len() {
            if let Ok(view) = BlockView::parse(&block[..cut]) {
                let _ = view.all(&compressor);
            }
        }
        for i in 0..block.len() {
            let mut damaged = block.clone();
            damaged[i] ^= 0x5a;
            if let Ok(view) = BlockView::parse(&damaged) {
                let _ = view.all(&compressor);
            }
        }
    }
}
