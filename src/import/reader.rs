//! Streaming reader of Telegram Desktop JSON exports.
//!
//! The export is walked with serde visitors instead of being loaded: each message record is
//! deserialized, handed to a [`Sink`], and dropped, so memory stays flat however large the file.
//! Both layouts are read: a single chat (`name`, `type`, `id`, `messages`) and a full-account
//! export (`chats.list[]`, `left_chats.list[]`). Keys the importer does not use are skipped.

use super::record::Record;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::io::Read;

/// A chat's header fields, as read before its messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatHeader {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub id: Option<i64>,
}

/// Receives what the reader finds, in file order.
pub trait Sink {
    /// A chat's messages are about to follow (its header fields as read so far).
    fn chat(&mut self, header: &ChatHeader) -> Result<(), String>;
    /// One message record of the current chat.
    fn record(&mut self, record: Record) -> Result<(), String>;
    /// The current chat's messages ended.
    fn end_chat(&mut self) -> Result<(), String>;
}

/// Which layout the file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    SingleChat,
    FullAccount,
}

/// Why a file could not be read as an export. Each says where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "this is an HTML export (messages.html). Export the chat again in Telegram Desktop \
             with \"Format: Machine-readable JSON\" and import its result.json"
    )]
    Html,
    #[error("the file is empty")]
    Empty,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(
        "not valid JSON at line {line}, column {column}{after}: {what}. Is this the \
             result.json of a Telegram Desktop export, complete and unmodified?"
    )]
    Json {
        line: usize,
        column: usize,
        after: String,
        what: String,
    },
    #[error(
        "this JSON is not a Telegram Desktop export: it has neither `messages` (a chat \
             export) nor `chats` (a full-account export)"
    )]
    NotAnExport,
}

/// Reads an export from `input`, feeding `sink`; returns the layout.
pub fn read_export<R: Read>(input: R, sink: &mut dyn Sink) -> Result<Layout, ReadError> {
    let mut input = std::io::BufReader::with_capacity(1 << 16, input);
    let first = {
        use std::io::BufRead;
        let buf = input.fill_buf()?;
        buf.iter().copied().find(|b| !b.is_ascii_whitespace())
    };
    match first {
        None => return Err(ReadError::Empty),
        Some(b'<') => return Err(ReadError::Html),
        Some(_) => {}
    }
    let mut last_id = None;
    let mut de = serde_json::Deserializer::from_reader(input);
    let seed = Walk {
        node: Node::Top,
        sink,
        last_id: &mut last_id,
    };
    let layout = seed
        .deserialize(&mut de)
        .map_err(|e| json_error(e, last_id))?;
    de.end().map_err(|e| json_error(e, last_id))?;
    layout.ok_or(ReadError::NotAnExport)
}

fn json_error(e: serde_json::Error, last_id: Option<i64>) -> ReadError {
    ReadError::Json {
        line: e.line(),
        column: e.column(),
        after: last_id.map_or(String::new(), |id| format!(" (after message {id})")),
        what: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Which part of the export a [`Walk`] is reading.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    /// The top-level object: either layout.
    Top,
    /// `chats` / `left_chats`: an object whose `list` holds chat objects.
    ChatList,
    /// The array of chat objects.
    Chats,
    /// One chat object of a full-account export.
    Chat,
    /// A chat's `messages` array, read one record at a time.
    Messages,
}

/// Walks one part of the export, feeding the sink; at the top level it yields the layout found.
struct Walk<'a> {
    node: Node,
    sink: &'a mut dyn Sink,
    last_id: &'a mut Option<i64>,
}

