//! Links that open a stored message in Telegram.

use crate::store::{ChatId, ChatInfo, MessageId};

/// Supergroups and channels have ids `-100` followed by their internal id.
const CHANNEL_ID_BASE: i64 = -1_000_000_000_000;

/// A link to message `id` of `chat`: `https://t.me/<username>/<id>` for a public group or
/// channel, `https://t.me/c/<internal id>/<id>` for a private supergroup or channel (it opens
/// for members), with the forum topic before the message id when there is one. Basic groups and
/// private chats have no message links in Telegram: `None`.
pub fn message_link(
    chat: ChatId,
    info: Option<&ChatInfo>,
    id: MessageId,
    topic: Option<MessageId>,
) -> Option<String> {
    if chat >= CHANNEL_ID_BASE {
        return None;
    }
    let place = match info.and_then(|i| i.username.as_deref()) {
        Some(username) if !username.is_empty() => username.to_string(),
        _ => format!("c/{}", CHANNEL_ID_BASE - chat),
    };
    Some(match topic {
        Some(topic) => format!("https://t.me/{place}/{topic}/{id}"),
        None => format!("https://t.me/{place}/{id}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(username: Option<&str>) -> ChatInfo {
        ChatInfo {
            title: "Походи".into(),
            kind: "supergroup".into(),
            username: username.map(str::to_string),
        }
    }

    #[test]
    fn links_take_the_username_or_the_internal_id_and_the_topic() {
        let private = info(None);
        let public = info(Some("KyivHikers"));
        let chat = -1_001_234_567_890;
        assert_eq!(
            message_link(chat, Some(&private), 42, None).as_deref(),
            Some("https://t.me/c/1234567890/42")
        );
        assert_eq!(
            message_link(chat, None, 42, Some(7)).as_deref(),
            Some("https://t.me/c/1234567890/7/42")
        );
        assert_eq!(
            message_link(chat, Some(&public), 42, None).as_deref(),
            Some("https://t.me/KyivHikers/42")
        );
        assert_eq!(
            message_link(chat, Some(&public), 42, Some(7)).as_deref(),
            Some("https://t.me/KyivHikers/7/42")
        );
        // Basic groups and private chats have no message links.
        assert_eq!(message_link(-4_012_345, Some(&private), 42, None), None);
        assert_eq!(message_link(5150, None, 42, None), None);
    }
}
