//! `chatkeeper bench-recall`: the long memory's costs on the benchmark workload: offline
//! `/catchup` over windows of a given size (10,000 messages by default) and `/ask` offline,
//! with `/search` for one word timed in the same run as the reference, and the peak RSS while
//! they run. The parent writes the store and builds its index; a child process opens them and
//! times the operations, so that its peak RSS is theirs and not the writing's.

use super::measure::{histogram, op, peak_rss, record, reset_peak_rss, rss_of, OpResult};
use super::search::write_store;
use super::workload::{Workload, WorkloadSpec};
use crate::recall::{self, Question, Scope, Window};
use crate::search::{Query, Request, SearchIndex};
use crate::store::{ChatId, Store, StoreConfig, Timestamp};
use anyhow::{bail, Context};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct RecallBenchOptions {
    pub spec: WorkloadSpec,
    /// Messages each catch-up's window holds.
    pub window: u64,
    /// Catch-ups, and questions (and reference searches), to time.
    pub catchups: u64,
    pub questions: u64,
    pub work_dir: Option<PathBuf>,
}

/// The figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecallBenchReport {
    pub messages: u64,
    pub chats: u32,
    pub window: u64,
    /// Messages a catch-up read, on average (what its window held, up to the read cap).
    pub read_per_catchup: f64,
    pub catchup: OpResult,
    pub ask: OpResult,
    /// `/search` for one word in the same chats: the reference.
    pub search: OpResult,
    /// Questions that found something.
    pub answered: u64,
    /// Resident before the operations (the store and index opened): what they add is the
    /// peak less this.
    pub start_rss_bytes: u64,
    pub peak_rss_bytes: u64,
}

