//! Online backup and restore.
//!
//! A backup is one file: a fixed header (magic, format version), then a zstd stream of records,
//! each `tag, length, CRC-32, payload`, ending with a record that counts what came before. It holds
//! messages, chat and user records — not sled's files — so it restores into any future layout.
//!
//! The snapshot is taken at one instant (all chat locks held for as long as it takes to note each
//! chat's number of blocks and copy its tail's pointers); then blocks stream out one at a time
//! while new messages keep arriving. Block rewrites (edits of old messages, deletions, retention,
//! compaction) wait until the backup ends, so the noted blocks stay as they were; new blocks are
//! only ever appended after them. Memory is one block and one record, whatever the store's size.

use super::codec;
use super::layout;
use super::model::*;
use super::settings::SettingKey;
use super::shared::{lock, Commit, Shared, Store};
use super::{Result, StoreConfig, StoreError};
use serde::{Deserialize, Serialize};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 16] = b"CHATKEEPER-BKUP\n";
/// Version 2 added the messages' forum topics and the chats' public usernames; version 1 backups
/// restore as messages in no topic, of chats without a username.
const BACKUP_VERSION: u8 = 2;
const BACKUP_VERSION_1: u8 = 1;
/// First byte of every record header.
const RECORD_TAG: u8 = 1;
const MESSAGES_PER_RECORD: usize = 1024;
/// Profiles a restore writes at a time (about 1.5 MB).
const PROFILES_PER_WRITE: usize = 16_384;
/// No record of ours is larger; a larger length means a damaged file.
const MAX_RECORD: u32 = 256 << 20;

/// One record of a backup; `M` and `C` are the message and chat of the backup's version.
#[derive(Debug, Serialize, Deserialize)]
enum Record<M = Message, C = ChatInfo> {
    Chat(ChatId, C),
    User(UserId, UserInfo),
    Messages(Vec<M>),
    End {
        records: u64,
        messages: u64,
    },
    /// A raw setting (key and value of the settings family); after `End` in the enum so that
    /// older backups keep their variant numbers.
    Setting(Vec<u8>, Vec<u8>),
}

/// A message as backup format 1 wrote it: before forum topics (its chats are [`ChatInfoV1`],
/// before public usernames).
#[derive(Debug, Deserialize)]
struct MessageV1 {
    chat_id: ChatId,
    message_id: MessageId,
    time: Timestamp,
    edit_time: Option<Timestamp>,
    user_id: Option<UserId>,
    sender_name: String,
    text: String,
    kind: MessageKind,
    reply_to: Option<MessageId>,
    forwarded_from: Option<String>,
    is_bot: bool,
}

impl From<MessageV1> for Message {
    fn from(m: MessageV1) -> Message {
        Message {
            chat_id: m.chat_id,
            message_id: m.message_id,
            time: m.time,
            edit_time: m.edit_time,
            user_id: m.user_id,
            sender_name: m.sender_name,
            text: m.text,
            kind: m.kind,
            reply_to: m.reply_to,
            forwarded_from: m.forwarded_from,
            is_bot: m.is_bot,
            topic: None,
        }
    }
}

impl Record<MessageV1, ChatInfoV1> {
    /// The record as the current format has it: its messages in no topic, its chat without a
    /// public username.
    fn upgrade(self) -> Record {
        match self {
            Record::Chat(id, info) => Record::Chat(id, info.into()),
            Record::User(id, info) => Record::User(id, info),
            Record::Messages(messages) => {
                Record::Messages(messages.into_iter().map(Message::from).collect())
            }
            Record::End { records, messages } => Record::End { records, messages },
            Record::Setting(key, value) => Record::Setting(key, value),
        }
    }
}

/// What a backup or restore wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BackupSummary {
    pub chats: u64,
    pub users: u64,
    pub messages: u64,
    pub bytes: u64,
}

