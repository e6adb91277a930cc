//! Relevance: the labelled set of `tests/fixtures/search/relevance.txt` (61 queries in
//! Ukrainian, Russian and English, each with the messages that must be found, in other word
//! forms than the query) in a chat of a few thousand messages. Recall@10 per language for this
//! engine, and for SQLite FTS5 (`unicode61`) on the same set; the test fails if ours drops
//! below its floor. `cargo test --release --test search_relevance -- --nocapture` prints the
//! table.

use chatkeeper::search::{Query, Request, SearchIndex};
use chatkeeper::store::{FlushPolicy, Message, MessageKind, Store, StoreConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

const CHAT: i64 = -1_001_800_000_000;
const START: i64 = 1_740_000_000;
/// Neutral messages around the labelled ones.
const FILLER: usize = 3_000;
/// Recall@10 this engine must keep, per language.
const FLOORS: [(&str, f64); 3] = [("uk", 0.95), ("ru", 0.95), ("en", 0.95)];

/// One labelled query.
struct Labelled {
    lang: String,
    query: String,
    relevant: Vec<i32>,
}

/// Words of everyday chat that none of the queries looks for.
const NEUTRAL: &[&str] = &[
    "привіт",
    "добре",
    "дякую",
    "так",
    "ні",
    "ок",
    "супер",
    "звісно",
    "згоден",
    "можливо",
    "сьогодні",
    "завтра",
    "зараз",
    "потім",
    "пізніше",
    "швидко",
    "гарно",
    "класно",
    "тут",
    "там",
    "напиши",
    "скажи",
    "подивлюся",
    "зрозумів",
    "домовились",
    "бачу",
    "чую",
    "думаю",
    "привет",
    "хорошо",
    "спасибо",
    "да",
    "нет",
    "ладно",
    "конечно",
    "согласен",
    "сегодня",
    "завтра",
    "сейчас",
    "потом",
    "позже",
    "красиво",
    "понял",
    "договорились",
    "вижу",
    "думаю",
    "hello",
    "fine",
    "thanks",
    "yes",
    "no",
    "sure",
    "maybe",
    "today",
    "tomorrow",
    "now",
    "later",
    "great",
    "nice",
    "here",
    "there",
    "agreed",
    "see",
    "think",
    "okay",
    "cool",
    "😂",
    "👍",
    "🙂",
    "+1",
    "ахаха",
    "lol",
];

fn labelled_set() -> (Vec<Labelled>, Vec<(i32, String)>) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/search/relevance.txt"
    ))
    .unwrap();
    let mut queries: Vec<Labelled> = Vec::new();
    let mut messages = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("? ") {
            let (lang, query) = rest.split_once(' ').unwrap();
            queries.push(Labelled {
                lang: lang.into(),
                query: query.into(),
                relevant: Vec::new(),
            });
        } else if let Some(message) = line.strip_prefix("+ ") {
            let id = messages.len() as i32;
            messages.push((id, message.to_string()));
            queries.last_mut().unwrap().relevant.push(id);
        }
    }
    (queries, messages)
}

