//! New messages in. Messages after a chat's last sealed block take the fast path: memory only,
//! under the chat's lock, written by the next group commit. Edits of sealed messages and older
//! history take the slow path through `rewrite.rs`.

use super::chat::{ChatState, SEAL_LEN};
use super::layout;
use super::model::{key_of, ChatId, ChatInfo, Message, MessageRef, UserId, UserInfo};
use super::shared::{lock, Commit, Shared, Store};
use super::{codec, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// A tail this long is sealed by its writer instead of waiting for the group commit: a cap on
/// one chat's memory. Well above what arrives during one commit, so that writers do not wait for
/// commits; the group commit is woken at two blocks.
const MAX_TAIL: usize = 16 * SEAL_LEN;
/// Unsealed messages in all tails past which a writer seals its own chat's full blocks instead
/// of leaving them to the group commit (about 5 MB of messages): when writers outrun the group
/// commit, they wait for sealing rather than pile up memory.
const MAX_UNSEALED: u64 = 16 * 1024;

/// Who seals a full tail (see [`Shared::seal_policy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SealBy {
    Flusher,
    Writer,
}

/// What [`Store::save_batch`] did with each message.
#[derive(Clone, Debug, Default)]
pub struct Saved {
    /// Messages the store did not hold before (an edit or a repeat of a stored message is not
    /// one), in the order given.
    pub fresh: Vec<MessageRef>,
}

/// User records [`Store::set_user_info`] lets wait for the group commit at most.
const USER_RECORDS_PER_COMMIT: usize = 4_096;

impl Store {
    /// Stores a message, or replaces the stored message with the same `(chat, message id)` (an
    /// edit). Counters follow. Durable after the next group commit or [`Store::flush`].
    pub fn save_message(&self, message: Message) -> Result<()> {
        self.check_thread();
        let message = Arc::new(message);
        let handle = self.shared.chat_or_new(message.chat_id);
        let tail_len = {
            let mut chat = lock(&handle);
            self.shared
                .upsert_fast(&mut chat, &message)
                .map(|_| chat.tail.len())
        };
        match tail_len.map(|len| self.shared.seal_policy(len.saturating_sub(1), len)) {
            Some(SealBy::Flusher) => Ok(()),
            Some(SealBy::Writer) => {
                let _writer = lock(&self.shared.writer);
                self.shared.seal(&[handle])?;
                self.shared.apply_if_many_staged()
            }
            None => {
                let _locks = self.shared.lock_for_rewrite();
                let mut chat = lock(&handle);
                self.shared
                    .upsert_slow(&mut chat, vec![message])
                    .map(|_| ())
            }
        }
    }

    /// Stores many messages (the import path): like [`Store::save_message`] for each; full
    /// blocks a writer seals have their index records applied every few hundred blocks, so that
    /// the logs are synced rarely. Durable after [`Store::flush`]. Says which messages were new.
    pub fn save_batch(&self, messages: Vec<impl Into<MessageRef>>) -> Result<Saved> {
        self.check_thread();
        let mut by_chat: HashMap<ChatId, Vec<MessageRef>> = HashMap::new();
        let mut order: HashMap<(ChatId, i32), usize> = HashMap::new();
        for (i, m) in messages.into_iter().enumerate() {
            let m: MessageRef = m.into();
            order.insert((m.chat_id, m.message_id), i);
            by_chat.entry(m.chat_id).or_default().push(m);
        }
        let mut fresh = Vec::new();
        let mut to_seal = Vec::new();
        for (chat_id, mut batch) in by_chat {
            batch.sort_by_key(|m| key_of(m));
            let handle = self.shared.chat_or_new(chat_id);
            // New messages only touch memory: no store-wide lock, so a running backup (which
            // holds the rewrite gate) does not stall live recording.
            let (slow, before, after) = {
                let mut chat = lock(&handle);
                let before = chat.tail.len();
                let mut slow = Vec::new();
                for m in batch {
                    match self.shared.upsert_fast(&mut chat, &m) {
                        Some(true) => fresh.push(m),
                        Some(false) => {}
                        None => slow.push(m),
                    }
                }
                (slow, before, chat.tail.len())
            };
            if !slow.is_empty() {
                let _locks = self.shared.lock_for_rewrite();
                fresh.extend(self.shared.upsert_slow(&mut lock(&handle), slow)?);
            } else if self.shared.seal_policy(before, after) == SealBy::Writer {
                to_seal.push(handle);
            }
        }
        if !to_seal.is_empty() {
            let _writer = lock(&self.shared.writer);
            self.shared.seal(&to_seal)?;
            self.shared.apply_if_many_staged()?;
        }
        fresh.sort_by_key(|m| order.get(&(m.chat_id, m.message_id)).copied());
        Ok(Saved { fresh })
    }

