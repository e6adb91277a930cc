//! The store's API on small, hand-checked data: ids, ordering, edits, stats, reopen.

use chatkeeper::store::{FlushPolicy, Message, MessageKind, Store, StoreConfig, UserInfo};

const GROUP: i64 = -1_001_234_567_890;

fn open(dir: &std::path::Path) -> Store {
    let mut config = StoreConfig::new(dir);
    config.flush = FlushPolicy::Manual;
    Store::open(config).expect("open store")
}

fn msg(chat: i64, id: i32, time: i64, user: i64, text: &str) -> Message {
    Message {
        chat_id: chat,
        message_id: id,
        time,
        edit_time: None,
        user_id: Some(user),
        sender_name: format!("user {user}"),
        text: text.into(),
        kind: MessageKind::Text,
        reply_to: None,
        forwarded_from: None,
        is_bot: false,
        topic: None,
    }
}

#[test]
fn recent_returns_the_last_messages_in_order_across_seals_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 1..=1000 {
        store
            .save_message(msg(
                GROUP,
                i,
                1_700_000_000 + i64::from(i),
                7 + i64::from(i % 3),
                &format!("повідомлення {i}"),
            ))
            .unwrap();
    }
    store.flush().unwrap();
    let health = store.health();
    assert!(
        health.commits >= 1 && health.blocks_sealed >= 7 && health.size_on_disk > 0,
        "{health:?}"
    );
    let check = |store: &Store| {
        let recent = store.recent(GROUP, 300).unwrap();
        assert_eq!(recent.len(), 300);
        assert_eq!(recent.first().unwrap().message_id, 701);
        assert_eq!(recent.last().unwrap().message_id, 1000);
        assert!(recent.windows(2).all(|w| w[0].time < w[1].time));
        assert_eq!(
            store.message(GROUP, 5).unwrap().unwrap().text,
            "повідомлення 5"
        );
        assert_eq!(
            store.message(GROUP, 999).unwrap().unwrap().text,
            "повідомлення 999"
        );
        assert!(store.message(GROUP, 5000).unwrap().is_none());
        let stats = store.chat_stats(GROUP).unwrap();
        assert_eq!((stats.total_messages, stats.unique_users), (1000, 3));
        assert_eq!(stats.top_users[0].messages, 334);
        assert_eq!(store.global_stats().total_messages, 1000);
    };
    check(&store);
    drop(store);
    let store = open(dir.path());
    check(&store);
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn recent_in_topic_reads_one_topic_across_blocks_and_looks_back_a_bounded_way() {
    use chatkeeper::store::TOPIC_LOOKBACK;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let in_topic = |id: i32, topic: Option<i32>| Message {
        topic,
        ..msg(
            GROUP,
            id,
            1_700_000_000 + i64::from(id),
            7,
            &format!("m{id}"),
        )
    };
    // Topic 5's messages early on, then a long stretch of the General topic, then one more.
    let early: Vec<Message> = (1..=30).map(|id| in_topic(id, Some(5))).collect();
    store.save_batch(early).unwrap();
    let general = TOPIC_LOOKBACK as i32;
    let rest: Vec<Message> = (31..31 + general)
        .map(|id| in_topic(id, (id % 2 == 0).then_some(6)))
        .collect();
    store.save_batch(rest).unwrap();
    store.save_message(in_topic(31 + general, Some(5))).unwrap();
    store.flush().unwrap();

    let six = store.recent_in_topic(GROUP, Some(6), 40).unwrap();
    assert_eq!(six.len(), 40);
    assert!(
        six.windows(2).all(|w| w[0].time < w[1].time),
        "oldest first"
    );
    assert!(six.iter().all(|m| m.topic == Some(6)));
    let newest_six = (31..31 + general).filter(|id| id % 2 == 0).max();
    assert_eq!(six.last().map(|m| m.message_id), newest_six);
    let none = store.recent_in_topic(GROUP, None, 3).unwrap();
    let odd_ids: Vec<i32> = (31..31 + general).filter(|id| id % 2 == 1).collect();
    assert_eq!(
        none.iter().map(|m| m.message_id).collect::<Vec<_>>(),
        odd_ids[odd_ids.len() - 3..]
    );
    // Topic 5's early messages lie beyond the look-back: only its newest one is found.
    let five = store.recent_in_topic(GROUP, Some(5), 10).unwrap();
    assert_eq!(
        five.iter().map(|m| m.message_id).collect::<Vec<_>>(),
        [31 + general]
    );
}

