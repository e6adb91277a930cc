//! Keeps counters, store-wide totals and the in-memory postings in step with every message
//! added to or removed from a chat, whichever path (live, batch, rewrite, deletion) it takes.

use super::chat::ChatState;
use super::model::{MessageRef, UserId};
use super::shared::{lock, posting_of, Shared, UserEntry};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Shared {
    /// Counts (or uncounts) a message everywhere counters live. `in_tail`: the message is (or
    /// was) in the unsealed tail, whose postings live in memory.
    pub(super) fn account(&self, chat: &mut ChatState, m: &MessageRef, added: bool, in_tail: bool) {
        let stored_before = chat.counters.total + chat.counters.service;
        let delta = if added {
            chat.counters.add(m)
        } else {
            chat.counters.remove(m)
        };
        let sign: i64 = if added { 1 } else { -1 };
        let total = if m.counts_for_users() {
            &self.totals.messages
        } else {
            &self.totals.service
        };
        if added {
            total.fetch_add(1, Ordering::Relaxed);
        } else {
            total.fetch_sub(1, Ordering::Relaxed);
        }
        let stored_after = chat.counters.total + chat.counters.service;
        if stored_before == 0 && stored_after > 0 {
            self.totals.chats.fetch_add(1, Ordering::Relaxed);
        } else if stored_before > 0 && stored_after == 0 {
            self.totals.chats.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(d) = delta {
            if added {
                let count = chat.counters.users.get(d.user).unwrap_or(0);
                chat.top.increased(d.user, count);
            } else {
                chat.top.decreased();
            }
            self.user_count_changed(d.user, added.then_some(m.sender_name.as_str()), sign);
        }
        if in_tail {
            if added {
                self.totals.unsealed.fetch_add(1, Ordering::Relaxed);
            } else {
                self.totals.unsealed.fetch_sub(1, Ordering::Relaxed);
            }
            if let Some(user) = m.user_id {
                if added {
                    self.postings.add_unsealed(user, posting_of(m));
                } else {
                    self.postings.remove_unsealed(user, posting_of(m));
                }
            }
        }
        if added {
            chat.max_id = chat.max_id.max(m.message_id);
        }
    }

    /// Applies a change of `delta` messages to a user's store-wide count; `name` updates their
    /// last seen name (written to the users family when it changes).
    pub(super) fn user_count_changed(&self, user: UserId, name: Option<&str>, delta: i64) {
        let mut shard = self.user_shard(user);
        let entry = shard.entry(user).or_insert_with(|| UserEntry {
            messages: 0,
            name: Arc::from(""),
        });
        let before = entry.messages;
        entry.messages = entry.messages.saturating_add_signed(delta);
        if before == 0 && entry.messages > 0 {
            self.totals.users.fetch_add(1, Ordering::Relaxed);
        } else if before > 0 && entry.messages == 0 {
            self.totals.users.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(name) = name {
            if !name.is_empty() && *entry.name != *name {
                entry.name = Arc::from(name);
                // Written by the next group commit: writers never wait for sled.
                drop(shard);
                lock(&self.renamed).entry(user).or_insert(None);
            }
        }
    }
}
