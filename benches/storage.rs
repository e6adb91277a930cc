//! Microbenchmarks of the store's hot paths, with the SQLite baseline's equivalents in the same
//! run. The end-to-end comparison at 1M messages is `chatkeeper bench` (scripts/bench.sh).

use chatkeeper::bench::workload::{Workload, WorkloadSpec};
use chatkeeper::bench::{Engine, SqliteEngine, StoreEngine};
use chatkeeper::store::{codec, FlushPolicy, Message, MessageRef, Store, StoreConfig};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;
use std::sync::Arc;

const MESSAGES: u64 = 100_000;

fn spec() -> WorkloadSpec {
    WorkloadSpec {
        messages: MESSAGES,
        ..WorkloadSpec::default()
    }
}

fn filled<E: Engine>(dir: &std::path::Path) -> E {
    let mut engine = E::open(dir).unwrap();
    let mut workload = Workload::new(spec());
    loop {
        let batch: Vec<Message> = workload.by_ref().take(1000).collect();
        if batch.is_empty() {
            break;
        }
        engine.save_batch(batch).unwrap();
    }
    engine.flush().unwrap();
    engine
}

fn queries(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut ours: StoreEngine = filled(&dir.path().join("store"));
    let mut sqlite: SqliteEngine = filled(&dir.path().join("sqlite"));
    let busy = Workload::chat_id(0);
    let quiet = Workload::chat_id(150);
    let mut group = c.benchmark_group("queries");
    group.sample_size(20);
    group.bench_function("context100_busy/chatkeeper", |b| {
        b.iter(|| ours.recent(black_box(busy), 100).unwrap())
    });
    group.bench_function("context100_busy/sqlite", |b| {
        b.iter(|| sqlite.recent(black_box(busy), 100).unwrap())
    });
    group.bench_function("context100_quiet/chatkeeper", |b| {
        b.iter(|| ours.recent(black_box(quiet), 100).unwrap())
    });
    group.bench_function("context100_quiet/sqlite", |b| {
        b.iter(|| sqlite.recent(black_box(quiet), 100).unwrap())
    });
    group.bench_function("chat_stats/chatkeeper", |b| {
        b.iter(|| ours.chat_stats(black_box(busy)).unwrap())
    });
    group.bench_function("chat_stats/sqlite", |b| {
        b.iter(|| sqlite.chat_stats(black_box(busy)).unwrap())
    });
    group.bench_function("global_stats/chatkeeper", |b| {
        b.iter(|| ours.global_stats().unwrap())
    });
    let day = 86_400;
    let from = chatkeeper::bench::workload::START_TIME + day / 2;
    group.bench_function("user_messages_day/chatkeeper", |b| {
        b.iter(|| {
            ours.user_messages(black_box(Workload::user_id(7)), from, from + day)
                .unwrap()
        })
    });
    group.bench_function("user_messages_day/sqlite", |b| {
        b.iter(|| {
            sqlite
                .user_messages(black_box(Workload::user_id(7)), from, from + day)
                .unwrap()
        })
    });
    group.finish();
}

fn ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.flush = FlushPolicy::Manual;
    let store = Store::open(config).unwrap();
    let mut workload = Workload::new(WorkloadSpec {
        messages: u64::MAX,
        ..WorkloadSpec::default()
    });
    let mut group = c.benchmark_group("ingest");
    group.bench_function("save_message_in_memory/chatkeeper", |b| {
        b.iter_batched(
            || workload.next().unwrap(),
            |m| store.save_message(m).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let messages: Vec<MessageRef> = Workload::new(spec())
        .filter(|m| m.chat_id == Workload::chat_id(0))
        .take(128)
        .map(Arc::new)
        .collect();
    let compressor = codec::Compressor::default();
    let samples: Vec<Vec<u8>> = Workload::new(spec())
        .collect::<Vec<_>>()
        .chunks(codec::FRAME_LEN)
        .take(2000)
        .map(|c| codec::encode_columns(&c.iter().cloned().map(Arc::new).collect::<Vec<_>>()))
        .collect();
    compressor
        .add_dictionary(1, codec::Compressor::train(&samples).unwrap())
        .unwrap();
    let block = codec::encode_block(&compressor, Workload::chat_id(0), &messages).unwrap();
    let mut group = c.benchmark_group("encoding");
    group.bench_function("seal_block_128", |b| {
        b.iter(|| {
            codec::encode_block(&compressor, Workload::chat_id(0), black_box(&messages)).unwrap()
        })
    });
    group.bench_function("decode_one_frame", |b| {
        b.iter(|| {
            codec::BlockView::parse(black_box(&block))
                .unwrap()
                .frame(&compressor, 3)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, queries, ingest, encoding);
criterion_main!(benches);
