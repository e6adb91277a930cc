//! The benchmark workload: a deterministic stream of chat messages shaped like the groups the bot
//! serves.
//!
//! Chat `i` gets a share of traffic proportional to `1/(i+1)`, senders are uniform over all users,
//! and each message has 1–40 words drawn from a Zipf-distributed vocabulary of Ukrainian-looking and
//! English-looking words. The same seed always yields the same messages, so the store and the
//! SQLite baseline ingest identical data in the same run.

use crate::store::{ChatId, Message, MessageKind, Timestamp, UserId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Shape of a generated workload.
#[derive(Clone, Copy, Debug)]
pub struct WorkloadSpec {
    pub messages: u64,
    pub chats: u32,
    pub users: u32,
    pub seed: u64,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            messages: 1_000_000,
            chats: 200,
            users: 2_000,
            seed: 0x00c4_a7ce_ef00,
        }
    }
}

/// First message time: 2026-01-01T00:00:00Z.
pub const START_TIME: Timestamp = 1_767_225_600;
const VOCABULARY: usize = 20_000;
const ZIPF_EXPONENT: f64 = 1.05;
const CYRILLIC_SYLLABLES: &[&str] = &[
    "ка", "ро", "ні", "ти", "ло", "ва", "ми", "пе", "ре", "до", "на", "за", "по", "ко", "ли", "ся",
    "ть", "ння", "ськ", "ий", "ої", "ать", "ів", "ом", "ує", "ля", "ві", "жи", "ду", "бо", "чи",
    "ше", "ги", "хо", "цю", "дя", "сті", "мо", "ю", "є",
];
const LATIN_SYLLABLES: &[&str] = &[
    "ta", "ne", "ri", "co", "ma", "lo", "ve", "st", "er", "in", "on", "ing", "ed", "th", "ou",
    "ly", "pro", "de", "al", "ar", "be", "so", "wi", "ha",
];

/// Deterministic message generator for a [`WorkloadSpec`].
pub struct Workload {
    spec: WorkloadSpec,
    rng: SmallRng,
    vocabulary: Vec<String>,
    /// Cumulative Zipf weights over `vocabulary`, last element 1.0.
    word_cdf: Vec<f64>,
    /// Cumulative chat weights `1/(i+1)`, last element 1.0.
    chat_cdf: Vec<f64>,
    next_message_id: Vec<i32>,
    clock: Timestamp,
    produced: u64,
}

impl Workload {
    /// A generator for `spec`; vocabulary and weights are built once here.
    pub fn new(spec: WorkloadSpec) -> Self {
        let mut rng = SmallRng::seed_from_u64(spec.seed);
        let vocabulary = build_vocabulary(&mut rng);
        let word_cdf = cumulative((1..=VOCABULARY).map(|rank| (rank as f64).powf(-ZIPF_EXPONENT)));
        let chat_cdf = cumulative((1..=spec.chats.max(1)).map(|rank| 1.0 / rank as f64));
        Workload {
            spec,
            rng,
            vocabulary,
            word_cdf,
            chat_cdf,
            next_message_id: vec![1; spec.chats.max(1) as usize],
            clock: START_TIME,
            produced: 0,
        }
    }

    /// The Bot API id of the workload's `index`-th chat (a supergroup id).
    pub fn chat_id(index: u32) -> ChatId {
        -1_001_000_000_000 - index as i64
    }

    /// The id of the workload's `index`-th user.
    pub fn user_id(index: u32) -> UserId {
        100_000 + index as i64
    }

    /// A chat index drawn by traffic share, from a uniform `u` in [0, 1): queries hit busy
    /// chats as often as messages do.
    pub fn weighted_chat(&self, u: f64) -> u32 {
        pick(&self.chat_cdf, u) as u32
    }

    /// The time of the last message produced so far.
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// A text of 1–40 words from the workload's vocabulary (for query inputs and microbenches).
    pub fn text(&mut self) -> String {
        let words = self.rng.random_range(1..=40);
        let mut text = String::with_capacity(words * 8);
        for i in 0..words {
            if i > 0 {
                text.push(' ');
            }
            let rank = pick(&self.word_cdf, self.rng.random());
            text.push_str(&self.vocabulary[rank]);
        }
        text
    }

