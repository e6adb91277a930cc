//! Search: the index, queries and their filters, privacy, and the index as derived data
//! (rebuilt when missing or damaged, after a restore).

use chatkeeper::search::{
    Deletion, FindError, Found, Query, QueryError, Request, SearchError, SearchIndex,
};
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

/// The words of [`filler`].
const WORDS: [&str; 12] = [
    "погода",
    "кава",
    "робота",
    "вечір",
    "новини",
    "музика",
    "кіно",
    "спорт",
    "місто",
    "машина",
    "дощик",
    "обід",
];

/// Filler that matches none of the tests' queries: enough of it that the index writes and
/// merges segments (about 60,000 postings make a segment).
fn filler(i: i32) -> String {
    (0..8)
        .map(|k| {
            format!(
                "{}{}",
                WORDS[((i as usize) * 7 + k * 5) % 12],
                (i as usize + k) % 97
            )
        })
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
        utc_offset_secs: 0,
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
    (
        19_000,
        3,
        "Намет забрала Оксана, карпатський маршрут готовий",
    ),
];

fn prepared(dir: &Path) -> (Store, SearchIndex) {
    let store = open(dir);
    fill(&store, CHAT, 20_000, SPECIAL);
    fill(
        &store,
        OTHER_CHAT,
        300,
        &[(50, 9, "Карпати тільки для цього чату")],
    );
    store
        .set_user_info(
            2,
            UserInfo {
                display_name: "Оксана".into(),
                username: Some("oksana_k".into()),
            },
        )
        .unwrap();
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
    // "Карпати" meets "карпатський" too.
    let mut found = ids(&index, CHAT, "Карпати");
    found.sort_unstable();
    assert_eq!(found, [100, 2_000, 5_000, 19_000]);
    assert_eq!(ids(&index, OTHER_CHAT, "Карпати"), [50]);
    // Two mentions in one short message rank first.
    assert_eq!(ids(&index, CHAT, "намет")[0], 5_000);
    // Matched words are marked in the snippet.
    let hit = &search(&index, CHAT, "радий").unwrap().hits[0];
    assert!(!hit.snippet.marks.is_empty());
    let marked = hit.snippet.render("[", "]", str::to_string);
    assert!(
        marked.contains("[Радий]") || marked.contains("[радію]"),
        "{marked}"
    );
}

#[test]
fn filters_phrases_exclusions_prefixes_and_paging() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, index) = prepared(dir.path());
    // A prefix: "карп*" meets "Карпати" and "карпатський".
    let mut found = ids(&index, CHAT, "карп*");
    found.sort_unstable();
    assert_eq!(found, [100, 2_000, 5_000, 19_000]);
    // An exact phrase, and an excluded word.
    assert_eq!(ids(&index, CHAT, "\"беру свій намет\""), [5_000]);
    assert_eq!(ids(&index, CHAT, "\"свій беру намет\""), Vec::<i32>::new());
    let mut found = ids(&index, CHAT, "намет -Оксана");
    found.sort_unstable();
    assert_eq!(found, [5_000]);
    // Authors: by @username (any case), and "me" (the asker, user 1).
    assert_eq!(ids(&index, CHAT, "Карпати from:@Oksana_K"), [2_000]);
    assert_eq!(ids(&index, CHAT, "Карпати from:me"), [100]);
    assert!(matches!(
        search(&index, CHAT, "Карпати from:@nobody"),
        Err(FindError::Query(QueryError::UnknownUser(name))) if name == "nobody"
    ));
    // Dates: message 2,000 is 2,000 hours after the start.
    let day = |id: i64| {
        chrono::DateTime::from_timestamp(START + id * 3_600, 0)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    assert_eq!(
        ids(
            &index,
            CHAT,
            &format!("Карпати since:{} until:{}", day(1_000), day(3_000))
        ),
        [2_000]
    );
    // English and Russian word forms.
    assert_eq!(ids(&index, CHAT, "carpathian"), [12_000]);
    assert_eq!(ids(&index, CHAT, "суббота"), [15_000]);
    let mut found = ids(&index, CHAT, "вокзале");
    found.sort_unstable();
    assert_eq!(found, [9_000, 15_000]);
    // Only stop-words: a clear refusal.
    assert!(matches!(
        search(&index, CHAT, "і в на"),
        Err(FindError::Query(QueryError::OnlyCommonWords))
    ));
    // Paging over a common filler word: pages do not overlap, and the last one says so.
    let first = search_page(&index, CHAT, "кава5", 0, 10).unwrap();
    assert_eq!(first.hits.len(), 10);
    assert!(first.more);
    let second = search_page(&index, CHAT, "кава5", 10, 10).unwrap();
    assert!(second.hits.iter().all(|h| first
        .hits
        .iter()
        .all(|f| f.message.message_id != h.message.message_id)));
    let last = search_page(&index, CHAT, "намет", 0, 10).unwrap();
    assert!(!last.more);
    // Pages are slices of one list: three pages are the first thirty, past the ranked fifty too.
    for word in ["кава5", "погода1"] {
        let at = |offset, limit| -> Vec<i32> {
            search_page(&index, CHAT, word, offset, limit)
                .unwrap()
                .hits
                .iter()
                .map(|h| h.message.message_id)
                .collect()
        };
        let paged: Vec<i32> = (0..7).flat_map(|page| at(page * 10, 10)).collect();
        assert_eq!(paged, at(0, 70), "{word}");
    }
}

