//! `chatkeeper bench-import`: Telegram Desktop exports generated from the workload, imported end
//! to end (file → durable store) by this store and by SQLite with the old bot's schema (one
//! transaction per 1,000 rows), each in its own child process so that peak RSS is its own.

use super::workload::{Workload, WorkloadSpec};
use super::{peak_rss, Engine};
use crate::analyzer::profile::Profiles;
use crate::analyzer::Analyzer;
use crate::import::reader::{self, ChatHeader, Sink};
use crate::import::record::{self, Record};
use crate::import::{import_file, ImportOptions, ProfileUpdate};
use crate::store::{Message, MessageKind, Store, StoreConfig};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

/// One engine's import of one export.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportRun {
    pub engine: String,
    pub messages: u64,
    pub seconds: f64,
    pub bytes: u64,
    pub peak_rss_bytes: u64,
}

impl ImportRun {
    fn per_sec(&self) -> f64 {
        self.messages as f64 / self.seconds.max(1e-9)
    }

    fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

/// Both engines on both exports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportReport {
    pub exports: Vec<(String, u64, Vec<ImportRun>)>,
}

/// Generates the two exports under `work_dir` (a temporary directory when `None`) and runs both
/// engines on each.
pub fn run(spec: WorkloadSpec, work_dir: Option<&Path>) -> anyhow::Result<ImportReport> {
    let temp;
    let work = match work_dir {
        Some(dir) => dir,
        None => {
            temp = tempfile::Builder::new()
                .prefix("chatkeeper-bench-import")
                .tempdir()?;
            temp.path()
        }
    };
    std::fs::create_dir_all(work)?;
    let keep = work_dir.is_some();
    let name = |layout: &str| {
        work.join(format!(
            "{layout}-{}msgs-{}chats-{}users.json",
            spec.messages, spec.chats, spec.users
        ))
    };
    let single = name("single-chat");
    let full = name("full-account");
    for (file, full_account) in [(&single, false), (&full, true)] {
        if !(keep && file.exists()) {
            let chats = if full_account { spec.chats } else { 1 };
            write_export(file, WorkloadSpec { chats, ..spec }, full_account)?;
        }
    }
    let mut exports = Vec::new();
    for (name, file) in [("single chat", &single), ("full account", &full)] {
        let bytes = std::fs::metadata(file)?.len();
        let mut runs = Vec::new();
        for engine in ["store", "sqlite"] {
            if engine == "sqlite" && !cfg!(feature = "sqlite-baseline") {
                continue;
            }
            runs.push(run_child(engine, file, &work.join(format!("{engine}-db")))?);
        }
        exports.push((name.to_string(), bytes, runs));
        if !keep {
            std::fs::remove_file(file)?;
        }
    }
    Ok(ImportReport { exports })
}

fn run_child(engine: &str, file: &Path, dir: &Path) -> anyhow::Result<ImportRun> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let exe = std::env::current_exe().context("finding the chatkeeper binary")?;
    let output = std::process::Command::new(exe)
        .args(["bench-import-engine", "--engine", engine, "--file"])
        .arg(file)
        .arg("--dir")
        .arg(dir)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("the {engine} import process failed ({})", output.status);
    }
    let run = serde_json::from_slice(&output.stdout)?;
    std::fs::remove_dir_all(dir)?;
    Ok(run)
}

/// The child side: imports `file` into a new store or SQLite database in `dir`.
pub fn run_engine(engine: &str, file: &Path, dir: &Path) -> anyhow::Result<ImportRun> {
    let started = Instant::now();
    let bytes = std::fs::metadata(file)?.len();
    let messages = match engine {
        "store" => {
            // As `chatkeeper import` does it: the profiles are part of the import.
            let store = Store::open(StoreConfig::new(dir))?;
            let profiles = Profiles::new(store.clone(), 1, []);
            let analyzer = Analyzer::default();
            let summary = import_file(
                Some(&store),
                Some(ProfileUpdate {
                    profiles: &profiles,
                    analyzer: &analyzer,
                }),
                file,
                &ImportOptions::default(),
                &Arc::new(AtomicU64::new(0)),
            )?;
            summary.messages + summary.service_messages
        }
        #[cfg(feature = "sqlite-baseline")]
        "sqlite" => {
            let mut sink = SqliteSink {
                engine: super::SqliteEngine::open(dir)?,
                chat: 0,
                batch: Vec::new(),
                stored: 0,
            };
            reader::read_export(std::fs::File::open(file)?, &mut sink)?;
            sink.engine.flush()?;
            sink.stored
        }
        other => bail!("unknown engine {other}"),
    };
    Ok(ImportRun {
        engine: engine.into(),
        messages,
        seconds: started.elapsed().as_secs_f64(),
        bytes,
        peak_rss_bytes: peak_rss(),
    })
}

