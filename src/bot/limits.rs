//! Per-chat and per-user reply limits (sliding one-minute windows), so that a busy chat or one
//! persistent user cannot make the bot flood. Sharded: handlers of different chats rarely meet on
//! one lock, and no lock is held across an `.await`.
//!
//! Kept instead of `governor`, whose semantics do not fit: its GCRA with a burst of N lets up to
//! 2N − 1 replies through in one minute (a full burst, then one cell back every 60/N s), while
//! `chat_per_minute = 6` promises at most 6 in any minute; and a reply takes a slot from two
//! budgets at once, so a user's refusal must give the chat's slot back, which GCRA cannot. The
//! window holds at most N instants per key (6 and 3 by default), and time is a parameter, so the
//! tests step it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
const WINDOW: Duration = Duration::from_secs(60);

/// Reply budgets per chat and per user.
pub struct RateLimiter {
    chat_per_minute: usize,
    user_per_minute: usize,
    shards: Vec<Mutex<HashMap<Key, VecDeque<Instant>>>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Chat(i64),
    User(i64),
}

impl RateLimiter {
    pub fn new(chat_per_minute: u32, user_per_minute: u32) -> Self {
        RateLimiter {
            chat_per_minute: chat_per_minute as usize,
            user_per_minute: user_per_minute as usize,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Takes one reply from the chat's and the user's budgets if both have room; otherwise
    /// takes nothing and says no.
    pub fn allow(&self, chat: i64, user: Option<i64>, now: Instant) -> bool {
        let chat = Key::Chat(chat);
        if !self.take(chat, self.chat_per_minute, now) {
            return false;
        }
        match user {
            Some(user) if !self.take(Key::User(user), self.user_per_minute, now) => {
                self.give_back(chat, now);
                false
            }
            _ => true,
        }
    }

    /// Checks and records under one lock, so that two handlers cannot both take a last slot.
    fn take(&self, key: Key, limit: usize, now: Instant) -> bool {
        let mut map = self.shard(key).lock().expect("rate limiter");
        let times = map.entry(key).or_default();
        expire(times, now);
        if times.len() >= limit {
            return false;
        }
        times.push_back(now);
        true
    }

    /// Returns a slot [`RateLimiter::take`] took at `now`.
    fn give_back(&self, key: Key, now: Instant) {
        let mut map = self.shard(key).lock().expect("rate limiter");
        if let Some(times) = map.get_mut(&key) {
            if let Some(i) = times.iter().rposition(|&t| t == now) {
                times.remove(i);
            }
        }
    }

    /// Forgets windows that have emptied (maintenance); returns how many were dropped.
    pub fn trim(&self, now: Instant) -> usize {
        let mut dropped = 0;
        for shard in &self.shards {
            let mut map = shard.lock().expect("rate limiter");
            let before = map.len();
            map.retain(|_, times| {
                expire(times, now);
                !times.is_empty()
            });
            dropped += before - map.len();
        }
        dropped
    }

    fn shard(&self, key: Key) -> &Mutex<HashMap<Key, VecDeque<Instant>>> {
        let id = match key {
            Key::Chat(id) | Key::User(id) => id,
        };
        &self.shards[id.rem_euclid(SHARDS as i64) as usize]
    }
}

fn expire(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|&t| now.duration_since(t) >= WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_and_user_budgets_both_apply_and_refill_after_a_minute() {
        let limiter = RateLimiter::new(3, 2);
        let t0 = Instant::now();
        assert!(limiter.allow(-1, Some(10), t0));
        assert!(limiter.allow(-1, Some(10), t0));
        assert!(!limiter.allow(-1, Some(10), t0), "user budget is 2");
        assert!(limiter.allow(-1, Some(11), t0));
        assert!(!limiter.allow(-1, Some(12), t0), "chat budget is 3");
        assert!(
            limiter.allow(-2, Some(12), t0),
            "other chats are not affected"
        );
        let later = t0 + WINDOW;
        assert!(limiter.allow(-1, Some(10), later));
        assert_eq!(limiter.trim(later + WINDOW), 5);
    }
}
