//! Crash safety: a child process ingests and is killed with SIGKILL at random points, many times.
//! After each kill the store must open, `verify` must find nothing wrong, and nothing that was
//! acknowledged (explicit flush) or older than the group-commit window may be missing.
//!
//! The child's logs roll over every few blocks, and it edits sealed messages and deletes a
//! person's messages in a side chat now and then, so that kills also land in block rewrites and
//! in compactions (background and after deletions). It also writes profiles, in bulk and live
//! (settled into the profiles log in the background), and deletes one now and then.

use chatkeeper::store::{Message, MessageKind, SettingKey, Store, StoreConfig};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHILD_DIR: &str = "CHATKEEPER_CRASH_CHILD_DIR";
const CHILD_FLUSHES: &str = "CHATKEEPER_CRASH_CHILD_FLUSHES";
const CHATS: i64 = 5;
/// A chat outside the checked stream where messages are written and deleted again.
const SIDE_CHAT: i64 = -1_002_000_000_000;
const SIDE_USER: i64 = 99;
/// The chat whose profiles the child writes: `(PROFILE_CHAT, user)` → the stream position.
const PROFILE_CHAT: i64 = -1_003_000_000_000;
/// The profile checked after each kill (never deleted).
const CHECKED_PROFILE: i64 = 1;

/// Message number `i` of the child's stream: spread over a few chats, with the odd edit.
fn nth(i: u64) -> Message {
    let chat = -1_001_000_000_000 - (i as i64 % CHATS);
    Message {
        chat_id: chat,
        message_id: (i / CHATS as u64) as i32 + 1,
        time: 1_700_000_000 + i as i64,
        edit_time: None,
        user_id: Some(10 + (i % 7) as i64),
        sender_name: format!("user {}", i % 7),
        text: format!("message {i} {}", "слово ".repeat((i % 13) as usize)),
        kind: MessageKind::Text,
        reply_to: None,
        forwarded_from: None,
        is_bot: false,
        topic: None,
    }
}

/// The child: replays the stream from the start (re-saving a stored message changes nothing, and
/// fills any hole an earlier kill left) and never stops on its own.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let explicit = std::env::var(CHILD_FLUSHES).is_ok();
    let mut config = StoreConfig::new(&dir);
    config.segment_bytes = 32 << 10;
    let store = Store::open(config).unwrap();
    let mut i = 0;
    let mut side = 0;
    loop {
        if i % 300 == 0 {
            // A person writes in the side chat and asks to be forgotten there: block rewrites
            // and the compaction of every segment that held their words.
            for _ in 0..40 {
                side += 1;
                let mut m = nth(side);
                m.chat_id = SIDE_CHAT;
                m.message_id = side as i32;
                m.user_id = Some(SIDE_USER);
                store.save_message(m).unwrap();
            }
            if side % 200 == 0 {
                store.delete_user_in_chat(SIDE_USER, SIDE_CHAT).unwrap();
            }
        }
        if i % 200 == 150 {
            // Batches and edits of sealed messages take the other write paths.
            let batch: Vec<Message> = (i..i + 50).map(nth).collect();
            store.save_batch(batch).unwrap();
            i += 50;
            if i > 400 {
                let mut edited = nth(i - 400);
                edited.text = format!("edited {}", i - 400);
                edited.edit_time = Some(edited.time + 5);
                store.save_message(edited).unwrap();
            }
        } else {
            store.save_message(nth(i)).unwrap();
            i += 1;
        }
        if i % 100 == 0 {
            // Profiles: many in bulk, some live (settled once 1,024 piled up), one deleted.
            store
                .put_profiles((0..80).map(|u| ((PROFILE_CHAT, u), &i)))
                .unwrap();
            store
                .put_settings((100..160).map(|u| {
                    let key = SettingKey::Profile {
                        chat: PROFILE_CHAT,
                        user: u + i as i64 % 1_000,
                    };
                    (key, &i)
                }))
                .unwrap();
            if i % 1_000 == 0 {
                store.remove_profiles(Some(PROFILE_CHAT), Some(79)).unwrap();
            }
            if explicit {
                store.flush().unwrap();
                println!("durable {i} {}", store.health().segments_compacted);
            } else {
                println!("saved {i} {}", store.health().segments_compacted);
            }
        }
    }
}