impl Store {
    /// Writes a consistent backup of the whole store to `file` (replaced atomically when done).
    pub fn backup(&self, file: &Path) -> Result<BackupSummary> {
        self.check_thread();
        let io_err = |e: std::io::Error| {
            StoreError::Invalid(format!("cannot write the backup {}: {e}", file.display()))
        };
        // User records queued for the group commit are in the index once this returns. A
        // halted index takes no commit: the backup then holds what the index has, which is
        // when an admin needs one most.
        match self.shared.commit(Commit::Sync) {
            Ok(()) | Err(StoreError::Halted { .. }) => {}
            Err(e) => return Err(e),
        }
        let partial = file.with_extension("partial");
        let out = std::fs::File::create(&partial).map_err(io_err)?;
        let result = self.shared.write_backup(out);
        match result {
            Ok(mut summary) => {
                std::fs::rename(&partial, file).map_err(io_err)?;
                summary.bytes = std::fs::metadata(file).map_err(io_err)?.len();
                Ok(summary)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    }
}

/// What the snapshot instant captured of one chat.
struct ChatSnapshot {
    id: ChatId,
    handle: std::sync::Arc<std::sync::Mutex<super::chat::ChatState>>,
    info: Option<ChatInfo>,
    /// Blocks at the instant: the first `blocks` of the chat's list, which only grows meanwhile.
    blocks: usize,
    tail: Vec<MessageRef>,
}

impl Shared {
    fn write_backup(&self, out: std::fs::File) -> Result<BackupSummary> {
        let io_err =
            |e: std::io::Error| StoreError::Invalid(format!("cannot write the backup: {e}"));
        // From here until the end, blocks are not rewritten: the noted block lists stay valid.
        let _rewrites = self.rewrites.write().expect("rewrite gate");
        let snapshot: Vec<ChatSnapshot> = {
            let _writer = lock(&self.writer);
            let handles = self.chats_in_order();
            let guards: Vec<_> = handles.iter().map(|(_, h)| lock(h)).collect();
            guards
                .iter()
                .zip(&handles)
                .map(|(c, (_, handle))| ChatSnapshot {
                    id: c.id,
                    handle: handle.clone(),
                    info: c.info.clone(),
                    blocks: c.directory.len(),
                    tail: c.tail.clone(),
                })
                .collect()
        };
        let mut writer = BufWriter::new(out);
        writer.write_all(MAGIC).map_err(io_err)?;
        writer.write_all(&[BACKUP_VERSION]).map_err(io_err)?;
        let mut stream = zstd::stream::Encoder::new(writer, 3).map_err(io_err)?;
        let mut summary = BackupSummary::default();
        let mut records = 0u64;
        for chat in &snapshot {
            // Counted when it writes a record (a title or a message), as a restore counts it: a
            // chat emptied by a purge keeps its handle but has nothing to back up.
            let messages_before = summary.messages;
            if let Some(info) = &chat.info {
                put(
                    &mut stream,
                    &mut records,
                    &Record::Chat(chat.id, info.clone()),
                )?;
            }
            let mut batch: Vec<Message> = Vec::with_capacity(MESSAGES_PER_RECORD);
            let mut add = |m: &MessageRef, batch: &mut Vec<Message>| -> Result<()> {
                batch.push(Message::clone(m));
                summary.messages += 1;
                if batch.len() == MESSAGES_PER_RECORD {
                    put(
                        &mut stream,
                        &mut records,
                        &Record::Messages(std::mem::take(batch)),
                    )?;
                }
                Ok(())
            };
            for index in 0..chat.blocks {
                let meta = lock(&chat.handle).directory.get(index, self)?;
                for m in &self.read_block(chat.id, &meta)? {
                    add(m, &mut batch)?;
                }
            }
            for m in &chat.tail {
                add(m, &mut batch)?;
            }
            if !batch.is_empty() {
                put(&mut stream, &mut records, &Record::Messages(batch))?;
            }
            summary.chats += u64::from(chat.info.is_some() || summary.messages > messages_before);
        }
        for item in self.db.scan_prefix([layout::USER_INFO]) {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let user = layout::parse_chat(&k)
                .ok_or_else(|| self.corrupt_msg("a user key is malformed"))?;
            let info: UserInfo = codec::decode(&v).map_err(|e| self.corrupt("user info", e))?;
            put(&mut stream, &mut records, &Record::User(user, info))?;
            summary.users += 1;
        }
        // Profiles in chunks first: a profile's sled record, written since the last settle,
        // comes later and wins at the restore. Both lists are taken together under the profile
        // lock, so that no settle, deletion or bulk write moves profiles between them; the
        // chunks they point at stay readable while the backup holds the rewrite gate (no
        // compaction), and are streamed after the lock is released.
        let (chunks, settings) = {
            let _profiles = lock(&self.profiles.lock);
            let chunks = self.valid_profile_chunks().collect::<Result<Vec<_>>>()?;
            let settings = self
                .db
                .scan_prefix([layout::SETTINGS])
                .collect::<sled::Result<Vec<_>>>()
                .map_err(|e| self.io(e))?;
            (chunks, settings)
        };
        for pointer in chunks {
            let entries = self
                .profile_chunk_at(pointer.chat, pointer.location)
                .map_err(|e| {
                    self.corrupt_msg(format!(
                        "the profiles of chat {} from user {} on: {e}; `chatkeeper verify \
                         --repair` drops them",
                        pointer.chat, pointer.first_user
                    ))
                })?;
            for (user, bytes) in entries.iter() {
                let key = SettingKey::Profile {
                    chat: pointer.chat,
                    user: *user,
                };
                put(
                    &mut stream,
                    &mut records,
                    &Record::Setting(key.encode(), bytes.clone()),
                )?;
            }
        }
        for (key, value) in settings {
            put(
                &mut stream,
                &mut records,
                &Record::Setting(key.to_vec(), value.to_vec()),
            )?;
        }
        let end = Record::End {
            records,
            messages: summary.messages,
        };
        put(&mut stream, &mut records, &end)?;
        let mut writer = stream.finish().map_err(io_err)?;
        writer.flush().map_err(io_err)?;
        writer
            .into_inner()
            .map_err(|e| io_err(e.into_error()))?
            .sync_all()
            .map_err(io_err)?;
        Ok(summary)
    }
}

/// Appends one record: tag, length, CRC-32 of the payload, payload.
fn put(stream: &mut impl Write, records: &mut u64, record: &Record) -> Result<()> {
    let payload = codec::encode(record);
    let mut head = [0u8; 9];
    head[0] = RECORD_TAG;
    head[1..5].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    head[5..9].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    stream
        .write_all(&head)
        .and_then(|()| stream.write_all(&payload))
        .map_err(|e| StoreError::Invalid(format!("cannot write the backup: {e}")))?;
    *records += 1;
    Ok(())
}

/// Reads every record of a backup, checking each checksum and the final count; `apply` sees
/// each record (nothing is applied when `apply` is a no-op: that is the first pass of restore).
fn read_backup(file: &Path, mut apply: impl FnMut(Record) -> Result<()>) -> Result<BackupSummary> {
    let bad = |what: String| {
        StoreError::Invalid(format!(
            "{} is not a usable chatkeeper backup: {what}. Nothing was restored; use another backup file",
            file.display()
        ))
    };
    let input = std::fs::File::open(file)
        .map_err(|e| StoreError::Invalid(format!("cannot open {}: {e}", file.display())))?;
    let mut reader = BufReader::new(input);
    let mut head = [0u8; 17];
    reader
        .read_exact(&mut head)
        .map_err(|_| bad("it is too short to have a header".into()))?;
    if &head[..16] != MAGIC {
        return Err(bad("it does not start with the backup header".into()));
    }
    let version = head[16];
    if version != BACKUP_VERSION && version != BACKUP_VERSION_1 {
        return Err(bad(format!(
            "backup format {version} is not one this build reads ({BACKUP_VERSION_1} or \
             {BACKUP_VERSION}); restore it with the chatkeeper release that wrote it"
        )));
    }
    let mut stream = zstd::stream::Decoder::with_buffer(reader).map_err(|e| bad(e.to_string()))?;
    let mut summary = BackupSummary::default();
    let mut records = 0u64;
    // A backup holds each chat's records together, its title (if known) first: a chat is counted
    // where its records begin, as the backup counted it, titled or not.
    let mut last_chat = None;
    loop {
        let mut record_head = [0u8; 9];
        stream.read_exact(&mut record_head).map_err(|e| {
            bad(format!(
                "it ends after {records} records without its end record ({e})"
            ))
        })?;
        let len = u32::from_le_bytes(record_head[1..5].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(record_head[5..9].try_into().expect("4 bytes"));
        if record_head[0] != RECORD_TAG || len > MAX_RECORD {
            return Err(bad(format!("record {records} has a damaged header")));
        }
        let mut payload = vec![0u8; len as usize];
        stream
            .read_exact(&mut payload)
            .map_err(|e| bad(format!("record {records} is cut short ({e})")))?;
        if crc32fast::hash(&payload) != crc {
            return Err(bad(format!("record {records} fails its checksum")));
        }
        let record = if version == BACKUP_VERSION_1 {
            codec::decode::<Record<MessageV1, ChatInfoV1>>(&payload).map(Record::upgrade)
        } else {
            codec::decode::<Record>(&payload)
        }
        .map_err(|e| bad(format!("record {records}: {e}")))?;
        match record {
            Record::End {
                records: n,
                messages,
            } => {
                if n != records || messages != summary.messages {
                    return Err(bad("its end record does not match its contents".into()));
                }
                return Ok(summary);
            }
            Record::Chat(chat, _) => {
                summary.chats += u64::from(last_chat.replace(chat) != Some(chat));
            }
            Record::User(..) => summary.users += 1,
            Record::Messages(ref m) => {
                if let Some(chat) = m.first().map(|m| m.chat_id) {
                    summary.chats += u64::from(last_chat.replace(chat) != Some(chat));
                }
                summary.messages += m.len() as u64;
            }
            Record::Setting(..) => {}
        }
        records += 1;
        apply(record)?;
    }
}

/// Restores a backup into `dir`, which must be empty or absent. Every checksum is checked before
/// anything is written; a damaged backup writes nothing.
pub fn restore(file: &Path, dir: &Path) -> Result<BackupSummary> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .map_err(|e| StoreError::Invalid(format!("cannot read {}: {e}", dir.display())))?;
        if entries.next().is_some() {
            return Err(StoreError::Invalid(format!(
                "{} is not empty: restore only into an empty or new directory, so that no data is \
                 overwritten",
                dir.display()
            )));
        }
    }
    let summary = read_backup(file, |_| Ok(()))?;
    let existed = dir.exists();
    let written = (|| {
        let mut config = StoreConfig::new(dir);
        config.flush = super::FlushPolicy::Manual;
        let store = Store::open(config)?;
        // Profiles go to the profiles log in bulk, not one sled record each.
        let mut profiles = Vec::new();
        read_backup(file, |record| match record {
            Record::Chat(id, info) => store.set_chat_info(id, info),
            Record::User(id, info) => store.set_user_info(id, info),
            Record::Messages(messages) => {
                store.save_batch(messages)?;
                // No group commit runs here: the dictionary is trained as soon as enough blocks
                // exist, or every block of the restore would be compressed without one.
                store.shared.maybe_train_dictionary()
            }
            Record::Setting(key, value) => match SettingKey::decode_profile(&key) {
                Some((chat, user)) => {
                    profiles.push((chat, user, Some(value)));
                    if profiles.len() >= PROFILES_PER_WRITE {
                        store.shared.put_profiles(profiles.drain(..))?;
                    }
                    Ok(())
                }
                None => store.put_raw_setting(&key, &value),
            },
            Record::End { .. } => Ok(()),
        })?;
        store.shared.put_profiles(profiles)?;
        store.flush()?;
        // Nor a compaction: the postings merged along the way leave dead space behind.
        store.shared.compact_if_due()
    })();
    if let Err(e) = written {
        // Leave the directory as it was found: empty (or absent).
        if existed {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let _ = std::fs::remove_dir_all(entry.path())
                        .or_else(|_| std::fs::remove_file(entry.path()));
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
        return Err(e);
    }
    Ok(summary)
}