/// Runs it: writes the workload, builds the index, then times the operations.
pub fn run(options: &RecallBenchOptions) -> anyhow::Result<RecallBenchReport> {
    let temp;
    let work = match &options.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("chatkeeper-bench-recall")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let store_dir = work.join("store");
    if store_dir.exists() {
        std::fs::remove_dir_all(&store_dir)?;
    }
    eprintln!("bench-recall: writing {} messages", options.spec.messages);
    let store = write_store(options.spec, &store_dir)?;
    let index = SearchIndex::open(&store)?;
    index.catch_up()?;
    index.flush()?;
    drop(index);
    drop(store);
    let exe = std::env::current_exe().context("finding the chatkeeper binary")?;
    let output = std::process::Command::new(exe)
        .arg("bench-recall-run")
        .arg("--store")
        .arg(&store_dir)
        .args(["--chats", &options.spec.chats.to_string()])
        .args(["--seed", &options.spec.seed.to_string()])
        .args(["--window", &options.window.to_string()])
        .args(["--catchups", &options.catchups.to_string()])
        .args(["--questions", &options.questions.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the recall benchmark process")?;
    if !output.status.success() {
        bail!("the recall benchmark process failed ({})", output.status);
    }
    let mut report: RecallBenchReport =
        serde_json::from_slice(&output.stdout).context("reading the recall benchmark's report")?;
    report.messages = options.spec.messages;
    Ok(report)
}

/// The child side: opens the store and its index, and times the operations.
pub fn run_child(
    store_dir: &Path,
    options: &RecallBenchOptions,
) -> anyhow::Result<RecallBenchReport> {
    let store = Store::open(StoreConfig::new(store_dir))?;
    let index = SearchIndex::open(&store)?;
    index.catch_up()?;
    let chats = big_chats(&store, options);
    anyhow::ensure!(
        !chats.is_empty(),
        "no chat holds {} messages: write more (--messages) or ask for a smaller --window",
        options.window
    );
    let mut rng = SmallRng::seed_from_u64(options.spec.seed ^ 0x7eca11);
    let start_rss_bytes = rss_of("self");
    reset_peak_rss();

    let mut latencies = histogram();
    let mut elapsed = Duration::ZERO;
    let mut read = 0u64;
    for _ in 0..options.catchups {
        let chat = chats[rng.random_range(0..chats.len())];
        let window = window_of(&store, chat, options.window, &mut rng)?;
        let started = Instant::now();
        let catchup = recall::catch_up(index.terms(), &store, &window, |_| true)?;
        elapsed += started.elapsed();
        record(&mut latencies, started);
        read += catchup.coverage.messages;
    }
    let catchup = op("catchup", options.catchups, elapsed, &latencies);

    let (mut ask_latencies, mut search_latencies) = (histogram(), histogram());
    let (mut ask_elapsed, mut search_elapsed) = (Duration::ZERO, Duration::ZERO);
    let mut answered = 0;
    let now = store
        .active_chats(Timestamp::MIN)
        .first()
        .map_or(0, |c| c.last_activity);
    for _ in 0..options.questions {
        let chat = chats[rng.random_range(0..chats.len())];
        let Some(words) = sampled_words(&store, chat, &mut rng)? else {
            continue;
        };
        let question = format!("що там було про {}?", words.join(" "));
        let started = Instant::now();
        let evidence = recall::evidence(
            &index,
            &Question {
                chat,
                text: &question,
                topic: None,
                now,
            },
        )?;
        ask_elapsed += started.elapsed();
        record(&mut ask_latencies, started);
        answered += u64::from(!evidence.hits.is_empty());

        let query = Query::parse(&words[0])?;
        let started = Instant::now();
        let found = index.find(&Request {
            query: &query,
            chat,
            asker: None,
            topic: None,
            now,
            utc_offset_secs: 0,
            offset: 0,
            limit: 10,
        });
        search_elapsed += started.elapsed();
        record(&mut search_latencies, started);
        if let Err(e) = found {
            if !matches!(e, crate::search::FindError::Query(_)) {
                return Err(e.into());
            }
        }
    }
    Ok(RecallBenchReport {
        messages: store.global_stats().total_messages,
        chats: options.spec.chats,
        window: options.window,
        read_per_catchup: read as f64 / options.catchups.max(1) as f64,
        catchup,
        ask: op("ask", options.questions, ask_elapsed, &ask_latencies),
        search: op(
            "search",
            options.questions,
            search_elapsed,
            &search_latencies,
        ),
        answered,
        start_rss_bytes,
        peak_rss_bytes: peak_rss(),
    })
}

/// The chats with at least `window` messages.
fn big_chats(store: &Store, options: &RecallBenchOptions) -> Vec<ChatId> {
    (0..options.spec.chats)
        .map(Workload::chat_id)
        .filter(|&chat| {
            store
                .chat_stats(chat)
                .is_some_and(|s| s.total_messages >= options.window)
        })
        .collect()
}

/// A window of about `size` messages of `chat` ending at a random day's end (or the chat's
/// last message), from its messages per day.
fn window_of(store: &Store, chat: ChatId, size: u64, rng: &mut SmallRng) -> anyhow::Result<Window> {
    const DAY: i64 = 86_400;
    let days = store.daily_counts(chat);
    let mut total = 0u64;
    // Days whose end leaves `size` messages before it.
    let ends: Vec<i64> = days
        .iter()
        .filter_map(|(&day, &count)| {
            total += count;
            (total >= size).then_some(day)
        })
        .collect();
    let end_day = ends[rng.random_range(0..ends.len())];
    let mut counted = 0u64;
    let mut from_day = end_day;
    for (&day, &count) in days.range(..=end_day).rev() {
        counted += count;
        from_day = day;
        if counted >= size {
            break;
        }
    }
    Ok(Window {
        chat,
        scope: Scope::Chat,
        from: from_day * DAY,
        to: end_day * DAY + DAY - 1,
    })
}

/// Three words of a message of `chat`, drawn as `/ask` questions use them.
fn sampled_words(
    store: &Store,
    chat: ChatId,
    rng: &mut SmallRng,
) -> anyhow::Result<Option<Vec<String>>> {
    let Some((first, last)) = store
        .chat_stats(chat)
        .and_then(|s| s.first_activity.zip(s.last_activity))
    else {
        return Ok(None);
    };
    let at = rng.random_range(first..=last);
    let Some(message) = store.chat_range(chat, at, last).next().transpose()? else {
        return Ok(None);
    };
    let words: Vec<String> = crate::tokens::words(&message.text)
        .map(crate::tokens::fold)
        .collect();
    if words.len() < 3 {
        return Ok(None);
    }
    let start = rng.random_range(0..=words.len() - 3);
    Ok(Some(words[start..start + 3].to_vec()))
}

impl RecallBenchReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let ms = |o: &OpResult| format!("{:.2} / {:.2}", o.p50_micros / 1e3, o.p99_micros / 1e3);
        format!(
            "workload: {} messages in {} chats; catch-up windows of {} messages\n\n\
             {:<44}{:>20}\n\
             {:<44}{:>20}\n\
             {:<44}{:>20}\n\
             {:<44}{:>20}\n\
             {:<44}{:>20}\n\
             {:<44}{:>20.1}\n\
             {:<44}{:>20.1}\n",
            self.messages,
            self.chats,
            self.window,
            format!("catch-up p50 / p99 (ms, {} runs)", self.catchup.count),
            ms(&self.catchup),
            "  messages read per catch-up".to_string(),
            format!("{:.0}", self.read_per_catchup),
            format!("ask p50 / p99 (ms, {} questions)", self.ask.count),
            ms(&self.ask),
            "  questions with matches".to_string(),
            self.answered,
            "search, one word, same chats p50 / p99 (ms)",
            ms(&self.search),
            "RSS before, store and index open (MiB)",
            self.start_rss_bytes as f64 / 1048576.0,
            "peak RSS while running (MiB)",
            self.peak_rss_bytes as f64 / 1048576.0,
        )
    }
}
