//! Import of Telegram Desktop exports (`result.json`): the way a chat's past gets into the store,
//! since the Bot API cannot read history.
//!
//! [`reader`] walks the file without loading it; [`record`] maps each exported message to a store
//! message. Parsing runs on the calling thread, storing on a second one and the profile update on
//! a third (the store's group commit seals and compresses on a fourth), joined by short bounded
//! queues, so both cores work and memory stays flat. Saves are idempotent, so importing a
//! file twice changes nothing and an import that failed half-way is finished exactly by running
//! it again on the corrected file.

pub mod reader;
pub mod record;

use crate::analyzer::profile::Profiles;
use crate::analyzer::Analyzer;
use crate::store::{ChatId, ChatInfo, Message, MessageRef, Store, StoreError, Timestamp};
use reader::{ChatHeader, Layout, ReadError, Sink};
use record::{Record, Skip, TimeSource};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::Instant;

/// Messages per `save_batch`.
const BATCH: usize = 1_000;

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Store the chat under this id (single-chat exports only).
    pub chat_id: Option<ChatId>,
}

/// What an import did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportSummary {
    pub layout: String,
    pub chats: u64,
    /// The chats stored (empty in a dry run), so that what derives from history can be rebuilt.
    pub chat_ids: Vec<ChatId>,
    /// Stored messages that count for users.
    pub messages: u64,
    pub service_messages: u64,
    /// Records not stored, by reason.
    pub skipped: BTreeMap<String, u64>,
    pub first_time: Option<Timestamp>,
    pub last_time: Option<Timestamp>,
    /// Messages whose time came from `date` (local time, no zone) and was taken as UTC.
    pub times_taken_as_utc: u64,
    /// Profiles the imported messages changed (written to the store; a chat of more than
    /// 4,096 people, or an export whose chats are interleaved, may count some twice).
    pub profiles: usize,
    pub bytes: u64,
    pub elapsed_seconds: f64,
    pub dry_run: bool,
}

impl ImportSummary {
    /// Stored messages per second.
    pub fn rate(&self) -> f64 {
        (self.messages + self.service_messages) as f64 / self.elapsed_seconds.max(1e-9)
    }
}

/// The summary as `chatkeeper import` prints it and `/import` answers it.
impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let done = if self.dry_run {
            "dry run (nothing written): "
        } else {
            "imported "
        };
        writeln!(
            f,
            "{done}{} export: {} chats, {} messages, {} service messages",
            self.layout, self.chats, self.messages, self.service_messages
        )?;
        for (reason, n) in &self.skipped {
            writeln!(f, "skipped {n}: {reason}")?;
        }
        if let (Some(first), Some(last)) = (self.first_time, self.last_time) {
            writeln!(
                f,
                "time range: {} to {}",
                format_utc(first),
                format_utc(last)
            )?;
        }
        if self.times_taken_as_utc > 0 {
            writeln!(
                f,
                "messages with a local date but no time zone: {} (their times were taken as UTC)",
                self.times_taken_as_utc
            )?;
        }
        if self.profiles > 0 {
            writeln!(f, "profiles updated: {}", self.profiles)?;
        }
        let mb = self.bytes as f64 / 1e6;
        writeln!(
            f,
            "{mb:.1} MB in {:.1} s: {:.0} messages/s, {:.1} MB/s",
            self.elapsed_seconds,
            self.rate(),
            mb / self.elapsed_seconds.max(1e-9)
        )
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {error}")]
    Open { path: String, error: std::io::Error },
    #[error("{path}: {error}")]
    Read { path: String, error: ReadError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import keeps current besides the messages: the profiles of the people in the
/// imported chats, folded in as each batch is stored (only messages new to the store count, so
/// importing a file twice counts nothing twice).
#[derive(Clone, Copy)]
pub struct ProfileUpdate<'a> {
    pub profiles: &'a Profiles,
    pub analyzer: &'a Analyzer,
}

/// Imports the export at `path` into `store` (and the profiles); with no store, only parses and
/// reports (a dry run). `read_bytes` follows the bytes read, for progress reports.
///
/// Three threads of its own (besides the store's group commit): this one parses, one stores, one
/// analyses the newly stored messages for the profiles; bounded queues between them keep memory
/// flat.
pub fn import_file(
    store: Option<&Store>,
    profiles: Option<ProfileUpdate<'_>>,
    path: &Path,
    options: &ImportOptions,
    read_bytes: &Arc<AtomicU64>,
) -> Result<ImportSummary, ImportError> {
    let display = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|error| ImportError::Open {
        path: display.clone(),
        error,
    })?;
    let started = Instant::now();
    let counting = Counting {
        inner: file,
        bytes: read_bytes.clone(),
    };
    let (tx, rx) = sync_channel::<Batch>(4);
    let (fresh_tx, fresh_rx) = sync_channel::<Vec<MessageRef>>(4);
    let (read, summary, written, profiled) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<(), StoreError> {
            for batch in rx {
                let Some(store) = store else { continue };
                match batch {
                    Batch::Chat(id, mut info) => {
                        info.username = info
                            .username
                            .or_else(|| store.chat_info(id).and_then(|known| known.username));
                        store.set_chat_info(id, info)?
                    }
                    Batch::Messages(messages) => {
                        let saved = store.save_batch(messages)?;
                        if profiles.is_some() && fresh_tx.send(saved.fresh).is_err() {
                            return Err(StoreError::Invalid("the profiles stopped".into()));
                        }
                    }
                }
            }
            Ok(())
        });
        let profiler = scope.spawn(move || -> Result<usize, StoreError> {
            let Some(update) = profiles else {
                return Ok(0);
            };
            let mut written = 0;
            for fresh in fresh_rx {
                written += update.profiles.add_imported(&fresh, update.analyzer)?;
            }
            Ok(written + update.profiles.write_imported()?)
        });
        let mut sink = StoreSink {
            options,
            queue: tx,
            chat: None,
            batch: Vec::with_capacity(BATCH),
            summary: ImportSummary {
                dry_run: store.is_none(),
                ..ImportSummary::default()
            },
        };
        let read = reader::read_export(counting, &mut sink);
        let StoreSink { queue, summary, .. } = sink;
        drop(queue);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(StoreError::Invalid("the import thread panicked".into())));
        let profiled = profiler
            .join()
            .unwrap_or_else(|_| Err(StoreError::Invalid("the profile thread panicked".into())));
        (read, summary, written, profiled)
    });
    let mut summary = summary;
    // A store error stops the reader too; report it rather than the reader's echo of it, and a
    // profile error rather than the store's echo of that.
    let profiled = profiled?;
    written?;
    let layout = read.map_err(|error| ImportError::Read {
        path: display,
        error,
    })?;
    if let Some(store) = store {
        store.flush()?;
    }
    summary.profiles = profiled;
    summary.layout = match layout {
        Layout::SingleChat => "single chat",
        Layout::FullAccount => "full account",
    }
    .into();
    summary.bytes = read_bytes.load(Ordering::Relaxed);
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// What goes to the store thread.
enum Batch {
    Chat(ChatId, ChatInfo),
    Messages(Vec<Message>),
}

