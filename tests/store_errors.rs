//! Bad input never panics: damaged or foreign data directories are clear errors naming the path,
//! and the CLI says what to do.

use chatkeeper::store::{FlushPolicy, Message, MessageKind, Store, StoreConfig, StoreError};
use std::path::Path;
use std::process::Command;

fn config(dir: &Path) -> StoreConfig {
    let mut config = StoreConfig::new(dir);
    config.flush = FlushPolicy::Manual;
    config
}

fn filled(dir: &Path) {
    let store = Store::open(config(dir)).unwrap();
    let messages = (0..2000).map(|i| Message {
        chat_id: -100,
        message_id: i + 1,
        time: 1_000 + i64::from(i),
        edit_time: None,
        user_id: Some(7),
        sender_name: "Іра".into(),
        text: format!("текст {i}"),
        kind: MessageKind::Text,
        reply_to: None,
        forwarded_from: None,
        is_bot: false,
        topic: None,
    });
    store.save_batch(messages.collect()).unwrap();
    store.flush().unwrap();
}

#[test]
fn a_file_instead_of_a_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "not a directory").unwrap();
    let err = Store::open(config(&file))
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains(&file.display().to_string()) && err.contains("not a data directory"),
        "{err}"
    );
}

#[test]
fn damaged_store_files_are_errors_naming_the_path_never_panics() {
    for (i, damage) in [0usize, 1, 2, 3].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("store{i}"));
        filled(&path);
        let db = path.join("db");
        let mut bytes = std::fs::read(&db).unwrap();
        match damage {
            0 => bytes.truncate(bytes.len() / 3),
            1 => bytes.iter_mut().step_by(97).for_each(|b| *b ^= 0xff),
            2 => bytes.iter_mut().for_each(|b| *b = 0),
            _ => bytes = b"garbage".to_vec(),
        }
        std::fs::write(&db, bytes).unwrap();
        let opened = std::panic::catch_unwind(|| Store::open(config(&path)).map(|s| s.verify()));
        let outcome = opened.expect("opening a damaged store must not panic");
        match outcome {
            Err(e) => assert!(
                e.to_string().contains(&path.display().to_string()),
                "damage {damage}: {e}"
            ),
            // sled may recover a consistent prefix of its log: then nothing it kept may disagree.
            Ok(report) => {
                let report = report.unwrap();
                assert!(report.is_clean(), "damage {damage}: {:?}", report.problems);
            }
        }
    }
}

#[test]
fn a_sled_database_that_is_not_ours_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert("someone else's", "data").unwrap();
        db.flush().unwrap();
    }
    // sled itself may refuse first (its settings differ from ours); either way the error names
    // the directory and says it is not a chatkeeper store.
    match Store::open(config(dir.path())) {
        Err(e @ (StoreError::Corrupt { .. } | StoreError::Open { .. })) => {
            let text = e.to_string();
            assert!(text.contains(&dir.path().display().to_string()), "{text}");
            assert!(
                text.contains("not a chatkeeper store")
                    || text.contains("chatkeeper data directory"),
                "{text}"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a foreign database was opened"),
    }
}

#[test]
fn the_cli_explains_a_missing_store_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chatkeeper"))
        .args(["stats", "--data-dir"])
        .arg(dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds no chatkeeper store") && err.contains("--data-dir"),
        "{err}"
    );
}

#[test]
fn the_cli_reports_stats_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path());
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_chatkeeper"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let stats: serde_json::Value =
        serde_json::from_str(&run(&["stats", "--chat", "-100", "--json"])).unwrap();
    assert_eq!(stats["total_messages"], 2000);
    assert_eq!(stats["unique_users"], 1);
    let global: serde_json::Value = serde_json::from_str(&run(&["stats", "--json"])).unwrap();
    assert_eq!(global["total_messages"], 2000);
    assert!(run(&["verify"]).contains("no mismatches"));
    let backup = dir.path().join("b.ckb");
    assert!(run(&["backup", backup.to_str().unwrap()]).contains("2000 messages"));
}
