//! Per-chat counters: what makes statistics O(1) in the number of messages.
//!
//! The counters of a chat's sealed blocks are persisted as the chat's checkpoint, in the same atomic
//! batch as the blocks; the tail's share is added back from the tail at open. `verify` recomputes
//! both from the messages.

use super::model::{Message, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many top users a chat keeps ready.
pub const TOP_USERS: usize = 10;
const SECONDS_PER_DAY: i64 = 86_400;

/// Message counts of one chat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages that count for users (not service messages).
    pub total: u64,
    pub service: u64,
    pub users: UserCounts,
    /// By hour of day, UTC.
    pub hours: [u64; 24],
    /// By day number since the epoch, UTC.
    pub days: BTreeMap<i64, u64>,
}

/// What a change did to one user's count, for the store-wide per-user totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserDelta {
    pub user: UserId,
    pub added: bool,
}

impl Counters {
    /// Counts `m`; returns the user whose count went up, if any.
    pub fn add(&mut self, m: &Message) -> Option<UserDelta> {
        if !m.counts_for_users() {
            self.service += 1;
            return None;
        }
        self.total += 1;
        self.hours[hour_of(m.time)] += 1;
        *self.days.entry(day_of(m.time)).or_insert(0) += 1;
        let user = m.user_id?;
        self.users.increment(user);
        Some(UserDelta { user, added: true })
    }

    /// Uncounts `m` (which must have been counted).
    pub fn remove(&mut self, m: &Message) -> Option<UserDelta> {
        if !m.counts_for_users() {
            self.service = self.service.saturating_sub(1);
            return None;
        }
        self.total = self.total.saturating_sub(1);
        let hour = &mut self.hours[hour_of(m.time)];
        *hour = hour.saturating_sub(1);
        decrement_day(&mut self.days, day_of(m.time));
        let user = m.user_id?;
        self.users.decrement(user);
        Some(UserDelta { user, added: false })
    }

    /// The stored form (sorted, so equal counters encode equally), covering blocks up to `seq`.
    pub fn to_checkpoint(&self, covered_seq: u64) -> Checkpoint {
        let users = self.users.iter().collect();
        Checkpoint {
            covered_seq,
            total: self.total,
            service: self.service,
            users,
            hours: self.hours.to_vec(),
            days: self.days.iter().map(|(&d, &n)| (d, n)).collect(),
        }
    }

    /// Inverse of [`Counters::to_checkpoint`].
    pub fn from_checkpoint(c: Checkpoint) -> Option<Counters> {
        Some(Counters {
            total: c.total,
            service: c.service,
            users: UserCounts::from_sorted(c.users)?,
            hours: c.hours.try_into().ok()?,
            days: c.days.into_iter().collect(),
        })
    }
}

/// Messages per user of one chat, sorted by user id: two parallel vectors (12 bytes a user, a
/// third of a hash map's memory; a chat can have thousands of users). They load from a
/// checkpoint without rehashing, and a new user — the only insertion — is rare next to the
/// lookups, so they grow by an eighth at a time rather than doubling. Users whose count reaches
/// zero are dropped, so the length is the number of unique users.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserCounts {
    users: Vec<UserId>,
    counts: Vec<u32>,
}

impl UserCounts {
    /// From `(user, count)` pairs sorted by user, as a checkpoint stores them.
    pub fn from_sorted(pairs: Vec<(UserId, u64)>) -> Option<UserCounts> {
        let valid = pairs.windows(2).all(|w| w[0].0 < w[1].0)
            && pairs
                .iter()
                .all(|&(_, n)| n > 0 && n <= u64::from(u32::MAX));
        valid.then(|| UserCounts {
            users: pairs.iter().map(|&(u, _)| u).collect(),
            counts: pairs.iter().map(|&(_, n)| n as u32).collect(),
        })
    }

    /// One more message of `user`.
    pub fn increment(&mut self, user: UserId) {
        match self.users.binary_search(&user) {
            Ok(i) => self.counts[i] = self.counts[i].saturating_add(1),
            Err(i) => {
                if self.users.len() == self.users.capacity() {
                    let more = self.users.len() / 8 + 4;
                    self.users.reserve_exact(more);
                    self.counts.reserve_exact(more);
                }
                self.users.insert(i, user);
                self.counts.insert(i, 1);
            }
        }
    }

