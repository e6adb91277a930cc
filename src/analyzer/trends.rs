//! Per-chat hourly summaries of the last days — messages, active users, emotions, topics,
//! sentiment — updated on each new message, for `/analytics`.
//!
//! They are derived from the store, not stored: at start-up they are rebuilt from the stored
//! messages of the window, then kept up to date message by message. Each chat remembers which
//! message ids it counted, so an update Telegram delivers again (after a crash) is not counted
//! twice, and a chat whose messages were deleted is rebuilt from what is left.

use super::analysis::{Analysis, Emotion, Topic};
use super::cache::AnalysisCache;
use crate::store::{self, ChatId, Message, MessageId, Store, Timestamp};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

const SHARDS: usize = 16;
const HOUR: i64 = 3600;

/// One hour of one chat.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HourSummary {
    pub messages: u32,
    pub users: BTreeSet<i64>,
    /// Counts in [`Emotion::SCORED`] order, then neutral.
    pub emotions: [u32; 7],
    /// Counts in [`Topic::ALL`] order.
    pub topics: [u32; 10],
    pub sentiment_sum: f64,
}

/// A chat's summary over a span of hours, as `/analytics` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub messages: u32,
    pub active_users: usize,
    /// Counts in [`Emotion::SCORED`] order, then neutral (the emotion mix of charts).
    pub emotions: [u32; 7],
    /// The most frequent non-neutral emotion (neutral when none).
    pub dominant_emotion: Emotion,
    /// Up to three topics, most frequent first.
    pub top_topics: Vec<(Topic, u32)>,
    pub mean_sentiment: f64,
    /// Messages per hour, oldest first, one entry per hour of the span.
    pub per_hour: Vec<u32>,
}

#[derive(Default)]
struct ChatTrend {
    hours: BTreeMap<Timestamp, HourSummary>,
    /// Counted message ids and their hour, to ignore redelivery and to trim with the hours.
    counted: HashMap<MessageId, Timestamp>,
}

/// Hourly summaries of every chat within the window.
pub struct Trends {
    window_hours: i64,
    shards: Vec<Mutex<HashMap<ChatId, ChatTrend>>>,
}

