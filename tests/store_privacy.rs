//! Privacy is exact: once a deletion returns, no file of the data directory holds the deleted
//! messages, live or dead. The log files are read here independently of the store, with the
//! record format `layout.rs` documents, and every record that decodes as messages is searched.
//! (A byte search for the text would prove nothing: zstd codes literals, so a stored message
//! need not appear verbatim.)

use chatkeeper::store::codec::{BlockView, Compressor};
use chatkeeper::store::{FlushPolicy, Message, MessageKind, SettingKey, Store, StoreConfig};
use std::path::Path;

const SECRET: &str = "таємниця";
const VICTIM: i64 = 666;
const CHATS: [i64; 3] = [-1_001_700_000_001, -1_001_700_000_002, 4242];

fn message(chat: i64, id: i32, user: i64, text: String) -> Message {
    Message {
        chat_id: chat,
        message_id: id,
        time: 1_760_000_000 + i64::from(id) * 7,
        edit_time: None,
        user_id: Some(user),
        sender_name: format!("Людина {user}"),
        text,
        kind: MessageKind::Text,
        reply_to: None,
        forwarded_from: None,
        is_bot: false,
        topic: None,
    }
}

/// A store whose logs roll over every few blocks, so that records are spread over many segments.
fn open(dir: &Path) -> Store {
    let mut config = StoreConfig::new(dir);
    config.flush = FlushPolicy::Manual;
    config.segment_bytes = 24 << 10;
    Store::open(config).unwrap()
}

/// Every message any record of any log segment under `dir` decodes to, live or dead.
fn everything_on_disk(dir: &Path) -> Vec<Message> {
    let mut found = Vec::new();
    for log in ["blocks", "tails", "postings"] {
        let Ok(entries) = std::fs::read_dir(dir.join(log)) else {
            continue;
        };
        for entry in entries {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let mut at = 16;
            while at + 8 <= bytes.len() {
                let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                let payload = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
                if let Ok(view) = BlockView::parse(payload) {
                    // A record that parses as messages but does not decode (a trained
                    // dictionary, say) would hide its messages from this scan.
                    let messages = view
                        .all(&Compressor::default())
                        .expect("every block or tail record decodes");
                    found.extend(messages.iter().map(|m| Message::clone(m)));
                }
                at += 8 + len;
            }
        }
    }
    found
}

fn secrets_on_disk(dir: &Path) -> usize {
    everything_on_disk(dir)
        .iter()
        .filter(|m| m.user_id == Some(VICTIM) || m.text.contains(SECRET))
        .count()
}

/// Messages in three chats, the victim's among them, sealed and in tails, with edits that leave
/// dead copies of blocks and tail segments holding the victim's words behind.
fn fill(store: &Store) {
    for (c, &chat) in CHATS.iter().enumerate() {
        let count = [700, 300, 90][c];
        for id in 1..=count {
            let user = if id % 5 == 0 {
                VICTIM
            } else {
                100 + i64::from(id % 4)
            };
            let text = if user == VICTIM {
                format!("{SECRET} {id}: моя адреса — вулиця {id}")
            } else {
                format!("звичайне повідомлення {id}")
            };
            store.save_message(message(chat, id, user, text)).unwrap();
            if id % 97 == 0 {
                store.flush().unwrap();
            }
        }
        // Edits of sealed messages (the victim's and others') rewrite blocks: the old versions
        // stay in the log as dead records until compaction.
        for id in (3..count).step_by(41) {
            let user = if id % 5 == 0 {
                VICTIM
            } else {
                100 + i64::from(id % 4)
            };
            let mut edited = message(chat, id, user, format!("виправлено {id}"));
            if user == VICTIM {
                edited.text = format!("{SECRET} виправлено {id}");
            }
            store.save_message(edited).unwrap();
        }
    }
    store.flush().unwrap();
}