    /// One message fewer of `user`.
    pub fn decrement(&mut self, user: UserId) {
        if let Ok(i) = self.users.binary_search(&user) {
            self.counts[i] -= 1;
            if self.counts[i] == 0 {
                self.users.remove(i);
                self.counts.remove(i);
            }
        }
    }

    /// The count of `user`, if they have messages.
    pub fn get(&self, user: UserId) -> Option<u64> {
        self.users
            .binary_search(&user)
            .ok()
            .map(|i| u64::from(self.counts[i]))
    }

    /// Users with messages.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// `(user, count)` by user id.
    pub fn iter(&self) -> impl Iterator<Item = (UserId, u64)> + '_ {
        self.users
            .iter()
            .zip(&self.counts)
            .map(|(&u, &n)| (u, u64::from(n)))
    }
}

/// Day counts drop days that reach zero, like user counts.
fn decrement_day(days: &mut BTreeMap<i64, u64>, day: i64) {
    if let Some(n) = days.get_mut(&day) {
        *n -= 1;
        if *n == 0 {
            days.remove(&day);
        }
    }
}

/// Persisted counters of a chat's sealed blocks with seq up to `covered_seq`. It is rewritten
/// every few seals rather than at each one; blocks sealed since are counted at open. Stored with
/// users and days as deltas (a chat's thousands of user ids then take a byte or two each).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "StoredCheckpoint", from = "StoredCheckpoint")]
pub struct Checkpoint {
    pub covered_seq: u64,
    pub total: u64,
    pub service: u64,
    pub users: Vec<(UserId, u64)>,
    pub hours: Vec<u64>,
    pub days: Vec<(i64, u64)>,
}

/// [`Checkpoint`] as stored.
#[derive(Serialize, Deserialize)]
struct StoredCheckpoint {
    covered_seq: u64,
    total: u64,
    service: u64,
    /// Each user id as the difference from the previous one.
    users: Vec<i64>,
    user_counts: Vec<u64>,
    hours: Vec<u64>,
    /// Each day as the difference from the previous one.
    days: Vec<i64>,
    day_counts: Vec<u64>,
}

fn deltas(values: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut previous = 0i64;
    values
        .map(|v| {
            let d = v.wrapping_sub(previous);
            previous = v;
            d
        })
        .collect()
}

fn undeltas(deltas: &[i64]) -> impl Iterator<Item = i64> + '_ {
    deltas.iter().scan(0i64, |value, d| {
        *value = value.wrapping_add(*d);
        Some(*value)
    })
}

impl From<Checkpoint> for StoredCheckpoint {
    fn from(c: Checkpoint) -> Self {
        StoredCheckpoint {
            covered_seq: c.covered_seq,
            total: c.total,
            service: c.service,
            users: deltas(c.users.iter().map(|&(u, _)| u)),
            user_counts: c.users.iter().map(|&(_, n)| n).collect(),
            hours: c.hours,
            days: deltas(c.days.iter().map(|&(d, _)| d)),
            day_counts: c.days.iter().map(|&(_, n)| n).collect(),
        }
    }
}

impl From<StoredCheckpoint> for Checkpoint {
    /// Columns of unequal length (damage) leave the extra values out; the counters then fail
    /// `verify`, which rebuilds them.
    fn from(s: StoredCheckpoint) -> Self {
        Checkpoint {
            covered_seq: s.covered_seq,
            total: s.total,
            service: s.service,
            users: undeltas(&s.users).zip(s.user_counts).collect(),
            hours: s.hours,
            days: undeltas(&s.days).zip(s.day_counts).collect(),
        }
    }
}

/// Hour of day (UTC) of a timestamp.
pub fn hour_of(time: i64) -> usize {
    (time.rem_euclid(SECONDS_PER_DAY) / 3600) as usize
}

/// Day number (UTC) of a timestamp.
pub fn day_of(time: i64) -> i64 {
    time.div_euclid(SECONDS_PER_DAY)
}

