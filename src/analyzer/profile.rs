//! Profiles: how each person writes in each chat — how much and when, how long, with how many
//! emoji, about what, in which language, in which register, with how much humour — updated on
//! every message, shown by `/me`, and given to the reply engines as a short hint.
//!
//! A profile is per chat: a group never sees what someone does elsewhere. Profiles live in the
//! store (so they survive restarts and go into backups) behind a bounded in-memory cache; the
//! poll loop writes a batch's changed profiles in one store write before its flush, so they are
//! as durable as the messages; an import writes its many profiles in bulk. Each profile
//! remembers the last message it counted, so an update Telegram delivers again is not counted
//! twice. People who opted out are never profiled, and
//! their profiles are deleted.

use super::analysis::{Analysis, Language, Style, Topic};
use super::engine::Analyzer;
use crate::store::{
    self, ChatId, Message, MessageId, MessageRef, SettingKey, Store, Timestamp, UserId,
};
use lru::LruCache;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::{Entry, HashMap};
use std::num::NonZeroUsize;
use std::sync::Mutex;

/// Messages before a profile says anything about style, humour or language: a few messages do
/// not make a habit.
pub const MIN_MESSAGES: u32 = 5;
/// Profiles an import may hold changed in memory before it writes them (about 2 MB): an export
/// is chat by chat, so this is usually one chat's people, or a few chats'.
const UNWRITTEN_LIMIT: usize = 4_096;
/// Profiles an import writes as it leaves a chat, when at least this many piled up (fewer wait
/// for the next chats', so that small chats share one write).
const WRITE_ON_LEAVING: usize = 256;

/// What the bot learned of one person in one chat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub messages: u32,
    /// Characters written, for the average length.
    pub chars: u64,
    /// Messages by UTC hour of day.
    pub hours: [u32; 24],
    pub emoji: u32,
    pub messages_with_emoji: u32,
    /// Messages per topic, in [`Topic::ALL`] order.
    pub topics: [u32; 10],
    /// Messages per language: uk, ru, en, other.
    pub languages: [u32; 4],
    /// Messages per style, in [`Style::ALL`] order.
    pub styles: [u32; 3],
    /// Messages that laugh or joke.
    pub humorous: u32,
    pub sentiment_sum: f32,
    /// The newest message counted (message ids grow within a chat).
    pub last_message: MessageId,
    pub last_seen: Timestamp,
}

/// How often someone jokes or laughs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Humour {
    Rare,
    Sometimes,
    Often,
}

impl Profile {
    /// Counts a new message; `false` when it was counted before (redelivered: its id is not
    /// above the last one counted) and nothing changed.
    pub fn add(&mut self, message: &Message, analysis: &Analysis) -> bool {
        if self.messages > 0 && message.message_id <= self.last_message {
            return false;
        }
        self.count(message, analysis);
        true
    }

    /// Counts a message without the redelivery check: for imported history, each message of
    /// which is new to the store (ids need not follow time: Telegram's own imports give old
    /// messages new ids).
    fn count(&mut self, message: &Message, analysis: &Analysis) {
        self.messages += 1;
        self.chars += message.text.chars().count() as u64;
        self.hours[message.time.rem_euclid(86_400) as usize / 3600] += 1;
        self.emoji += analysis.emoji;
        self.messages_with_emoji += u32::from(analysis.emoji > 0);
        if let Some(topic) = analysis.topic {
            self.topics[Topic::ALL.iter().position(|t| *t == topic).unwrap_or(0)] += 1;
        }
        self.languages[language_index(analysis.language)] += 1;
        if let Some(style) = analysis.style {
            self.styles[Style::ALL.iter().position(|s| *s == style).unwrap_or(0)] += 1;
        }
        self.humorous += u32::from(analysis.humour);
        self.sentiment_sum += analysis.sentiment;
        self.last_message = self.last_message.max(message.message_id);
        self.last_seen = self.last_seen.max(message.time);
    }

