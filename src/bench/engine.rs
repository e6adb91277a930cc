//! What the benchmark asks of an engine, and this store's answers.

use crate::store::{ChatId, FlushPolicy, Message, Store, StoreConfig, Timestamp, UserId};
use std::path::Path;

/// One storage engine under benchmark.
pub trait Engine: Sized {
    /// Name in reports.
    const NAME: &'static str;
    /// Opens (or creates) the engine's files in `dir`.
    fn open(dir: &Path) -> anyhow::Result<Self>;
    /// Stores one message as the live bot does: one call per message.
    fn save(&mut self, message: Message) -> anyhow::Result<()>;
    /// Stores many messages at once, as the importer does.
    fn save_batch(&mut self, messages: Vec<Message>) -> anyhow::Result<()>;
    /// Makes everything durable.
    fn flush(&mut self) -> anyhow::Result<()>;
    /// The last `n` messages of a chat; returns how many.
    fn recent(&mut self, chat: ChatId, n: usize) -> anyhow::Result<usize>;
    /// A chat's statistics; returns its message count.
    fn chat_stats(&mut self, chat: ChatId) -> anyhow::Result<u64>;
    /// Store-wide statistics; returns the message count.
    fn global_stats(&mut self) -> anyhow::Result<u64>;
    /// A user's messages in a time range; returns how many.
    fn user_messages(
        &mut self,
        user: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<usize>;
    /// Every message of every chat in time order, streamed; returns how many.
    fn scan_all(&mut self) -> anyhow::Result<u64>;
    /// After reopening: proves the engine can answer (part of the reopen time).
    fn ready_check(&self) -> anyhow::Result<()>;
}

/// This store, with its production defaults.
pub struct StoreEngine(Store);

impl Engine for StoreEngine {
    const NAME: &'static str = "chatkeeper";

    fn open(dir: &Path) -> anyhow::Result<Self> {
        let mut config = StoreConfig::new(dir);
        config.flush = FlushPolicy::Every(std::time::Duration::from_millis(100));
        Ok(StoreEngine(Store::open(config)?))
    }

    fn save(&mut self, message: Message) -> anyhow::Result<()> {
        Ok(self.0.save_message(message)?)
    }

    fn save_batch(&mut self, messages: Vec<Message>) -> anyhow::Result<()> {
        self.0.save_batch(messages)?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(self.0.flush()?)
    }

    fn recent(&mut self, chat: ChatId, n: usize) -> anyhow::Result<usize> {
        Ok(self.0.recent(chat, n)?.len())
    }

    fn chat_stats(&mut self, chat: ChatId) -> anyhow::Result<u64> {
        Ok(self.0.chat_stats(chat).map_or(0, |s| s.total_messages))
    }

    fn global_stats(&mut self) -> anyhow::Result<u64> {
        Ok(self.0.global_stats().total_messages)
    }

    fn user_messages(
        &mut self,
        user: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<usize> {
        Ok(self.0.user_messages(user, from, to)?.len())
    }

    fn scan_all(&mut self) -> anyhow::Result<u64> {
        let mut read = 0;
        for m in self.0.time_range(Timestamp::MIN, Timestamp::MAX) {
            m?;
            read += 1;
        }
        Ok(read)
    }

    fn ready_check(&self) -> anyhow::Result<()> {
        self.0.global_stats();
        Ok(())
    }
}
