//! Queries. Statistics come from counters; messages from the tail, the decoded-frame cache, or
//! one frame of one block. Walks of history are in `scan.rs`.

use super::blocklog::{read_held, Segment};
use super::blocks::block_name;
use super::codec;
use super::directory::BlockMeta;
use super::model::*;
use super::postings::PostingRef;
use super::shared::{lock, Shared, Store};
use super::Result;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How many of a chat's newest messages [`Store::recent_in_topic`] looks through.
pub const TOPIC_LOOKBACK: usize = 5_000;

impl Store {
    /// The last `n` messages of a chat, oldest first: the context for a reply.
    pub fn recent(&self, chat: ChatId, n: usize) -> Result<Vec<MessageRef>> {
        self.check_thread();
        self.recent_matching(chat, n, usize::MAX, |_| true)
    }

    /// The last `n` messages of one forum topic of a chat (`None`: those in no topic, which is
    /// every message of a chat without topics), oldest first: the context for a reply in a
    /// topic. Looks back at most [`TOPIC_LOOKBACK`] messages, so a topic quiet for long costs
    /// a bounded read.
    pub fn recent_in_topic(
        &self,
        chat: ChatId,
        topic: Option<MessageId>,
        n: usize,
    ) -> Result<Vec<MessageRef>> {
        self.check_thread();
        self.recent_matching(chat, n, TOPIC_LOOKBACK, |m| m.topic == topic)
    }