impl Trends {
    /// Summaries kept for `window_hours` (older hours are trimmed).
    pub fn new(window_hours: i64) -> Self {
        Trends {
            window_hours,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Counts a new message (service and bot messages are not people's conversation, nor are
    /// commands to the bot); a message id already counted in its chat is ignored.
    pub fn record(&self, message: &Message, analysis: &Analysis) {
        if !message.counts_for_users() || message.is_bot || message.text.starts_with('/') {
            return;
        }
        let mut shard = self.shard(message.chat_id).lock().expect("trends");
        let chat = shard.entry(message.chat_id).or_default();
        let start = message.time.div_euclid(HOUR) * HOUR;
        if chat.counted.insert(message.message_id, start).is_some() {
            return;
        }
        let hour = chat.hours.entry(start).or_default();
        hour.messages += 1;
        if let Some(user) = message.user_id {
            hour.users.insert(user);
        }
        let emotion = Emotion::SCORED
            .iter()
            .position(|e| *e == analysis.emotion)
            .unwrap_or(Emotion::SCORED.len());
        hour.emotions[emotion] += 1;
        if let Some(topic) = analysis.topic {
            let i = Topic::ALL.iter().position(|t| *t == topic).unwrap_or(0);
            hour.topics[i] += 1;
        }
        hour.sentiment_sum += f64::from(analysis.sentiment);
    }

    /// Replaces a chat's summaries with ones built from `messages` (its stored messages of the
    /// window, each with its analysis).
    pub fn rebuild_chat<'a>(
        &self,
        chat: ChatId,
        messages: impl IntoIterator<Item = (&'a Message, &'a Analysis)>,
    ) {
        self.shard(chat).lock().expect("trends").remove(&chat);
        for (message, analysis) in messages {
            self.record(message, analysis);
        }
    }

    /// Rebuilds the summaries of `chat` (every chat when `None`) from its stored messages of the
    /// window before `now`, analysed through `analysis`; returns how many chats. Reads the store:
    /// call it off the async runtime.
    pub fn rebuild_from_store(
        &self,
        store: &Store,
        analysis: &AnalysisCache,
        chat: Option<ChatId>,
        now: Timestamp,
    ) -> store::Result<usize> {
        let since = now - self.window_hours * HOUR;
        let messages: Box<dyn Iterator<Item = store::Result<store::MessageRef>>> = match chat {
            Some(chat) => Box::new(store.chat_range(chat, since, now + 1)),
            None => Box::new(store.time_range(since, now + 1)),
        };
        // Streamed into fresh summaries (bounded by the window, like the live ones), then
        // swapped in chat by chat.
        let fresh = Trends::new(self.window_hours);
        let mut chats: BTreeSet<ChatId> = chat.into_iter().collect();
        for m in messages {
            let m = m?;
            let a = analysis.analyze(&m.text);
            fresh.record(&m, &a);
            chats.insert(m.chat_id);
        }
        for chat in &chats {
            let trend = fresh
                .shard(*chat)
                .lock()
                .expect("trends")
                .remove(chat)
                .unwrap_or_default();
            self.shard(*chat)
                .lock()
                .expect("trends")
                .insert(*chat, trend);
        }
        Ok(chats.len())
    }

    /// The summary of `chat` over the hours from `since` up to `now`.
    pub fn summary(&self, chat: ChatId, since: Timestamp, now: Timestamp) -> Summary {
        let first = since.div_euclid(HOUR) * HOUR;
        let last = now.div_euclid(HOUR) * HOUR;
        let shard = self.shard(chat).lock().expect("trends");
        let hours: Vec<(Timestamp, HourSummary)> = shard
            .get(&chat)
            .map(|c| {
                c.hours
                    .range(first..=last)
                    .map(|(t, h)| (*t, h.clone()))
                    .collect()
            })
            .unwrap_or_default();
        drop(shard);
        let mut total = HourSummary::default();
        let mut per_hour = vec![0; ((last - first) / HOUR + 1) as usize];
        for (start, hour) in &hours {
            per_hour[((start - first) / HOUR) as usize] = hour.messages;
            total.messages += hour.messages;
            total.users.extend(&hour.users);
            for (sum, n) in total.emotions.iter_mut().zip(hour.emotions) {
                *sum += n;
            }
            for (sum, n) in total.topics.iter_mut().zip(hour.topics) {
                *sum += n;
            }
            total.sentiment_sum += hour.sentiment_sum;
        }
        let dominant_emotion = total.emotions[..Emotion::SCORED.len()]
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
            .map_or(Emotion::Neutral, |(i, _)| Emotion::SCORED[i]);
        let mut top_topics: Vec<(Topic, u32)> = Topic::ALL
            .iter()
            .zip(total.topics)
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| (*t, n))
            .collect();
        top_topics.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        top_topics.truncate(3);
        Summary {
            messages: total.messages,
            active_users: total.users.len(),
            emotions: total.emotions,
            dominant_emotion,
            top_topics,
            mean_sentiment: if total.messages > 0 {
                total.sentiment_sum / f64::from(total.messages)
            } else {
                0.0
            },
            per_hour,
        }
    }

    /// Drops hours older than the window before `now` (maintenance); returns how many.
    pub fn trim(&self, now: Timestamp) -> usize {
        let keep_from = (now - self.window_hours * HOUR).div_euclid(HOUR) * HOUR;
        let mut dropped = 0;
        for shard in &self.shards {
            let mut chats = shard.lock().expect("trends");
            for chat in chats.values_mut() {
                let kept = chat.hours.split_off(&keep_from);
                dropped += chat.hours.len();
                chat.hours = kept;
                chat.counted.retain(|_, hour| *hour >= keep_from);
            }
            chats.retain(|_, c| !c.hours.is_empty());
        }
        dropped
    }

    fn shard(&self, chat: ChatId) -> &Mutex<HashMap<ChatId, ChatTrend>> {
        &self.shards[chat.rem_euclid(SHARDS as i64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::Analyzer;

    fn message(id: i32, time: i64, user: i64, text: &str) -> Message {
        Message::text_for_test(-5, id, time, user, text)
    }

    #[test]
    fn incremental_summaries_equal_a_rebuild_and_ignore_redelivery() {
        let analyzer = Analyzer::default();
        let texts = [
            "Я дуже радий, чудовий день 😊",
            "жахливо, я злий на цей сервер",
            "нова версія програми вийшла",
            "сумно і самотньо 😢",
        ];
        let messages: Vec<Message> = (0..40)
            .map(|i| {
                message(
                    i,
                    7200 + i64::from(i) * 400,
                    1 + i64::from(i % 3),
                    texts[i as usize % 4],
                )
            })
            .collect();
        let analyses: Vec<Analysis> = messages.iter().map(|m| analyzer.analyze(&m.text)).collect();
        let live = Trends::new(24 * 7);
        for (m, a) in messages.iter().zip(&analyses) {
            live.record(m, a);
        }
        // Telegram delivers the last ten again after a crash.
        for (m, a) in messages.iter().zip(&analyses).skip(30) {
            live.record(m, a);
        }
        let rebuilt = Trends::new(24 * 7);
        rebuilt.rebuild_chat(-5, messages.iter().zip(&analyses));
        let (since, now) = (0, 7200 + 40 * 400);
        let summary = live.summary(-5, since, now);
        assert_eq!(summary, rebuilt.summary(-5, since, now));
        assert_eq!(summary.messages, 40);
        assert_eq!(summary.active_users, 3);
        assert_eq!(summary.per_hour.iter().sum::<u32>(), 40);
        assert!(
            summary.top_topics.iter().any(|(t, _)| *t == Topic::Tech),
            "{summary:?}"
        );
    }

    #[test]
    fn summaries_equal_a_recomputation_from_the_stored_messages() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::store::StoreConfig::new(dir.path())).unwrap();
        let analyzer = Analyzer::default();
        let now = 1_800_000_000;
        let texts = [
            "чудово, дякую 😊",
            "це жах, я злий",
            "новий сервер",
            "/stats",
        ];
        let messages: Vec<Message> = (0..300)
            .map(|i| {
                let mut m = message(i, now - 600 * i64::from(i), 1 + i64::from(i % 4), "");
                m.text = texts[i as usize % texts.len()].into();
                m
            })
            .collect();
        store.save_batch(messages.clone()).unwrap();
        let live = Trends::new(24 * 7);
        for m in &messages {
            live.record(m, &analyzer.analyze(&m.text));
        }
        let cache = AnalysisCache::new(Analyzer::default(), 100);
        let rebuilt = Trends::new(24 * 7);
        assert_eq!(
            rebuilt
                .rebuild_from_store(&store, &cache, None, now)
                .unwrap(),
            1
        );
        for span in [24, 7 * 24] {
            let since = now - span * HOUR + 1;
            let summary = live.summary(-5, since, now);
            assert_eq!(summary, rebuilt.summary(-5, since, now));
            assert!(
                summary.messages > 0 && summary.emotions.iter().sum::<u32>() == summary.messages
            );
        }
    }

    #[test]
    fn old_hours_are_trimmed() {
        let analyzer = Analyzer::default();
        let trends = Trends::new(2);
        for (i, time) in [0, 3600, 4 * 3600, 5 * 3600].into_iter().enumerate() {
            let m = message(i as i32, time, 1, "привіт");
            trends.record(&m, &analyzer.analyze(&m.text));
        }
        assert_eq!(trends.trim(5 * 3600), 2);
        assert_eq!(trends.summary(-5, 0, 5 * 3600).messages, 2);
    }
}