impl Walk<'_> {
    /// A walk of a part nested in this one.
    fn nested(&mut self, node: Node) -> Walk<'_> {
        Walk {
            node,
            sink: &mut *self.sink,
            last_id: &mut *self.last_id,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Option<Layout>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.node {
            Node::Chats | Node::Messages => d.deserialize_seq(self),
            Node::Top | Node::ChatList | Node::Chat => d.deserialize_map(self),
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Option<Layout>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self.node {
            Node::Top => "a Telegram Desktop export object",
            Node::ChatList => "an object with a `list` of chats",
            Node::Chats => "a list of chats",
            Node::Chat => "a chat object",
            Node::Messages => "a list of messages",
        })
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut header = ChatHeader::default();
        let mut layout = None;
        let chat = matches!(self.node, Node::Top | Node::Chat);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "chats" | "left_chats" if self.node == Node::Top => {
                    map.next_value_seed(self.nested(Node::ChatList))?;
                    layout = Some(Layout::FullAccount);
                }
                "list" if self.node == Node::ChatList => {
                    map.next_value_seed(self.nested(Node::Chats))?;
                }
                "name" if chat => header.name = map.next_value()?,
                "type" if chat => header.kind = Some(map.next_value()?),
                "id" if chat => header.id = Some(map.next_value()?),
                "messages" if chat => {
                    self.sink.chat(&header).map_err(de::Error::custom)?;
                    map.next_value_seed(self.nested(Node::Messages))?;
                    self.sink.end_chat().map_err(de::Error::custom)?;
                    if self.node == Node::Top {
                        layout = Some(Layout::SingleChat);
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(layout)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        if self.node == Node::Chats {
            while seq.next_element_seed(self.nested(Node::Chat))?.is_some() {}
        } else {
            while let Some(record) = seq.next_element::<Record>()? {
                *self.last_id = Some(record.id);
                self.sink.record(record).map_err(de::Error::custom)?;
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the reader reports, as text.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Sink for Log {
        fn chat(&mut self, h: &ChatHeader) -> Result<(), String> {
            self.0
                .push(format!("chat {:?} {:?} {:?}", h.name, h.kind, h.id));
            Ok(())
        }
        fn record(&mut self, r: Record) -> Result<(), String> {
            self.0.push(format!("message {}", r.id));
            Ok(())
        }
        fn end_chat(&mut self) -> Result<(), String> {
            self.0.push("end".into());
            Ok(())
        }
    }

    fn read(json: &str) -> Result<(Layout, Vec<String>), ReadError> {
        let mut log = Log::default();
        let layout = read_export(json.as_bytes(), &mut log)?;
        Ok((layout, log.0))
    }

    #[test]
    fn single_chat_exports_stream_their_messages() {
        let (layout, log) = read(
            r#"{"name": "Група", "type": "private_supergroup", "id": 42, "extra": {"x": [1, 2]},
                "messages": [{"id": 1, "type": "message"}, {"id": 2, "type": "service", "unknown": null}]}"#,
        )
        .unwrap();
        assert_eq!(layout, Layout::SingleChat);
        assert_eq!(
            log,
            [
                r#"chat Some("Група") Some("private_supergroup") Some(42)"#,
                "message 1",
                "message 2",
                "end"
            ]
        );
    }

    #[test]
    fn full_account_exports_read_chats_and_left_chats() {
        let (layout, log) = read(
            r#"{"about": "…", "personal_information": {"user_id": 1}, "contacts": {"list": []},
                "chats": {"about": "…", "list": [
                    {"name": "A", "type": "personal_chat", "id": 5, "messages": [{"id": 1}]},
                    {"name": null, "type": "private_group", "id": 6, "messages": []}]},
                "left_chats": {"list": [{"name": "L", "type": "public_channel", "id": 7, "messages": [{"id": 9}]}]}}"#,
        )
        .unwrap();
        assert_eq!(layout, Layout::FullAccount);
        assert_eq!(
            log,
            [
                r#"chat Some("A") Some("personal_chat") Some(5)"#,
                "message 1",
                "end",
                r#"chat None Some("private_group") Some(6)"#,
                "end",
                r#"chat Some("L") Some("public_channel") Some(7)"#,
                "message 9",
                "end"
            ]
        );
    }

    #[test]
    fn bad_files_are_clear_errors() {
        assert!(matches!(
            read("  <!DOCTYPE html><html>"),
            Err(ReadError::Html)
        ));
        assert!(matches!(read(" \n "), Err(ReadError::Empty)));
        assert!(matches!(
            read(r#"{"name": "x", "version": 3}"#),
            Err(ReadError::NotAnExport)
        ));
        let truncated = read(
            r#"{"name": "x", "type": "personal_chat", "id": 1, "messages": [{"id": 1}, {"id": 2, "te"#,
        );
        match truncated {
            Err(ReadError::Json { line, after, .. }) => {
                assert_eq!((line, after.as_str()), (1, " (after message 1)"))
            }
            other => panic!("{other:?}"),
        }
        let wrong_type =
            read(r#"{"type": "personal_chat", "id": 1, "messages": [{"id": "seven"}]}"#);
        assert!(
            matches!(wrong_type, Err(ReadError::Json { .. })),
            "{wrong_type:?}"
        );
        assert!(read("not json").is_err());
        assert!(read(r#"[1, 2, 3]"#).is_err());
    }
}
