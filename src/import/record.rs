//! One message of a Telegram Desktop JSON export, and how it becomes a store [`Message`].
//!
//! The Desktop writer's shapes are described in `../shared/fixtures/telegram/README.md`; unknown
//! keys are ignored (newer exports add some), so only what the store keeps is declared here.

use crate::store::{ChatId, Message, MessageKind, Timestamp, UserId};
use serde::Deserialize;

/// A chat as the export describes it (`type`, `id`), mapped to a Bot API chat id.
///
/// Supergroups and channels with export id `N` are `-100N` in the Bot API, basic groups `-N`,
/// users (personal, bot and saved-messages chats) keep their id.
pub fn bot_api_chat_id(kind: &str, export_id: i64) -> Result<ChatId, String> {
    match kind {
        "private_supergroup" | "public_supergroup" | "private_channel" | "public_channel" => {
            Ok(-1_000_000_000_000 - export_id)
        }
        "private_group" => Ok(-export_id),
        "personal_chat" | "bot_chat" | "saved_messages" => Ok(export_id),
        other => Err(format!("unknown chat type {other:?}")),
    }
}

/// The Bot API chat type for an export chat type, as the store records it.
pub fn chat_kind(kind: &str) -> &'static str {
    match kind {
        "private_supergroup" | "public_supergroup" => "supergroup",
        "private_channel" | "public_channel" => "channel",
        "private_group" => "group",
        _ => "private",
    }
}

/// A sender as `from_id` / `actor_id` write it: `"user123"` is user 123, `"channel123"` and
/// `"chat123"` the chat posting as itself (`-100123`, `-123`), and very old exports write a
/// bare integer (a user).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SenderId {
    Text(String),
    Number(i64),
}

impl SenderId {
    /// The Bot API id of the sender.
    pub fn to_bot_api(&self) -> Result<UserId, String> {
        let parse = |digits: &str| {
            digits
                .parse::<i64>()
                .map_err(|_| format!("sender id {self:?} is not a number"))
        };
        match self {
            SenderId::Number(n) => Ok(*n),
            SenderId::Text(s) => {
                if let Some(n) = s.strip_prefix("user") {
                    parse(n)
                } else if let Some(n) = s.strip_prefix("channel") {
                    Ok(-1_000_000_000_000 - parse(n)?)
                } else if let Some(n) = s.strip_prefix("chat") {
                    Ok(-parse(n)?)
                } else {
                    parse(s)
                }
            }
        }
    }
}

/// `text` in an export: a plain string, or a list of strings and entity objects.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Text {
    Plain(String),
    Parts(Vec<TextPart>),
}

/// One piece of a `text` list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TextPart {
    Plain(String),
    Entity { text: String },
}

impl Text {
    /// The text as the user sees it: entities flattened to their text.
    pub fn flatten(&self) -> String {
        match self {
            Text::Plain(s) => s.clone(),
            Text::Parts(parts) => parts
                .iter()
                .map(|p| match p {
                    TextPart::Plain(s) | TextPart::Entity { text: s } => s.as_str(),
                })
                .collect(),
        }
    }
}

/// A poll; its question is stored as the message text.
#[derive(Debug, Clone, Deserialize)]
pub struct Poll {
    #[serde(default)]
    pub question: String,
}

/// One exported message with the fields the store keeps. Absent keys take their defaults;
/// `from` and `forwarded_from` distinguish absent from `null` (a deleted account).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Record {
    pub id: i64,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub date_unixtime: Option<String>,
    #[serde(default)]
    pub edited_unixtime: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub from: Option<Option<String>>,
    #[serde(default)]
    pub from_id: Option<SenderId>,
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub actor_id: Option<SenderId>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub text: Option<Text>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub photo: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub poll: Option<Poll>,
    #[serde(default)]
    pub contact_information: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub location_information: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub reply_to_message_id: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub forwarded_from: Option<Option<String>>,
}

/// Keeps `null` apart from an absent key: absent is `None`, `null` is `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// How a record's time was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// `date_unixtime`, or a `date` that carries its zone (`Z` or an offset): exact.
    Exact,
    /// `date` only, without a zone (the exporting computer's local time): taken as UTC.
    LocalTakenAsUtc,
}

/// Why a record was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// `"type": "unsupported"` (the export could not represent it).
    Unsupported,
    /// The message id does not fit Telegram's 32-bit message ids.
    BadId(i64),
    /// Neither `date_unixtime` nor a readable `date`.
    NoDate,
    /// `from_id` / `actor_id` that is no id.
    BadSender(String),
}