#[test]
fn edits_replace_text_and_keep_counters_in_tail_and_sealed_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 1..=300 {
        store
            .save_message(msg(GROUP, i, 1000 + i64::from(i), 1, "old"))
            .unwrap();
    }
    store.flush().unwrap();
    for id in [3, 150, 299] {
        let mut edited = msg(GROUP, id, 1000 + i64::from(id), 1, "new");
        edited.edit_time = Some(5000);
        store.save_message(edited).unwrap();
    }
    for id in [3, 150, 299] {
        assert_eq!(store.message(GROUP, id).unwrap().unwrap().text, "new");
    }
    assert_eq!(store.chat_stats(GROUP).unwrap().total_messages, 300);
    // Saving the same message again changes nothing.
    store.save_message(msg(GROUP, 10, 1010, 1, "old")).unwrap();
    assert_eq!(store.chat_stats(GROUP).unwrap().total_messages, 300);
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.message(GROUP, 150).unwrap().unwrap().text, "new");
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn history_older_than_sealed_blocks_is_merged_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .save_batch(
            (1000..1400)
                .map(|i| msg(GROUP, i, 100_000 + i64::from(i), 2, "live"))
                .collect(),
        )
        .unwrap();
    store
        .save_batch(
            (1..600)
                .map(|i| msg(GROUP, i, 1_000 + i64::from(i), 3, "imported"))
                .collect(),
        )
        .unwrap();
    store.flush().unwrap();
    let all = store
        .chat_range(GROUP, i64::MIN, i64::MAX)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(all.len(), 999);
    assert!(all
        .windows(2)
        .all(|w| (w[0].time, w[0].message_id) < (w[1].time, w[1].message_id)));
    assert_eq!(store.user_messages(3, 0, i64::MAX).unwrap().len(), 599);
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn an_edit_that_moves_a_tail_message_survives_sealing_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .save_message(msg(GROUP, 394, 3941, 1, "first"))
        .unwrap();
    let mut batch: Vec<Message> = (1..=200)
        .map(|i| msg(GROUP, i, i64::from(i) * 10, 2, "x"))
        .collect();
    batch.push(msg(GROUP, 394, 3940, 1, "edited"));
    store.save_batch(batch).unwrap();
    let last = store.recent(GROUP, 1).unwrap();
    assert_eq!((last[0].message_id, last[0].text.as_str()), (394, "edited"));
    drop(store);
    let store = open(dir.path());
    let last = store.recent(GROUP, 2).unwrap();
    assert_eq!(last.len(), 2);
    assert_eq!((last[1].message_id, last[1].text.as_str()), (394, "edited"));
    assert_eq!(store.chat_stats(GROUP).unwrap().total_messages, 201);
}