/// The chat: the labelled messages scattered among neutral ones over a year.
fn chat_messages(labelled: &[(i32, String)]) -> Vec<Message> {
    let mut rng = SmallRng::seed_from_u64(0x5e4c4);
    let total = FILLER + labelled.len();
    // Where each labelled message goes among all.
    let mut slots: BTreeMap<usize, &str> = BTreeMap::new();
    for (_, text) in labelled {
        loop {
            let slot = rng.random_range(0..total);
            if let std::collections::btree_map::Entry::Vacant(free) = slots.entry(slot) {
                free.insert(text.as_str());
                break;
            }
        }
    }
    (0..total)
        .map(|slot| {
            let text = match slots.get(&slot) {
                Some(text) => text.to_string(),
                None => (0..rng.random_range(1..9))
                    .map(|_| NEUTRAL[rng.random_range(0..NEUTRAL.len())])
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            let user = rng.random_range(1..12);
            Message {
                chat_id: CHAT,
                message_id: slot as i32 + 1,
                time: START + slot as i64 * 10_000,
                edit_time: None,
                user_id: Some(user),
                sender_name: format!("Учасник {user}"),
                text,
                kind: MessageKind::Text,
                reply_to: None,
                forwarded_from: None,
                is_bot: false,
                topic: None,
            }
        })
        .collect()
}

#[test]
fn recall_at_10_stays_above_its_floor_in_every_language() {
    let (queries, labelled) = labelled_set();
    assert!(queries.len() >= 60, "{} queries", queries.len());
    let messages = chat_messages(&labelled);
    // The stored id of each labelled message.
    let id_of: BTreeMap<String, i32> = messages
        .iter()
        .map(|m| (m.text.clone(), m.message_id))
        .collect();
    let stored_ids = |q: &Labelled| -> Vec<i32> {
        q.relevant
            .iter()
            .map(|i| id_of[&labelled[*i as usize].1])
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.flush = FlushPolicy::Manual;
    let store = Store::open(config).unwrap();
    let now = messages.last().unwrap().time;
    store.save_batch(messages).unwrap();
    store.flush().unwrap();
    let index = SearchIndex::open(&store).unwrap();
    index.catch_up().unwrap();

    let ours = |q: &Labelled| -> Vec<i32> {
        let query = Query::parse(&q.query).unwrap();
        let found = index
            .find(&Request {
                query: &query,
                chat: CHAT,
                asker: None,
                topic: None,
                now,
                utc_offset_secs: 0,
                offset: 0,
                limit: 10,
            })
            .unwrap();
        found.hits.iter().map(|h| h.message.message_id).collect()
    };
    let ours = recall(&queries, stored_ids, ours);
    let fts5 = fts5_recall(&store, dir.path(), &queries, stored_ids);
    println!("recall@10 over {} queries", queries.len());
    println!(
        "{:<6} {:>8} {:>10} {:>8}",
        "lang", "queries", "chatkeeper", "fts5"
    );
    for (lang, floor) in FLOORS {
        let (n, ours) = ours[lang];
        let theirs = fts5
            .as_ref()
            .map_or("-".into(), |f| format!("{:.2}", f[lang].1));
        println!("{lang:<6} {n:>8} {ours:>10.2} {theirs:>8}");
        assert!(ours >= floor, "{lang}: recall@10 {ours:.2} below {floor}");
    }
}

/// Recall@10 per language: found relevant messages over all relevant ones; with the number of
/// queries.
fn recall(
    queries: &[Labelled],
    relevant: impl Fn(&Labelled) -> Vec<i32>,
    mut run: impl FnMut(&Labelled) -> Vec<i32>,
) -> BTreeMap<&str, (usize, f64)> {
    let mut totals: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for q in queries {
        let found = run(q);
        let wanted = relevant(q);
        let hit = wanted.iter().filter(|id| found.contains(id)).count();
        if hit < wanted.len() {
            eprintln!("{} {:?}: found {hit} of {}", q.lang, q.query, wanted.len());
        }
        let entry = totals.entry(q.lang.as_str()).or_default();
        entry.0 += 1;
        entry.1 += hit;
        entry.2 += wanted.len();
    }
    totals
        .into_iter()
        .map(|(lang, (n, hit, all))| (lang, (n, hit as f64 / all as f64)))
        .collect()
}

#[cfg(feature = "sqlite-baseline")]
fn fts5_recall<'q>(
    store: &Store,
    dir: &std::path::Path,
    queries: &'q [Labelled],
    relevant: impl Fn(&Labelled) -> Vec<i32>,
) -> Option<BTreeMap<&'q str, (usize, f64)>> {
    use chatkeeper::bench::search::{BenchQuery, SearchEngine};
    use chatkeeper::bench::Fts5Index;
    let fts_dir = dir.join("fts5");
    std::fs::create_dir_all(&fts_dir).unwrap();
    let mut fts = Fts5Index::build(store, &fts_dir).unwrap();
    Some(recall(queries, relevant, |q| {
        let words: Vec<String> = q.query.split_whitespace().map(str::to_lowercase).collect();
        fts.run(&BenchQuery {
            class: if words.len() > 1 {
                "two_words"
            } else {
                "one_word"
            }
            .into(),
            chat: CHAT,
            words,
            since: None,
        })
        .unwrap()
    }))
}

#[cfg(not(feature = "sqlite-baseline"))]
fn fts5_recall<'q>(
    _: &Store,
    _: &std::path::Path,
    _: &'q [Labelled],
    _: impl Fn(&Labelled) -> Vec<i32>,
) -> Option<BTreeMap<&'q str, (usize, f64)>> {
    None
}
