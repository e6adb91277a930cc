//! Analyzer throughput on one core, uncached and cached: messages of 1–40 words made of the words of the
//! labelled set (real Ukrainian, Russian and English chat words, emoji included); and the chart of
//! a month of a busy chat (`cargo bench --bench analyzer -- chart`).
//! `cargo bench --bench analyzer`.

use chatkeeper::analyzer::cache::AnalysisCache;
use chatkeeper::analyzer::Analyzer;
use chatkeeper::bot::texts::Lang;
use chatkeeper::chart::{self, ChartData, ChartLabels};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
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

    // Cached: every text already in the in-memory tier (the store tier is not involved); room
    // for four times the corpus, as shards fill unevenly.
    let cache = AnalysisCache::new(Analyzer::default(), None, 4 * corpus.len(), 3600);
    for text in &corpus {
        cache.analyze(text, 0);
    }
    let mut group = c.benchmark_group("analysis cache");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("cached lookup of 10k messages", |b| {
        b.iter(|| {
            corpus
                .iter()
                .map(|text| cache.analyze(text, 0).words)
                .sum::<u32>()
        })
    });
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

criterion_group!(benches, analyze, chart);
criterion_main!(benches);