#[test]
fn after_forget_me_no_file_holds_the_persons_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fill(&store);
    assert!(
        secrets_on_disk(dir.path()) > 100,
        "the scan must see the messages before they are deleted"
    );
    let deleted = store.delete_user(VICTIM).unwrap();
    assert!(deleted > 200, "{deleted}");
    assert_eq!(secrets_on_disk(dir.path()), 0);
    // The others' messages are all still there, and the store is consistent.
    assert_eq!(store.global_stats().total_messages, 1090 - deleted);
    let on_disk = everything_on_disk(dir.path());
    for m in store.time_range(i64::MIN, i64::MAX) {
        let m = m.unwrap();
        assert!(
            on_disk.contains(&m),
            "message {} of chat {} is gone",
            m.message_id,
            m.chat_id
        );
    }
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn forgetting_in_one_chat_leaves_no_copy_of_that_chats_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fill(&store);
    store.delete_user_in_chat(VICTIM, CHATS[0]).unwrap();
    let left: Vec<Message> = everything_on_disk(dir.path())
        .into_iter()
        .filter(|m| m.user_id == Some(VICTIM))
        .collect();
    assert!(left.iter().all(|m| m.chat_id != CHATS[0]));
    assert!(
        left.iter().any(|m| m.chat_id == CHATS[1]),
        "the person's messages elsewhere stay"
    );
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn purged_chats_and_expired_history_leave_no_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fill(&store);
    store.purge_chat(CHATS[1]).unwrap();
    let cutoff = 1_760_000_000 + 400 * 7;
    store.purge_before(cutoff).unwrap();
    let on_disk = everything_on_disk(dir.path());
    assert!(on_disk.iter().all(|m| m.chat_id != CHATS[1]));
    assert!(on_disk.iter().all(|m| m.time >= cutoff));
    assert!(on_disk.iter().any(|m| m.chat_id == CHATS[0]));
    assert!(store.verify().unwrap().is_clean());
}

/// How many times `needle` occurs in the profiles log's files (profile chunks are stored
/// uncompressed, so a profile's bytes appear verbatim).
fn in_profiles_log(dir: &Path, needle: &[u8]) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.join("profiles")) else {
        return 0;
    };
    entries
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .map(|bytes| bytes.windows(needle.len()).filter(|w| *w == needle).count())
        .sum()
}

#[test]
fn forgotten_and_purged_profiles_leave_no_copy_in_the_profiles_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let secret = |chat: i64, user: i64| format!("{SECRET}-{chat}-{user}");
    // Rewritten a few times, so that dead copies of the chunks pile up in several segments.
    for round in 0..3 {
        let profiles: Vec<((i64, i64), (u32, String))> = CHATS
            .iter()
            .flat_map(|&c| (0..120).map(move |u| (c, 600 + u)))
            .map(|(c, u)| ((c, u), (round, secret(c, u))))
            .collect();
        store
            .put_profiles(profiles.iter().map(|(k, v)| (*k, v)))
            .unwrap();
    }
    // And a newer one written live, which the store settles into the log before deleting.
    store
        .put_setting(
            SettingKey::Profile {
                chat: CHATS[2],
                user: VICTIM,
            },
            &(9u32, secret(CHATS[2], VICTIM)),
        )
        .unwrap();
    store.flush().unwrap();
    let victim = |c: i64| secret(c, VICTIM).into_bytes();
    assert!(
        in_profiles_log(dir.path(), &victim(CHATS[0])) >= 3,
        "the search must find what is there"
    );
    assert_eq!(store.remove_profiles(None, Some(VICTIM)).unwrap(), 3);
    for chat in CHATS {
        assert_eq!(in_profiles_log(dir.path(), &victim(chat)), 0, "chat {chat}");
    }
    assert!(in_profiles_log(dir.path(), &secret(CHATS[0], 601).into_bytes()) > 0);
    assert_eq!(store.remove_profiles(Some(CHATS[1]), None).unwrap(), 119);
    assert_eq!(
        in_profiles_log(dir.path(), format!("{SECRET}-{}-", CHATS[1]).as_bytes()),
        0
    );
    assert!(in_profiles_log(dir.path(), &secret(CHATS[0], 601).into_bytes()) > 0);
    assert!(store.verify().unwrap().is_clean());
}