/// The chat's messages as the store reads them back, compared with `model` every way a reader
/// goes: in order, by id, by user, and by `verify`.
fn check_long_chat(store: &Store, model: &std::collections::BTreeMap<i32, Message>) {
    let got: Vec<Message> = store
        .chat_range(GROUP, i64::MIN, i64::MAX)
        .map(|m| Message::clone(&m.unwrap()))
        .collect();
    let mut want: Vec<Message> = model.values().cloned().collect();
    want.sort_by_key(|m| (m.time, m.message_id));
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the chat's messages differ from the model");
    for (&id, m) in model.iter().step_by(97) {
        assert_eq!(store.message(GROUP, id).unwrap().as_deref(), Some(m));
    }
    let late: Vec<Message> = store
        .user_messages(9, i64::MIN, i64::MAX)
        .unwrap()
        .iter()
        .map(|m| Message::clone(m))
        .collect();
    let want_late: Vec<&Message> = want.iter().filter(|m| m.user_id == Some(9)).collect();
    assert_eq!(late.iter().collect::<Vec<_>>(), want_late);
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

/// A chat long enough for its block directory to span several runs (16 blocks of 128 messages
/// each as seals fill them): late messages that split sealed blocks until a run is split in
/// turn, deletions that empty blocks in the middle and whole runs at the front, each checked
/// against a plain model, before and after a reopen.
#[test]
fn a_long_chat_keeps_its_messages_while_edits_reshape_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut model = std::collections::BTreeMap::new();
    let base = 1_700_000_000i64;
    let time_of = |i: i32| base + 100 * i64::from(i);
    let save = |store: &Store,
                model: &mut std::collections::BTreeMap<i32, Message>,
                messages: Vec<Message>| {
        for m in &messages {
            model.insert(m.message_id, m.clone());
        }
        for batch in messages.chunks(4096) {
            store.save_batch(batch.to_vec()).unwrap();
        }
        store.flush().unwrap();
    };
    // 60 blocks: four runs.
    save(
        &store,
        &mut model,
        (1..=60 * 128)
            .map(|i| msg(GROUP, i, time_of(i), 1 + i64::from(i % 5), &format!("m{i}")))
            .collect(),
    );
    // Late messages from user 9 (new ids, times inside block 20 and then block 22, between two
    // of their messages): the blocks grow past 256 messages and are split, 6 and then 14 pieces,
    // so their run outgrows 32 blocks and is split too. Most pieces hold late messages alone.
    let mut next_id = 100_000;
    let mut late = |block: i32, n: usize| -> Vec<Message> {
        let after = 128 * block + 50;
        (0..n)
            .map(|j| {
                next_id += 1;
                let time = time_of(after) + 1 + (j % 98) as i64;
                msg(GROUP, next_id, time, 9, &format!("late {j}"))
            })
            .collect()
    };
    let first_wave = late(20, 600);
    let second_wave = late(22, 1600);
    save(&store, &mut model, first_wave);
    check_long_chat(&store, &model);
    save(&store, &mut model, second_wave);
    check_long_chat(&store, &model);
    drop(store);
    store = open(dir.path());
    check_long_chat(&store, &model);
    // The late messages go again: their blocks are emptied, their runs shrink and merge.
    assert_eq!(store.delete_user_in_chat(9, GROUP).unwrap(), 2200);
    model.retain(|_, m| m.user_id != Some(9));
    check_long_chat(&store, &model);
    // Every block is rewritten without user 3's messages.
    store.delete_user_in_chat(3, GROUP).unwrap();
    model.retain(|_, m| m.user_id != Some(3));
    check_long_chat(&store, &model);
    // Retention: the first 40 blocks' messages, whole runs of them, go.
    let cut = time_of(40 * 128 + 1);
    store.purge_before(cut).unwrap();
    model.retain(|_, m| m.time >= cut);
    check_long_chat(&store, &model);
    drop(store);
    let store = open(dir.path());
    check_long_chat(&store, &model);
}

#[test]
fn a_users_names_read_back_at_once_and_survive_a_rename_on_their_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let given = UserInfo {
        display_name: "Оля".into(),
        username: Some("olya".into()),
    };
    store.set_user_info(7, given.clone()).unwrap();
    assert_eq!(
        store.user_info(7),
        Some(given.clone()),
        "read back before a commit"
    );
    let mut first = msg(-100, 1, 1_000, 7, "привіт");
    first.sender_name = "Оля".into();
    store.save_batch(vec![first]).unwrap();
    store.flush().unwrap();
    assert_eq!(store.user_info(7), Some(given));
    // A new name seen on a message keeps the username Telegram gave.
    let mut renamed = msg(-100, 2, 1_001, 7, "це я");
    renamed.sender_name = "Ольга".into();
    store.save_batch(vec![renamed]).unwrap();
    store.flush().unwrap();
    drop(store);
    let store = open(dir.path());
    let info = store.user_info(7).unwrap();
    assert_eq!(
        (info.display_name.as_str(), info.username.as_deref()),
        ("Ольга", Some("olya"))
    );
}
