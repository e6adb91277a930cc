//! Users' data survives format changes: a data directory and a backup written by an earlier build
//! (committed under `tests/fixtures/`) open, convert and restore with every message intact.
//!
//! `fixture_content` is the exact content the fixtures hold; `write_fixture` (ignored, run by hand)
//! wrote them with the build of its commit. It writes whatever format the current build writes, so
//! it is run only to add a fixture of a new format, never to replace an old one.

use chatkeeper::store::{
    ChatInfo, FlushPolicy, Message, MessageKind, SettingKey, Store, StoreConfig, UserInfo,
};
use std::path::{Path, PathBuf};

const CHATS: [i64; 3] = [-1_001_500_000_001, -77, 5150];

/// Message `i` of the fixture of `format`: 12,000 messages, enough sealed blocks that the later
/// ones use a trained compression dictionary. From format 5 on, a third of the first chat's
/// messages are in one of two forum topics.
fn nth(i: u32, format: u8) -> Message {
    let chat = CHATS[(i % 7 % 3) as usize];
    Message {
        chat_id: chat,
        message_id: i as i32 + 1,
        time: 1_750_000_000 + i64::from(i) * 11,
        edit_time: (i % 13 == 0).then_some(1_750_000_000 + i64::from(i) * 11 + 40),
        user_id: (i % 19 != 0).then_some(200 + i64::from(i % 11)),
        sender_name: format!("Мирослава {}", i % 11),
        text: format!(
            "повідомлення {i}: {}",
            [
                "привіт усім",
                "де зустрічаємось?",
                "о сьомій біля фонтану",
                "ok 👍",
                "дякую!"
            ][(i % 5) as usize]
        ),
        kind: match i % 40 {
            0 => MessageKind::Service,
            1 => MessageKind::Photo,
            _ => MessageKind::Text,
        },
        reply_to: (i % 6 == 0 && i > 0).then_some(i as i32),
        forwarded_from: (i % 29 == 0).then(|| "Канал новин".to_string()),
        is_bot: i % 31 == 0,
        topic: (format >= 5 && chat == CHATS[0] && i % 3 == 0).then_some(1 + (i % 2) as i32),
    }
}

const MESSAGES: u32 = 12_000;

/// Everything the fixture store of `format` holds, as the build that wrote it was asked to store it.
fn fixture_content(format: u8) -> Vec<Message> {
    let mut all: Vec<Message> = (0..MESSAGES).map(|i| nth(i, format)).collect();
    for m in all.iter_mut() {
        let i = m.message_id as u32 - 1;
        if i % 97 == 5 {
            m.text = format!("виправлено {i}");
            m.edit_time = Some(m.time + 100);
        }
    }
    // User 203 left chat -77 and asked to be forgotten there.
    all.retain(|m| !(m.chat_id == -77 && m.user_id == Some(203)));
    all.sort_by_key(|m| (m.time, m.chat_id, m.message_id));
    all
}

/// The public username of `chat` in the fixture of `format` (from format 5 on, the first chat
/// is public).
fn public_name(format: u8, chat: i64) -> Option<String> {
    (format >= 5 && chat == CHATS[0]).then(|| "podil_neighbours".to_string())
}

/// The fixture of store format `format`.
fn fixture_dir(format: u8) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/store_v{format}"))
}

/// The fixtures: store format 1 (everything inside sled), 2 (the logs, profiles as sled
/// records), 3 (profiles in their own log, one still a sled record), 4 (the directory in runs
/// keyed by their first message) and 5 (forum topics, chats' public usernames).
const FORMATS: [u8; 5] = [1, 2, 3, 4, 5];

/// Profiles beyond the first that the fixtures of `format` hold: format 1 has one, later ones
/// enough (`(chat, 1000 + n)` → `(n, "en")` for `n < 120` in each chat) to fill many profile
/// chunks (written in bulk from format 3 on, as an import does; the first one live).
fn extra_profiles(format: u8) -> impl Iterator<Item = (i64, i64, (u64, String))> {
    let n = if format >= 2 { 120 } else { 0 };
    CHATS
        .into_iter()
        .flat_map(move |chat| (0..n).map(move |u| (chat, 1000 + u, (u as u64, "en".into()))))
}