    /// The last `n` messages that `keep` accepts among the chat's last `lookback`, oldest first.
    fn recent_matching(
        &self,
        chat: ChatId,
        n: usize,
        lookback: usize,
        keep: impl Fn(&Message) -> bool,
    ) -> Result<Vec<MessageRef>> {
        let Some(handle) = self.shared.chat(chat) else {
            return Ok(Vec::new());
        };
        let mut guard = lock(&handle);
        let state = &mut *guard;
        let mut seen = 0usize;
        let mut newest_first: Vec<MessageRef> = Vec::new();
        let mut take = |frame: &mut dyn Iterator<Item = &MessageRef>| {
            for m in frame {
                if newest_first.len() >= n || seen >= lookback {
                    return false;
                }
                seen += 1;
                if keep(m) {
                    newest_first.push(m.clone());
                }
            }
            // Whether to decode the next frame.
            newest_first.len() < n && seen < lookback
        };
        // The frames a plain `recent` of `n` would read are cached (they are the next reply's
        // context too); a look-back past them is a one-off and must not push others out.
        let cached_frames = n / codec::FRAME_LEN + 1;
        let mut decoded = 0;
        if take(&mut state.tail.iter().rev()) {
            'blocks: for block in (0..state.directory.len()).rev() {
                let meta = state.directory.get(block, &*self.shared)?;
                let mut view = None;
                for index in (0..meta.frame_count()).rev() {
                    decoded += 1;
                    let keep = decoded <= cached_frames;
                    let frame = self.shared.frame(chat, &meta, index, &mut view, keep)?;
                    if !take(&mut frame.iter().rev()) {
                        break 'blocks;
                    }
                }
            }
        }
        newest_first.reverse();
        Ok(newest_first)
    }

    /// One message by id (the message a reply points to).
    pub fn message(&self, chat: ChatId, id: MessageId) -> Result<Option<MessageRef>> {
        self.check_thread();
        let Some(handle) = self.shared.chat(chat) else {
            return Ok(None);
        };
        let mut state = lock(&handle);
        if let Some(pos) = state.tail_position(id) {
            return Ok(Some(state.tail[pos].clone()));
        }
        Ok(self.shared.find_sealed(&mut state, id)?.map(|(_, m)| m))
    }

    /// The messages of `chat` with the given ids, those that exist, in no particular order:
    /// each block read and each frame decoded once however many of the ids it holds, frames
    /// not cached (search checks scattered results this way).
    pub fn messages_by_id(&self, chat: ChatId, ids: &[MessageId]) -> Result<Vec<MessageRef>> {
        self.check_thread();
        let Some(handle) = self.shared.chat(chat) else {
            return Ok(Vec::new());
        };
        let mut wanted = ids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut out = Vec::new();
        // Per block seq: its entry, its segment (held open) and the ids it may hold.
        type Wanted = (BlockMeta, Option<Arc<Segment>>, Vec<MessageId>);
        let mut blocks: BTreeMap<u64, Wanted> = BTreeMap::new();
        {
            let mut guard = lock(&handle);
            let state = &mut *guard;
            for id in wanted {
                if let Some(pos) = state.tail_position(id) {
                    out.push(state.tail[pos].clone());
                    continue;
                }
                if !state.blocks_may_hold(id) {
                    continue;
                }
                for (_, meta) in state.directory.may_hold(id, &*self.shared)? {
                    let entry = blocks.entry(meta.seq).or_insert_with(|| {
                        let segment = self.shared.blocks.segment(meta.location.segment);
                        (meta, segment, Vec::new())
                    });
                    entry.2.push(id);
                }
            }
        }
        for (meta, segment, ids) in blocks.values() {
            let bytes = read_held(segment.as_deref(), meta.location)
                .map_err(|e| self.shared.unreadable(block_name(chat, meta), e))?;
            let view = self.shared.block_view(chat, meta, &bytes)?;
            for (index, frame) in view.header.frames.iter().enumerate() {
                let lo = ids.partition_point(|&id| id < frame.min_id);
                if ids.get(lo).is_none_or(|&id| id > frame.max_id) {
                    continue;
                }
                out.extend(
                    view.frame_matching(&self.shared.compressor, index, |k| {
                        ids.binary_search(&k.id).is_ok()
                    })
                    .map_err(|e| self.shared.corrupt(block_name(chat, meta), e))?,
                );
            }
        }
        out.sort_unstable_by_key(|m| m.message_id);
        out.dedup_by_key(|m| m.message_id);
        Ok(out)
    }

    /// The person of `chat` whose `@username` is `username` (any case), among those who wrote
    /// there.
    pub fn user_by_username(&self, chat: ChatId, username: &str) -> Option<UserId> {
        self.check_thread();
        let users: Vec<UserId> = {
            let handle = self.shared.chat(chat)?;
            let state = lock(&handle);
            state.counters.users.iter().map(|(user, _)| user).collect()
        };
        users.into_iter().find(|&user| {
            self.shared
                .stored_user(user)
                .and_then(|info| info.username)
                .is_some_and(|name| name.eq_ignore_ascii_case(username))
        })
    }

    /// The ids of the messages `user` wrote in `chat`, sorted (from the user's postings: the
    /// memory is four bytes a message of theirs there).
    pub fn user_message_ids(&self, user: UserId, chat: ChatId) -> Result<Vec<MessageId>> {
        self.check_thread();
        let mut ids: Vec<MessageId> = self
            .shared
            .chunk_refs(user, Timestamp::MIN, Timestamp::MAX)?
            .into_iter()
            .chain(self.shared.postings.in_memory(user))
            .filter(|r| r.chat == chat)
            .map(|r| r.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// When `user` last wrote in `chat` within `after..=before`, their message `except` aside
    /// (the command being answered): from their postings, one chunk at a time, reading only
    /// the chunks that end within the span (a person active elsewhere costs index records, not
    /// chunk reads).
    pub fn last_message_time(
        &self,
        user: UserId,
        chat: ChatId,
        (after, before): (Timestamp, Timestamp),
        except: MessageId,
    ) -> Result<Option<Timestamp>> {
        self.check_thread();
        let wanted =
            |r: &PostingRef| r.chat == chat && (after..=before).contains(&r.time) && r.id != except;
        let mut latest = self
            .shared
            .postings
            .in_memory(user)
            .into_iter()
            .filter(wanted)
            .map(|r| r.time)
            .max();
        // Chunks overlap in time (a flush writes whatever refs piled up, old ones too): each
        // is looked at, and only those ending within the span are read.
        for entry in self.shared.user_chunks(user, before) {
            let entry = entry?;
            if entry.pointer.last_time < latest.unwrap_or(after).max(after) {
                continue;
            }
            let chunk = self.shared.read_chunk(&entry)?;
            let found = chunk.iter().filter(|r| wanted(r)).map(|r| r.time).max();
            latest = latest.max(found);
        }
        Ok(latest)
    }

    /// Statistics of a chat, from counters: O(1) in its number of messages.
    pub fn chat_stats(&self, chat: ChatId) -> Option<ChatStats> {
        self.check_thread();
        let handle = self.shared.chat(chat)?;
        let mut guard = lock(&handle);
        let state = &mut *guard;
        let top_users = state
            .top
            .get(&state.counters)
            .iter()
            .map(|&(messages, user_id)| UserCount {
                user_id,
                name: self.shared.user_name(user_id),
                messages,
            })
            .collect();
        let activity = state.activity();
        Some(ChatStats {
            chat_id: chat,
            title: state
                .info
                .as_ref()
                .map(|i| i.title.clone())
                .unwrap_or_default(),
            total_messages: state.counters.total,
            service_messages: state.counters.service,
            unique_users: state.counters.users.len() as u64,
            top_users,
            hour_histogram: state.counters.hours,
            first_activity: activity.map(|a| a.0),
            last_activity: activity.map(|a| a.1),
        })
    }

    /// Messages per day (UTC day number → count) of a chat, for charts.
    pub fn daily_counts(&self, chat: ChatId) -> BTreeMap<i64, u64> {
        self.check_thread();
        self.shared
            .chat(chat)
            .map(|h| lock(&h).counters.days.clone())
            .unwrap_or_default()
    }

    /// Totals over all chats, O(1).
    pub fn global_stats(&self) -> GlobalStats {
        self.check_thread();
        let t = &self.shared.totals;
        GlobalStats {
            total_messages: t.messages.load(Ordering::Relaxed),
            service_messages: t.service.load(Ordering::Relaxed),
            chats: t.chats.load(Ordering::Relaxed),
            users: t.users.load(Ordering::Relaxed),
        }
    }

    /// Chats with a message at or after `since`, most recently active first.
    pub fn active_chats(&self, since: Timestamp) -> Vec<ActiveChat> {
        self.check_thread();
        let mut active: Vec<ActiveChat> = self
            .shared
            .all_chats()
            .iter()
            .filter_map(|handle| {
                let state = lock(handle);
                let (_, last) = state.activity()?;
                (last >= since).then(|| ActiveChat {
                    chat_id: state.id,
                    title: state
                        .info
                        .as_ref()
                        .map(|i| i.title.clone())
                        .unwrap_or_default(),
                    last_activity: last,
                    total_messages: state.counters.total,
                })
            })
            .collect();
        active.sort_by(|a, b| {
            b.last_activity
                .cmp(&a.last_activity)
                .then(a.chat_id.cmp(&b.chat_id))
        });
        active
    }

    /// Every chat the store holds messages or a title for.
    pub fn chats(&self) -> Vec<ChatId> {
        self.check_thread();
        let mut ids: Vec<ChatId> = self.shared.all_chats().iter().map(|h| lock(h).id).collect();
        ids.sort_unstable();
        ids
    }

    /// A chat's title and type, if known.
    pub fn chat_info(&self, chat: ChatId) -> Option<ChatInfo> {
        self.check_thread();
        self.shared.chat(chat).and_then(|h| lock(&h).info.clone())
    }

    /// A user's names, if known.
    pub fn user_info(&self, user: UserId) -> Option<UserInfo> {
        self.check_thread();
        self.shared.stored_user(user)
    }

    /// Counted messages of a user in all chats, O(1).
    pub fn user_total(&self, user: UserId) -> u64 {
        self.check_thread();
        self.shared
            .user_shard(user)
            .get(&user)
            .map_or(0, |e| e.messages)
    }

    /// Counted messages of a user in one chat, O(1).
    pub fn user_total_in_chat(&self, chat: ChatId, user: UserId) -> u64 {
        self.check_thread();
        self.shared
            .chat(chat)
            .and_then(|h| lock(&h).counters.users.get(user))
            .unwrap_or(0)
    }

    /// A user's messages with `from <= time <= to`, in all chats, ordered by time.
    pub fn user_messages(
        &self,
        user: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<MessageRef>> {
        self.check_thread();
        let mut refs = self.shared.chunk_refs(user, from, to)?;
        refs.extend(
            self.shared
                .postings
                .in_memory(user)
                .into_iter()
                .filter(|r| from <= r.time && r.time <= to),
        );
        refs.sort_unstable();
        refs.dedup();
        let mut by_chat: BTreeMap<ChatId, Vec<PostingRef>> = BTreeMap::new();
        for r in refs {
            by_chat.entry(r.chat).or_default().push(r);
        }
        let mut out = Vec::new();
        for (chat, refs) in by_chat {
            let Some(handle) = self.shared.chat(chat) else {
                continue;
            };
            let keys: Vec<MsgKey> = refs.iter().map(|r| r.key()).collect();
            // Located under the chat's lock, read without it.
            let located = self.shared.locate_many(&mut lock(&handle), &keys)?;
            out.extend(
                self.shared
                    .read_located(&keys, located)?
                    .into_iter()
                    .filter(|m| m.user_id == Some(user)),
            );
        }
        out.sort_by_key(|m| (m.time, m.chat_id, m.message_id));
        Ok(out)
    }
}

impl Shared {
    /// Refs of a user's sealed messages written as chunks, within `[from, to]`.
    pub(super) fn chunk_refs(
        &self,
        user: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<PostingRef>> {
        let mut refs = Vec::new();
        for entry in self.user_chunks(user, to) {
            let entry = entry?;
            if entry.pointer.last_time < from {
                continue;
            }
            let chunk = self.read_chunk(&entry)?;
            refs.extend(chunk.into_iter().filter(|r| from <= r.time && r.time <= to));
        }
        Ok(refs)
    }

    /// A user's last seen display name.
    pub(super) fn user_name(&self, user: UserId) -> String {
        self.user_shard(user)
            .get(&user)
            .map(|e| e.name.to_string())
            .unwrap_or_default()
    }
}
