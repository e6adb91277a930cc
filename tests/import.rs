//! Importing Telegram Desktop exports: both layouts, id mapping, exact counts and texts,
//! idempotency, merging with live messages, and bad input.

use chatkeeper::import::{import_file, ImportOptions, ImportSummary};
use chatkeeper::store::{FlushPolicy, Message, MessageKind, Store, StoreConfig};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

fn open(dir: &Path) -> Store {
    let mut config = StoreConfig::new(dir);
    config.flush = FlushPolicy::Manual;
    Store::open(config).unwrap()
}

fn import(
    store: Option<&Store>,
    file: &Path,
    chat_id: Option<i64>,
) -> Result<ImportSummary, String> {
    import_file(
        store,
        None,
        file,
        &ImportOptions { chat_id },
        &Arc::new(AtomicU64::new(0)),
    )
    .map_err(|e| e.to_string())
}

/// A supergroup export with every kind of record the store distinguishes.
fn supergroup_export(messages: usize) -> String {
    let mut records = vec![
        r#"{"id": 1, "type": "service", "date": "2024-03-01T09:00:00", "date_unixtime": "1709283600", "actor": "Олена", "actor_id": "user11", "action": "create_group", "title": "Кава", "members": ["Тарас", null], "text": ""}"#.to_string(),
        r#"{"id": 2, "type": "message", "date_unixtime": "1709283660", "from": "Олена", "from_id": "user11", "text": ["Привіт, ", {"type": "bold", "text": "усім"}, "! ", {"type": "mention", "text": "@taras"}], "text_entities": [], "reactions": [{"type": "emoji", "emoji": "❤", "count": 2}]}"#.to_string(),
        r#"{"id": 3, "type": "message", "date_unixtime": "1709283720", "from": "Тарас", "from_id": "user22", "photo": "(File not included. Change data exporting settings to download.)", "width": 800, "height": 600, "text": "фото з кав'ярні", "reply_to_message_id": 2}"#.to_string(),
        r#"{"id": 4, "type": "message", "date_unixtime": "1709283780", "from": null, "from_id": "user33", "file": "(File not included.)", "media_type": "sticker", "sticker_emoji": "😀", "text": ""}"#.to_string(),
        r#"{"id": 5, "type": "message", "date_unixtime": "1709283840", "from": "Новини", "from_id": "channel777", "forwarded_from": "Канал", "text": "пересланий допис", "edited": "2024-03-01T09:05:00", "edited_unixtime": "1709283900"}"#.to_string(),
        r#"{"id": 6, "type": "message", "date_unixtime": "1709283900", "from": "Олена", "from_id": "user11", "poll": {"question": "Коли зустрічаємось?", "closed": false, "total_voters": 2, "answers": [{"text": "зранку", "voters": 1, "chosen": false}]}}"#.to_string(),
        r#"{"id": 7, "type": "unsupported", "date_unixtime": "1709283960"}"#.to_string(),
    ];
    for i in 0..messages {
        records.push(format!(
            r#"{{"id": {}, "type": "message", "date": "2024-03-02T10:00:00", "date_unixtime": "{}", "from": "Тарас", "from_id": "user22", "text": "повідомлення {i}"}}"#,
            100 + i,
            1709373600 + i as i64
        ));
    }
    format!(
        r#"{{"name": "Кава", "type": "private_supergroup", "id": 1234567890, "messages": [{}]}}"#,
        records.join(",\n")
    )
}

const GROUP: i64 = -1001234567890;

