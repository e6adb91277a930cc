//! `chatkeeper bench`: the storage workload run against this store and SQLite in the same run.
//!
//! Each engine runs in its own child process (`chatkeeper bench-engine`), so that the peak RSS it
//! reports is its own. Both ingest the identical generated workload, then answer the same queries.

mod engine;
#[cfg(feature = "sqlite-baseline")]
mod fts;
pub mod import;
pub mod measure;
pub mod recall;
pub mod search;
#[cfg(feature = "sqlite-baseline")]
mod sqlite;
pub mod workload;

pub use engine::{Engine, StoreEngine};
#[cfg(feature = "sqlite-baseline")]
pub use fts::Fts5Index;
pub use measure::{disk_bytes, peak_rss, peak_rss_of, reset_peak_rss, rss_of, OpResult};
use measure::{histogram, op, record};
#[cfg(feature = "sqlite-baseline")]
pub use sqlite::SqliteEngine;

use crate::store::Timestamp;
use anyhow::{bail, Context};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use workload::{Workload, WorkloadSpec};

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub spec: WorkloadSpec,
    /// Queries per query operation (fewer if an operation exceeds its time budget).
    pub queries: u64,
    /// Where the engines put their files; a temporary directory when `None`.
    pub work_dir: Option<PathBuf>,
    /// Run SQLite too (leave it out of large runs: its one commit per message takes long).
    pub sqlite: bool,
}

/// One phase of an engine's run and the peak resident memory during it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseResult {
    pub name: String,
    pub seconds: f64,
    /// The process's peak RSS while the phase ran (it starts from what earlier phases left).
    pub peak_rss_bytes: u64,
}

/// One engine's figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineReport {
    pub engine: String,
    pub messages: u64,
    pub ops: Vec<OpResult>,
    pub phases: Vec<PhaseResult>,
    pub disk_bytes_per_message: f64,
    pub peak_rss_bytes: u64,
    pub reopen_millis: f64,
}

/// One operation of both engines side by side.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Comparison {
    pub name: String,
    pub ours_per_sec: f64,
    pub sqlite_per_sec: Option<f64>,
    /// Ours over SQLite: above 1 is faster.
    pub ratio: Option<f64>,
}

/// Both engines' figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchReport {
    pub spec: SpecSummary,
    /// Per operation, both engines' rates and the ratio.
    pub comparison: Vec<Comparison>,
    pub ours: EngineReport,
    pub sqlite: Option<EngineReport>,
}

/// The workload, as reported.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpecSummary {
    pub messages: u64,
    pub chats: u32,
    pub users: u32,
    pub queries: u64,
}

/// Time budget per query operation: slow baselines stop early rather than take minutes.
const QUERY_BUDGET: Duration = Duration::from_secs(10);
const BULK_BATCH: usize = 1_000;

/// Runs both engines in child processes and collects their reports.
pub fn run(options: &BenchOptions) -> anyhow::Result<BenchReport> {
    let temp;
    let work = match &options.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("chatkeeper-bench")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let ours = run_engine_children("store", &work.join("store"), options)?;
    let sqlite = if cfg!(feature = "sqlite-baseline") && options.sqlite {
        Some(run_engine_children(
            "sqlite",
            &work.join("sqlite"),
            options,
        )?)
    } else {
        None
    };
    let comparison = ours
        .ops
        .iter()
        .map(|o| {
            let theirs = sqlite
                .as_ref()
                .and_then(|r| r.ops.iter().find(|t| t.name == o.name))
                .map(|t| t.per_sec);
            Comparison {
                name: o.name.clone(),
                ours_per_sec: o.per_sec,
                sqlite_per_sec: theirs,
                ratio: theirs.map(|t| o.per_sec / t),
            }
        })
        .collect();
    Ok(BenchReport {
        spec: SpecSummary {
            messages: options.spec.messages,
            chats: options.spec.chats,
            users: options.spec.users,
            queries: options.queries,
        },
        comparison,
        ours,
        sqlite,
    })
}

