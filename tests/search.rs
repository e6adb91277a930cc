//! Search: the index, queries and their filters, privacy, and the index as derived data
//! (rebuilt when missing or damaged, after a restore).

use chatkeeper::search::{FindError, Found, Query, QueryError, Request, SearchError, SearchIndex};
use chatkeeper::store::{FlushPolicy, Message, MessageKind, Store, StoreConfig, UserInfo};
use std::path::Path;

const CHAT: i64 = -1_001_500_000_001;
const OTHER_CHAT: i64 = -1_001_500_000_002;
const START: i64 = 1_760_000_000;
const NOW: i64 = START + 400 * 86_400;

fn message(chat: i64, id: i32, user: i64, text: &str) -> Message {
    Message {
        chat_id: chat,
        message_id: id,
        // One message an hour.
        time: START + i64::from(id) * 3_600,
        edit_time: None,
        user_id: Some(user),
        sender_name: format!("Людина {user}"),
        text: text.into(),
        kind: MessageKind::Text,
        reply_to: None,
        forwarded_from: None,
        is_bot: false,
        topic: None,
    }
}

fn open(dir: &Path) -> Store {
    let mut config = StoreConfig::new(dir);
    config.flush = FlushPolicy::Manual;
    Store::open(config).unwrap()
}

/// Filler that matches none of the tests' queries: enough of it that the index writes and
/// merges segments (about 60,000 postings make a segment).
fn filler(i: i32) -> String {
    const WORDS: [&str; 12] = [
        "погода", "кава", "робота", "вечір", "новини", "музика", "кіно", "спорт", "місто",
        "машина", "дощик", "обід",
    ];
    (0..8)
        .map(|k| format!("{}{}", WORDS[((i as usize) * 7 + k * 5) % 12], (i as usize + k) % 97))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A chat of `n` filler messages, with the test's own messages at the given ids.
fn fill(store: &Store, chat: i64, n: i32, special: &[(i32, i64, &str)]) {
    let messages: Vec<Message> = (1..=n)
        .map(|id| match special.iter().find(|(at, _, _)| *at == id) {
            Some((_, user, text)) => message(chat, id, *user, text),
            None => message(chat, id, 1 + i64::from(id % 5), &filler(id)),
        })
        .collect();
    store.save_batch(messages).unwrap();
    store.flush().unwrap();
}

fn search(index: &SearchIndex, chat: i64, text: &str) -> Result<Found, FindError> {
    search_page(index, chat, text, 0, 10)
}

fn search_page(
    index: &SearchIndex,
    chat: i64,
    text: &str,
    offset: usize,
    limit: usize,
) -> Result<Found, FindError> {
    let query = Query::parse(text)?;
    index.find(&Request {
        query: &query,
        chat,
        asker: Some(1),
        topic: None,
        now: NOW,
        offset,
        limit,
    })
}

fn ids(index: &SearchIndex, chat: i64, text: &str) -> Vec<i32> {
    search(index, chat, text)
        .unwrap()
        .hits
        .iter()
        .map(|h| h.message.message_id)
        .collect()
}

const SPECIAL: &[(i32, i64, &str)] = &[
    (100, 1, "Я так радію, що ми їдемо в Карпати!"),
    (2_000, 2, "Радий чути, Карпати чекають"),
    (5_000, 3, "Хто бере намет у Карпати? Беру свій намет"),
    (9_000, 2, "Ми зустрінемося біля вокзалу о дев'ятій"),
    (12_000, 4, "Hiking in the Carpathians was wonderful"),
    (15_000, 1, "Встречаемся у вокзала в субботу"),
    (19_000, 3, "Намет забрала Оксана, карпатський маршрут готовий"),
];

fn prepared(dir: &Path) -> (Store, SearchIndex) {
    let store = open(dir);
    fill(&store, CHAT, 20_000, SPECIAL);
    fill(&store, OTHER_CHAT, 300, &[(50, 9, "Карпати тільки для цього чату")]);
    store.set_user_info(2, UserInfo { display_name: "Оксана".into(), username: Some("oksana_k".into()) }).unwrap();
    let index = SearchIndex::open(&store).unwrap();
    index.catch_up().unwrap();
    (store, index)
}

#[test]
fn word_forms_meet_and_results_are_this_chats_best_first() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, index) = prepared(dir.path());
    assert!(index.status().segments > 0, "{:?}", index.status());
    // "радий" finds "радію" and "Радий"; the two, never the other chat's message.
    let mut found = ids(&index, CHAT, "радий");
    found.sort_unstable();
    assert_eq!(found, [100, 2_000]);
    let found = ids(&index, CHAT, "Карпати");
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(!found.contains(&50));
    assert_eq!(ids(&index, OTHER_CHAT, "Карпати"), [50]);
    // Two mentions in one short message rank first.
    assert_eq!(ids(&index, CHAT, "намет")[0], 5_000);
    // Matched words are marked in the snippet.
    let hit = &search(&index, CHAT, "радий").unwrap().hits[0];
    assert!(!hit.snippet.marks.is_empty());
    let marked = hit.snippet.render("[", "]", str::to_string);
    assert!(marked.contains("[Радий]") || marked.contains("[радію]"), "{marked}");
}