#[test]
fn a_single_chat_export_lands_exactly_and_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("result.json");
    std::fs::write(&file, supergroup_export(1500)).unwrap();
    let store = open(&dir.path().join("data"));
    let summary = import(Some(&store), &file, None).unwrap();
    assert_eq!(
        (summary.chats, summary.messages, summary.service_messages),
        (1, 1505, 1)
    );
    assert_eq!(summary.skipped.values().sum::<u64>(), 1);
    assert_eq!(summary.layout, "single chat");

    let stats = store.chat_stats(GROUP).unwrap();
    assert_eq!(
        (
            stats.title.as_str(),
            stats.total_messages,
            stats.service_messages
        ),
        ("Кава", 1505, 1)
    );
    assert_eq!(store.user_total_in_chat(GROUP, 22), 1501);
    assert_eq!(store.user_total_in_chat(GROUP, -1000000000777), 1);
    let m = |id| store.message(GROUP, id).unwrap().unwrap();
    assert_eq!(m(2).text, "Привіт, усім! @taras");
    assert_eq!(
        (m(3).kind, m(3).reply_to, m(3).text.as_str()),
        (MessageKind::Photo, Some(2), "фото з кав'ярні")
    );
    assert_eq!(
        (m(4).kind, m(4).sender_name.as_str(), m(4).user_id),
        (MessageKind::Sticker, "Deleted Account", Some(33))
    );
    assert_eq!(
        (m(5).forwarded_from.as_deref(), m(5).edit_time),
        (Some("Канал"), Some(1709283900))
    );
    assert_eq!(
        (m(6).kind, m(6).text.as_str()),
        (MessageKind::Poll, "Коли зустрічаємось?")
    );
    assert_eq!(m(1).kind, MessageKind::Service);
    assert!(store.message(GROUP, 7).unwrap().is_none());
    assert_eq!(m(1599).text, "повідомлення 1499");

    let before = (store.global_stats(), store.chat_stats(GROUP));
    import(Some(&store), &file, None).unwrap();
    assert_eq!((store.global_stats(), store.chat_stats(GROUP)), before);
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn a_full_account_export_maps_every_chat_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("result.json");
    let chat = |name: &str, kind: &str, id: i64, first: i64| {
        format!(
            r#"{{"name": {name}, "type": "{kind}", "id": {id}, "messages": [
                {{"id": {first}, "type": "message", "date_unixtime": "1700000000", "from": "A", "from_id": 5, "text": "old export sender"}},
                {{"id": {}, "type": "message", "date_unixtime": "1700000001", "from": "B", "from_id": "user6", "text": "hi"}}]}}"#,
            first + 1
        )
    };
    let export = format!(
        r#"{{"about": "Here is the data you requested", "personal_information": {{"user_id": 5, "first_name": "A"}},
            "contacts": {{"about": "", "list": []}},
            "chats": {{"about": "", "list": [{}, {}, {}]}},
            "left_chats": {{"about": "", "list": [{}]}},
            "other_data": {{}}}}"#,
        chat("\"Мама\"", "personal_chat", 777, 1),
        chat("\"Стара група\"", "private_group", 4242, 10),
        chat("null", "saved_messages", 5, 20),
        chat("\"Новини\"", "public_channel", 99, 30)
    );
    std::fs::write(&file, export).unwrap();
    let store = open(&dir.path().join("data"));
    let summary = import(Some(&store), &file, None).unwrap();
    assert_eq!(
        (summary.layout.as_str(), summary.chats, summary.messages),
        ("full account", 4, 8)
    );
    assert_eq!(store.chats(), vec![-1000000000099, -4242, 5, 777]);
    assert_eq!(store.chat_info(-4242).unwrap().kind, "group");
    assert_eq!(store.chat_info(-1000000000099).unwrap().kind, "channel");
    assert_eq!(store.message(777, 1).unwrap().unwrap().user_id, Some(5));
    assert_eq!(store.user_total(6), 4);
    assert!(import(Some(&store), &file, Some(-1))
        .unwrap_err()
        .contains("--chat-id is for single-chat exports"));
}

#[test]
fn importing_a_chat_the_bot_records_merges_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("data"));
    // The bot already recorded the chat's latest messages live.
    for id in 1590..1700 {
        store
            .save_message(Message {
                chat_id: GROUP,
                message_id: id,
                time: 1709373600 + i64::from(id) - 100,
                edit_time: None,
                user_id: Some(22),
                sender_name: "Тарас".into(),
                text: format!("повідомлення {}", id - 100),
                kind: MessageKind::Text,
                reply_to: None,
                forwarded_from: None,
                is_bot: false,
                topic: None,
            })
            .unwrap();
    }
    let file = dir.path().join("result.json");
    std::fs::write(&file, supergroup_export(1500)).unwrap();
    import(Some(&store), &file, None).unwrap();
    // 6 records before the run of 1500 (one skipped), then ids 100..1599, then 1600..1699 live.
    assert_eq!(
        store.chat_stats(GROUP).unwrap().total_messages,
        5 + 1500 + 100
    );
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn chat_id_override_and_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("result.json");
    std::fs::write(&file, supergroup_export(10)).unwrap();
    let dry = import(None, &file, None).unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.messages, 15);
    let store = open(&dir.path().join("data"));
    assert_eq!(store.global_stats().total_messages, 0);
    import(Some(&store), &file, Some(-1009999)).unwrap();
    assert_eq!(store.chat_stats(-1009999).unwrap().total_messages, 15);
    assert!(store.chat_stats(GROUP).is_none());
}