    /// Characters per message.
    pub fn average_length(&self) -> f64 {
        self.chars as f64 / f64::from(self.messages.max(1))
    }

    /// Emoji per message.
    pub fn emoji_per_message(&self) -> f64 {
        f64::from(self.emoji) / f64::from(self.messages.max(1))
    }

    /// The local hours (with `utc_offset_hours`) this person writes most in, busiest first (up
    /// to three).
    pub fn peak_hours(&self, utc_offset_hours: i32) -> Vec<u8> {
        let mut hours: Vec<(u8, u32)> = (0..24)
            .filter(|&h| self.hours[h] > 0)
            .map(|h| {
                let local = (h as i32 + utc_offset_hours).rem_euclid(24) as u8;
                (local, self.hours[h])
            })
            .collect();
        hours.sort_by_key(|&(h, n)| (std::cmp::Reverse(n), h));
        hours.into_iter().take(3).map(|(h, _)| h).collect()
    }

    /// Up to three topics, most frequent first.
    pub fn top_topics(&self) -> Vec<Topic> {
        let mut topics: Vec<(Topic, u32)> = Topic::ALL
            .iter()
            .zip(self.topics)
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| (*t, n))
            .collect();
        topics.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        topics.into_iter().take(3).map(|(t, _)| t).collect()
    }

    /// The language most messages are in (once there are enough of them).
    pub fn language(&self) -> Option<Language> {
        const ORDER: [Language; 4] = [
            Language::Ukrainian,
            Language::Russian,
            Language::English,
            Language::Other,
        ];
        self.enough()?;
        let i = (0..4).max_by_key(|&i| (self.languages[i], std::cmp::Reverse(i)))?;
        Some(ORDER[i])
    }

    /// The register most styled messages are in; `None` until enough messages show one.
    pub fn style(&self) -> Option<Style> {
        self.enough()?;
        let styled: u32 = self.styles.iter().sum();
        if styled < MIN_MESSAGES.div_ceil(2) {
            return None;
        }
        let i = (0..3).max_by_key(|&i| (self.styles[i], std::cmp::Reverse(i)))?;
        Some(Style::ALL[i])
    }

    /// How often this person laughs or jokes: often from one message in seven, sometimes from
    /// one in twenty.
    pub fn humour(&self) -> Option<Humour> {
        self.enough()?;
        let share = f64::from(self.humorous) / f64::from(self.messages);
        Some(if share >= 1.0 / 7.0 {
            Humour::Often
        } else if share >= 0.05 {
            Humour::Sometimes
        } else {
            Humour::Rare
        })
    }

    /// Mean sentiment of the messages, -1 … 1.
    pub fn mean_sentiment(&self) -> f32 {
        self.sentiment_sum / self.messages.max(1) as f32
    }

    /// A one-line note for a language model about how this person writes (English, like the
    /// rest of the instructions); `None` until there is enough to say.
    pub fn hint(&self, utc_offset_hours: i32) -> Option<String> {
        self.enough()?;
        let mut parts = Vec::new();
        if let Some(style) = self.style() {
            parts.push(format!("writes in a {} way", style.name()));
        }
        parts.push(
            match self.humour()? {
                Humour::Often => "jokes and laughs a lot",
                Humour::Sometimes => "jokes now and then",
                Humour::Rare => "rarely jokes",
            }
            .to_string(),
        );
        let topics: Vec<&str> = self.top_topics().iter().map(|t| t.label()).collect();
        if !topics.is_empty() {
            parts.push(format!("talks mostly about {}", topics.join(", ")));
        }
        if let Some(language) = self.language().filter(|l| *l != Language::Other) {
            parts.push(format!("usually writes in {}", language.english_name()));
        }
        if let Some(hour) = self.peak_hours(utc_offset_hours).first() {
            parts.push(format!("most active around {hour}:00"));
        }
        parts.push(format!(
            "messages of about {:.0} characters",
            self.average_length()
        ));
        Some(parts.join("; "))
    }

    fn enough(&self) -> Option<()> {
        (self.messages >= MIN_MESSAGES).then_some(())
    }
}

