//! Mutated exports never panic the importer and never leave the store inconsistent.

use chatkeeper::import::{import_file, ImportOptions};
use chatkeeper::store::{FlushPolicy, Store, StoreConfig};
use proptest::prelude::*;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

const EXPORT: &str = r#"{"name": "Кава", "type": "private_supergroup", "id": 77, "messages": [
 {"id": 1, "type": "service", "date": "2024-03-01T09:00:00", "actor": "Олена", "actor_id": "user11", "action": "create_group", "members": ["Тарас", null]},
 {"id": 2, "type": "message", "date_unixtime": "1709283660", "from": "Олена", "from_id": "user11", "text": ["Привіт, ", {"type": "bold", "text": "усім"}]},
 {"id": 3, "type": "message", "date_unixtime": "1709283720", "from": null, "from_id": "channel9", "photo": "(File not included.)", "text": "фото", "reply_to_message_id": 2},
 {"id": 4, "type": "message", "date_unixtime": "1709283780", "from": "Тарас", "from_id": 22, "poll": {"question": "Коли?", "answers": []}},
 {"id": 5, "type": "message", "date_unixtime": "1709283840", "from": "Тарас", "from_id": "user22", "file": "a.ogg", "media_type": "voice_message", "forwarded_from": null, "text": ""}
]}"#;

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    Delete(usize, usize),
    Splice(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0..EXPORT.len();
    prop_oneof![
        (at.clone(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        at.clone().prop_map(Mutation::Cut),
        (at.clone(), 1..40usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            at,
            prop::sample::select(vec![
                "null",
                "[]",
                "{}",
                "\"x\"",
                "-1",
                "1e400",
                "{\"id\": 5}",
                ",",
                "\"\\ud800\"",
                "99999999999999999999",
                "\"messages\": [",
                "]}",
                "\"type\": 7,",
                "true",
            ])
        )
            .prop_map(|(i, s)| Mutation::Splice(i, s)),
    ]
}

fn apply(mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = EXPORT.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x ^= b;
                }
            }
            Mutation::Cut(i) => bytes.truncate(i % len),
            Mutation::Delete(i, n) => {
                let i = i % len;
                let end = (i + n).min(bytes.len());
                bytes.drain(i.min(end)..end);
            }
            Mutation::Splice(i, s) => {
                let i = (i % len).min(bytes.len());
                bytes.splice(i..i, s.bytes());
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_exports_are_errors_or_imports_never_panics(mutations in prop::collection::vec(mutation(), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("result.json");
        std::fs::write(&file, apply(&mutations)).unwrap();
        let mut config = StoreConfig::new(dir.path().join("data"));
        config.flush = FlushPolicy::Manual;
        let store = Store::open(config).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            import_file(Some(&store), None, &file, &ImportOptions::default(), &Arc::new(AtomicU64::new(0)))
        }));
        prop_assert!(outcome.is_ok(), "the importer panicked");
        if let Err(e) = outcome.unwrap() {
            prop_assert!(!e.to_string().is_empty());
        }
        let report = store.verify().unwrap();
        prop_assert!(report.is_clean(), "{:?}", report.problems);
    }
}

#[test]
fn the_unmutated_export_imports() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("result.json");
    std::fs::write(&file, EXPORT).unwrap();
    let store = Store::open(StoreConfig::new(dir.path().join("data"))).unwrap();
    let summary = import_file(
        Some(&store),
        None,
        &file,
        &ImportOptions::default(),
        &Arc::new(AtomicU64::new(0)),
    )
    .unwrap();
    assert_eq!((summary.messages, summary.service_messages), (4, 1));
}
