//! The long memory: `/catchup`'s selection and `/ask`'s retrieval against a labelled set of
//! conversations (tests/fixtures/recall/labelled.json: the messages a good catch-up must
//! include, and the messages that answer questions asked later), with floors on recall.

use chatkeeper::recall::{catch_up, evidence, Question, Scope, Window};
use chatkeeper::search::SearchIndex;
use chatkeeper::store::{FlushPolicy, Message, MessageKind, Store, StoreConfig};
use chatkeeper::texts::{self, Lang, Since};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

const START: i64 = 1_760_000_000;

#[derive(Deserialize)]
struct Labelled {
    conversations: Vec<Conversation>,
}

#[derive(Deserialize)]
struct Conversation {
    title: String,
    messages: Vec<LabelledMessage>,
    questions: Vec<LabelledQuestion>,
}

#[derive(Deserialize)]
struct LabelledMessage {
    author: String,
    minute: i64,
    text: String,
    reply_to: Option<usize>,
    #[serde(default)]
    key: bool,
}

#[derive(Deserialize)]
struct LabelledQuestion {
    question: String,
    answers: Vec<usize>,
}

fn labelled() -> Labelled {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recall/labelled.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The chat a conversation is stored in.
fn chat_of(n: usize) -> i64 {
    -1_001_700_000_000 - n as i64
}

/// Message ids are the conversation's indexes plus one.
fn id_of(index: usize) -> i32 {
    index as i32 + 1
}

/// Stores every conversation in a chat of its own; returns the store.
fn seeded(dir: &Path, set: &Labelled) -> Store {
    let mut config = StoreConfig::new(dir);
    config.flush = FlushPolicy::Manual;
    let store = Store::open(config).unwrap();
    let mut users: HashMap<String, i64> = HashMap::new();
    for (n, conversation) in set.conversations.iter().enumerate() {
        let messages = conversation
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let next = users.len() as i64 + 1_000;
                let user = *users.entry(m.author.clone()).or_insert(next);
                Message {
                    chat_id: chat_of(n),
                    message_id: id_of(i),
                    time: START + m.minute * 60,
                    edit_time: None,
                    user_id: Some(user),
                    sender_name: m.author.clone(),
                    text: m.text.clone(),
                    kind: MessageKind::Text,
                    reply_to: m.reply_to.map(id_of),
                    forwarded_from: None,
                    is_bot: false,
                    topic: None,
                }
            })
            .collect();
        store.save_batch(messages).unwrap();
    }
    store.flush().unwrap();
    store
}

/// Share of the labelled key messages the offline catch-up shows.
#[test]
fn the_offline_catchup_includes_the_key_messages() {
    let set = labelled();
    let dir = tempfile::tempdir().unwrap();
    let store = seeded(dir.path(), &set);
    let index = SearchIndex::open(&store).unwrap();
    let (mut found, mut wanted) = (0, 0);
    for (n, conversation) in set.conversations.iter().enumerate() {
        let end = START + conversation.messages.last().unwrap().minute * 60;
        let window = Window {
            chat: chat_of(n),
            scope: Scope::Chat,
            from: START,
            to: end,
        };
        let catchup = catch_up(index.terms(), &store, &window, |_| true).unwrap();
        assert_eq!(
            catchup.coverage.messages,
            conversation.messages.len() as u64
        );
        // As the bot shows it: within Telegram's limit, and the first one printed as an example.
        let link = |m: &Message| Some(format!("https://t.me/c/1700000000/{}", m.message_id));
        let shown = texts::catchup(Lang::Uk, Since::Span(86_400), &catchup, None, &link, 0);
        assert!(shown.encode_utf16().count() <= 4_096, "{shown}");
        if n == 0 {
            println!("{shown}\n");
        }
        let shown: Vec<i32> = catchup
            .threads
            .iter()
            .flat_map(|t| t.keys.iter().map(|m| m.message_id))
            .collect();
        let keys: Vec<i32> = conversation
            .messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.key)
            .map(|(i, _)| id_of(i))
            .collect();
        let hit = keys.iter().filter(|id| shown.contains(id)).count();
        println!(
            "{:<40} key messages shown {hit}/{} (threads {}: {})",
            conversation.title,
            keys.len(),
            catchup.threads.len(),
            catchup
                .threads
                .iter()
                .map(|t| t.words.join(" "))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        if std::env::var("RECALL_DEBUG").is_ok() {
            for t in &catchup.threads {
                for m in &t.keys {
                    println!("   shown: {}", m.text.chars().take(120).collect::<String>());
                }
            }
        }
        for id in &keys {
            if !shown.contains(id) {
                println!(
                    "   missed: {}",
                    conversation.messages[*id as usize - 1].text
                );
            }
        }
        found += hit;
        wanted += keys.len();
    }
    let recall = found as f64 / wanted as f64;
    println!("catch-up recall: {found}/{wanted} = {recall:.2}");
    // 0.91 when the floor was set (40 of 44).
    assert!(
        recall >= 0.85,
        "catch-up recall {recall:.2} fell below its floor of 0.85"
    );
}

/// Share of the labelled questions whose answer is among `/ask`'s matches.
#[test]
fn ask_finds_the_messages_that_answer_questions() {
    let set = labelled();
    let dir = tempfile::tempdir().unwrap();
    let store = seeded(dir.path(), &set);
    let index = SearchIndex::open(&store).unwrap();
    index.catch_up().unwrap();
    let (mut answered, mut asked) = (0, 0);
    for (n, conversation) in set.conversations.iter().enumerate() {
        for question in &conversation.questions {
            let question_of = Question {
                chat: chat_of(n),
                text: &question.question,
                topic: None,
                now: START + 30 * 86_400,
            };
            let found = evidence(&index, &question_of).unwrap();
            if n == 0 && answered + asked == 0 {
                let link =
                    |m: &Message| Some(format!("https://t.me/c/1700000000/{}", m.message_id));
                let shown =
                    texts::quotes(Lang::Uk, &question.question, &found.hits, &link, false, 0);
                println!("/ask {}\n{shown}\n", question.question);
            }
            let ids: Vec<i32> = found.hits.iter().map(|h| h.message.message_id).collect();
            let hit = question.answers.iter().any(|&a| ids.contains(&id_of(a)));
            if !hit {
                println!(
                    "{}: not answered: {} (found: {})",
                    conversation.title,
                    question.question,
                    found
                        .hits
                        .iter()
                        .map(|h| h.message.text.chars().take(50).collect::<String>())
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
            }
            answered += usize::from(hit);
            asked += 1;
        }
    }
    let share = answered as f64 / asked as f64;
    println!("ask: an answering message among the matches for {answered}/{asked} = {share:.2}");
    // 0.78 when the floor was set (31 of 40; the rest ask in other words than the answer:
    // "днюха" for a birthday, "postmortem" for "постмортем").
    assert!(
        share >= 0.7,
        "ask found answers for {share:.2} of the questions, below 0.7"
    );
}