#[test]
fn killed_mid_stream_loses_nothing_acknowledged_and_verifies_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261124);
    let exe = std::env::current_exe().unwrap();
    let mut rounds_with_acknowledged = 0;
    let mut last_total = 0;
    let mut compactions = 0u64;
    for round in 0..16 {
        let explicit = round % 2 == 1;
        let mut command = Command::new(&exe);
        command
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if explicit {
            command.env(CHILD_FLUSHES, "1");
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        // Let it start and run a while; kill it at a random point.
        let run_for = Duration::from_millis(rng.random_range(300..1500));
        let started = Instant::now();
        let mut seen: Vec<(Instant, u64)> = Vec::new();
        let mut compacted_this_round = 0u64;
        while started.elapsed() < run_for {
            if let Ok((at, line)) = rx.recv_timeout(Duration::from_millis(10)) {
                if let Some(n) = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()) {
                    seen.push((at, n));
                }
                if let Some(n) = line.split_whitespace().nth(2).and_then(|n| n.parse().ok()) {
                    compacted_this_round = compacted_this_round.max(n);
                }
            }
        }

        child.kill().unwrap(); // SIGKILL
        let killed_at = Instant::now();
        child.wait().unwrap();
        while let Ok((at, line)) = rx.try_recv() {
            if let Some(n) = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()) {
                seen.push((at, n));
            }
            if let Some(n) = line.split_whitespace().nth(2).and_then(|n| n.parse().ok()) {
                compacted_this_round = compacted_this_round.max(n);
            }
        }
        compactions += compacted_this_round;
        let must_have = if explicit {
            seen.iter().map(|&(_, n)| n).max().unwrap_or(0)
        } else {
            seen.iter()
                .filter(|&&(at, _)| at + Duration::from_secs(1) < killed_at)
                .map(|&(_, n)| n)
                .max()
                .unwrap_or(0)
        };

        rounds_with_acknowledged += usize::from(must_have > 0);
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let report = store.verify().unwrap();
        assert!(report.is_clean(), "round {round}: {:?}", report.problems);
        let total = store.global_stats().total_messages;
        assert!(
            total >= must_have,
            "round {round}: {total} stored, {must_have} acknowledged"
        );
        for i in (0..must_have)
            .step_by(7)
            .chain(must_have.saturating_sub(50)..must_have)
        {
            let expected = nth(i);
            let stored = store
                .message(expected.chat_id, expected.message_id)
                .unwrap()
                .unwrap_or_else(|| {
                    panic!("round {round}: message {i} of {must_have} acknowledged is missing")
                });
            assert!(
                stored.text == expected.text || stored.text.starts_with("edited"),
                "round {round}: message {i} differs"
            );
        }
        if explicit && must_have > 0 {
            let profile: Option<u64> = store
                .setting(SettingKey::Profile {
                    chat: PROFILE_CHAT,
                    user: CHECKED_PROFILE,
                })
                .unwrap();
            assert!(
                profile >= Some(must_have),
                "round {round}: profile {profile:?}, {must_have} acknowledged"
            );
        }
        last_total = total;
    }
    // The test proves something only if the children really ran and were killed mid-stream.
    assert!(
        rounds_with_acknowledged >= 10,
        "only {rounds_with_acknowledged} rounds acknowledged anything"
    );
    eprintln!("log segments compacted by the children: {compactions}");
    assert!(
        compactions > 0,
        "no log segment was compacted while the children ran"
    );
    assert!(
        last_total > 2_000,
        "the children stored only {last_total} messages"
    );
}