/// The old bot's import: the same records, inserted 1,000 per transaction.
#[cfg(feature = "sqlite-baseline")]
struct SqliteSink {
    engine: super::SqliteEngine,
    chat: i64,
    batch: Vec<Message>,
    stored: u64,
}

#[cfg(feature = "sqlite-baseline")]
impl Sink for SqliteSink {
    fn chat(&mut self, header: &ChatHeader) -> Result<(), String> {
        self.chat =
            record::bot_api_chat_id(header.kind.as_deref().unwrap_or(""), header.id.unwrap_or(0))?;
        Ok(())
    }

    fn record(&mut self, record: Record) -> Result<(), String> {
        if let Ok((message, _)) = record.to_message(self.chat) {
            self.batch.push(message);
            if self.batch.len() == 1000 {
                self.end_chat()?;
            }
        }
        Ok(())
    }

    fn end_chat(&mut self) -> Result<(), String> {
        self.stored += self.batch.len() as u64;
        let batch = std::mem::take(&mut self.batch);
        self.engine.save_batch(batch).map_err(|e| e.to_string())
    }
}

/// Writes the workload as a Telegram Desktop export: one chat, or the whole account with one
/// chat per workload chat (assembled from per-chat part files, so memory stays flat).
pub fn write_export(path: &Path, spec: WorkloadSpec, full_account: bool) -> anyhow::Result<()> {
    let chats = spec.chats.max(1) as usize;
    let parts: Vec<PathBuf> = (0..chats)
        .map(|i| path.with_extension(format!("part{i}")))
        .collect();
    {
        let mut writers = parts
            .iter()
            .map(|p| std::fs::File::create(p).map(|f| BufWriter::with_capacity(8192, f)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut first = vec![true; chats];
        for m in Workload::new(spec) {
            let chat = (-1_001_000_000_000 - m.chat_id) as usize;
            let w = &mut writers[chat];
            if !std::mem::take(&mut first[chat]) {
                w.write_all(b",\n")?;
            }
            serde_json::to_writer(&mut *w, &export_record(&m))?;
        }
        for mut w in writers {
            w.flush()?;
        }
    }
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    if full_account {
        out.write_all(b"{\"about\": \"Here is the data you requested.\", \"chats\": {\"about\": \"\", \"list\": [\n")?;
    }
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.write_all(b",\n")?;
        }
        writeln!(
            out,
            "{{\"name\": \"Chat {i}\", \"type\": \"private_supergroup\", \"id\": {}, \"messages\": [",
            1_000_000_000 + i as i64
        )?;
        std::io::copy(&mut std::fs::File::open(part)?, &mut out)?;
        out.write_all(b"]}")?;
        std::fs::remove_file(part)?;
    }
    if full_account {
        out.write_all(b"]}}")?;
    }
    out.flush()?;
    Ok(())
}

/// A message as the Desktop writer would write it (with `text_entities`, as real exports have).
fn export_record(m: &Message) -> serde_json::Value {
    let mut record = serde_json::json!({
        "id": m.message_id,
        "type": "message",
        "date": crate::import::format_export_date(m.time),
        "date_unixtime": m.time.to_string(),
        "from": m.sender_name,
        "from_id": format!("user{}", m.user_id.unwrap_or(0)),
        "text": m.text,
        "text_entities": [{"type": "plain", "text": m.text}],
    });
    if let Some(reply) = m.reply_to {
        record["reply_to_message_id"] = reply.into();
    }
    match m.kind {
        MessageKind::Photo => {
            record["photo"] =
                "(File not included. Change data exporting settings to download.)".into()
        }
        MessageKind::Sticker => {
            record["file"] = "(File not included.)".into();
            record["media_type"] = "sticker".into();
        }
        MessageKind::Voice => {
            record["file"] = "(File not included.)".into();
            record["media_type"] = "voice_message".into();
        }
        _ => {}
    }
    record
}

impl ImportReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (name, bytes, runs) in &self.exports {
            out += &format!("{name} export: {:.1} MB\n", *bytes as f64 / 1e6);
            out += &format!(
                "  {:<12} {:>12} {:>10} {:>10} {:>14}\n",
                "engine", "messages/s", "MB/s", "seconds", "peak RSS MiB"
            );
            for r in runs {
                out += &format!(
                    "  {:<12} {:>12.0} {:>10.1} {:>10.1} {:>14.1}\n",
                    r.engine,
                    r.per_sec(),
                    r.mb_per_sec(),
                    r.seconds,
                    r.peak_rss_bytes as f64 / 1048576.0
                );
            }
            if let [ours, theirs] = &runs[..] {
                out += &format!("  ratio: {:.1}x\n", ours.per_sec() / theirs.per_sec());
            }
        }
        out
    }
}