    fn next_message(&mut self) -> Message {
        let chat = pick(&self.chat_cdf, self.rng.random()) as u32;
        let user = self.rng.random_range(0..self.spec.users.max(1));
        // About 2.6 s between messages on average: 1M messages span roughly a month.
        self.clock += self.rng.random_range(0..=5) as i64 + i64::from(self.rng.random_bool(0.1));
        let message_id = self.next_message_id[chat as usize];
        self.next_message_id[chat as usize] += 1;
        let reply_to = (message_id > 10 && self.rng.random_bool(0.15))
            .then(|| message_id - self.rng.random_range(1..10));
        let kind = match self.rng.random_range(0..100) {
            0..=87 => MessageKind::Text,
            88..=93 => MessageKind::Photo,
            94..=97 => MessageKind::Sticker,
            _ => MessageKind::Voice,
        };
        let text = match kind {
            MessageKind::Sticker | MessageKind::Voice => String::new(),
            _ => self.text(),
        };
        Message {
            chat_id: Self::chat_id(chat),
            message_id,
            time: self.clock,
            edit_time: None,
            user_id: Some(Self::user_id(user)),
            sender_name: user_name(user),
            text,
            kind,
            reply_to,
            forwarded_from: None,
            is_bot: false,
            topic: None,
        }
    }
}

impl Iterator for Workload {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        if self.produced >= self.spec.messages {
            return None;
        }
        self.produced += 1;
        Some(self.next_message())
    }
}

/// A stable display name for the workload's `index`-th user.
pub fn user_name(index: u32) -> String {
    const FIRST: &[&str] = &[
        "Олена",
        "Тарас",
        "Іра",
        "Богдан",
        "Марта",
        "Dmytro",
        "Ann",
        "Юлія",
        "Остап",
        "Kate",
    ];
    format!("{} {}", FIRST[index as usize % FIRST.len()], index)
}

fn build_vocabulary(rng: &mut SmallRng) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(VOCABULARY);
    let mut words = Vec::with_capacity(VOCABULARY);
    while words.len() < VOCABULARY {
        // Frequent words are short, rare ones long, as in real text.
        let rank = words.len();
        let syllables = 1 + (rank as f64).log10().max(0.0) as usize / 2 + rng.random_range(0..2);
        let table = if rng.random_bool(0.7) {
            CYRILLIC_SYLLABLES
        } else {
            LATIN_SYLLABLES
        };
        let word: String = (0..syllables)
            .map(|_| table[rng.random_range(0..table.len())])
            .collect();
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut sum = 0.0;
    let mut cdf: Vec<f64> = weights
        .map(|w| {
            sum += w;
            sum
        })
        .collect();
    for value in &mut cdf {
        *value /= sum;
    }
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    cdf
}

fn pick(cdf: &[f64], uniform: f64) -> usize {
    cdf.partition_point(|&c| c < uniform).min(cdf.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_messages() {
        let spec = WorkloadSpec {
            messages: 500,
            ..WorkloadSpec::default()
        };
        let a: Vec<Message> = Workload::new(spec).collect();
        let b: Vec<Message> = Workload::new(spec).collect();
        assert_eq!(a.len(), 500);
        assert_eq!(a, b);
    }

    #[test]
    fn first_chat_gets_the_largest_share_and_words_stay_in_bounds() {
        let spec = WorkloadSpec {
            messages: 20_000,
            chats: 50,
            users: 100,
            seed: 7,
        };
        let messages: Vec<Message> = Workload::new(spec).collect();
        let first = messages
            .iter()
            .filter(|m| m.chat_id == Workload::chat_id(0))
            .count();
        let last = messages
            .iter()
            .filter(|m| m.chat_id == Workload::chat_id(49))
            .count();
        assert!(first > 10 * last, "first chat {first}, last chat {last}");
        for m in &messages {
            let words = m.text.split(' ').filter(|w| !w.is_empty()).count();
            assert!(words <= 40);
            assert!(m.kind != MessageKind::Text || words >= 1);
        }
        assert!(messages.windows(2).all(|w| w[0].time <= w[1].time));
    }
}