impl Record {
    /// The store message for this record in chat `chat`, or why it is skipped.
    pub fn to_message(&self, chat: ChatId) -> Result<(Message, TimeSource), Skip> {
        if self.kind == "unsupported" {
            return Err(Skip::Unsupported);
        }
        let message_id = i32::try_from(self.id).map_err(|_| Skip::BadId(self.id))?;
        let (time, source) = self.time().ok_or(Skip::NoDate)?;
        let service = self.kind == "service";
        let sender = if service {
            &self.actor_id
        } else {
            &self.from_id
        };
        let user_id = sender
            .as_ref()
            .map(SenderId::to_bot_api)
            .transpose()
            .map_err(Skip::BadSender)?;
        let name = if service {
            self.actor.clone()
        } else {
            self.from.clone().flatten()
        };
        let text = match (&self.poll, &self.text) {
            (Some(poll), _) => poll.question.clone(),
            (None, Some(text)) => text.flatten(),
            (None, None) => String::new(),
        };
        let message = Message {
            chat_id: chat,
            message_id,
            time,
            edit_time: self.edited_unixtime.as_deref().and_then(|t| t.parse().ok()),
            user_id,
            sender_name: name.unwrap_or_else(|| "Deleted Account".to_string()),
            text,
            kind: if service {
                MessageKind::Service
            } else {
                self.media_kind()
            },
            reply_to: self
                .reply_to_message_id
                .and_then(|id| i32::try_from(id).ok()),
            // `null`: forwarded from someone who hides their name; stored as an empty name.
            forwarded_from: self.forwarded_from.clone().map(Option::unwrap_or_default),
            // Exports do not say whether a sender is a bot.
            is_bot: false,
            topic: None,
        };
        Ok((message, source))
    }

    fn time(&self) -> Option<(Timestamp, TimeSource)> {
        if let Some(t) = self.date_unixtime.as_deref().and_then(|t| t.parse().ok()) {
            return Some((t, TimeSource::Exact));
        }
        parse_date(self.date.as_deref()?)
    }

    fn media_kind(&self) -> MessageKind {
        if self.poll.is_some() {
            return MessageKind::Poll;
        }
        if self.photo.is_some() {
            return MessageKind::Photo;
        }
        match self.media_type.as_deref() {
            Some("sticker") => MessageKind::Sticker,
            Some("voice_message") => MessageKind::Voice,
            Some("video_message") => MessageKind::VideoNote,
            Some("video_file") => MessageKind::Video,
            Some("animation") => MessageKind::Animation,
            Some("audio_file") => MessageKind::Audio,
            Some(_) => MessageKind::Other,
            None if self.file.is_some() => MessageKind::Document,
            None if self.contact_information.is_some() => MessageKind::Contact,
            None if self.location_information.is_some() => MessageKind::Location,
            None => MessageKind::Text,
        }
    }
}

