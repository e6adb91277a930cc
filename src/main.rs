//! The `chatkeeper` command line.

use anyhow::Context;
use chatkeeper::analyzer::cache::AnalysisCache;
use chatkeeper::analyzer::trends::Trends;
use chatkeeper::analyzer::{lexicon::Lexicon, profile::Profiles, Analyzer};
use chatkeeper::bench::{self, workload::WorkloadSpec, BenchOptions, StoreEngine};
use chatkeeper::bot::settings;
use chatkeeper::chart::{self, ChartData, ChartLabels};
use chatkeeper::config::Config;
use chatkeeper::import;
use chatkeeper::search::{self, Query};
use chatkeeper::store::{self, ChatStats, FlushPolicy, GlobalStats, Store, StoreConfig};
use chatkeeper::texts::{self, Lang};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Self-hosted Telegram group bot with its own memory.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The data directory [default: ./data, or `data_dir` of the configuration for `run`].
    #[arg(long, global = true, env = "CHATKEEPER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The data directory of every command but `run` (which reads it from the configuration).
    fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("./data"))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Analyse one text: language, emotion, sentiment, topic, keywords (for tuning lexicons).
    Analyze {
        text: String,
        /// Read the word lists from this directory (laid out like data/lexicon) instead of the
        /// built-in ones.
        #[arg(long)]
        lexicon: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the Telegram bot (reads TELOXIDE_TOKEN; stops cleanly on SIGTERM / Ctrl-C).
    Run {
        /// The configuration file [default: ./chatkeeper.toml when it exists].
        #[arg(long, env = "CHATKEEPER_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Statistics of one chat (--chat) or of the whole store.
    Stats {
        /// A chat id as the Bot API writes it (groups are negative: -100…).
        #[arg(long, allow_hyphen_values = true)]
        chat: Option<i64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Draw a chat's chart as PNG: messages by local hour, messages per day, and the emotion mix
    /// of the last 7 days (the picture for /stats and /analytics).
    Chart {
        /// A chat id as the Bot API writes it (groups are negative: -100…).
        #[arg(long, allow_hyphen_values = true)]
        chat: i64,
        /// The PNG file to write.
        #[arg(long)]
        out: PathBuf,
        /// Days of the messages-per-day panel, up to today.
        #[arg(long, default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(1..=chart::MAX_DAYS as u64))]
        days: u64,
        /// The labels' language: uk or en.
        #[arg(long, default_value = "en", value_parser = parse_lang)]
        lang: Lang,
        /// The configuration whose `bot.utc_offset_hours` sets the local hours [default:
        /// ./chatkeeper.toml when it exists].
        #[arg(long, env = "CHATKEEPER_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Search the stored history with the engine of /search (the index first reads what it
    /// lacks): `chatkeeper search "радий -дощ from:@oksana" --chat -100123`.
    Search {
        /// The query, quoted as one argument: words, word*, "phrases", -excluded,
        /// from:@username, since:2025-03-01, until:2025-03-31.
        #[arg(allow_hyphen_values = true)]
        query: String,
        /// Only this chat (the id as the Bot API writes it; groups are negative: -100…).
        #[arg(long, allow_hyphen_values = true)]
        chat: Option<i64>,
        /// Results to show.
        #[arg(long, default_value_t = 10,
              value_parser = clap::value_parser!(u64).range(1..=1000))]
        limit: u64,
        /// Print JSON: each hit's chat id, message id, time, author, text, snippet, score and
        /// link.
        #[arg(long)]
        json: bool,
    },
    /// Check every derived structure and counter against the messages.
    Verify {
        /// Rebuild what does not match.
        #[arg(long)]
        repair: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Import a Telegram Desktop export (result.json, single chat or whole account).
    Import {
        path: PathBuf,
        /// Store a single-chat export under this Bot API chat id.
        #[arg(long, allow_hyphen_values = true)]
        chat_id: Option<i64>,
        /// Parse and report without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent single-file backup.
    Backup { file: PathBuf },
    /// Restore a backup into an empty --data-dir.
    Restore { file: PathBuf },
    /// Storage benchmark against SQLite, in the same run.
    Bench {
        #[command(flatten)]
        workload: WorkloadArgs,
        /// Queries per query operation.
        #[arg(long, default_value_t = 20_000)]
        queries: u64,
        /// Where the engines write (a temporary directory by default).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Leave SQLite out (for large runs: its one commit per message takes long).
        #[arg(long)]
        no_sqlite: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write the JSON report to this file.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Import benchmark against SQLite: generated exports, file to durable store.
    BenchImport {
        #[command(flatten)]
        workload: WorkloadArgs,
        /// Where exports and databases go (a temporary directory by default). Exports generated
        /// in a given directory are kept and reused by later runs of the same size.
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Runs one engine of `bench-import` (the benchmark starts this itself).
    #[command(hide = true)]
    BenchImportEngine {
        #[arg(long)]
        engine: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Search benchmark: the search index against SQLite FTS5 over the same messages, in the
    /// same run (build rate, bytes per message, query latency per class, peak RSS).
    BenchSearch {
        #[command(flatten)]
        workload: WorkloadArgs,
        /// Queries per class (one word, two words, phrase, filtered).
        #[arg(long, default_value_t = 2_000)]
        queries: u64,
        /// Keep the engines' files here instead of a temporary directory.
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Leave FTS5 out.
        #[arg(long)]
        no_sqlite: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The long memory's costs: offline `/catchup` over windows of `--window` messages and
    /// `/ask` offline (p50 / p99), with `/search` timed in the same run as the reference, and
    /// the peak RSS.
    BenchRecall {
        #[command(flatten)]
        workload: WorkloadArgs,
        /// Messages each catch-up's window holds.
        #[arg(long, default_value_t = 10_000)]
        window: u64,
        /// Catch-ups to time.
        #[arg(long, default_value_t = 200)]
        catchups: u64,
        /// Questions to time.
        #[arg(long, default_value_t = 1_000)]
        questions: u64,
        /// Keep the store here instead of a temporary directory.
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The timed part of `bench-recall` (run by it in a child process).
    #[command(hide = true)]
    BenchRecallRun {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        chats: u32,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        window: u64,
        #[arg(long)]
        catchups: u64,
        #[arg(long)]
        questions: u64,
    },
    /// One engine of `bench-search` (run by it in a child process).
    #[command(hide = true)]
    BenchSearchEngine {
        #[arg(long)]
        engine: String,
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        queries: PathBuf,
    },
    /// Runs one engine of `bench` (the benchmark starts this itself).
    #[command(hide = true)]
    BenchEngine {
        #[arg(long)]
        engine: String,
        #[arg(long, value_enum)]
        part: bench::Part,
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        workload: WorkloadArgs,
        #[arg(long)]
        queries: u64,
    },
}

/// The benchmark workload's shape.
#[derive(clap::Args)]
struct WorkloadArgs {
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    #[arg(long, default_value_t = 200)]
    chats: u32,
    #[arg(long, default_value_t = 2_000)]
    users: u32,
}

impl WorkloadArgs {
    fn spec(&self) -> WorkloadSpec {
        WorkloadSpec {
            messages: self.messages,
            chats: self.chats,
            users: self.users,
            ..WorkloadSpec::default()
        }
    }
}

fn main() -> ExitCode {
    // Parsing spawns no thread: the allocator can still be set up for the command.
    let cli = Cli::parse();
    chatkeeper::memory::limit_malloc_arenas(match cli.command {
        Command::Import { .. } | Command::BenchImportEngine { .. } => {
            chatkeeper::memory::IMPORT_ARENAS
        }
        _ => chatkeeper::memory::ONE_ARENA,
    });
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the store and runs the bot on a two-thread runtime (the VPS has two cores) until SIGTERM
/// or Ctrl-C.
fn run_bot(config: Config) -> anyhow::Result<()> {
    let connection = chatkeeper::bot::Connection::from_env()?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let store = Store::open(StoreConfig::new(&config.data_dir))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Blocking work (the store, charts) beyond a few threads only queues on two cores, and
        // each thread may keep a malloc arena of its own.
        .max_blocking_threads(8)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        chatkeeper::bot::run(config, store, connection, shutdown).await
    });
    // Blocking work of cancelled handlers (an import, a purge) must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// Resolves on SIGTERM (systemd stop) or Ctrl-C. The handlers are installed at once, so a
/// signal during start-up is not lost (nor does it kill the process uncleanly).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// The store's search index, having read what it lacked (said on stderr when that is much).
fn open_index(store: &Store) -> anyhow::Result<search::SearchIndex> {
    let index = search::SearchIndex::open(store)?;
    let status = index.status();
    if status.store_seq > status.read_upto + 64 {
        eprintln!(
            "the search index is reading the history it lacks (blocks {} to {})…",
            status.read_upto + 1,
            status.store_seq
        );
    }
    index.catch_up()?;
    index.flush()?;
    Ok(index)
}

fn open_existing(dir: &Path) -> anyhow::Result<Store> {
    if !dir.join("conf").exists() {
        anyhow::bail!(
            "{} holds no chatkeeper store: pass --data-dir (or set CHATKEEPER_DATA_DIR) to the bot's data directory",
            dir.display()
        );
    }
    let mut config = StoreConfig::new(dir);
    config.flush = FlushPolicy::Manual;
    Ok(Store::open(config)?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = cli.data_dir();
    match cli.command {
        Command::Analyze {
            text,
            lexicon,
            json,
        } => {
            let lexicon = match lexicon {
                Some(dir) => Lexicon::from_dir(&dir)?,
                None => Lexicon::embedded(),
            };
            let analysis = Analyzer::new(lexicon).analyze(&text);
            if json {
                println!("{}", serde_json::to_string_pretty(&analysis)?);
            } else {
                println!(
                    "language: {}\nemotion: {} (confidence {:.2})\nsentiment: {:+.2} ({})\n\
                     topic: {}\nkeywords: {}\nemoji: {}, words: {}",
                    analysis.language.code(),
                    analysis.emotion.name(),
                    analysis.confidence,
                    analysis.sentiment,
                    analysis.polarity(),
                    analysis.topic.map_or("-", |t| t.name()),
                    analysis.keywords.join(", "),
                    analysis.emoji,
                    analysis.words
                );
            }
        }
        Command::Run { config } => {
            let config = Config::load(config.as_deref(), cli.data_dir.as_deref())?;
            run_bot(config)?;
        }
        Command::Stats { chat, json } => {
            let store = open_existing(&data_dir)?;
            match chat {
                Some(id) => {
                    let stats = store
                        .chat_stats(id)
                        .with_context(|| format!("the store has no chat {id}"))?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&stats)?);
                    } else {
                        print!("{}", chat_text(&stats));
                    }
                }
                None => {
                    let stats = store.global_stats();
                    if json {
                        println!("{}", serde_json::to_string_pretty(&stats)?);
                    } else {
                        print!("{}", global_text(&stats));
                    }
                }
            }
        }
        Command::Chart {
            chat,
            out,
            days,
            lang,
            config,
        } => {
            let utc_offset = Config::load(config.as_deref(), None)?.bot.utc_offset_hours;
            let store = open_existing(&data_dir)?;
            let now = chrono::Utc::now().timestamp();
            let emotions = week_emotions(&store, chat, now)?;
            let data =
                ChartData::from_store(&store, chat, emotions, now, days as usize, utc_offset)
                    .with_context(|| {
                        format!(
                        "the store in {} has no chat {chat}: pass the id as the Bot API writes it \
                         (groups are negative: -100…) and --data-dir of the bot's data directory",
                        data_dir.display()
                    )
                    })?;
            let started = std::time::Instant::now();
            let png = chart::render_png(&data, &ChartLabels::new(lang))?;
            let elapsed = started.elapsed();
            std::fs::write(&out, &png).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "wrote {} ({}×{}, {} bytes), rendered in {:.1} ms",
                out.display(),
                chart::WIDTH,
                chart::HEIGHT,
                png.len(),
                elapsed.as_secs_f64() * 1e3
            );
        }
        Command::Search {
            query,
            chat,
            limit,
            json,
        } => {
            let query = match Query::parse(&query) {
                Ok(query) => query,
                Err(e) => anyhow::bail!("{}", texts::search_refused(Lang::En, &e)),
            };
            let store = open_existing(&data_dir)?;
            let index = open_index(&store)?;
            let chats = match chat {
                Some(id) if store.chat_stats(id).is_some() => vec![id],
                Some(id) => anyhow::bail!(
                    "the store in {} has no chat {id}: pass the id as the Bot API writes it \
                     (groups are negative: -100…), or leave --chat out to search every chat",
                    data_dir.display()
                ),
                None => store.chats(),
            };
            let now = chrono::Utc::now().timestamp();
            let run = || search::records::search_chats(&index, &query, &chats, limit as usize, now);
            let results = match run() {
                // Damage found by the search: rebuild the index now, and search again.
                Err(search::FindError::Index(search::SearchError::Damaged(why))) => {
                    eprintln!(
                        "the search index is damaged ({why}); rebuilding it from the messages…"
                    );
                    index.catch_up()?;
                    index.flush()?;
                    run()
                }
                other => other,
            };
            let results = match results {
                Ok(results) => results,
                Err(search::FindError::Query(e)) => {
                    anyhow::bail!("{}", texts::search_refused(Lang::En, &e))
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else if results.hits.is_empty() {
                println!("nothing found");
            } else {
                for (n, hit) in results.hits.iter().enumerate() {
                    print!("{}. {hit}", n + 1);
                }
            }
        }
        Command::Verify { repair, json } => {
            let store = open_existing(&data_dir)?;
            let mut report = if repair {
                store.repair()?
            } else {
                store.verify()?
            };
            // The search index is derived too: checked as it is on disk, rebuilt by --repair.
            if repair {
                search::SearchIndex::open(&store)?.rebuild()?;
            } else {
                report.problems.extend(search::SearchIndex::inspect(&store));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "checked {} chats, {} blocks, {} messages, {} profiles",
                    report.chats, report.blocks, report.messages, report.profiles
                );
                for problem in &report.problems {
                    println!("mismatch: {problem}");
                }
                if report.is_clean() {
                    println!(
                        "no mismatches{}",
                        if repair { " (after repair)" } else { "" }
                    );
                } else if !repair {
                    println!("run `chatkeeper verify --repair` to rebuild what does not match");
                }
            }
            return Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            });
        }
        Command::Import {
            path,
            chat_id,
            dry_run,
            json,
        } => {
            let store = if dry_run {
                None
            } else {
                Some(Store::open(StoreConfig::new(&data_dir))?)
            };
            let total = std::fs::metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .len();
            let read = Arc::new(AtomicU64::new(0));
            // `/me` should know the imported history too: profiles are updated as it is stored.
            let profiles = match &store {
                Some(store) => Some(Profiles::new(
                    store.clone(),
                    1,
                    settings::profile_opt_outs(store)?,
                )),
                None => None,
            };
            let analyzer = Analyzer::default();
            let progress = Progress::start(total, read.clone());
            let summary = import::import_file(
                store.as_ref(),
                profiles.as_ref().map(|profiles| import::ProfileUpdate {
                    profiles,
                    analyzer: &analyzer,
                }),
                &path,
                &import::ImportOptions { chat_id },
                &read,
            );
            progress.finish();
            let summary = summary?;
            // The search index reads what was imported now, not at the bot's next start.
            if let Some(store) = &store {
                open_index(store)?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{summary}");
            }
        }
        Command::Backup { file } => {
            let store = open_existing(&data_dir)?;
            let summary = store.backup(&file)?;
            println!(
                "backup {}: {} chats, {} users, {} messages, {} bytes",
                file.display(),
                summary.chats,
                summary.users,
                summary.messages,
                summary.bytes
            );
        }
        Command::Restore { file } => {
            let summary = store::restore(&file, &data_dir)?;
            println!(
                "restored {} chats, {} users, {} messages into {}",
                summary.chats,
                summary.users,
                summary.messages,
                data_dir.display()
            );
        }
        Command::Bench {
            workload,
            queries,
            work_dir,
            no_sqlite,
            json,
            save,
        } => {
            let options = BenchOptions {
                spec: workload.spec(),
                queries,
                work_dir,
                sqlite: !no_sqlite,
            };
            let report = bench::run(&options)?;
            if let Some(file) = save {
                std::fs::write(&file, serde_json::to_string_pretty(&report)?)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
        }
        Command::BenchImport {
            workload,
            work_dir,
            json,
        } => {
            let report = bench::import::run(workload.spec(), work_dir.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
        }
        Command::BenchImportEngine { engine, file, dir } => {
            let run = bench::import::run_engine(&engine, &file, &dir)?;
            println!("{}", serde_json::to_string(&run)?);
        }
        Command::BenchSearch {
            workload,
            queries,
            work_dir,
            no_sqlite,
            json,
        } => {
            let report = bench::search::run(&bench::search::SearchBenchOptions {
                spec: workload.spec(),
                queries,
                work_dir,
                sqlite: !no_sqlite,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
        }
        Command::BenchRecall {
            workload,
            window,
            catchups,
            questions,
            work_dir,
            json,
        } => {
            let report = bench::recall::run(&bench::recall::RecallBenchOptions {
                spec: workload.spec(),
                window,
                catchups,
                questions,
                work_dir,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
        }
        Command::BenchRecallRun {
            store,
            chats,
            seed,
            window,
            catchups,
            questions,
        } => {
            let options = bench::recall::RecallBenchOptions {
                spec: WorkloadSpec {
                    chats,
                    seed,
                    ..WorkloadSpec::default()
                },
                window,
                catchups,
                questions,
                work_dir: None,
            };
            let report = bench::recall::run_child(&store, &options)?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::BenchSearchEngine {
            engine,
            store,
            dir,
            queries,
        } => {
            use bench::search::{run_engine, OurIndex};
            let report = match engine.as_str() {
                "chatkeeper" => run_engine::<OurIndex>(&store, &dir, &queries)?,
                #[cfg(feature = "sqlite-baseline")]
                "fts5" => run_engine::<bench::Fts5Index>(&store, &dir, &queries)?,
                other => anyhow::bail!("unknown search engine {other}"),
            };
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::BenchEngine {
            engine,
            part,
            dir,
            workload,
            queries,
        } => {
            let spec = workload.spec();
            let report = match engine.as_str() {
                "store" => bench::run_engine::<StoreEngine>(&dir, spec, queries, part)?,
                #[cfg(feature = "sqlite-baseline")]
                "sqlite" => bench::run_engine::<bench::SqliteEngine>(&dir, spec, queries, part)?,
                other => anyhow::bail!("unknown engine {other}"),
            };
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Import progress: a bar on a terminal, a log line every few seconds otherwise.
struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(total: u64, read: Arc<AtomicU64>) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let done = done.clone();
            std::thread::spawn(move || {
                let bar = std::io::stderr().is_terminal().then(|| {
                    let bar = indicatif::ProgressBar::new(total);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                        )
                        .expect("a valid template"),
                    );
                    bar
                });
                let mut last_log = std::time::Instant::now();
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    let bytes = read.load(Ordering::Relaxed);
                    match &bar {
                        Some(bar) => bar.set_position(bytes),
                        None if last_log.elapsed().as_secs() >= 5 => {
                            tracing::info!(
                                "import: {:.0}% ({} of {} MB)",
                                bytes as f64 * 100.0 / total.max(1) as f64,
                                bytes >> 20,
                                total >> 20
                            );
                            last_log = std::time::Instant::now();
                        }
                        None => {}
                    }
                }
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
            })
        };
        Progress {
            done,
            thread: Some(thread),
        }
    }

    fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `--lang` of `chart`.
fn parse_lang(code: &str) -> Result<Lang, String> {
    match code {
        "uk" => Ok(Lang::Uk),
        "en" => Ok(Lang::En),
        other => Err(format!("{other:?} is not uk or en")),
    }
}

/// The emotion mix of a chat's last 7 days, analysed like the bot's `/analytics` but without
/// writing analyses to the store.
fn week_emotions(store: &Store, chat: i64, now: i64) -> anyhow::Result<[u32; 7]> {
    const WEEK_HOURS: i64 = 7 * 24;
    // Only repeated texts hit the cache in one run; the capacity just bounds its memory.
    let analysis = AnalysisCache::new(Analyzer::default(), 10_000);
    let trends = Trends::new(WEEK_HOURS);
    trends.rebuild_from_store(store, &analysis, Some(chat), now)?;
    Ok(trends.summary(chat, now - WEEK_HOURS * 3600, now).emotions)
}

fn time_text(t: Option<i64>) -> String {
    t.map_or("-".into(), |t| format!("{t} (unix seconds, UTC)"))
}

fn chat_text(s: &ChatStats) -> String {
    let mut out = format!(
        "chat {} {}\nmessages: {} (+{} service)\nunique users: {}\nfirst activity: {}\nlast activity: {}\ntop users:\n",
        s.chat_id,
        s.title,
        s.total_messages,
        s.service_messages,
        s.unique_users,
        time_text(s.first_activity),
        time_text(s.last_activity)
    );
    for u in &s.top_users {
        out += &format!("  {:>8}  {} ({})\n", u.messages, u.name, u.user_id);
    }
    out += "messages by hour (UTC):\n";
    let max = s.hour_histogram.iter().copied().max().unwrap_or(0).max(1);
    for (hour, &n) in s.hour_histogram.iter().enumerate() {
        out += &format!(
            "  {hour:02}  {:>8}  {}\n",
            n,
            "#".repeat((n * 40 / max) as usize)
        );
    }
    out
}

fn global_text(s: &GlobalStats) -> String {
    format!(
        "messages: {} (+{} service)\nchats: {}\nusers: {}\n",
        s.total_messages, s.service_messages, s.chats, s.users
    )
}