fn language_index(language: Language) -> usize {
    match language {
        Language::Ukrainian => 0,
        Language::Russian => 1,
        Language::English => 2,
        Language::Other => 3,
    }
}

/// Whether a message tells something about how its author writes: people's own messages, not
/// service events, bots or commands to the bot.
fn profiled(message: &Message) -> Option<UserId> {
    let user = message.user_id?;
    let own_words = message.counts_for_users() && !message.is_bot && !message.text.starts_with('/');
    own_words.then_some(user)
}

/// Every profile, in the store behind a bounded cache.
pub struct Profiles {
    store: Store,
    /// One lock: profiles are written by the poll loop, one batch at a time, and read by `/me`
    /// and prompts; a write and its store batch happen under it, so a deletion can never be
    /// undone by a write in flight.
    state: Mutex<State>,
}

struct State {
    cache: LruCache<(ChatId, UserId), Profile>,
    opted_out: FxHashSet<UserId>,
    /// Profiles an import changed and has not yet written: they take precedence over the cache
    /// and the store, so that a live update in between builds on them.
    unwritten: HashMap<(ChatId, UserId), Profile>,
    /// The chat of the last imported message (shared by imports running at once, which then
    /// only write more often).
    importing: Option<ChatId>,
}

impl Profiles {
    /// Profiles kept in `store`, up to `capacity` of them cached in memory; `opted_out` are the
    /// users who asked not to be profiled.
    pub fn new(store: Store, capacity: usize, opted_out: impl IntoIterator<Item = UserId>) -> Self {
        let capacity = NonZeroUsize::new(capacity.max(1)).expect("at least 1");
        Profiles {
            store,
            state: Mutex::new(State {
                cache: LruCache::new(capacity),
                opted_out: opted_out.into_iter().collect(),
                unwritten: HashMap::new(),
                importing: None,
            }),
        }
    }

