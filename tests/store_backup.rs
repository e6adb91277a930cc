//! Backup and restore: identical content, taken while writers keep writing; damaged backups and
//! non-empty targets are refused without writing anything.

use chatkeeper::store::{
    restore, ChatInfo, FlushPolicy, Message, MessageKind, SettingKey, Store, StoreConfig, UserInfo,
};
use std::path::Path;

fn open(dir: &Path) -> Store {
    let mut config = StoreConfig::new(dir);
    config.flush = FlushPolicy::Manual;
    Store::open(config).unwrap()
}

fn msg(i: u32) -> Message {
    Message {
        chat_id: [-1_001_000_000_001, -55, 4242][i as usize % 3],
        message_id: i as i32 + 1,
        time: 1_760_000_000 + i64::from(i) * 3,
        edit_time: (i % 10 == 0).then_some(1_760_000_000 + i64::from(i) * 3 + 60),
        user_id: (i % 17 != 0).then_some(100 + i64::from(i % 9)),
        sender_name: format!("Тарас {}", i % 9),
        text: format!("повідомлення {i} про все"),
        kind: if i % 50 == 0 {
            MessageKind::Service
        } else {
            MessageKind::Text
        },
        reply_to: (i % 4 == 0).then_some(i as i32),
        forwarded_from: None,
        is_bot: false,
        topic: None,
    }
}

fn filled(dir: &Path) -> Store {
    let store = open(dir);
    store.save_batch((0..3000).map(msg).collect()).unwrap();
    for i in (0..3000).step_by(97) {
        let mut edited = msg(i);
        edited.text = format!("виправлено {i}");
        store.save_message(edited).unwrap();
    }
    store
        .set_chat_info(
            -55,
            ChatInfo {
                title: "Група 55".into(),
                kind: "group".into(),
                username: None,
            },
        )
        .unwrap();
    store
        .set_user_info(
            101,
            UserInfo {
                display_name: "Тарас 1".into(),
                username: Some("taras".into()),
            },
        )
        .unwrap();
    store
        .put_setting(SettingKey::User(101), &(true, "тихо".to_string()))
        .unwrap();
    store.flush().unwrap();
    store
}

fn everything(store: &Store) -> Vec<Message> {
    store
        .time_range(i64::MIN, i64::MAX)
        .map(|m| Message::clone(&m.unwrap()))
        .collect()
}

#[test]
fn backup_restores_identical_content_and_verifies_clean() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir.path().join("live"));
    let file = dir.path().join("backup.ckb");
    let summary = store.backup(&file).unwrap();
    assert_eq!(summary.messages, 3000);

    let target = dir.path().join("restored");
    let restored_summary = restore(&file, &target).unwrap();
    assert_eq!(restored_summary.messages, 3000);
    // Chats count alike, titled or not (only -55 has a title).
    assert!(summary.chats > 1);
    assert_eq!(
        (restored_summary.chats, restored_summary.users),
        (summary.chats, summary.users)
    );
    let restored = open(&target);
    assert_eq!(everything(&restored), everything(&store));
    assert_eq!(restored.global_stats(), store.global_stats());
    for chat in store.chats() {
        assert_eq!(restored.chat_stats(chat), store.chat_stats(chat));
    }
    assert_eq!(restored.chat_info(-55).unwrap().title, "Група 55");
    assert_eq!(
        restored.user_info(101).unwrap().username.as_deref(),
        Some("taras")
    );
    assert_eq!(
        restored
            .setting::<(bool, String)>(SettingKey::User(101))
            .unwrap(),
        Some((true, "тихо".to_string()))
    );
    let report = restored.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn backup_while_writers_write_is_a_consistent_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir.path().join("live"));
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 3000..9000 {
                store.save_message(msg(i)).unwrap();
                if i % 500 == 0 {
                    // Rewrites of sealed blocks wait for the backup; new messages do not.
                    let mut edited = msg(i - 2900);
                    edited.text = "під час копії".into();
                    store.save_message(edited).unwrap();
                }
            }
        })
    };
    let file = dir.path().join("during.ckb");
    let summary = store.backup(&file).unwrap();
    writer.join().unwrap();
    assert!(summary.messages >= 3000 && summary.messages <= 9000);

    let target = dir.path().join("restored");
    restore(&file, &target).unwrap();
    let restored = open(&target);
    let report = restored.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    // Every message of the snapshot exists in the live store, as it was or edited since.
    let restored_messages = everything(&restored);
    assert_eq!(restored_messages.len() as u64, summary.messages);
    for m in restored_messages.iter().step_by(13) {
        let live = store.message(m.chat_id, m.message_id).unwrap().unwrap();
        assert_eq!(live.time, m.time);
    }
}

#[test]
fn damaged_or_truncated_backups_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir.path().join("live"));
    let file = dir.path().join("good.ckb");
    store.backup(&file).unwrap();
    let good = std::fs::read(&file).unwrap();

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() * 2 / 3].to_vec()),
        ("cut before the end record", good[..good.len() - 8].to_vec()),
        ("empty", Vec::new()),
        ("not a backup", b"{\"name\": \"chat\"}".to_vec()),
    ];
    // A backup of a later format: the header says which release to use.
    let mut later = good.clone();
    later[16] = 3;
    let bad = dir.path().join("later.ckb");
    std::fs::write(&bad, later).unwrap();
    let err = restore(&bad, &dir.path().join("later"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("backup format 3 is not one this build reads")
            && err.contains("release that wrote it"),
        "{err}"
    );
    for at in [20, good.len() / 2, good.len() - 20] {
        let mut flipped = good.clone();
        flipped[at] ^= 0x40;
        cases.push(("a flipped byte", flipped));
    }
    for (i, (what, bytes)) in cases.into_iter().enumerate() {
        let bad = dir.path().join(format!("bad{i}.ckb"));
        std::fs::write(&bad, bytes).unwrap();
        let target = dir.path().join(format!("target{i}"));
        std::fs::create_dir(&target).unwrap();
        let err = restore(&bad, &target).expect_err(what).to_string();
        assert!(
            err.contains("not a usable chatkeeper backup"),
            "{what}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(&target).unwrap().count(),
            0,
            "{what}: restore wrote files"
        );
    }
}

#[test]
fn restore_refuses_a_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir.path().join("live"));
    let file = dir.path().join("b.ckb");
    store.backup(&file).unwrap();
    let target = dir.path().join("busy");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep.txt"), "mine").unwrap();
    let err = restore(&file, &target).unwrap_err().to_string();
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(target.join("keep.txt")).unwrap(),
        "mine"
    );
}