/// The most active users of a chat, kept current as counts grow so that statistics need no scan.
/// A decrement can demote a user below one outside the list, so it marks the list stale and the
/// next read rebuilds it from the counters.
#[derive(Clone, Debug, Default)]
pub struct TopUsers {
    /// `(count, user)`, most active first, ties by smaller user id.
    list: Vec<(u64, UserId)>,
    stale: bool,
}

impl TopUsers {
    /// Records that `user` now has `count` messages (one more than before).
    pub fn increased(&mut self, user: UserId, count: u64) {
        if self.stale {
            return;
        }
        if let Some(slot) = self.list.iter_mut().find(|(_, u)| *u == user) {
            slot.0 = count;
        } else if self.list.len() < TOP_USERS
            || rank(&(count, user)) < rank(self.list.last().expect("full list"))
        {
            self.list.push((count, user));
        } else {
            return;
        }
        self.list.sort_unstable_by_key(rank);
        self.list.truncate(TOP_USERS);
    }

    /// Records that some count went down.
    pub fn decreased(&mut self) {
        self.stale = true;
    }

    /// The current top list, rebuilt from `counters` if stale.
    pub fn get(&mut self, counters: &Counters) -> &[(u64, UserId)] {
        if self.stale {
            let mut all: Vec<(u64, UserId)> = counters.users.iter().map(|(u, n)| (n, u)).collect();
            let cut = TOP_USERS.min(all.len());
            if cut > 0 && cut < all.len() {
                all.select_nth_unstable_by_key(cut - 1, rank);
            }
            all.truncate(cut);
            all.sort_unstable_by_key(rank);
            self.list = all;
            self.stale = false;
        }
        &self.list
    }
}

fn rank(entry: &(u64, UserId)) -> (std::cmp::Reverse<u64>, UserId) {
    (std::cmp::Reverse(entry.0), entry.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::MessageKind;
    use proptest::prelude::*;

    fn msg(user: i64, time: i64, kind: MessageKind) -> Message {
        Message {
            chat_id: -1,
            message_id: 1,
            time,
            edit_time: None,
            user_id: Some(user),
            sender_name: String::new(),
            text: String::new(),
            kind,
            reply_to: None,
            forwarded_from: None,
            is_bot: false,
            topic: None,
        }
    }

    proptest! {
        /// The incrementally kept top list always equals a full recount.
        #[test]
        fn top_users_match_a_recount(ops in proptest::collection::vec((0i64..30, any::<bool>()), 1..400)) {
            let mut counters = Counters::default();
            let mut top = TopUsers::default();
            let mut stored: Vec<Message> = Vec::new();
            for (user, add) in ops {
                if add || stored.is_empty() {
                    let m = msg(user, 1000, MessageKind::Text);
                    if let Some(d) = counters.add(&m) {
                        top.increased(d.user, counters.users.get(d.user).unwrap());
                    }
                    stored.push(m);
                } else {
                    let m = stored.remove(user as usize % stored.len());
                    counters.remove(&m);
                    top.decreased();
                }
                let mut fresh = TopUsers { list: vec![], stale: true };
                let expected = fresh.get(&counters).to_vec();
                prop_assert_eq!(top.get(&counters).to_vec(), expected);
            }
        }
    }

    #[test]
    fn service_messages_do_not_count_for_users_and_checkpoints_round_trip() {
        let mut c = Counters::default();
        c.add(&msg(5, 3600 * 25 + 10, MessageKind::Text));
        c.add(&msg(5, 3600 * 2, MessageKind::Photo));
        c.add(&msg(6, 10, MessageKind::Service));
        assert_eq!((c.total, c.service, c.users.len()), (2, 1, 1));
        assert_eq!(c.hours[1] + c.hours[2], 2);
        assert_eq!(c.days.len(), 2);
        assert_eq!(
            Counters::from_checkpoint(c.to_checkpoint(9)),
            Some(c.clone())
        );
        c.remove(&msg(5, 3600 * 2, MessageKind::Photo));
        assert_eq!(c.days.len(), 1);
        assert_eq!(hour_of(-1), 23);
        assert_eq!(day_of(-1), -1);
    }
}