/// Reads a `date`. Telegram Desktop writes the exporting computer's local time without a zone
/// (`2024-01-15T10:30:00`), taken as UTC; other tools write an exact time with its zone
/// (`2024-01-15T10:30:00Z`, `…+02:00`, RFC 3339), which needs no guess.
pub fn parse_date(s: &str) -> Option<(Timestamp, TimeSource)> {
    let zoned = chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%#z"));
    if let Ok(time) = zoned {
        return Some((time.timestamp(), TimeSource::Exact));
    }
    // Anything after the seconds that is not a zone is left out, as earlier versions did.
    let local = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .or_else(|| {
            let seconds = s.get(..19)?;
            chrono::NaiveDateTime::parse_from_str(seconds, "%Y-%m-%dT%H:%M:%S").ok()
        })?;
    Some((local.and_utc().timestamp(), TimeSource::LocalTakenAsUtc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn chat_ids_map_to_bot_api_ids() {
        assert_eq!(
            bot_api_chat_id("public_supergroup", 1234567890),
            Ok(-1001234567890)
        );
        assert_eq!(bot_api_chat_id("private_channel", 42), Ok(-1000000000042));
        assert_eq!(bot_api_chat_id("private_group", 42), Ok(-42));
        assert_eq!(bot_api_chat_id("personal_chat", 777), Ok(777));
        assert_eq!(bot_api_chat_id("saved_messages", 5), Ok(5));
        assert!(bot_api_chat_id("mystery", 5).is_err());
        assert_eq!(chat_kind("public_channel"), "channel");
    }

    #[test]
    fn sender_ids_cover_users_channels_chats_and_old_integers() {
        let id = |json: &str| serde_json::from_str::<SenderId>(json).unwrap().to_bot_api();
        assert_eq!(id("\"user123\""), Ok(123));
        assert_eq!(id("\"channel123\""), Ok(-1000000000123));
        assert_eq!(id("\"chat123\""), Ok(-123));
        assert_eq!(id("4567"), Ok(4567));
        assert!(id("\"userabc\"").is_err());
    }

    #[test]
    fn text_is_flattened_from_strings_and_entities() {
        let r = record(
            r#"{"id": 3, "type": "message", "date_unixtime": "1705315920", "from": "Alice", "from_id": "user111",
                "text": ["Check this ", {"type": "bold", "text": "important"}, " message ",
                         {"type": "text_link", "text": "here", "href": "https://x"}, {"type": "custom_emoji", "text": "👍", "document_id": 5}],
                "reactions": [{"type": "emoji", "count": 2}], "rich_message": {"anything": true}}"#,
        );
        let (m, source) = r.to_message(-100).unwrap();
        assert_eq!(m.text, "Check this important message here👍");
        assert_eq!(
            (m.user_id, m.sender_name.as_str(), m.time),
            (Some(111), "Alice", 1705315920)
        );
        assert_eq!(source, TimeSource::Exact);
    }

    #[test]
    fn kinds_follow_media_poll_and_service_fields() {
        let kind = |extra: &str| {
            record(&format!(r#"{{"id": 1, "type": "message", "date_unixtime": "10", "from": "A", "from_id": "user1", "text": "" {extra}}}"#))
                .to_message(1)
                .unwrap()
                .0
        };
        assert_eq!(
            kind(
                r#", "photo": "(File not included. Change data exporting settings to download.)""#
            )
            .kind,
            MessageKind::Photo
        );
        assert_eq!(
            kind(r#", "file": "x.webp", "media_type": "sticker", "sticker_emoji": "😀""#).kind,
            MessageKind::Sticker
        );
        assert_eq!(
            kind(r#", "file": "a.ogg", "media_type": "voice_message""#).kind,
            MessageKind::Voice
        );
        assert_eq!(
            kind(r#", "file": "a.mp4", "media_type": "video_file""#).kind,
            MessageKind::Video
        );
        assert_eq!(
            kind(r#", "file": "a.mp4", "media_type": "video_message""#).kind,
            MessageKind::VideoNote
        );
        assert_eq!(
            kind(r#", "file": "a.mp4", "media_type": "animation""#).kind,
            MessageKind::Animation
        );
        assert_eq!(
            kind(r#", "file": "a.mp3", "media_type": "audio_file""#).kind,
            MessageKind::Audio
        );
        assert_eq!(
            kind(r#", "file": "report.pdf""#).kind,
            MessageKind::Document
        );
        assert_eq!(
            kind(r#", "contact_information": {"first_name": "Oleh"}"#).kind,
            MessageKind::Contact
        );
        assert_eq!(
            kind(r#", "location_information": {"latitude": 50.4}"#).kind,
            MessageKind::Location
        );
        let poll = kind(
            r#", "poll": {"question": "Куди йдемо?", "closed": false, "total_voters": 3, "answers": []}"#,
        );
        assert_eq!(
            (poll.kind, poll.text.as_str()),
            (MessageKind::Poll, "Куди йдемо?")
        );

        let service = record(
            r#"{"id": 9, "type": "service", "date": "2019-07-05T16:55:32", "actor": "Bob", "actor_id": "user700",
                "action": "invite_members", "members": ["Ann", null], "text": ""}"#,
        );
        let (m, source) = service.to_message(-5).unwrap();
        assert_eq!(
            (m.kind, m.user_id, m.sender_name.as_str()),
            (MessageKind::Service, Some(700), "Bob")
        );
        assert_eq!((m.time, source), (1562345732, TimeSource::LocalTakenAsUtc));
    }

    #[test]
    fn deleted_accounts_forwards_replies_and_edits() {
        let r = record(
            r#"{"id": 4, "type": "message", "date_unixtime": "1705395600", "edited_unixtime": "1705395700",
                "from": null, "from_id": "user222", "forwarded_from": null, "reply_to_message_id": 3, "text": "Got it!"}"#,
        );
        let (m, _) = r.to_message(1).unwrap();
        assert_eq!(m.sender_name, "Deleted Account");
        assert_eq!(m.forwarded_from.as_deref(), Some(""));
        assert_eq!((m.reply_to, m.edit_time), (Some(3), Some(1705395700)));
        let plain = record(
            r#"{"id": 5, "type": "message", "date_unixtime": "1", "from": "A", "text": "x"}"#,
        );
        assert_eq!(plain.to_message(1).unwrap().0.forwarded_from, None);
    }

    #[test]
    fn unusable_records_say_why() {
        let skip = |json: &str| record(json).to_message(1).unwrap_err();
        assert_eq!(
            skip(r#"{"id": 1, "type": "unsupported", "date_unixtime": "1"}"#),
            Skip::Unsupported
        );
        assert_eq!(
            skip(r#"{"id": 9999999999, "type": "message", "date_unixtime": "1"}"#),
            Skip::BadId(9999999999)
        );
        assert_eq!(
            skip(r#"{"id": 1, "type": "message", "date": "yesterday"}"#),
            Skip::NoDate
        );
        assert!(matches!(
            skip(r#"{"id": 1, "type": "message", "date_unixtime": "1", "from_id": "userX"}"#),
            Skip::BadSender(_)
        ));
    }

    #[test]
    fn dates_without_a_zone_are_taken_as_utc_and_dates_with_one_are_exact() {
        let local = |s| parse_date(s).map(|(t, source)| (t, source == TimeSource::LocalTakenAsUtc));
        assert_eq!(local("2024-01-15T10:30:00"), Some((1705314600, true)));
        assert_eq!(local("2000-02-29T12:00:00"), Some((951825600, true)));
        assert_eq!(local("1969-12-31T23:59:59"), Some((-1, true)));
        assert_eq!(local("2024-01-15T10:30:00.250"), Some((1705314600, true)));
        assert_eq!(local("2024-01-15T10:30:00Z"), Some((1705314600, false)));
        assert_eq!(local("2024-01-15T10:30:00.5z"), Some((1705314600, false)));
        assert_eq!(
            local("2024-01-15T12:30:00+02:00"),
            Some((1705314600, false))
        );
        assert_eq!(
            local("2024-01-15T07:30:00-03:00"),
            Some((1705314600, false))
        );
        assert_eq!(local("2024-01-15T12:30:00+0200"), Some((1705314600, false)));
        // Anything after the seconds that is no zone is left out, as earlier versions did: the
        // message is kept.
        assert_eq!(
            local("2024-01-15T10:30:00 (local)"),
            Some((1705314600, true))
        );
        assert_eq!(local("2024-01-15T10:30:00+25:00"), Some((1705314600, true)));
        for bad in ["2024-13-01T00:00:00", "2024-01-15", "", "зараз"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    /// The real export samples in `../shared/fixtures/telegram/`, when present.
    #[test]
    fn shared_fixtures_map_exactly() {
        #[derive(Deserialize)]
        struct Export {
            #[serde(rename = "type")]
            kind: String,
            id: i64,
            messages: Vec<Record>,
        }
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/telegram");
        let load = |name: &str| -> Option<(ChatId, Vec<(Message, TimeSource)>)> {
            let export: Export =
                serde_json::from_str(&std::fs::read_to_string(dir.join(name)).ok()?).unwrap();
            let chat = bot_api_chat_id(&export.kind, export.id).unwrap();
            Some((
                chat,
                export
                    .messages
                    .iter()
                    .map(|r| r.to_message(chat).unwrap())
                    .collect(),
            ))
        };
        if let Some((chat, messages)) = load("small_personal_chat.json") {
            assert_eq!((chat, messages.len()), (123456789, 5));
            assert_eq!(messages[2].0.text, "Check this important message");
            assert_eq!(messages[3].0.reply_to, Some(3));
            assert_eq!(
                messages
                    .iter()
                    .filter(|(m, _)| m.kind == MessageKind::Service)
                    .count(),
                1
            );
        }
        if let Some((chat, messages)) = load("dm_personal_chat.json") {
            assert_eq!((chat, messages.len()), (700000000, 8));
            assert_eq!(messages[0].0.kind, MessageKind::Service);
            assert_eq!(messages[1].0.text, "https://google.com 👀");
            assert_eq!(messages[1].1, TimeSource::LocalTakenAsUtc);
            assert_eq!(messages[3].1, TimeSource::Exact);
            assert!(messages.iter().all(|(m, _)| m.user_id.is_some()));
        }
    }
}
