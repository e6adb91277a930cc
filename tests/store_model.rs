//! Model-based test: random operations against the store and a plain in-memory model; every query
//! must answer the same, before and after reopening, and `verify` must stay clean.

use chatkeeper::store::{
    FlushPolicy, Message, MessageKind, MessageRef, Store, StoreConfig, TOP_USERS,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

const CHATS: [i64; 3] = [-1_001_000_000_001, -42, 777];

#[derive(Clone, Debug)]
enum Op {
    /// A message: `fresh` takes the chat's next id, otherwise `id` (an edit or old history).
    Save {
        chat: usize,
        fresh: bool,
        id: i32,
        jitter: i64,
        displaced: bool,
        user: Option<i64>,
        service: bool,
        text: u8,
    },
    Batch(Vec<(usize, i32, Option<i64>)>),
    DeleteUser(i64),
    DeleteUserInChat(i64, usize),
    Purge(i64),
    PurgeChat(usize),
    Flush,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (0..3usize, prop::bool::weighted(0.8), 1..400i32, 0..5i64, prop::bool::weighted(0.05),
               prop::option::weighted(0.9, 1..6i64), prop::bool::weighted(0.05), any::<u8>())
            .prop_map(|(chat, fresh, id, jitter, displaced, user, service, text)| Op::Save { chat, fresh, id, jitter, displaced, user, service, text }),
        2 => prop::collection::vec((0..3usize, 1..500i32, prop::option::of(1..6i64)), 1..300).prop_map(Op::Batch),
        1 => (1..6i64).prop_map(Op::DeleteUser),
        1 => (1..6i64, 0..3usize).prop_map(|(u, c)| Op::DeleteUserInChat(u, c)),
        1 => (0..4000i64).prop_map(Op::Purge),
        1 => (0..3usize).prop_map(Op::PurgeChat),
        2 => Just(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

fn message(chat: i64, id: i32, time: i64, user: Option<i64>, service: bool, text: u8) -> Message {
    Message {
        chat_id: chat,
        message_id: id,
        time,
        edit_time: (text % 7 == 0).then_some(time + 3),
        user_id: user,
        sender_name: user.map_or("Deleted Account".into(), |u| format!("Користувач {u}")),
        text: format!("текст {text} {}", "слово ".repeat(text as usize % 5)),
        kind: if service {
            MessageKind::Service
        } else {
            MessageKind::ALL[text as usize % 3]
        },
        reply_to: (text % 4 == 0).then_some(id - 1),
        forwarded_from: (text % 9 == 0).then(|| "Новини".to_string()),
        is_bot: text % 11 == 0,
        topic: (text % 5 < 2).then_some(1 + (text % 5) as i32),
    }
}

/// The model: every stored message by (chat, id).
#[derive(Default)]
struct Model {
    messages: BTreeMap<(i64, i32), Message>,
}

impl Model {
    fn chat(&self, chat: i64) -> Vec<&Message> {
        let mut v: Vec<&Message> = self
            .messages
            .values()
            .filter(|m| m.chat_id == chat)
            .collect();
        v.sort_by_key(|m| (m.time, m.message_id));
        v
    }
}

fn open(dir: &std::path::Path) -> Store {
    let mut config = StoreConfig::new(dir);
    config.flush = FlushPolicy::Manual;
    config.decoded_cache_bytes = 64 << 10;
    Store::open(config).unwrap()
}

fn owned(v: Vec<MessageRef>) -> Vec<Message> {
    v.into_iter().map(|m| Message::clone(&m)).collect()
}

fn check(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let mut users_total: HashSet<i64> = HashSet::new();
    let (mut total, mut service, mut chats) = (0, 0, 0);
    for &chat in &CHATS {
        let expected = model.chat(chat);
        for n in [1usize, 7, 130, 1000] {
            let want: Vec<Message> = expected
                .iter()
                .rev()
                .take(n)
                .rev()
                .map(|m| (*m).clone())
                .collect();
            prop_assert_eq!(
                owned(store.recent(chat, n).unwrap()),
                want,
                "recent({}, {})",
                chat,
                n
            );
        }
        for id in [1, 2, 50, 128, 129, 255, 399] {
            let want = model.messages.get(&(chat, id)).cloned();
            prop_assert_eq!(
                store.message(chat, id).unwrap().map(|m| Message::clone(&m)),
                want
            );
        }
        let counted: Vec<&&Message> = expected
            .iter()
            .filter(|m| m.kind != MessageKind::Service)
            .collect();
        let mut per_user: HashMap<i64, u64> = HashMap::new();
        let mut hours = [0u64; 24];
        for m in &counted {
            if let Some(u) = m.user_id {
                *per_user.entry(u).or_default() += 1;
                users_total.insert(u);
            }
            hours[(m.time.rem_euclid(86_400) / 3600) as usize] += 1;
        }
        for user in 1..6 {
            prop_assert_eq!(
                store.user_total_in_chat(chat, user),
                per_user.get(&user).copied().unwrap_or(0)
            );
        }
        let mut days: BTreeMap<i64, u64> = BTreeMap::new();
        for m in &counted {
            *days.entry(m.time.div_euclid(86_400)).or_default() += 1;
        }
        prop_assert_eq!(store.daily_counts(chat), days);
        let mut top: Vec<(u64, i64)> = per_user.iter().map(|(&u, &n)| (n, u)).collect();
        top.sort_by_key(|&(n, u)| (std::cmp::Reverse(n), u));
        top.truncate(TOP_USERS);
        match store.chat_stats(chat) {
            Some(stats) => {
                prop_assert_eq!(stats.total_messages, counted.len() as u64);
                prop_assert_eq!(
                    stats.service_messages,
                    (expected.len() - counted.len()) as u64
                );
                prop_assert_eq!(stats.unique_users, per_user.len() as u64);
                prop_assert_eq!(
                    stats
                        .top_users
                        .iter()
                        .map(|u| (u.messages, u.user_id))
                        .collect::<Vec<_>>(),
                    top
                );
                prop_assert_eq!(stats.hour_histogram, hours);
                prop_assert_eq!(stats.first_activity, expected.first().map(|m| m.time));
                prop_assert_eq!(stats.last_activity, expected.last().map(|m| m.time));
            }
            None => prop_assert!(expected.is_empty()),
        }
        total += counted.len() as u64;
        service += (expected.len() - counted.len()) as u64;
        chats += u64::from(!expected.is_empty());
    }
    for user in 1..6 {
        let everywhere = model
            .messages
            .values()
            .filter(|m| m.user_id == Some(user) && m.kind != MessageKind::Service)
            .count() as u64;
        prop_assert_eq!(store.user_total(user), everywhere);
    }
    let global = store.global_stats();
    prop_assert_eq!(
        (
            global.total_messages,
            global.service_messages,
            global.chats,
            global.users
        ),
        (total, service, chats, users_total.len() as u64)
    );
    for (from, to) in [(i64::MIN, i64::MAX), (500, 1500), (2000, 2000)] {
        let mut want: Vec<Message> = model
            .messages
            .values()
            .filter(|m| from <= m.time && m.time <= to)
            .cloned()
            .collect();
        want.sort_by_key(|m| (m.time, m.chat_id, m.message_id));
        let streamed = store
            .time_range(from, to)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        prop_assert_eq!(owned(streamed), want.clone());
        for chat in CHATS {
            let of_chat: Vec<Message> =
                want.iter().filter(|m| m.chat_id == chat).cloned().collect();
            let streamed = store
                .chat_range(chat, from, to)
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            prop_assert_eq!(owned(streamed), of_chat);
        }
        for user in 1..6 {
            let mine: Vec<Message> = want
                .iter()
                .filter(|m| m.user_id == Some(user))
                .cloned()
                .collect();
            prop_assert_eq!(
                owned(store.user_messages(user, from, to).unwrap()),
                mine,
                "user_messages({})",
                user
            );
        }
    }
    let since = 1800;
    let mut active: Vec<(i64, i64)> = CHATS
        .iter()
        .filter_map(|&c| model.chat(c).last().map(|m| (m.time, c)))
        .filter(|&(t, _)| t >= since)
        .collect();
    active.sort_by_key(|&(t, c)| (std::cmp::Reverse(t), c));
    prop_assert_eq!(
        store
            .active_chats(since)
            .iter()
            .map(|a| (a.last_activity, a.chat_id))
            .collect::<Vec<_>>(),
        active
    );
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut model = Model::default();
    let mut next_id: HashMap<usize, i32> = HashMap::new();
    for (step, op) in ops.into_iter().enumerate() {
        let what = format!("{op:?}").chars().take(40).collect::<String>();
        match op {
            Op::Save {
                chat,
                fresh,
                id,
                jitter,
                displaced,
                user,
                service,
                text,
            } => {
                let id = if fresh {
                    let next = next_id.entry(chat).or_insert(1);
                    *next += 1;
                    *next
                } else {
                    id
                };
                let time = if displaced {
                    i64::from(id) * 7 % 4000
                } else {
                    i64::from(id) * 10 + jitter
                };
                let m = message(CHATS[chat], id, time, user, service, text);
                model.messages.insert((m.chat_id, id), m.clone());
                store.save_message(m).unwrap();
            }
            Op::Batch(items) => {
                let batch: Vec<Message> = items
                    .into_iter()
                    .map(|(chat, id, user)| {
                        message(
                            CHATS[chat],
                            id,
                            i64::from(id) * 10,
                            user,
                            false,
                            (id % 251) as u8,
                        )
                    })
                    .collect();
                for m in &batch {
                    model.messages.insert((m.chat_id, m.message_id), m.clone());
                }
                store.save_batch(batch).unwrap();
            }
            Op::DeleteUser(user) => {
                let before = model.messages.len();
                model.messages.retain(|_, m| m.user_id != Some(user));
                prop_assert_eq!(
                    store.delete_user(user).unwrap(),
                    (before - model.messages.len()) as u64
                );
            }
            Op::DeleteUserInChat(user, chat) => {
                let before = model.messages.len();
                model
                    .messages
                    .retain(|_, m| !(m.user_id == Some(user) && m.chat_id == CHATS[chat]));
                prop_assert_eq!(
                    store.delete_user_in_chat(user, CHATS[chat]).unwrap(),
                    (before - model.messages.len()) as u64
                );
            }
            Op::Purge(time) => {
                let before = model.messages.len();
                model.messages.retain(|_, m| m.time >= time);
                prop_assert_eq!(
                    store.purge_before(time).unwrap(),
                    (before - model.messages.len()) as u64
                );
            }
            Op::PurgeChat(chat) => {
                let before = model.messages.len();
                model.messages.retain(|_, m| m.chat_id != CHATS[chat]);
                prop_assert_eq!(
                    store.purge_chat(CHATS[chat]).unwrap(),
                    (before - model.messages.len()) as u64
                );
            }
            Op::Flush => store.flush().unwrap(),
            Op::Reopen => {
                drop(store);
                store = open(dir.path());
            }
        }
        check(&store, &model)
            .map_err(|e| TestCaseError::fail(format!("after step {step} ({what}…): {e}")))?;
    }
    let report = store.verify().unwrap();
    prop_assert!(report.is_clean(), "{:?}", report.problems);
    drop(store);
    let store = open(dir.path());
    check(&store, &model)?;
    let report = store.verify().unwrap();
    prop_assert!(report.is_clean(), "{:?}", report.problems);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn store_answers_like_the_model(ops in prop::collection::vec(op(), 1..400)) {
        run(ops)?;
    }
}

/// Found by the property test: a message edited inside the tail, then sealed, then the store
/// reopened. Replaying the exact operations keeps the case covered.
#[test]
fn regression_tail_edit_sealed_then_reopened() {
    let ops = vec![
        Op::Save {
            chat: 0,
            fresh: true,
            id: 1,
            jitter: 0,
            displaced: false,
            user: None,
            service: false,
            text: 0,
        },
        Op::Batch(vec![
            (0, 13, None),
            (0, 39, None),
            (0, 40, None),
            (0, 14, None),
            (0, 41, None),
            (0, 15, None),
            (0, 101, None),
            (0, 24, None),
            (0, 27, None),
            (0, 74, None),
            (0, 67, None),
            (0, 68, None),
            (0, 28, None),
            (0, 46, None),
            (0, 16, None),
            (0, 222, None),
            (0, 75, None),
            (0, 42, None),
            (0, 9, None),
            (0, 102, None),
            (0, 104, None),
            (0, 29, None),
            (0, 94, None),
            (0, 30, None),
            (0, 69, None),
            (0, 31, None),
        ]),
        Op::Save {
            chat: 0,
            fresh: true,
            id: 1,
            jitter: 0,
            displaced: false,
            user: None,
            service: false,
            text: 0,
        },
        Op::Save {
            chat: 0,
            fresh: false,
            id: 76,
            jitter: 0,
            displaced: false,
            user: None,
            service: false,
            text: 0,
        },
        Op::Save {
            chat: 0,
            fresh: false,
            id: 77,
            jitter: 0,
            displaced: false,
            user: None,
            service: false,
            text: 0,
        },
        Op::Save {
            chat: 0,
            fresh: false,
            id: 100,
            jitter: 0,
            displaced: false,
            user: None,
            service: false,
            text: 0,
        },
        Op::Save {
            chat: 0,
            fresh: false,
            id: 5,
            jitter: 0,
            displaced: false,
            user: None,
            service: false,
            text: 0,
        },
        Op::Batch(vec![
            (0, 105, None),
            (0, 141, None),
            (0, 253, None),
            (0, 185, None),
            (0, 43, None),
            (0, 19, None),
            (0, 6, None),
            (0, 142, None),
            (0, 32, None),
            (0, 70, None),
            (0, 33, None),
            (0, 34, None),
            (0, 107, None),
            (0, 44, None),
            (0, 47, None),
            (0, 78, None),
            (0, 48, None),
            (0, 56, None),
            (0, 108, None),
            (0, 45, None),
            (0, 7, None),
            (0, 49, None),
            (0, 50, None),
            (0, 88, None),
            (0, 89, None),
            (0, 82, None),
            (0, 90, None),
            (0, 18, None),
            (0, 35, None),
            (0, 83, None),
            (0, 57, None),
            (0, 8, None),
            (0, 51, None),
            (0, 143, None),
            (0, 162, None),
            (0, 91, None),
            (0, 20, None),
            (0, 52, None),
            (0, 163, None),
            (0, 109, None),
            (0, 92, None),
            (0, 110, None),
            (0, 54, None),
            (0, 93, None),
            (0, 1, None),
            (0, 111, None),
            (0, 58, None),
            (0, 21, None),
            (0, 17, None),
            (0, 59, None),
            (0, 112, None),
            (0, 84, None),
            (0, 11, None),
            (0, 113, None),
        ]),
        Op::Save {
            chat: 0,
            fresh: false,
            id: 394,
            jitter: 1,
            displaced: false,
            user: None,
            service: false,
            text: 0,
        },
        Op::Batch(vec![
            (0, 218, None),
            (0, 36, None),
            (0, 136, None),
            (0, 53, None),
            (0, 164, None),
            (0, 60, None),
            (0, 61, None),
            (0, 62, None),
            (0, 114, None),
            (0, 10, None),
            (0, 115, None),
            (0, 63, None),
            (0, 116, None),
            (0, 117, None),
            (0, 394, None),
            (0, 118, None),
            (0, 55, None),
            (0, 71, None),
            (0, 95, None),
            (0, 119, None),
            (0, 81, Some(1)),
            (0, 251, Some(5)),
            (0, 267, None),
            (0, 393, None),
            (0, 4, None),
            (0, 156, None),
            (0, 134, Some(1)),
            (0, 214, Some(3)),
            (0, 129, Some(3)),
            (0, 217, Some(4)),
            (0, 299, Some(2)),
            (0, 315, Some(2)),
            (0, 132, Some(3)),
            (0, 188, None),
            (0, 236, None),
            (0, 384, Some(5)),
            (0, 80, None),
            (0, 38, Some(1)),
            (0, 161, Some(1)),
            (0, 287, Some(5)),
            (0, 212, None),
            (0, 135, None),
        ]),
        Op::Reopen,
    ];
    run(ops).unwrap();
}
