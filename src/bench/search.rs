//! `chatkeeper bench-search`: the search index against SQLite FTS5 (`unicode61`, what the
//! peers use) over the same stored messages, in the same run, each engine in its own process so
//! that its peak RSS is its own.
//!
//! The parent writes the benchmark workload into a store once and draws the queries from it
//! (words of sampled messages, so every query has matches): one word, two words, a two-word
//! phrase, and one word since a date. Each child builds its index from the store (timed: build
//! rate, and per message the cost the live path pays), measures its size, and runs the queries.

use super::measure::{disk_bytes, histogram, op, peak_rss, record, reset_peak_rss, OpResult};
use super::workload::{Workload, WorkloadSpec};
use crate::search::{Query, Request, SearchIndex};
use crate::store::{ChatId, FlushPolicy, MessageId, Store, StoreConfig, Timestamp};
use anyhow::{bail, Context};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Query classes, in report order.
pub const CLASSES: [&str; 4] = ["one_word", "two_words", "phrase", "filtered"];
/// Results asked per query (a page of `/search`).
const LIMIT: usize = 10;

/// What to run.
#[derive(Clone, Debug)]
pub struct SearchBenchOptions {
    pub spec: WorkloadSpec,
    /// Queries per class.
    pub queries: u64,
    pub work_dir: Option<PathBuf>,
    /// Run FTS5 too.
    pub sqlite: bool,
}

/// One query of the mix.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchQuery {
    pub class: String,
    pub chat: ChatId,
    /// Folded words; a phrase when the class is `phrase`.
    pub words: Vec<String>,
    pub since: Option<Timestamp>,
}

impl BenchQuery {
    /// The query as a person types it to `/search`.
    pub fn text(&self) -> String {
        let words = self.words.join(" ");
        match (self.class.as_str(), self.since) {
            ("phrase", _) => format!("\"{words}\""),
            (_, Some(since)) => {
                let day = chrono::DateTime::from_timestamp(since, 0)
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                format!("{words} since:{day}")
            }
            _ => words,
        }
    }
}

/// One engine's figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchEngineReport {
    pub engine: String,
    pub messages: u64,
    pub build_seconds: f64,
    pub build_per_sec: f64,
    /// Build time per message: what indexing adds to each recorded message.
    pub micros_per_message: f64,
    pub index_bytes: u64,
    pub bytes_per_message: f64,
    pub build_peak_rss_bytes: u64,
    pub query_peak_rss_bytes: u64,
    pub classes: Vec<OpResult>,
    /// Queries that found something.
    pub answered: u64,
}

/// Both engines.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchBenchReport {
    pub messages: u64,
    pub chats: u32,
    pub queries_per_class: u64,
    pub ours: SearchEngineReport,
    pub fts5: Option<SearchEngineReport>,
}

/// An index that the benchmark builds and queries.
pub trait SearchEngine: Sized {
    const NAME: &'static str;
    /// Builds the index of `store` in `dir`.
    fn build(store: &Store, dir: &Path) -> anyhow::Result<Self>;
    /// Its size on disk.
    fn bytes(&self) -> anyhow::Result<u64>;
    /// Runs one query; returns the ids of the results, best first.
    fn run(&mut self, query: &BenchQuery) -> anyhow::Result<Vec<MessageId>>;
}

/// Ours.
pub struct OurIndex {
    index: SearchIndex,
    dir: PathBuf,
    now: Timestamp,
}

impl SearchEngine for OurIndex {
    const NAME: &'static str = "chatkeeper";

    fn build(store: &Store, _dir: &Path) -> anyhow::Result<Self> {
        let dir = store.path().join("search");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let index = SearchIndex::open(store)?;
        index.catch_up()?;
        index.flush()?;
        let now = store
            .active_chats(Timestamp::MIN)
            .iter()
            .map(|c| c.last_activity)
            .max()
            .unwrap_or(0);
        Ok(OurIndex { index, dir, now })
    }

    fn bytes(&self) -> anyhow::Result<u64> {
        disk_bytes(&self.dir)
    }

