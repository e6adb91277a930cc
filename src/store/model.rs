//! The records the store keeps and the figures it answers with.
//!
//! These are plain values: the on-disk form of each lives in [`super::codec`], so that changing a
//! field here is a visible format change there.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A Telegram chat id as the Bot API spells it: users positive, basic groups `-N`, supergroups and
/// channels `-100N`.
pub type ChatId = i64;
/// A Telegram user id (positive), or the id of a chat that posted as itself (negative).
pub type UserId = i64;
/// A message id, unique inside one chat (Telegram uses 32-bit ids).
pub type MessageId = i32;
/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// Where a message sits inside its chat: messages are ordered by time, then id.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct MsgKey {
    pub time: Timestamp,
    pub id: MessageId,
}

impl MsgKey {
    /// The smallest key.
    pub const MIN: MsgKey = MsgKey {
        time: Timestamp::MIN,
        id: MessageId::MIN,
    };

    /// The smallest key after this one.
    pub fn successor(self) -> MsgKey {
        match self.id.checked_add(1) {
            Some(id) => MsgKey {
                time: self.time,
                id,
            },
            None => MsgKey {
                time: self.time.saturating_add(1),
                id: MessageId::MIN,
            },
        }
    }
}

/// The sort key of a message inside its chat.
pub fn key_of(message: &Message) -> MsgKey {
    MsgKey {
        time: message.time,
        id: message.message_id,
    }
}

/// A stored message handed out by queries: shared, so that serving the same recent context to
/// many readers copies pointers rather than texts.
pub type MessageRef = Arc<Message>;

/// What a message carries besides (or instead of) text. Stored as one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum MessageKind {
    Text = 0,
    Photo = 1,
    Sticker = 2,
    Voice = 3,
    Video = 4,
    VideoNote = 5,
    Animation = 6,
    Audio = 7,
    Document = 8,
    Poll = 9,
    Location = 10,
    Contact = 11,
    /// Joins, leaves, pins, title changes, calls: kept for history, left out of user statistics.
    Service = 12,
    Other = 13,
}

impl MessageKind {
    /// Every kind, in byte order.
    pub const ALL: [MessageKind; 14] = [
        MessageKind::Text,
        MessageKind::Photo,
        MessageKind::Sticker,
        MessageKind::Voice,
        MessageKind::Video,
        MessageKind::VideoNote,
        MessageKind::Animation,
        MessageKind::Audio,
        MessageKind::Document,
        MessageKind::Poll,
        MessageKind::Location,
        MessageKind::Contact,
        MessageKind::Service,
        MessageKind::Other,
    ];

    /// The kind stored as `byte`, or `None` for a byte no version of the format wrote.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL.get(byte as usize).copied()
    }

    /// A short lower-case name, for listings and JSON.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Photo => "photo",
            MessageKind::Sticker => "sticker",
            MessageKind::Voice => "voice",
            MessageKind::Video => "video",
            MessageKind::VideoNote => "video_note",
            MessageKind::Animation => "animation",
            MessageKind::Audio => "audio",
            MessageKind::Document => "document",
            MessageKind::Poll => "poll",
            MessageKind::Location => "location",
            MessageKind::Contact => "contact",
            MessageKind::Service => "service",
            MessageKind::Other => "other",
        }
    }
}

/// One message of one chat. Its identity is `(chat_id, message_id)`; it is stored in
/// `(chat_id, time, message_id)` order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    /// The message's own date (not when we received it).
    pub time: Timestamp,
    pub edit_time: Option<Timestamp>,
    /// `None` for deleted accounts and anonymous senders.
    pub user_id: Option<UserId>,
    pub sender_name: String,
    /// Text or caption; empty for media without a caption.
    pub text: String,
    pub kind: MessageKind,
    pub reply_to: Option<MessageId>,
    pub forwarded_from: Option<String>,
    pub is_bot: bool,
    /// The forum topic the message is in (Telegram's `message_thread_id` of a topic message:
    /// the id of the message that opened the topic); `None` outside forum topics.
    pub topic: Option<MessageId>,
}

impl Message {
    /// Whether the message counts in user statistics (service messages do not).
    pub fn counts_for_users(&self) -> bool {
        self.kind != MessageKind::Service
    }

    /// A plain text message of `user`, for the crate's unit tests.
    #[cfg(test)]
    pub(crate) fn text_for_test(
        chat_id: ChatId,
        message_id: MessageId,
        time: i64,
        user: i64,
        text: &str,
    ) -> Message {
        Message {
            chat_id,
            message_id,
            time,
            edit_time: None,
            user_id: Some(user),
            sender_name: String::new(),
            text: text.into(),
            kind: MessageKind::Text,
            reply_to: None,
            forwarded_from: None,
            is_bot: false,
            topic: None,
        }
    }
}

/// What the store knows about a chat besides its messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatInfo {
    pub title: String,
    /// `private`, `group`, `supergroup` or `channel` (free text: the Bot API may add kinds).
    pub kind: String,
    /// The public `@username` of a public group or channel (without the `@`): links to its
    /// messages use it. Store format 5 added it.
    pub username: Option<String>,
}

/// [`ChatInfo`] as store format 4 and backup format 1 kept it, before public usernames.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatInfoV1 {
    title: String,
    kind: String,
}

impl From<ChatInfoV1> for ChatInfo {
    fn from(old: ChatInfoV1) -> ChatInfo {
        ChatInfo {
            title: old.title,
            kind: old.kind,
            username: None,
        }
    }
}

/// What the store knows about a user besides their messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub display_name: String,
    pub username: Option<String>,
}

/// One user's share of a chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCount {
    pub user_id: UserId,
    pub name: String,
    pub messages: u64,
}

/// Statistics of one chat, answered from counters in O(1) of the number of messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatStats {
    pub chat_id: ChatId,
    pub title: String,
    /// Messages that count for users (service messages excluded).
    pub total_messages: u64,
    pub service_messages: u64,
    pub unique_users: u64,
    /// Most active users first; ties broken by the smaller user id.
    pub top_users: Vec<UserCount>,
    /// Messages by hour of day, UTC, index 0 = 00:00–00:59.
    pub hour_histogram: [u64; 24],
    pub first_activity: Option<Timestamp>,
    pub last_activity: Option<Timestamp>,
}

/// Totals over every chat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalStats {
    /// Messages that count for users, all chats.
    pub total_messages: u64,
    pub service_messages: u64,
    /// Chats with at least one stored message.
    pub chats: u64,
    /// Distinct senders with at least one counted message.
    pub users: u64,
}

/// A chat seen since some time, for spontaneous posts and listings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveChat {
    pub chat_id: ChatId,
    pub title: String,
    pub last_activity: Timestamp,
    pub total_messages: u64,
}