#[test]
fn nothing_deleted_or_edited_away_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (store, index) = prepared(dir.path());
    assert_eq!(ids(&index, CHAT, "вокзал").len(), 2);
    // /forget_me of user 2 in this chat: message 9,000 goes (message 2,000 too).
    store.delete_user_in_chat(2, CHAT).unwrap();
    store.flush().unwrap();
    assert_eq!(ids(&index, CHAT, "вокзал"), [15_000]);
    assert_eq!(ids(&index, CHAT, "радий"), [100]);
    // Forgetting rewrote every block of the chat (user 2 wrote in each): until the index has
    // read them again, a search says that results may be missing.
    assert!(search(&index, CHAT, "радий").unwrap().incomplete);
    index.catch_up().unwrap();
    assert!(!search(&index, CHAT, "радий").unwrap().incomplete);
    assert_eq!(ids(&index, CHAT, "радий"), [100]);
    // An edit: the old words are not found, the new ones are.
    let mut edited = message(CHAT, 15_000, 1, "Збираємося біля пам'ятника");
    edited.edit_time = Some(NOW);
    store.save_message(edited).unwrap();
    store.flush().unwrap();
    assert_eq!(ids(&index, CHAT, "вокзал"), Vec::<i32>::new());
    assert_eq!(ids(&index, CHAT, "пам'ятника"), [15_000]);
    index.catch_up().unwrap();
    assert_eq!(ids(&index, CHAT, "вокзал"), Vec::<i32>::new());
    assert_eq!(ids(&index, CHAT, "пам'ятника"), [15_000]);
    // Retention: everything before message 10,000's time.
    store.purge_before(START + 10_000 * 3_600).unwrap();
    store.flush().unwrap();
    assert_eq!(ids(&index, CHAT, "радий"), Vec::<i32>::new());
    let found = ids(&index, CHAT, "намет");
    assert_eq!(found, [19_000]);
    // The whole chat.
    store.purge_chat(OTHER_CHAT).unwrap();
    store.flush().unwrap();
    assert_eq!(ids(&index, OTHER_CHAT, "Карпати"), Vec::<i32>::new());
    // Told of the deletions, the index writes those chats' postings again: its files then
    // hold what an index built afresh from the remaining messages holds, nothing of the
    // deleted ones. First the purged chat alone: this chat's postings stay as they were.
    index.catch_up().unwrap();
    index.flush().unwrap();
    let before = index.status().postings;
    index.forget_deleted([OTHER_CHAT], Deletion::Asked);
    index.catch_up().unwrap();
    let without_other = index.status().postings;
    assert!(
        without_other < before,
        "{without_other} postings, {before} before"
    );
    assert_eq!(ids(&index, CHAT, "пам'ятника"), [15_000]);
    assert_eq!(ids(&index, CHAT, "кава5").len(), 10);
    // Retention's notes wait (up to a day); someone's request is done at the next catch-up,
    // and the note is saved at once, so a restart before it still does it.
    index.forget_deleted([CHAT], Deletion::Expired);
    index.catch_up().unwrap();
    assert_eq!(index.status().postings, without_other);
    index.forget_deleted([CHAT], Deletion::Asked);
    drop(index);
    let index = SearchIndex::open(&store).unwrap();
    assert_eq!(ids(&index, CHAT, "намет"), [19_000]);
    index.catch_up().unwrap();
    assert_eq!(ids(&index, CHAT, "намет"), [19_000]);
    index.flush().unwrap();
    let rebuilt = index.status().postings;
    assert!(
        rebuilt < without_other,
        "{rebuilt} postings, {without_other} before"
    );
    let words: Vec<String> = (0..WORDS.len())
        .flat_map(|i| [format!("{}{i}", WORDS[i]), WORDS[i].to_string()])
        .chain(["радий", "Карпати", "намет", "вокзал"].map(String::from))
        .collect();
    let answers = |index: &SearchIndex| -> Vec<Vec<i32>> {
        words.iter().map(|w| ids(index, CHAT, w)).collect()
    };
    let reindexed = answers(&index);
    drop(index);
    std::fs::remove_dir_all(dir.path().join("search")).unwrap();
    let fresh = SearchIndex::open(&store).unwrap();
    fresh.catch_up().unwrap();
    fresh.flush().unwrap();
    assert_eq!(fresh.status().postings, rebuilt);
    assert_eq!(answers(&fresh), reindexed);
}