#[test]
fn bad_input_is_a_clear_error_and_a_rerun_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("data"));
    let good = supergroup_export(3000);
    let cases: Vec<(&str, String, &str)> = vec![
        ("html", "<!DOCTYPE html>\n<html><body>messages</body></html>".into(), "HTML export"),
        ("not json", "hello".into(), "not valid JSON at line 1"),
        ("not an export", r#"{"version": 1, "items": []}"#.into(), "not a Telegram Desktop export"),
        ("wrong type", r#"{"type": "personal_chat", "id": 1, "messages": [{"id": 1, "type": "message", "date_unixtime": "1", "text": 42}]}"#.into(), "not valid JSON"),
        ("truncated", good[..good.len() / 2].to_string(), "after message"),
        ("no chat id", r#"{"name": "x", "messages": [{"id": 1}]}"#.into(), "pass --chat-id"),
    ];
    for (what, content, expected) in cases {
        let file = dir.path().join(format!("{what}.json"));
        std::fs::write(&file, content).unwrap();
        let err = import(Some(&store), &file, None).expect_err(what);
        assert!(err.contains(expected), "{what}: {err}");
    }
    // The truncated file stored a prefix; importing the whole file finishes the job exactly.
    let file = dir.path().join("result.json");
    std::fs::write(&file, &good).unwrap();
    import(Some(&store), &file, None).unwrap();
    assert_eq!(store.chat_stats(GROUP).unwrap().total_messages, 3005);
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn the_shared_desktop_samples_import_when_present() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/telegram");
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("data"));
    for (name, chat, messages, service) in [
        ("dm_personal_chat.json", 700000000, 6, 2),
        ("small_personal_chat.json", 123456789, 4, 1),
    ] {
        let file = samples.join(name);
        if !file.exists() {
            continue;
        }
        let summary = import(Some(&store), &file, None).unwrap();
        assert_eq!(
            (summary.messages, summary.service_messages),
            (messages, service),
            "{name}"
        );
        assert_eq!(
            store.chat_stats(chat).unwrap().total_messages,
            messages,
            "{name}"
        );
    }
}

#[test]
fn the_command_line_import_counts_the_imported_chat_in_its_profiles_once() {
    use chatkeeper::analyzer::profile::Profile;
    use chatkeeper::store::SettingKey;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("result.json");
    std::fs::write(&file, supergroup_export(40)).unwrap();
    let data = dir.path().join("data");
    let import = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatkeeper"))
            .arg("--data-dir")
            .arg(&data)
            .arg("import")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let taras = || -> Profile {
        open(&data)
            .setting(SettingKey::Profile {
                chat: GROUP,
                user: 22,
            })
            .unwrap()
            .expect("Тарас's profile")
    };
    let stdout = import();
    assert!(stdout.contains("profiles updated: "), "{stdout}");
    // Тарас wrote a photo caption and 40 texts.
    assert_eq!(taras().messages, 41);
    assert_eq!(
        taras().language(),
        Some(chatkeeper::analyzer::Language::Ukrainian)
    );
    // The search index has read the import already.
    {
        let store = open(&data);
        let index = chatkeeper::search::SearchIndex::open(&store).unwrap();
        assert!(index.status().is_current(), "{:?}", index.status());
        assert!(data.join("search/manifest").exists());
    }
    // The same file again: nothing is new to the store, so nothing is counted twice.
    let stdout = import();
    assert!(!stdout.contains("profiles updated"), "{stdout}");
    assert_eq!(taras().messages, 41);
}

#[test]
fn dates_with_a_zone_are_exact_and_only_zoneless_ones_are_reported_as_taken_as_utc() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("result.json");
    let export = |dates: [&str; 2]| {
        format!(
            r#"{{"name": "Кава", "type": "private_supergroup", "id": 1234567890, "messages": [
                {{"id": 1, "type": "message", "date": "{}", "from": "Тарас", "from_id": "user22", "text": "перше"}},
                {{"id": 2, "type": "message", "date": "{}", "from": "Тарас", "from_id": "user22", "text": "друге"}}]}}"#,
            dates[0], dates[1]
        )
    };
    std::fs::write(
        &file,
        export(["2024-03-02T10:00:00Z", "2024-03-02T12:00:00+02:00"]),
    )
    .unwrap();
    let zoned = import(None, &file, None).unwrap();
    assert_eq!(zoned.times_taken_as_utc, 0);
    assert_eq!(
        (zoned.first_time, zoned.last_time),
        (Some(1709373600), Some(1709373600))
    );
    assert!(!zoned.to_string().contains("time zone"), "{zoned}");

    std::fs::write(
        &file,
        export(["2024-03-02T10:00:00", "2024-03-02T10:00:00Z"]),
    )
    .unwrap();
    let local = import(None, &file, None).unwrap();
    assert_eq!(local.times_taken_as_utc, 1);
    assert!(
        local
            .to_string()
            .contains("a local date but no time zone: 1 "),
        "{local}"
    );
}
