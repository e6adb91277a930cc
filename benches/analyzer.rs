//! Analyzer throughput on one core, uncached and cached: messages of 1–40 words made of the words of the
//! labelled set (real Ukrainian, Russian and English chat words, emoji included); the cost the
//! bot's live path adds per stored message (hourly summaries and profiles, then with analysis);
//! and the chart of a month of a busy chat (`cargo bench --bench analyzer -- chart`).
//! `cargo bench --bench analyzer`.

use chatkeeper::analyzer::cache::AnalysisCache;
use chatkeeper::analyzer::profile::Profiles;
use chatkeeper::analyzer::trends::Trends;
use chatkeeper::analyzer::{Analysis, Analyzer};
use chatkeeper::chart::{self, ChartData, ChartLabels};
use chatkeeper::store::{Message, MessageKind, Store, StoreConfig};
use chatkeeper::texts::Lang;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// 10,000 messages of 1–40 words drawn from the labelled set's vocabulary.
fn corpus() -> Vec<String> {
    let labelled = include_str!("../tests/fixtures/analyzer_labelled.tsv");
    let words: Vec<&str> = labelled
        .lines()
        .skip(1)
        .filter_map(|l| l.splitn(4, '\t').nth(3))
        .flat_map(str::split_whitespace)
        .collect();
    let mut rng = SmallRng::seed_from_u64(7);
    (0..10_000)
        .map(|_| {
            let n = rng.random_range(1..=40);
            (0..n)
                .map(|_| words[rng.random_range(0..words.len())])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn analyze(c: &mut Criterion) {
    let analyzer = Analyzer::default();
    let corpus = corpus();
    let mut group = c.benchmark_group("analyzer");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("analyze 10k messages of 1-40 words", |b| {
        b.iter(|| {
            corpus
                .iter()
                .map(|text| analyzer.analyze(text).words)
                .sum::<u32>()
        })
    });
    group.finish();

    // Cached: every text already in the cache; room for four times the corpus, as shards fill
    // unevenly.
    let cache = AnalysisCache::new(Analyzer::default(), 4 * corpus.len());
    for text in &corpus {
        cache.analyze(text);
    }
    let mut group = c.benchmark_group("analysis cache");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("cached lookup of 10k messages", |b| {
        b.iter(|| {
            corpus
                .iter()
                .map(|text| cache.analyze(text).words)
                .sum::<u32>()
        })
    });
    group.finish();
}

/// Messages per batch, as the bot takes them from one `getUpdates`.
const BATCH: usize = 100;
const CHATS: i64 = 200;
const USERS: i64 = 2_000;

/// The bot's live path per stored message, after the store write: the hourly summaries and the
/// author's profile (written to the store in one batch, flushed with the messages), first with
/// the analyses at hand, then with the analysis of each new text through the cache.
fn live_path(c: &mut Criterion) {
    let corpus = corpus();
    let analyzer = Analyzer::default();
    let analyses: Vec<Analysis> = corpus.iter().map(|t| analyzer.analyze(t)).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    let trends = Trends::new(7 * 24);
    let profiles = Profiles::new(store.clone(), 10_000, []);
    let cache = AnalysisCache::new(Analyzer::default(), 4_096);
    let mut rng = SmallRng::seed_from_u64(11);
    let mut next_id = 0i32;
    let now = 1_800_000_000;
    // A batch of new messages from random people, with the index of each text. Each person
    // talks in their own chat (as in life: a profile per chat and member), or, with `anywhere`,
    // in any chat (a worst case: 400,000 possible profiles, nearly every one read from disk).
    let mut batch = |anywhere: bool| -> Vec<(Message, usize)> {
        (0..BATCH)
            .map(|_| {
                next_id += 1;
                let i = rng.random_range(0..corpus.len());
                let user = rng.random_range(1..=USERS);
                let chat = if anywhere {
                    rng.random_range(0..CHATS)
                } else {
                    user % CHATS
                };
                let message = Message {
                    chat_id: -1_000 - chat,
                    message_id: next_id,
                    time: now + i64::from(next_id) / 10,
                    edit_time: None,
                    user_id: Some(user),
                    sender_name: String::new(),
                    // Unique, as live texts mostly are: the analysis cache misses.
                    text: format!("{} {next_id}", corpus[i]),
                    kind: MessageKind::Text,
                    reply_to: None,
                    forwarded_from: None,
                    is_bot: false,
                    topic: None,
                };
                (message, i)
            })
            .collect()
    };
    let mut group = c.benchmark_group("live path");
    group.throughput(Throughput::Elements(BATCH as u64));
    let summaries_and_profiles = |batch: Vec<(Message, usize)>| {
        let items = || batch.iter().map(|(m, i)| (m, &analyses[*i]));
        for (m, a) in items() {
            trends.record(m, a);
        }
        profiles.record_all(items()).unwrap();
    };
    group.bench_function("summaries + profiles, per batch of 100", |b| {
        b.iter_batched(
            || batch(false),
            summaries_and_profiles,
            BatchSize::SmallInput,
        )
    });
    group.bench_function("analysis + summaries + profiles, per batch of 100", |b| {
        b.iter_batched(
            || batch(false),
            |batch| {
                let fresh = cache.analyze_all(batch.iter().map(|(m, _)| m.text.as_str()));
                let items = || {
                    batch
                        .iter()
                        .map(|(m, _)| m)
                        .zip(fresh.iter().map(|a| a.as_ref()))
                };
                for (m, a) in items() {
                    trends.record(m, a);
                }
                profiles.record_all(items()).unwrap();
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function(
        "summaries + profiles, people in any chat (worst case), per batch of 100",
        |b| {
            b.iter_batched(
                || batch(true),
                summaries_and_profiles,
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

/// The PNG of `/stats`: a month of days, every hour and emotion used, Ukrainian labels.
fn chart(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(7);
    let today = 20_400;
    let data = ChartData {
        title: "Київський чат любителів кави".into(),
        hours: std::array::from_fn(|_| rng.random_range(0..5_000)),
        days: (today - 29..=today)
            .map(|day| (day, rng.random_range(0..3_000)))
            .collect(),
        emotions: std::array::from_fn(|_| rng.random_range(0..2_000)),
    };
    let labels = ChartLabels::new(Lang::Uk);
    c.bench_function(
        &format!(
            "chart/render_png 30 days {}x{}",
            chart::WIDTH,
            chart::HEIGHT
        ),
        |b| b.iter(|| chart::render_png(&data, &labels).expect("a chart")),
    );
}

criterion_group!(benches, analyze, live_path, chart);
criterion_main!(benches);