    /// Records a chat's title and type.
    pub fn set_chat_info(&self, chat: ChatId, info: ChatInfo) -> Result<()> {
        self.check_thread();
        let handle = self.shared.chat_or_new(chat);
        let mut state = lock(&handle);
        if state.info.as_ref() != Some(&info) {
            self.shared
                .db
                .insert(
                    layout::chat_prefix(layout::CHAT_INFO, chat),
                    codec::encode(&info),
                )
                .map_err(|e| self.shared.io(e))?;
            state.info = Some(info);
        }
        Ok(())
    }

    /// Records a user's names (the bot passes Telegram's, a restore the backup's). The next group
    /// commit writes them, as it writes the names seen on messages: user records have one
    /// writer. Durable after [`Store::flush`]; read back at once.
    pub fn set_user_info(&self, user: UserId, info: UserInfo) -> Result<()> {
        self.check_thread();
        if self.shared.stored_user(user).as_ref() == Some(&info) {
            return Ok(());
        }
        if let Some(entry) = self.shared.user_shard(user).get_mut(&user) {
            entry.name = Arc::from(info.display_name.as_str());
        }
        let pending = {
            let mut renamed = lock(&self.shared.renamed);
            renamed.insert(user, Some(info));
            renamed.len()
        };
        // A restore names every user at once: written in steps, not all held until the end.
        if pending >= USER_RECORDS_PER_COMMIT {
            self.shared.commit(Commit::Sync)?;
        }
        Ok(())
    }
}

impl Shared {
    /// The common case, in memory only: a message after everything sealed, new or replacing a
    /// tail message. Returns whether it was new (`Some(false)` for an edit or a repeat), or
    /// `None` when the message needs the slow path.
    pub(super) fn upsert_fast(&self, chat: &mut ChatState, m: &MessageRef) -> Option<bool> {
        if chat.sealed_end().is_some_and(|end| key_of(m) <= end) {
            return None;
        }
        let mut fresh = true;
        if m.message_id <= chat.max_id {
            if let Some(pos) = chat.tail_position(m.message_id) {
                if chat.tail[pos] == *m {
                    return Some(false);
                }
                let old = chat.tail.remove(pos);
                self.account(chat, &old, false, true);
                // A record under another key could outlive the new one (if that is sealed) and
                // come back at replay: rewrite the tail instead of appending to it.
                if key_of(&old) != key_of(m) {
                    chat.segments_stale = true;
                }
                fresh = false;
            } else if chat.blocks_may_hold(m.message_id) {
                return None;
            }
        }
        chat.insert_tail(m.clone());
        self.account(chat, m, true, true);
        chat.unsaved.push(m.clone());
        self.mark_dirty(chat);
        Some(fresh)
    }

    /// Who seals a chat whose tail has just grown from `before` to `tail_len` messages: the
    /// group-commit thread, so that writers never wait for compression (and a bulk writer and
    /// the sealing run on two cores), unless writers have outrun it and tails pile up in memory.
    pub(super) fn seal_policy(&self, before: usize, tail_len: usize) -> SealBy {
        let crowded = self.totals.unsealed.load(Ordering::Relaxed) > MAX_UNSEALED;
        if tail_len >= MAX_TAIL || (tail_len >= SEAL_LEN && crowded) {
            SealBy::Writer
        } else {
            // Woken once, as the tail passes two blocks' worth: not on every message after, and
            // if it is busy, its next round or a crowded writer seals.
            if before < 2 * SEAL_LEN && tail_len >= 2 * SEAL_LEN {
                self.wake_flusher();
            }
            SealBy::Flusher
        }
    }

    /// Seals the full blocks of these chats' tails (staged, not applied). The writer lock must
    /// be held.
    pub(super) fn seal(&self, handles: &[Arc<Mutex<ChatState>>]) -> Result<()> {
        for handle in handles {
            let plan = self.prepare(handle, false)?;
            self.write_chat(&mut lock(handle), BTreeMap::new(), None, plan)?;
        }
        Ok(())
    }
}