/// Maps records to messages, counts them, and queues them for the store.
struct StoreSink<'a> {
    options: &'a ImportOptions,
    queue: SyncSender<Batch>,
    chat: Option<ChatId>,
    batch: Vec<Message>,
    summary: ImportSummary,
}

impl StoreSink<'_> {
    fn send(&mut self, batch: Batch) -> Result<(), String> {
        self.queue
            .send(batch)
            .map_err(|_| "the store stopped taking messages".to_string())
    }

    fn send_batch(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.send(Batch::Messages(batch))
    }
}

impl Sink for StoreSink<'_> {
    fn chat(&mut self, header: &ChatHeader) -> Result<(), String> {
        let kind = header.kind.as_deref().unwrap_or("");
        let id = match (self.options.chat_id, header.id) {
            (Some(id), _) if self.summary.chats == 0 => id,
            (Some(_), _) => {
                return Err(
                    "--chat-id is for single-chat exports; this file holds several chats".into(),
                )
            }
            (None, Some(export_id)) => record::bot_api_chat_id(kind, export_id)
                .map_err(|e| format!("{e}: pass --chat-id with the chat's Bot API id"))?,
            (None, None) => {
                return Err(
                    "a chat has no id before its messages: pass --chat-id with its Bot API id"
                        .into(),
                )
            }
        };
        self.chat = Some(id);
        self.summary.chats += 1;
        if !self.summary.chat_ids.contains(&id) {
            self.summary.chat_ids.push(id);
        }
        let info = ChatInfo {
            title: header.name.clone().unwrap_or_default(),
            kind: record::chat_kind(kind).into(),
            // Exports do not give it; the bot fills it in (the import keeps one it knows).
            username: None,
        };
        self.send(Batch::Chat(id, info))
    }

    fn record(&mut self, record: Record) -> Result<(), String> {
        let chat = self.chat.ok_or("a message outside any chat")?;
        match record.to_message(chat) {
            Ok((message, source)) => {
                let s = &mut self.summary;
                if message.counts_for_users() {
                    s.messages += 1;
                } else {
                    s.service_messages += 1;
                }
                if source == TimeSource::LocalTakenAsUtc {
                    s.times_taken_as_utc += 1;
                }
                s.first_time = Some(s.first_time.map_or(message.time, |t| t.min(message.time)));
                s.last_time = Some(s.last_time.map_or(message.time, |t| t.max(message.time)));
                self.batch.push(message);
                if self.batch.len() >= BATCH {
                    self.send_batch()?;
                }
            }
            Err(skip) => {
                let reason = match skip {
                    Skip::Unsupported => "not supported by the export",
                    Skip::BadId(_) => "message id out of range",
                    Skip::NoDate => "no readable date",
                    Skip::BadSender(_) => "unreadable sender id",
                };
                *self.summary.skipped.entry(reason.into()).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    fn end_chat(&mut self) -> Result<(), String> {
        self.send_batch()
    }
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// `YYYY-MM-DD HH:MM UTC`, for summaries.
pub fn format_utc(time: Timestamp) -> String {
    format_time(time, "%Y-%m-%d %H:%M UTC")
}

/// `YYYY-MM-DDTHH:MM:SS`, as the Desktop writer writes `date` (here in UTC).
pub fn format_export_date(time: Timestamp) -> String {
    format_time(time, "%Y-%m-%dT%H:%M:%S")
}

/// `time` in UTC as `format` says; a time beyond the calendar's range as plain seconds.
fn format_time(time: Timestamp, format: &str) -> String {
    match chrono::DateTime::from_timestamp(time, 0) {
        Some(utc) => utc.format(format).to_string(),
        None => format!("{time} s since 1970 (UTC)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_inverts_the_date_parser() {
        for s in [
            "2024-01-15T10:30:00",
            "2000-02-29T23:59:00",
            "1969-12-31T00:00:00",
            "2026-11-24T12:00:00",
        ] {
            let (t, _) = record::parse_date(s).unwrap();
            assert_eq!(format_utc(t), format!("{} {} UTC", &s[..10], &s[11..16]));
            assert_eq!(format_export_date(t), s);
        }
    }
}