/// Writes `tests/fixtures/store_vN/{data,backup.ckb}` with the build of this commit (`N` from
/// `CHATKEEPER_FIXTURE_FORMAT`, the format that build writes).
#[test]
#[ignore = "writes the committed fixture; run by hand only for a new format"]
fn write_fixture() {
    let format: u8 = std::env::var("CHATKEEPER_FIXTURE_FORMAT")
        .expect("set CHATKEEPER_FIXTURE_FORMAT to the store format this build writes")
        .parse()
        .unwrap();
    // A fixture of an earlier format is never rewritten by a later build.
    assert_eq!(format, chatkeeper::store::layout::STORE_FORMAT);
    let root = fixture_dir(format);
    let data = root.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let mut config = StoreConfig::new(&data);
    config.flush = FlushPolicy::Manual;
    let store = Store::open(config).unwrap();
    let all: Vec<Message> = (0..MESSAGES).map(|i| nth(i, format)).collect();
    for chunk in all.chunks(1_000) {
        store.save_batch(chunk.to_vec()).unwrap();
        // Commits train the dictionary once enough blocks exist.
        store.flush().unwrap();
    }
    // Edits of sealed messages rewrite blocks; the newest ones sit in the tail.
    for i in (0..MESSAGES).filter(|i| i % 97 == 5) {
        let mut m = nth(i, format);
        m.text = format!("виправлено {i}");
        m.edit_time = Some(m.time + 100);
        store.save_message(m).unwrap();
    }
    store.delete_user_in_chat(203, -77).unwrap();
    for (chat, title, kind) in [
        (CHATS[0], "Сусіди з Подолу", "supergroup"),
        (CHATS[1], "Походи", "group"),
        (CHATS[2], "Мирослава", "private"),
    ] {
        store
            .set_chat_info(
                chat,
                ChatInfo {
                    title: title.into(),
                    kind: kind.into(),
                    username: public_name(format, chat),
                },
            )
            .unwrap();
    }
    store
        .set_user_info(
            201,
            UserInfo {
                display_name: "Мирослава 1".into(),
                username: Some("myro".into()),
            },
        )
        .unwrap();
    store
        .put_setting(SettingKey::User(201), &(true, false, true))
        .unwrap();
    store
        .put_setting(SettingKey::Chat(CHATS[0]), &(0.05f32, Some((23u8, 8u8))))
        .unwrap();
    store
        .put_setting(
            SettingKey::Profile {
                chat: CHATS[0],
                user: 202,
            },
            &(42u64, "uk".to_string()),
        )
        .unwrap();
    let extra: Vec<((i64, i64), (u64, String))> = extra_profiles(format)
        .map(|(chat, user, value)| ((chat, user), value))
        .collect();
    if format >= 3 {
        store
            .put_profiles(extra.iter().map(|(key, value)| (*key, value)))
            .unwrap();
    } else {
        for ((chat, user), value) in &extra {
            store
                .put_setting(
                    SettingKey::Profile {
                        chat: *chat,
                        user: *user,
                    },
                    value,
                )
                .unwrap();
        }
    }
    store.flush().unwrap();
    store.backup(&root.join("backup.ckb")).unwrap();
}

fn owned(messages: Vec<chatkeeper::store::MessageRef>) -> Vec<Message> {
    messages.into_iter().map(|m| Message::clone(&m)).collect()
}

/// A copy of the committed data directory, so that the test never changes the fixture.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Checks `store` holds the fixture's content; `restored` when it came from the backup.
fn check_content(store: &Store, format: u8, restored: bool) {
    let want = fixture_content(format);
    let got = owned(
        store
            .time_range(i64::MIN, i64::MAX)
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
    );
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "the messages differ from what the fixture holds"
    );
    let stats = store.chat_stats(CHATS[0]).unwrap();
    assert_eq!(stats.title, "Сусіди з Подолу");
    for chat in CHATS {
        assert_eq!(
            store.chat_info(chat).and_then(|info| info.username),
            public_name(format, chat)
        );
    }
    assert_eq!(
        stats.total_messages,
        want.iter()
            .filter(|m| m.chat_id == CHATS[0] && m.kind != MessageKind::Service)
            .count() as u64
    );
    assert_eq!(
        store.user_info(201).unwrap().username.as_deref(),
        Some("myro")
    );
    assert_eq!(
        store
            .setting::<(bool, bool, bool)>(SettingKey::User(201))
            .unwrap(),
        Some((true, false, true))
    );
    assert_eq!(
        store
            .setting::<(u64, String)>(SettingKey::Profile {
                chat: CHATS[0],
                user: 202
            })
            .unwrap(),
        Some((42, "uk".to_string()))
    );
    for (chat, user, value) in extra_profiles(format) {
        assert_eq!(
            store
                .setting::<(u64, String)>(SettingKey::Profile { chat, user })
                .unwrap(),
            Some(value)
        );
    }
    let by_user = owned(store.user_messages(204, i64::MIN, i64::MAX).unwrap());
    assert_eq!(
        by_user,
        want.iter()
            .filter(|m| m.user_id == Some(204))
            .cloned()
            .collect::<Vec<_>>()
    );
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    // Every profile now lives in the profiles log, but the live one of a format-3 data
    // directory (a sled record until enough pile up to settle).
    let still_a_record = u64::from(format >= 3 && !restored);
    assert_eq!(
        report.profiles,
        1 + extra_profiles(format).count() as u64 - still_a_record
    );
}

#[test]
fn data_directories_of_earlier_formats_open_with_every_message() {
    for format in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        copy_dir(&fixture_dir(format).join("data"), &data);
        let store = Store::open(StoreConfig::new(&data)).unwrap();
        check_content(&store, format, false);
        drop(store);
        // And again after a reopen.
        let store = Store::open(StoreConfig::new(&data)).unwrap();
        check_content(&store, format, false);
    }
}

#[test]
fn backups_of_earlier_formats_restore_with_every_message() {
    for format in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("restored");
        let summary =
            chatkeeper::store::restore(&fixture_dir(format).join("backup.ckb"), &data).unwrap();
        // Each chat's messages span several backup records: still three chats.
        assert_eq!(summary.chats, 3);
        let store = Store::open(StoreConfig::new(&data)).unwrap();
        check_content(&store, format, true);
    }
}