/// Which part of an engine's run a child process does: each part is a process of its own, as a
/// restart is, so that no part starts with the heap another left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Live ingest, queries and the history scan, on one store.
    Live,
    /// Opening that store again (a restart), and its size on disk.
    Reopen,
    /// Bulk ingest into a second store.
    Bulk,
}

/// Runs the parts of one engine and joins their reports.
fn run_engine_children(
    engine: &str,
    dir: &Path,
    options: &BenchOptions,
) -> anyhow::Result<EngineReport> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let mut report = run_child(engine, dir, options, Part::Live)?;
    for part in [Part::Reopen, Part::Bulk] {
        let more = run_child(engine, dir, options, part)?;
        report.ops.extend(more.ops);
        report.phases.extend(more.phases);
        report.peak_rss_bytes = report.peak_rss_bytes.max(more.peak_rss_bytes);
        if part == Part::Reopen {
            report.reopen_millis = more.reopen_millis;
            report.disk_bytes_per_message = more.disk_bytes_per_message;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(report)
}

fn run_child(
    engine: &str,
    dir: &Path,
    options: &BenchOptions,
    part: Part,
) -> anyhow::Result<EngineReport> {
    let exe = std::env::current_exe().context("finding the chatkeeper binary")?;
    let part_name = match part {
        Part::Live => "live",
        Part::Reopen => "reopen",
        Part::Bulk => "bulk",
    };
    let output = std::process::Command::new(exe)
        .arg("bench-engine")
        .args(["--engine", engine])
        .args(["--part", part_name])
        .arg("--dir")
        .arg(dir)
        .args(["--messages", &options.spec.messages.to_string()])
        .args(["--chats", &options.spec.chats.to_string()])
        .args(["--users", &options.spec.users.to_string()])
        .args(["--queries", &options.queries.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running the {engine} benchmark process"))?;
    if !output.status.success() {
        bail!("the {engine} benchmark process failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading the {engine} benchmark's report"))
}

/// The child side: runs one part of the workload against one engine and reports.
pub fn run_engine<E: Engine>(
    dir: &Path,
    spec: WorkloadSpec,
    queries: u64,
    part: Part,
) -> anyhow::Result<EngineReport> {
    match part {
        Part::Live => {}
        Part::Reopen => return run_reopen::<E>(dir, spec),
        Part::Bulk => return run_bulk::<E>(dir, spec),
    }
    let mut ops = Vec::new();
    let mut phases = Phases::default();
    let live_dir = dir.join("live");
    let mut engine = E::open(&live_dir)?;
    let mut workload = Workload::new(spec);
    let mut latencies = histogram();
    let mut elapsed = Duration::ZERO;
    let mut end_time = 0;
    // Only the calls are timed: generating the workload is not the engine's work.
    for m in workload.by_ref() {
        end_time = m.time;
        let t = Instant::now();
        engine.save(m)?;
        elapsed += t.elapsed();
        record(&mut latencies, t);
    }
    let t = Instant::now();
    engine.flush()?;
    elapsed += t.elapsed();
    ops.push(op("live_ingest", spec.messages, elapsed, &latencies));
    phases.end(E::NAME, "live ingest");

    let mut rng = SmallRng::seed_from_u64(spec.seed ^ 0x5eed);
    let chats = spec.chats.max(1);
    let users = spec.users.max(1);
    let start_time = workload::START_TIME;
    let day = 86_400;
    ops.push(query("context100", queries, || {
        let chat = Workload::chat_id(workload.weighted_chat(rng.random()));
        engine.recent(chat, 100).map(|_| ())
    })?);
    ops.push(query("chat_stats", queries, || {
        let chat = Workload::chat_id(rng.random_range(0..chats));
        engine.chat_stats(chat).map(|_| ())
    })?);
    ops.push(query("global_stats", queries, || {
        engine.global_stats().map(|_| ())
    })?);
    ops.push(query("user_messages", queries, || {
        let user = Workload::user_id(rng.random_range(0..users));
        let from = rng.random_range(start_time..(end_time - day).max(start_time + 1));
        engine.user_messages(user, from, from + day).map(|_| ())
    })?);
    phases.end(E::NAME, "queries");

    // History: what walks everything a store holds (profiles, exports, checks, summaries).
    ops.push(walk("history_users", users as u64, |i| {
        engine
            .user_messages(Workload::user_id(i as u32), Timestamp::MIN, Timestamp::MAX)
            .map(|n| n as u64)
    })?);
    ops.push(walk("history_chats", chats as u64, |i| {
        engine
            .recent(Workload::chat_id(i as u32), 1_000)
            .map(|n| n as u64)
    })?);
    let t = Instant::now();
    let read = engine.scan_all()?;
    let mut latencies = histogram();
    record(&mut latencies, t);
    ops.push(op("history_scan", read, t.elapsed(), &latencies));
    phases.end(E::NAME, "history scan");

    drop(engine);
    Ok(EngineReport::of_part(E::NAME, spec, ops, phases))
}

/// The reopen part: a new process opens the live part's store and proves it can answer.
fn run_reopen<E: Engine>(dir: &Path, spec: WorkloadSpec) -> anyhow::Result<EngineReport> {
    let live_dir = dir.join("live");
    let mut phases = Phases::default();
    let t = Instant::now();
    let engine = E::open(&live_dir)?;
    engine.ready_check()?;
    let reopen = t.elapsed();
    drop(engine);
    phases.end(E::NAME, "reopen");
    let disk = disk_bytes(&live_dir)?;
    Ok(EngineReport {
        disk_bytes_per_message: disk as f64 / spec.messages.max(1) as f64,
        reopen_millis: reopen.as_secs_f64() * 1e3,
        ..EngineReport::of_part(E::NAME, spec, Vec::new(), phases)
    })
}

/// The bulk part: the whole workload in batches of [`BULK_BATCH`], as the importer stores.
fn run_bulk<E: Engine>(dir: &Path, spec: WorkloadSpec) -> anyhow::Result<EngineReport> {
    let mut ops = Vec::new();
    let mut phases = Phases::default();
    let mut engine = E::open(&dir.join("bulk"))?;
    let mut workload = Workload::new(spec);
    let mut latencies = histogram();
    let mut elapsed = Duration::ZERO;
    loop {
        let batch: Vec<_> = workload.by_ref().take(BULK_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let t = Instant::now();
        engine.save_batch(batch)?;
        record(&mut latencies, t);
        elapsed += t.elapsed();
    }
    let t = Instant::now();
    engine.flush()?;
    elapsed += t.elapsed();
    ops.push(op("bulk_ingest", spec.messages, elapsed, &latencies));
    drop(engine);
    phases.end(E::NAME, "bulk ingest");
    Ok(EngineReport::of_part(E::NAME, spec, ops, phases))
}

/// Times the phases of a run and the peak RSS of each (the kernel's high-water mark is reset
/// at each phase's start).
struct Phases {
    list: Vec<PhaseResult>,
    started: Instant,
}

impl Default for Phases {
    fn default() -> Self {
        reset_peak_rss();
        Phases {
            list: Vec::new(),
            started: Instant::now(),
        }
    }
}

impl EngineReport {
    /// The report of one part's operations and phases (the reopen part adds its own figures).
    fn of_part(engine: &str, spec: WorkloadSpec, ops: Vec<OpResult>, phases: Phases) -> Self {
        EngineReport {
            engine: engine.into(),
            messages: spec.messages,
            ops,
            peak_rss_bytes: phases.peak(),
            phases: phases.list,
            disk_bytes_per_message: 0.0,
            reopen_millis: 0.0,
        }
    }
}

impl Phases {
    /// Ends the current phase and begins the next.
    fn end(&mut self, engine: &str, name: &str) {
        let peak = peak_rss();
        eprintln!(
            "bench [{engine}]: {name} done in {:.1} s (peak RSS {:.1} MiB)",
            self.started.elapsed().as_secs_f64(),
            peak as f64 / 1048576.0
        );
        self.list.push(PhaseResult {
            name: name.into(),
            seconds: self.started.elapsed().as_secs_f64(),
            peak_rss_bytes: peak,
        });
        self.restart();
    }

    /// The highest peak of the phases so far.
    fn peak(&self) -> u64 {
        self.list
            .iter()
            .map(|p| p.peak_rss_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Begins a phase now.
    fn restart(&mut self) {
        reset_peak_rss();
        self.started = Instant::now();
    }
}

/// Runs `f` for each of `count` items (a walk over all users or chats), timing each; counts
/// the items as operations.
fn walk(
    name: &str,
    count: u64,
    mut f: impl FnMut(u64) -> anyhow::Result<u64>,
) -> anyhow::Result<OpResult> {
    let mut latencies = histogram();
    let started = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        f(i)?;
        record(&mut latencies, t);
    }
    Ok(op(name, count, started.elapsed(), &latencies))
}

/// Runs `f` up to `count` times (at least 5, at most [`QUERY_BUDGET`]) and times each call.
fn query(
    name: &str,
    count: u64,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<OpResult> {
    let mut latencies = histogram();
    let started = Instant::now();
    let mut done = 0;
    while done < count.max(1) {
        let t = Instant::now();
        f()?;
        record(&mut latencies, t);
        done += 1;
        if done >= 5 && started.elapsed() > QUERY_BUDGET {
            break;
        }
    }
    Ok(op(name, done, started.elapsed(), &latencies))
}

/// Reads one figure off an engine's report.
type Figure = fn(&EngineReport) -> f64;

impl BenchReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let s = &self.spec;
        let _ = writeln!(
            out,
            "workload: {} messages, {} chats (weights 1/(i+1)), {} users, 1-40 words; {} queries per query operation\n",
            s.messages, s.chats, s.users, s.queries
        );
        let _ = writeln!(
            out,
            "{:<14} {:>14} {:>14} {:>9} {:>22} {:>22}",
            "operation",
            "chatkeeper/s",
            "sqlite/s",
            "ratio",
            "ours p50 / p99 µs",
            "sqlite p50 / p99 µs"
        );
        for ours in &self.ours.ops {
            let theirs = self
                .sqlite
                .as_ref()
                .and_then(|r| r.ops.iter().find(|o| o.name == ours.name));
            let _ = writeln!(
                out,
                "{:<14} {:>14.0} {:>14} {:>9} {:>22} {:>22}",
                ours.name,
                ours.per_sec,
                theirs.map_or("-".into(), |t| format!("{:.0}", t.per_sec)),
                theirs.map_or("-".into(), |t| format!("{:.1}x", ours.per_sec / t.per_sec)),
                format!("{:.2} / {:.2}", ours.p50_micros, ours.p99_micros),
                theirs.map_or("-".into(), |t| format!(
                    "{:.2} / {:.2}",
                    t.p50_micros, t.p99_micros
                )),
            );
        }
        let _ = writeln!(
            out,
            "\n{:<24} {:>14} {:>14}",
            "peak RSS by phase (MiB)", "chatkeeper", "sqlite"
        );
        for phase in &self.ours.phases {
            let theirs = self
                .sqlite
                .as_ref()
                .and_then(|r| r.phases.iter().find(|p| p.name == phase.name))
                .map_or("-".into(), |p| {
                    format!("{:.1}", p.peak_rss_bytes as f64 / 1048576.0)
                });
            let _ = writeln!(
                out,
                "{:<24} {:>14.1} {:>14}",
                phase.name,
                phase.peak_rss_bytes as f64 / 1048576.0,
                theirs
            );
        }
        let figures: [(&str, Figure); 3] = [
            ("disk bytes/message", |r| r.disk_bytes_per_message),
            ("peak RSS (MiB)", |r| r.peak_rss_bytes as f64 / 1048576.0),
            ("reopen (ms)", |r| r.reopen_millis),
        ];
        let _ = writeln!(out, "\n{:<24} {:>14} {:>14}", "", "chatkeeper", "sqlite");
        for (name, value) in figures {
            let theirs = self
                .sqlite
                .as_ref()
                .map_or("-".into(), |r| format!("{:.1}", value(r)));
            let _ = writeln!(
                out,
                "{:<24} {:>14.1} {:>14}",
                name,
                value(&self.ours),
                theirs
            );
        }
        out
    }
}