#[test]
fn new_messages_are_found_before_and_after_the_index_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, index) = prepared(dir.path());
    // In the tail (not sealed), then sealed but not yet read, then read.
    store
        .save_message(message(CHAT, 20_001, 1, "Новий чайник"))
        .unwrap();
    assert_eq!(ids(&index, CHAT, "чайник"), [20_001]);
    let more: Vec<Message> = (20_002..20_400)
        .map(|id| message(CHAT, id, 1, &filler(id)))
        .collect();
    store.save_batch(more).unwrap();
    store.flush().unwrap();
    assert!(!index.status().is_current());
    assert_eq!(ids(&index, CHAT, "чайник"), [20_001]);
    index.catch_up().unwrap();
    assert!(index.status().is_current());
    assert_eq!(ids(&index, CHAT, "чайник"), [20_001]);
    // What was read survives a reopen (the buffer is written on flush).
    index.flush().unwrap();
    drop(index);
    let index = SearchIndex::open(&store).unwrap();
    assert!(index.status().is_current());
    assert_eq!(ids(&index, CHAT, "чайник"), [20_001]);
}

/// Flips a byte in the middle of the largest segment.
fn damage_largest_segment(dir: &Path) {
    let largest = std::fs::read_dir(dir.join("search"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&largest).unwrap();
    let middle = bytes.len() / 3;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&largest, bytes).unwrap();
}

#[test]
fn a_damaged_or_missing_index_is_rebuilt_from_the_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (store, index) = prepared(dir.path());
    index.flush().unwrap();
    assert!(index.check().is_empty());
    // Damage found by a search: the answer says so, and the next catch-up rebuilds.
    damage_largest_segment(dir.path());
    assert!(!index.check().is_empty());

    let damaged = (0..97)
        .flat_map(|i| WORDS.map(|w| format!("{w}{i}")))
        .map(|word| search(&index, CHAT, &word))
        .find(|r| r.is_err());
    assert!(
        matches!(
            damaged,
            Some(Err(FindError::Index(SearchError::Damaged(_))))
        ),
        "{damaged:?}"
    );
    index.catch_up().unwrap();
    assert!(index.check().is_empty());
    assert_eq!(ids(&index, CHAT, "намет").len(), 2);
    // Damage found when opening; then no index at all.
    index.flush().unwrap();
    drop(index);
    damage_largest_segment(dir.path());
    assert!(
        !SearchIndex::inspect(&store).is_empty(),
        "verify sees the damage"
    );
    std::fs::write(dir.path().join("search/manifest"), b"{ not json").unwrap();
    let problems = SearchIndex::inspect(&store);
    assert!(problems[0].contains("manifest"), "{problems:?}");
    let index = SearchIndex::open(&store).unwrap();
    assert_eq!(index.status().segments, 0);
    index.catch_up().unwrap();
    assert_eq!(ids(&index, CHAT, "намет").len(), 2);
    drop(index);
    std::fs::remove_dir_all(dir.path().join("search")).unwrap();
    let index = SearchIndex::open(&store).unwrap();
    // Before it has read anything, a search says that results may be missing.
    assert!(search(&index, CHAT, "намет").unwrap().incomplete);
    index.rebuild().unwrap();
    assert!(index.check().is_empty());
    assert_eq!(ids(&index, CHAT, "намет").len(), 2);
}