    /// Counts new messages in their authors' profiles and writes the changed profiles in one
    /// store write (durable with the next flush). Messages counted before are ignored.
    pub fn record_all<'a>(
        &self,
        messages: impl IntoIterator<Item = (&'a Message, &'a Analysis)>,
    ) -> store::Result<()> {
        let mut state = self.state.lock().expect("profiles");
        // Each touched profile and whether this batch changed it.
        let mut touched: HashMap<(ChatId, UserId), (Profile, bool)> = HashMap::new();
        for (message, analysis) in messages {
            let Some(user) = profiled(message) else {
                continue;
            };
            if state.opted_out.contains(&user) {
                continue;
            }
            let key = (message.chat_id, user);
            let (profile, changed) = match touched.entry(key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert((self.load(&mut state, key)?, false)),
            };
            *changed |= profile.add(message, analysis);
        }
        touched.retain(|_, (_, changed)| *changed);
        if touched.is_empty() {
            return Ok(());
        }
        self.store.put_settings(
            touched
                .iter()
                .map(|(&(chat, user), (p, _))| (SettingKey::Profile { chat, user }, p)),
        )?;
        for (key, (profile, _)) in touched {
            state.unwritten.remove(&key);
            state.cache.put(key, profile);
        }
        Ok(())
    }

    /// Counts imported history: messages new to the store (each counted once however its id
    /// relates to the profile's newest), analysed here outside the lock. The changed profiles
    /// are written when the import leaves a chat (an export is chat by chat, so each profile is
    /// written once) once a few hundred piled up, when many piled up, and by
    /// [`Profiles::write_imported`]; until then every other profile operation sees them. Returns
    /// how many profiles it wrote.
    pub fn add_imported(
        &self,
        messages: &[MessageRef],
        analyzer: &Analyzer,
    ) -> store::Result<usize> {
        let analysed: Vec<(&MessageRef, UserId, Analysis)> = messages
            .iter()
            .filter_map(|m| Some((m, profiled(m)?, analyzer.analyze(&m.text))))
            .collect();
        let mut state = self.state.lock().expect("profiles");
        let mut written = 0;
        for (message, user, analysis) in analysed {
            if state.opted_out.contains(&user) {
                continue;
            }
            let left = state.importing.replace(message.chat_id);
            if left.is_some_and(|c| c != message.chat_id)
                && state.unwritten.len() >= WRITE_ON_LEAVING
            {
                written += self.write_unwritten(&mut state)?;
            }
            let key = (message.chat_id, user);
            if !state.unwritten.contains_key(&key) {
                let profile = self.load(&mut state, key)?;
                state.unwritten.insert(key, profile);
            }
            if let Some(profile) = state.unwritten.get_mut(&key) {
                profile.count(message, &analysis);
            }
        }
        if state.unwritten.len() >= UNWRITTEN_LIMIT {
            written += self.write_unwritten(&mut state)?;
        }
        Ok(written)
    }

    /// Writes the profiles an import changed; returns how many.
    pub fn write_imported(&self) -> store::Result<usize> {
        let mut state = self.state.lock().expect("profiles");
        state.importing = None;
        self.write_unwritten(&mut state)
    }

    fn write_unwritten(&self, state: &mut State) -> store::Result<usize> {
        let unwritten = std::mem::take(&mut state.unwritten);
        self.store
            .put_profiles(unwritten.iter().map(|(&key, p)| (key, p)))?;
        for (key, profile) in unwritten.iter() {
            if state.cache.contains(key) {
                state.cache.put(*key, profile.clone());
            }
        }
        Ok(unwritten.len())
    }

    /// The profile of `user` in `chat`, if they have one.
    pub fn get(&self, chat: ChatId, user: UserId) -> store::Result<Option<Profile>> {
        let mut state = self.state.lock().expect("profiles");
        let profile = self.load(&mut state, (chat, user))?;
        Ok((profile.messages > 0).then_some(profile))
    }

    /// Whether `user` asked not to be profiled.
    pub fn opted_out(&self, user: UserId) -> bool {
        self.state
            .lock()
            .expect("profiles")
            .opted_out
            .contains(&user)
    }

    /// Stops (or resumes) profiling `user`; stopping deletes their profiles in every chat.
    pub fn set_opted_out(&self, user: UserId, opted_out: bool) -> store::Result<()> {
        self.change_opt_out(user, || Ok(opted_out)).map(|_| ())
    }

    /// Runs `decide` (which stores the user's new choice and returns whether they are now opted
    /// out) and applies its answer, all under the profiles lock: concurrent changes apply in the
    /// order they were stored, so memory and store cannot disagree. Returns the answer.
    pub fn change_opt_out<E: From<store::StoreError>>(
        &self,
        user: UserId,
        decide: impl FnOnce() -> Result<bool, E>,
    ) -> Result<bool, E> {
        let mut state = self.state.lock().expect("profiles");
        let opted_out = decide()?;
        if opted_out {
            state.opted_out.insert(user);
            self.forget_locked(&mut state, None, Some(user))?;
        } else {
            state.opted_out.remove(&user);
        }
        Ok(opted_out)
    }

    /// Deletes the profiles of `user` (everyone when `None`) in `chat` (every chat when
    /// `None`): someone asked to be forgotten, or a chat was purged. Returns how many.
    pub fn forget(&self, chat: Option<ChatId>, user: Option<UserId>) -> store::Result<u64> {
        let mut state = self.state.lock().expect("profiles");
        self.forget_locked(&mut state, chat, user)
    }

    fn forget_locked(
        &self,
        state: &mut State,
        chat: Option<ChatId>,
        user: Option<UserId>,
    ) -> store::Result<u64> {
        let stale: Vec<(ChatId, UserId)> = state
            .cache
            .iter()
            .map(|(k, _)| *k)
            .filter(|(c, u)| chat.is_none_or(|x| x == *c) && user.is_none_or(|x| x == *u))
            .collect();
        for key in stale {
            state.cache.pop(&key);
        }
        state
            .unwritten
            .retain(|(c, u), _| !(chat.is_none_or(|x| x == *c) && user.is_none_or(|x| x == *u)));
        self.store.remove_profiles(chat, user)
    }

    /// A profile from the cache, else from the store (an empty one for someone new). A stored
    /// profile that no longer decodes (written by another build) starts afresh rather than
    /// stopping the recording of messages.
    fn load(&self, state: &mut State, key: (ChatId, UserId)) -> store::Result<Profile> {
        if let Some(profile) = state.unwritten.get(&key) {
            return Ok(profile.clone());
        }
        if let Some(profile) = state.cache.get(&key) {
            return Ok(profile.clone());
        }
        let (chat, user) = key;
        let profile: Profile = match self.store.setting(SettingKey::Profile { chat, user }) {
            Ok(profile) => profile.unwrap_or_default(),
            Err(e @ store::StoreError::Corrupt { .. }) => {
                tracing::warn!(chat, user, error = %e, "an unreadable profile starts afresh");
                Profile::default()
            }
            Err(e) => return Err(e),
        };
        state.cache.put(key, profile.clone());
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;

    fn message(id: i32, user: i64, text: &str) -> Message {
        let time = 1_700_000_000 + i64::from(id) * 600;
        Message::text_for_test(-7, id, time, user, text)
    }

    fn history() -> Vec<Message> {
        let texts = [
            "хахаха ну ти даєш 😂",
            "лол, шо там з сервером?",
            "нова версія програми вийшла",
            "го на каву))",
            "дякую, друзі ❤️",
            "/stats",
        ];
        (1..=60)
            .map(|i| message(i, 1 + i64::from(i % 2), texts[i as usize % texts.len()]))
            .collect()
    }

    /// Profiles made from a store's whole history, as an import of it would make them.
    fn imported(store: &Store, analyzer: &Analyzer) -> Profiles {
        let profiles = Profiles::new(store.clone(), 100, []);
        let all: Vec<MessageRef> = store
            .time_range(Timestamp::MIN, Timestamp::MAX)
            .collect::<store::Result<_>>()
            .unwrap();
        for chunk in all.chunks(9) {
            profiles.add_imported(chunk, analyzer).unwrap();
        }
        profiles.write_imported().unwrap();
        profiles
    }

    #[test]
    fn live_profiles_equal_imported_ones_and_ignore_redelivery() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let analyzer = Analyzer::default();
        let messages = history();
        store.save_batch(messages.clone()).unwrap();
        let analyses: Vec<Analysis> = messages.iter().map(|m| analyzer.analyze(&m.text)).collect();
        let live = Profiles::new(store.clone(), 1, []);
        for chunk in messages.iter().zip(&analyses).collect::<Vec<_>>().chunks(7) {
            live.record_all(chunk.iter().copied()).unwrap();
        }
        // Telegram delivers the last ten again after a crash.
        live.record_all(messages.iter().zip(&analyses).skip(50))
            .unwrap();
        // User 2 wrote 30 messages, ten of them commands.
        let counted = live.get(-7, 2).unwrap().unwrap();
        assert_eq!(counted.messages, 20, "commands are not profiled");
        assert_eq!(counted.humour(), Some(Humour::Often));
        assert_eq!(counted.style(), Some(Style::Casual));
        assert_eq!(counted.language(), Some(Language::Ukrainian));
        let before = (live.get(-7, 1).unwrap(), live.get(-7, 2).unwrap());
        let other = tempfile::tempdir().unwrap();
        let fresh = Store::open(StoreConfig::new(other.path())).unwrap();
        fresh.save_batch(messages.clone()).unwrap();
        let rebuilt = imported(&fresh, &analyzer);
        assert_eq!(
            (rebuilt.get(-7, 1).unwrap(), rebuilt.get(-7, 2).unwrap()),
            before
        );
        // And a new process reads what the first one wrote.
        let reopened = Profiles::new(store, 100, []);
        assert_eq!(reopened.get(-7, 1).unwrap(), before.0);
    }

    #[test]
    fn imported_history_counts_every_message_whatever_the_order_of_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        // Old history imported into Telegram gets new, high ids but keeps its dates.
        let mut messages = history();
        for (i, m) in messages.iter_mut().enumerate().take(20) {
            m.message_id = 10_000 + i as i32;
        }
        store.save_batch(messages.clone()).unwrap();
        let profiles = imported(&store, &Analyzer::default());
        let counted: u32 = [1, 2]
            .iter()
            .map(|&u| profiles.get(-7, u).unwrap().unwrap().messages)
            .sum();
        assert_eq!(counted, 50, "60 messages, 10 of them commands");
    }

    #[test]
    fn live_updates_build_on_unwritten_imported_profiles_and_forgetting_drops_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let analyzer = Analyzer::default();
        let profiles = Profiles::new(store.clone(), 100, []);
        let old: Vec<MessageRef> = (1..=10)
            .map(|i| std::sync::Arc::new(message(i, 1, "старе повідомлення")))
            .collect();
        profiles.add_imported(&old, &analyzer).unwrap();
        // A live message arrives while the import's profiles are not yet written.
        let live = message(100, 1, "нове");
        profiles
            .record_all([(&live, &analyzer.analyze(&live.text))])
            .unwrap();
        assert_eq!(
            profiles.write_imported().unwrap(),
            0,
            "the live write took it"
        );
        let reread = Profiles::new(store.clone(), 100, []);
        assert_eq!(reread.get(-7, 1).unwrap().unwrap().messages, 11);
        // Imported, then forgotten before the import wrote it: nothing comes back.
        profiles.add_imported(&old, &analyzer).unwrap();
        profiles.forget(Some(-7), Some(1)).unwrap();
        profiles.write_imported().unwrap();
        assert_eq!(Profiles::new(store, 100, []).get(-7, 1).unwrap(), None);
    }

    #[test]
    fn an_unreadable_profile_starts_afresh_instead_of_stopping_the_recording() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        store
            .put_setting(SettingKey::Profile { chat: -7, user: 1 }, &"not a profile")
            .unwrap();
        let profiles = Profiles::new(store, 100, []);
        let m = message(1, 1, "привіт");
        profiles
            .record_all([(&m, &Analyzer::default().analyze(&m.text))])
            .unwrap();
        assert_eq!(profiles.get(-7, 1).unwrap().unwrap().messages, 1);
    }

    #[test]
    fn opting_out_deletes_and_stops_profiling() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let analyzer = Analyzer::default();
        let messages = history();
        let analyses: Vec<Analysis> = messages.iter().map(|m| analyzer.analyze(&m.text)).collect();
        let profiles = Profiles::new(store.clone(), 100, []);
        profiles
            .record_all(messages.iter().zip(&analyses).take(30))
            .unwrap();
        assert!(profiles.get(-7, 1).unwrap().is_some());
        profiles.set_opted_out(1, true).unwrap();
        assert_eq!(profiles.get(-7, 1).unwrap(), None);
        assert_eq!(
            store
                .setting::<Profile>(SettingKey::Profile { chat: -7, user: 1 })
                .unwrap(),
            None,
            "deleted from the store, not only from memory"
        );
        profiles
            .record_all(messages.iter().zip(&analyses).skip(30))
            .unwrap();
        assert_eq!(profiles.get(-7, 1).unwrap(), None, "no longer profiled");
        assert!(profiles.get(-7, 2).unwrap().is_some(), "others still are");
        profiles.forget(Some(-7), None).unwrap();
        assert_eq!(profiles.get(-7, 2).unwrap(), None);
    }
}