    fn run(&mut self, query: &BenchQuery) -> anyhow::Result<Vec<MessageId>> {
        let parsed = Query::parse(&query.text())?;
        let found = self.index.find(&Request {
            query: &parsed,
            chat: query.chat,
            asker: None,
            topic: None,
            now: self.now,
            utc_offset_secs: 0,
            offset: 0,
            limit: LIMIT,
        });
        match found {
            Ok(found) => Ok(found.hits.iter().map(|h| h.message.message_id).collect()),
            // A sampled word that is a stop-word has no answer to time.
            Err(crate::search::FindError::Query(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs the benchmark: the store and the queries here, each engine in a child process.
pub fn run(options: &SearchBenchOptions) -> anyhow::Result<SearchBenchReport> {
    let temp;
    let work = match &options.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("chatkeeper-bench-search")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&work)?;
    let store_dir = work.join("store");
    if store_dir.exists() {
        std::fs::remove_dir_all(&store_dir)?;
    }
    eprintln!("bench-search: writing {} messages", options.spec.messages);
    let store = write_store(options.spec, &store_dir)?;
    let queries = draw_queries(&store, options)?;
    drop(store);
    let queries_file = work.join("queries.json");
    std::fs::write(&queries_file, serde_json::to_vec(&queries)?)?;
    let ours = run_child(OurIndex::NAME, &store_dir, &work, &queries_file)?;
    let fts5 = if cfg!(feature = "sqlite-baseline") && options.sqlite {
        Some(run_child("fts5", &store_dir, &work, &queries_file)?)
    } else {
        None
    };
    Ok(SearchBenchReport {
        messages: options.spec.messages,
        chats: options.spec.chats,
        queries_per_class: options.queries,
        ours,
        fts5,
    })
}

/// A store in `dir` holding the workload of `spec`, flushed.
pub(super) fn write_store(spec: WorkloadSpec, dir: &Path) -> anyhow::Result<Store> {
    let store = open_store(dir)?;
    let mut workload = Workload::new(spec);
    loop {
        let batch: Vec<_> = workload.by_ref().take(10_000).collect();
        if batch.is_empty() {
            break;
        }
        store.save_batch(batch)?;
    }
    store.flush()?;
    Ok(store)
}

fn open_store(dir: &Path) -> anyhow::Result<Store> {
    let mut config = StoreConfig::new(dir);
    config.flush = FlushPolicy::Manual;
    Ok(Store::open(config)?)
}

/// The query mix: per class, words of messages sampled from chats by their traffic.
fn draw_queries(store: &Store, options: &SearchBenchOptions) -> anyhow::Result<Vec<BenchQuery>> {
    let workload = Workload::new(options.spec);
    let mut rng = SmallRng::seed_from_u64(options.spec.seed ^ 0x5ea4c4);
    let mut queries = Vec::new();
    for class in CLASSES {
        let mut made = 0;
        while made < options.queries {
            let chat = Workload::chat_id(workload.weighted_chat(rng.random()));
            let Some((first, last)) = store
                .chat_stats(chat)
                .and_then(|s| s.first_activity.zip(s.last_activity))
            else {
                continue;
            };
            let at = rng.random_range(first..=last);
            let Some(message) = store.chat_range(chat, at, last).next().transpose()? else {
                continue;
            };
            let words: Vec<String> = crate::tokens::words(&message.text)
                .map(crate::tokens::fold)
                .collect();
            if words.len() < 2 {
                continue;
            }
            let i = rng.random_range(0..words.len() - 1);
            let j = rng.random_range(0..words.len());
            let (words, since) = match class {
                "one_word" => (vec![words[i].clone()], None),
                "two_words" if words[i] != words[j] => {
                    (vec![words[i].clone(), words[j].clone()], None)
                }
                "phrase" => (vec![words[i].clone(), words[i + 1].clone()], None),
                "filtered" => (vec![words[i].clone()], Some(message.time - 30 * 86_400)),
                _ => continue,
            };
            queries.push(BenchQuery {
                class: class.into(),
                chat,
                words,
                since,
            });
            made += 1;
        }
    }
    Ok(queries)
}

fn run_child(
    engine: &str,
    store_dir: &Path,
    work: &Path,
    queries: &Path,
) -> anyhow::Result<SearchEngineReport> {
    let exe = std::env::current_exe().context("finding the chatkeeper binary")?;
    let output = std::process::Command::new(exe)
        .arg("bench-search-engine")
        .args(["--engine", engine])
        .arg("--store")
        .arg(store_dir)
        .arg("--dir")
        .arg(work.join(engine))
        .arg("--queries")
        .arg(queries)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running the {engine} search benchmark process"))?;
    if !output.status.success() {
        bail!(
            "the {engine} search benchmark process failed ({})",
            output.status
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading the {engine} search benchmark's report"))
}

/// The child side: builds one engine's index and runs the queries.
pub fn run_engine<E: SearchEngine>(
    store_dir: &Path,
    dir: &Path,
    queries: &Path,
) -> anyhow::Result<SearchEngineReport> {
    let queries: Vec<BenchQuery> = serde_json::from_slice(&std::fs::read(queries)?)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let store = open_store(store_dir)?;
    let messages = store.global_stats().total_messages;
    reset_peak_rss();
    let started = Instant::now();
    let mut engine = E::build(&store, dir)?;
    let build = started.elapsed();
    let build_peak = peak_rss();
    eprintln!(
        "bench-search [{}]: built in {:.1} s (peak RSS {:.1} MiB)",
        E::NAME,
        build.as_secs_f64(),
        build_peak as f64 / 1048576.0
    );
    let bytes = engine.bytes()?;
    reset_peak_rss();
    let mut classes = Vec::new();
    let mut answered = 0;
    for class in CLASSES {
        let mut latencies = histogram();
        let mut elapsed = Duration::ZERO;
        let mut count = 0;
        for query in queries.iter().filter(|q| q.class == class) {
            let t = Instant::now();
            let found = engine.run(query)?;
            elapsed += t.elapsed();
            record(&mut latencies, t);
            count += 1;
            answered += u64::from(!found.is_empty());
        }
        classes.push(op(class, count, elapsed, &latencies));
    }
    let query_peak = peak_rss();
    Ok(SearchEngineReport {
        engine: E::NAME.into(),
        messages,
        build_seconds: build.as_secs_f64(),
        build_per_sec: messages as f64 / build.as_secs_f64().max(1e-9),
        micros_per_message: build.as_secs_f64() * 1e6 / messages.max(1) as f64,
        index_bytes: bytes,
        bytes_per_message: bytes as f64 / messages.max(1) as f64,
        build_peak_rss_bytes: build_peak,
        query_peak_rss_bytes: query_peak,
        classes,
        answered,
    })
}

impl SearchBenchReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "workload: {} messages in {} chats; {} queries per class, {} results each\n",
            self.messages, self.chats, self.queries_per_class, LIMIT
        );
        let engines: Vec<&SearchEngineReport> = std::iter::once(&self.ours)
            .chain(self.fts5.as_ref())
            .collect();
        let _ = write!(out, "{:<28}", "");
        for e in &engines {
            let _ = write!(out, "{:>26}", e.engine);
        }
        out.push('\n');
        type Row = (&'static str, fn(&SearchEngineReport) -> String);
        let rows: [Row; 6] = [
            ("build (messages/s)", |e| format!("{:.0}", e.build_per_sec)),
            ("build per message (µs)", |e| {
                format!("{:.2}", e.micros_per_message)
            }),
            ("index (bytes/message)", |e| {
                format!("{:.1}", e.bytes_per_message)
            }),
            ("peak RSS build (MiB)", |e| {
                format!("{:.1}", e.build_peak_rss_bytes as f64 / 1048576.0)
            }),
            ("peak RSS queries (MiB)", |e| {
                format!("{:.1}", e.query_peak_rss_bytes as f64 / 1048576.0)
            }),
            ("queries with results", |e| format!("{}", e.answered)),
        ];
        for (name, figure) in rows {
            let _ = write!(out, "{name:<28}");
            for e in &engines {
                let _ = write!(out, "{:>26}", figure(e));
            }
            out.push('\n');
        }
        for class in CLASSES {
            let _ = write!(out, "{:<28}", format!("{class} p50 / p99 (ms)"));
            for e in &engines {
                let cell = e
                    .classes
                    .iter()
                    .find(|c| c.name == class)
                    .map_or("-".to_string(), |c| {
                        format!("{:.3} / {:.3}", c.p50_micros / 1e3, c.p99_micros / 1e3)
                    });
                let _ = write!(out, "{cell:>26}");
            }
            out.push('\n');
        }
        out
    }
}
