//! How a Bot API message becomes a stored [`Message`]: the same fields the importer fills from
//! exports, so that live and imported history look alike.

use crate::store::{ChatInfo, Message, MessageKind, UserInfo};
use teloxide::types::{self as tg, MediaKind, MessageKind as TgKind, MessageOrigin};

/// The stored form of `message`.
pub fn to_stored(message: &tg::Message) -> Message {
    let (user_id, sender_name, is_bot) = sender(message);
    let (kind, text) = kind_and_text(message);
    Message {
        chat_id: message.chat.id.0,
        message_id: message.id.0,
        time: message.date.timestamp(),
        edit_time: message.edit_date().map(|d| d.timestamp()),
        user_id,
        sender_name,
        text,
        kind,
        // In a forum topic, Telegram makes every message a reply to the message that opened the
        // topic; that is the topic, not a reply.
        reply_to: message
            .reply_to_message()
            .filter(|m| m.forum_topic_created().is_none())
            .map(|m| m.id.0),
        forwarded_from: message.forward_origin().map(origin_name),
        is_bot,
        topic: topic(message).map(|thread| thread.0 .0),
    }
}

/// The forum topic `message` is in. Supergroups also number reply threads (`thread_id` without
/// `is_topic_message`); only a forum topic is a topic.
pub fn topic(message: &tg::Message) -> Option<tg::ThreadId> {
    message.thread_id.filter(|_| message.is_topic_message)
}

/// The chat's title and type as the store keeps them.
pub fn chat_info(chat: &tg::Chat) -> ChatInfo {
    let kind = if chat.is_private() {
        "private"
    } else if chat.is_supergroup() {
        "supergroup"
    } else if chat.is_group() {
        "group"
    } else {
        "channel"
    };
    let title = match chat.title() {
        Some(title) => title.to_string(),
        None => [chat.first_name(), chat.last_name()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
    };
    ChatInfo {
        title,
        kind: kind.into(),
        // A private chat's username is the person's; links are for groups and channels.
        username: chat
            .username()
            .filter(|_| !chat.is_private())
            .map(str::to_owned),
    }
}

/// A user's names as the store keeps them.
pub fn user_info(user: &tg::User) -> UserInfo {
    UserInfo {
        display_name: user.full_name(),
        username: user.username.clone(),
    }
}

/// Who sent it: a user, or a chat posting as itself (anonymous admins, linked channels).
fn sender(message: &tg::Message) -> (Option<i64>, String, bool) {
    if let Some(chat) = &message.sender_chat {
        return (Some(chat.id.0), chat_info(chat).title, false);
    }
    match &message.from {
        Some(user) => (Some(user.id.0 as i64), user.full_name(), user.is_bot),
        None => (None, String::new(), false),
    }
}

fn origin_name(origin: &MessageOrigin) -> String {
    match origin {
        MessageOrigin::User { sender_user, .. } => sender_user.full_name(),
        MessageOrigin::HiddenUser {
            sender_user_name, ..
        } => sender_user_name.clone(),
        MessageOrigin::Chat { sender_chat, .. } => chat_info(sender_chat).title,
        MessageOrigin::Channel { chat, .. } => chat_info(chat).title,
    }
}

/// The stored kind and text (or caption; a poll's question; a description of a service event).
fn kind_and_text(message: &tg::Message) -> (MessageKind, String) {
    let caption = || message.caption().unwrap_or_default().to_string();
    match &message.kind {
        TgKind::Common(common) => match &common.media_kind {
            MediaKind::Text(text) => (MessageKind::Text, text.text.clone()),
            MediaKind::Photo(_) => (MessageKind::Photo, caption()),
            MediaKind::Sticker(s) => (
                MessageKind::Sticker,
                s.sticker.emoji.clone().unwrap_or_default(),
            ),
            MediaKind::Voice(_) => (MessageKind::Voice, caption()),
            MediaKind::Video(_) => (MessageKind::Video, caption()),
            MediaKind::VideoNote(_) => (MessageKind::VideoNote, String::new()),
            MediaKind::Animation(_) => (MessageKind::Animation, caption()),
            MediaKind::Audio(_) => (MessageKind::Audio, caption()),
            MediaKind::Document(_) => (MessageKind::Document, caption()),
            MediaKind::Poll(p) => (MessageKind::Poll, p.poll.question.clone()),
            MediaKind::Location(_) | MediaKind::Venue(_) => (MessageKind::Location, String::new()),
            MediaKind::Contact(_) => (MessageKind::Contact, String::new()),
            _ => (MessageKind::Other, caption()),
        },
        TgKind::NewChatMembers(m) => (
            MessageKind::Service,
            format!("joined: {}", names(&m.new_chat_members)),
        ),
        TgKind::LeftChatMember(m) => (
            MessageKind::Service,
            format!("left: {}", m.left_chat_member.full_name()),
        ),
        TgKind::NewChatTitle(t) => (
            MessageKind::Service,
            format!("new title: {}", t.new_chat_title),
        ),
        TgKind::Pinned(_) => (MessageKind::Service, "pinned a message".into()),
        TgKind::Dice(d) => (
            MessageKind::Other,
            format!("{:?} {}", d.dice.emoji, d.dice.value),
        ),
        _ => (MessageKind::Service, String::new()),
    }
}

fn names(users: &[tg::User]) -> String {
    users
        .iter()
        .map(|u| u.full_name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(json: serde_json::Value) -> tg::Chat {
        serde_json::from_value(json).expect("a Bot API chat")
    }

    #[test]
    fn a_public_group_keeps_its_username_and_a_person_does_not() {
        let public = chat(serde_json::json!({
            "id": -1_001_234_567_890i64, "type": "supergroup", "title": "Походи",
            "username": "KyivHikers"
        }));
        let info = chat_info(&public);
        assert_eq!(info.username.as_deref(), Some("KyivHikers"));
        assert_eq!(info.kind, "supergroup");
        let person = chat(serde_json::json!({
            "id": 5150, "type": "private", "first_name": "Мирослава", "username": "myro"
        }));
        assert_eq!(chat_info(&person).username, None);
    }
}
