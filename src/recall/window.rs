//! What a catch-up reads: a chat's (or one forum topic's) messages in a time span, the newest
//! [`READ_CAP`] of them at most, streamed.

use crate::search::terms::is_command;
use crate::store::{ChatId, Message, MessageId, MessageRef, Store, Timestamp};

/// Messages a catch-up reads, about: the newest of its span (its start is moved up by the
/// chat's messages per day). Bounds its time (about 10 µs a message to read and stem) whatever
/// the span holds; what is left out is said.
pub const READ_CAP: u64 = 20_000;
/// Where the estimate is far off (a burst in a day, a topic of a busy chat), reading stops here
/// all the same, before the window's end (said too).
const READ_HARD_CAP: u64 = 2 * READ_CAP;

/// Which messages of the chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// All of them.
    Chat,
    /// Those of one forum topic (`None`: outside topics, the whole of a chat without them).
    Topic(Option<MessageId>),
}

impl Scope {
    fn holds(self, message: &Message) -> bool {
        match self {
            Scope::Chat => true,
            Scope::Topic(topic) => message.topic == topic,
        }
    }
}

/// The part of a chat to catch up on: `from <= time <= to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub chat: ChatId,
    pub scope: Scope,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// How a window was read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Messages people wrote in what was read (service messages and bots' aside).
    pub messages: u64,
    /// Where reading began, when the window held more than [`READ_CAP`] messages: the ones
    /// before were not read (about `skipped` of them, counted by day; unknown in a topic,
    /// whose share of the chat's days is not counted).
    pub read_from: Option<Timestamp>,
    pub skipped: Option<u64>,
    /// Whether reading stopped at [`READ_HARD_CAP`] before the window's end.
    pub cut_short: bool,
}

impl Window {
    /// Streams the window's messages people wrote to each other (not service messages, the
    /// bots' or commands to the bot), oldest first, to `each` with the message's place in the
    /// part read (0 to 1 by time, for spreading a selection over it); returns what was read.
    pub fn read(
        &self,
        store: &Store,
        mut each: impl FnMut(&MessageRef, f64),
    ) -> crate::store::Result<Coverage> {
        if self.from > self.to {
            return Ok(Coverage::default());
        }
        let (start, skipped) = self.start(store);
        let mut coverage = Coverage {
            read_from: (start > self.from).then_some(start),
            skipped: match self.scope {
                Scope::Chat => Some(skipped),
                Scope::Topic(_) => None,
            },
            ..Coverage::default()
        };
        let span = (self.to - start + 1) as f64;
        let mut seen = 0u64;
        for message in store.chat_range(self.chat, start, self.to) {
            let message = message?;
            let talk = message.counts_for_users() && !message.is_bot && !is_command(&message.text);
            if !talk || !self.scope.holds(&message) {
                continue;
            }
            if seen == READ_HARD_CAP {
                coverage.cut_short = true;
                break;
            }
            each(&message, (message.time - start) as f64 / span);
            seen += 1;
        }
        coverage.messages = seen;
        Ok(coverage)
    }

    /// Where to start reading so that about [`READ_CAP`] messages are read, from the chat's
    /// messages per day; with about how many are left before.
    fn start(&self, store: &Store) -> (Timestamp, u64) {
        const DAY: i64 = 86_400;
        let days = store.daily_counts(self.chat);
        let (first, last) = (self.from.div_euclid(DAY), self.to.div_euclid(DAY));
        let mut counted = 0u64;
        let mut start = self.from;
        let mut skipped = 0u64;
        let mut cut = false;
        for (&day, &count) in days.range(first..=last).rev() {
            if cut {
                skipped += count;
                continue;
            }
            // The days at the window's edges count only their share inside it.
            let day_from = (day * DAY).max(self.from);
            let day_to = (day * DAY + DAY - 1).min(self.to);
            let share = (day_to - day_from + 1) as f64 / DAY as f64;
            let inside = ((count as f64 * share).ceil() as u64).max(1);
            if counted + inside <= READ_CAP {
                counted += inside;
                continue;
            }
            // This day holds the start: read its last part, assuming an even pace.
            let wanted = READ_CAP - counted;
            let part = (day_to - day_from + 1) as f64 * wanted as f64 / inside as f64;
            start = day_to - part as i64;
            skipped += inside - wanted;
            counted = READ_CAP;
            cut = true;
        }
        (start, skipped)
    }
}