#[test]
fn a_restored_store_gets_its_index_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (store, index) = prepared(dir.path());
    index.flush().unwrap();
    let backup = dir.path().join("backup.ckb");
    store.backup(&backup).unwrap();
    let restored = tempfile::tempdir().unwrap();
    let target = restored.path().join("data");
    chatkeeper::store::restore(&backup, &target).unwrap();
    assert!(
        !target.join("search").exists(),
        "the index is not in backups"
    );
    let store = open(&target);
    let index = SearchIndex::open(&store).unwrap();
    index.catch_up().unwrap();
    assert_eq!(ids(&index, CHAT, "намет").len(), 2);
    assert_eq!(ids(&index, OTHER_CHAT, "Карпати"), [50]);
}

/// Runs `chatkeeper --data-dir DIR ARGS…`; (success, stdout, stderr).
fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatkeeper"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_line_searches_with_the_same_engine() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, index) = prepared(dir.path());
        store
            .set_chat_info(
                CHAT,
                chatkeeper::store::ChatInfo {
                    title: "Походи".into(),
                    kind: "supergroup".into(),
                    username: Some("pohody".into()),
                },
            )
            .unwrap();
        store.flush().unwrap();
        // Left unflushed: the command line reads what the index lacks.
        drop(index);
    }
    let chat = CHAT.to_string();
    let (ok, out, err) = cli(
        dir.path(),
        &["search", "радий -Карпати", "--chat", &chat, "--json"],
    );
    assert!(ok, "{err}");
    let results: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hits = results["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 0, "both mention Карпати: {out}");
    let (ok, out, err) = cli(dir.path(), &["search", "радий", "--json", "--chat", &chat]);
    assert!(ok, "{err}");
    let results: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hits = results["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    for hit in hits {
        for field in [
            "chat_id",
            "message_id",
            "time",
            "author",
            "text",
            "snippet",
            "score",
            "link",
        ] {
            assert!(hit.get(field).is_some(), "{field} missing: {hit}");
        }
        let id = hit["message_id"].as_i64().unwrap();
        assert_eq!(hit["link"], format!("https://t.me/pohody/{id}"));
        assert!(hit["snippet"].as_str().unwrap().contains("**"));
    }
    // Every chat, as text.
    let (ok, out, _) = cli(dir.path(), &["search", "Карпати", "--limit", "3"]);
    assert!(ok);
    assert_eq!(
        out.lines().filter(|l| l.contains(" · score ")).count(),
        3,
        "{out}"
    );
    // Bad queries and arguments: a reason and what to do, and a failure status.
    for (args, says) in [
        (&["search", "\"Карпати"][..], "quotation mark"),
        (&["search", "Карпати from:me"], "from:@username"),
        (&["search", "Карпати from:@nobody"], "@nobody"),
        (&["search", "і в"], "rarer"),
        (&["search", "--chat", "-42", "Карпати"], "no chat -42"),
    ] {
        let (ok, _, err) = cli(dir.path(), args);
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, err) = cli(empty.path(), &["search", "Карпати"]);
    assert!(!ok && err.contains("--data-dir"), "{err}");
}
