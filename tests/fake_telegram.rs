//! Self-test of the fake Telegram Bot API server: teloxide itself must be able to parse every
//! answer it gives, and every fault must surface as the teloxide error the bot will see.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_telegram::{Chat, FakeTelegram, Fault, User, BOT_ID, BOT_USERNAME, TOKEN};
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{
    BotCommand, ChatKind, FileId, InputFile, MessageEntityKind, MessageId, ReactionType,
    ReplyParameters, UpdateKind,
};
use teloxide::{ApiError, RequestError};

const WAIT: Duration = Duration::from_secs(5);

fn bot(tg: &FakeTelegram) -> Bot {
    Bot::new(TOKEN).set_api_url(tg.url().parse().unwrap())
}

fn alice() -> User {
    User {
        id: 1001,
        first_name: "Alice".into(),
        username: Some("alice".into()),
        language_code: Some("en".into()),
    }
}

fn bob() -> User {
    User::new(1002, "Bob")
}

fn group() -> Chat {
    Chat {
        id: -100_123,
        kind: "supergroup",
        title: Some("Test group".into()),
    }
}

fn message_of(update: &Update) -> &Message {
    match &update.kind {
        UpdateKind::Message(m) => m,
        other => panic!("expected a message update, got {other:?}"),
    }
}

#[tokio::test]
async fn get_me_parses() {
    let tg = FakeTelegram::start().await;
    let me = bot(&tg).get_me().await.unwrap();
    assert_eq!(me.id, UserId(BOT_ID as u64));
    assert!(me.is_bot);
    assert_eq!(me.first_name, "Keeper");
    assert_eq!(me.username(), BOT_USERNAME);
    assert!(me.can_join_groups);
    assert!(me.can_read_all_group_messages);
    assert!(!me.supports_inline_queries);
    assert_eq!(tg.requests("getMe").len(), 1);
}

#[tokio::test]
async fn url_has_trailing_slash_and_port() {
    let tg = FakeTelegram::start().await;
    let url = tg.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.ends_with('/'), "{url}");
}

#[tokio::test]
async fn get_updates_and_offset_confirmation() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let chat = group();
    assert_eq!(tg.push_message(&chat, &alice(), "one"), (1, 1));
    assert_eq!(tg.push_message(&chat, &bob(), "two"), (2, 2));
    assert_eq!(tg.push_message(&chat, &alice(), "three"), (3, 3));
    assert_eq!(tg.pending_updates(), 3);
    assert_eq!(tg.confirmed_offset(), 0);

    let updates = bot.get_updates().await.unwrap();
    let ids: Vec<u32> = updates.iter().map(|u| u.id.0).collect();
    assert_eq!(ids, [1, 2, 3]);
    let texts: Vec<&str> = updates
        .iter()
        .map(|u| message_of(u).text().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two", "three"]);
    // Delivered but not confirmed: still pending, delivered again.
    assert_eq!(tg.pending_updates(), 3);
    assert_eq!(bot.get_updates().await.unwrap().len(), 3);

    let updates = bot.get_updates().offset(2).await.unwrap();
    assert_eq!(updates.iter().map(|u| u.id.0).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(tg.confirmed_offset(), 2);
    assert_eq!(tg.pending_updates(), 2);

    let updates = bot.get_updates().offset(4).await.unwrap();
    assert!(updates.is_empty());
    assert_eq!(tg.confirmed_offset(), 4);
    assert_eq!(tg.pending_updates(), 0);

    // A lower offset later does not bring confirmed updates back.
    assert!(bot.get_updates().offset(1).await.unwrap().is_empty());
    assert_eq!(tg.confirmed_offset(), 4);

    // limit is honoured
    tg.push_message(&chat, &alice(), "four");
    tg.push_message(&chat, &alice(), "five");
    let updates = bot.get_updates().limit(1).await.unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].id.0, 4);

    let recorded = tg.requests("getUpdates");
    assert_eq!(recorded.len(), 6);
    assert_eq!(recorded[2]["offset"], json!(2));
}

#[tokio::test]
async fn negative_offset_drops_all_but_the_last() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    for text in ["a", "b", "c"] {
        tg.push_message(&group(), &alice(), text);
    }
    let updates = bot.get_updates().offset(-1).limit(1).await.unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].id.0, 3);
    assert_eq!(tg.pending_updates(), 1);
    assert_eq!(tg.confirmed_offset(), 3);
}

#[tokio::test]
async fn message_fields_parse() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let chat = group();
    let (_, first) = tg.push_message(
        &chat,
        &alice(),
        "/ask@keeper_test_bot what did @bob say? mail a@b.c",
    );
    let (_, reply) = tg.push_message_with(
        &chat,
        &bob(),
        json!({ "text": "answering", "reply_to_message": { "message_id": first } }),
    );
    tg.push_message_with(
        &chat,
        &alice(),
        json!({
            "photo": [
                { "file_id": "ph-small", "file_unique_id": "u1", "file_size": 100, "width": 90, "height": 60 },
                { "file_id": "ph-big", "file_unique_id": "u2", "file_size": 1000, "width": 900, "height": 600 },
            ],
            "caption": "look @alice",
            "date": 1_700_000_000,
        }),
    );
    let private = Chat::private(alice().id);
    tg.push_message(&private, &alice(), "привет 👋 /notacommand");

    let updates = bot.get_updates().await.unwrap();
    assert_eq!(updates.len(), 4);

    let m = message_of(&updates[0]);
    assert_eq!(m.id, MessageId(first));
    assert_eq!(
        m.text(),
        Some("/ask@keeper_test_bot what did @bob say? mail a@b.c")
    );
    let from = m.from.as_ref().unwrap();
    assert_eq!(from.id, UserId(1001));
    assert!(!from.is_bot);
    assert_eq!(from.first_name, "Alice");
    assert_eq!(from.username.as_deref(), Some("alice"));
    assert_eq!(from.language_code.as_deref(), Some("en"));
    assert_eq!(m.chat.id, ChatId(-100_123));
    assert!(m.chat.is_supergroup());
    assert_eq!(m.chat.title(), Some("Test group"));
    let entities = m.parse_entities().unwrap();
    assert_eq!(entities.len(), 2, "{entities:?}");
    assert_eq!(entities[0].kind(), &MessageEntityKind::BotCommand);
    assert_eq!(entities[0].text(), "/ask@keeper_test_bot");
    assert_eq!(entities[1].kind(), &MessageEntityKind::Mention);
    assert_eq!(entities[1].text(), "@bob");
    assert!((chrono_now() - m.date.timestamp()).abs() < 60);

    let m = message_of(&updates[1]);
    assert_eq!(m.id, MessageId(reply));
    assert_eq!(m.text(), Some("answering"));
    let replied = m.reply_to_message().expect("reply_to_message");
    assert_eq!(replied.id, MessageId(first));
    assert_eq!(replied.from.as_ref().unwrap().id, UserId(1001));
    assert!(replied.text().unwrap().starts_with("/ask"));

    let m = message_of(&updates[2]);
    let photo = m.photo().expect("photo");
    assert_eq!(photo.len(), 2);
    assert_eq!(photo[1].file.id, FileId("ph-big".into()));
    assert_eq!(photo[1].width, 900);
    assert_eq!(m.caption(), Some("look @alice"));
    let caption_entities = m.parse_caption_entities().unwrap();
    assert_eq!(caption_entities.len(), 1);
    assert_eq!(caption_entities[0].text(), "@alice");
    assert_eq!(m.date.timestamp(), 1_700_000_000);

    let m = message_of(&updates[3]);
    assert!(m.chat.is_private());
    assert_eq!(m.chat.first_name(), Some("Alice"));
    assert!(matches!(m.chat.kind, ChatKind::Private(_)));
    // Entity offsets are UTF-16: a command not at the start is not a command.
    assert!(m.entities().unwrap_or_default().is_empty());
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn utf16_offsets_for_mentions() {
    let tg = FakeTelegram::start().await;
    tg.push_message(&group(), &alice(), "👋 hi @keeper_test_bot!");
    let updates = bot(&tg).get_updates().await.unwrap();
    let m = message_of(&updates[0]);
    let entities = m.entities().unwrap();
    assert_eq!(entities[0].offset, 6); // 👋 is two UTF-16 units
    assert_eq!(entities[0].length, 16);
    assert_eq!(m.parse_entities().unwrap()[0].text(), "@keeper_test_bot");
}

#[tokio::test]
async fn edited_message_and_callback_query_parse() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let chat = group();
    let (_, mid) = tg.push_message(&chat, &alice(), "typo");
    let edit_update = tg.push_edited_message(&chat, &alice(), mid, "fixed");
    assert_eq!(edit_update, 2);

    let sent = bot.send_message(ChatId(chat.id), "Pick one").await.unwrap();
    let cb_update = tg.push_callback_query(&chat, &bob(), sent.id.0, "vote:1");
    assert_eq!(cb_update, 3);

    let updates = bot.get_updates().offset(2).await.unwrap();
    assert_eq!(updates.len(), 2);
    match &updates[0].kind {
        UpdateKind::EditedMessage(m) => {
            assert_eq!(m.id, MessageId(mid));
            assert_eq!(m.text(), Some("fixed"));
            assert!(m.edit_date().is_some());
            assert_eq!(m.from.as_ref().unwrap().id, UserId(1001));
        }
        other => panic!("expected edited_message, got {other:?}"),
    }
    match &updates[1].kind {
        UpdateKind::CallbackQuery(q) => {
            assert_eq!(q.data.as_deref(), Some("vote:1"));
            assert_eq!(q.from.id, UserId(1002));
            let m = q.regular_message().expect("accessible message");
            assert_eq!(m.id, sent.id);
            assert_eq!(m.chat.id, ChatId(chat.id));
            assert_eq!(m.from.as_ref().unwrap().id, UserId(BOT_ID as u64));
            assert_eq!(m.text(), Some("Pick one"));
            assert!(!q.chat_instance.is_empty());
            bot.answer_callback_query(q.id.clone()).await.unwrap();
        }
        other => panic!("expected callback_query, got {other:?}"),
    }
    assert_eq!(tg.requests("answerCallbackQuery").len(), 1);
}

#[tokio::test]
async fn push_update_raw() {
    let tg = FakeTelegram::start().await;
    let id = tg.push_update(json!({
        "my_chat_member": {
            "chat": { "id": -5, "type": "group", "title": "G" },
            "from": { "id": 1001, "is_bot": false, "first_name": "Alice" },
            "date": 1_700_000_000,
            "old_chat_member": { "status": "left", "user": { "id": BOT_ID, "is_bot": true, "first_name": "Keeper" } },
            "new_chat_member": { "status": "member", "user": { "id": BOT_ID, "is_bot": true, "first_name": "Keeper" } },
        }
    }));
    assert_eq!(id, 1);
    let updates = bot(&tg).get_updates().await.unwrap();
    assert!(
        matches!(updates[0].kind, UpdateKind::MyChatMember(_)),
        "{:?}",
        updates[0].kind
    );
}

#[tokio::test]
async fn send_message_with_reply_parameters() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let chat = group();
    let (_, asked) = tg.push_message(&chat, &alice(), "hello bot");

    let sent = bot
        .send_message(ChatId(chat.id), "hello human")
        .reply_parameters(ReplyParameters::new(MessageId(asked)))
        .await
        .unwrap();
    assert_eq!(sent.id, MessageId(asked + 1));
    assert_eq!(sent.text(), Some("hello human"));
    assert_eq!(sent.chat.id, ChatId(chat.id));
    assert_eq!(sent.chat.title(), Some("Test group"));
    let from = sent.from.as_ref().unwrap();
    assert_eq!(from.id, UserId(BOT_ID as u64));
    assert!(from.is_bot);
    let replied = sent.reply_to_message().expect("reply_to_message");
    assert_eq!(replied.id, MessageId(asked));
    assert_eq!(replied.text(), Some("hello bot"));

    let second = bot.send_message(ChatId(chat.id), "again").await.unwrap();
    assert_eq!(second.id, MessageId(asked + 2));
    assert!(second.reply_to_message().is_none());

    // Unknown chat: a private chat.
    let dm = bot.send_message(ChatId(42), "hi").await.unwrap();
    assert!(dm.chat.is_private());
    assert_eq!(dm.id, MessageId(1));

    let requests = tg.requests("sendMessage");
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0]["chat_id"], json!(chat.id));
    assert_eq!(requests[0]["text"], json!("hello human"));
    assert_eq!(requests[0]["reply_parameters"]["message_id"], json!(asked));
    let sent_to_group = tg.sent_messages(chat.id);
    assert_eq!(sent_to_group.len(), 2);
    assert_eq!(sent_to_group[0]["text"], json!("hello human"));
    assert_eq!(
        sent_to_group[0]["reply_to_message"]["message_id"],
        json!(asked)
    );
    assert_eq!(tg.sent_messages(42).len(), 1);
    assert_eq!(tg.wait_for("sendMessage", 3, WAIT).await.len(), 3);
}

#[tokio::test]
async fn send_message_validates_text() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let err = bot.send_message(ChatId(1), "").await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageTextIsEmpty)),
        "{err:?}"
    );
    let err = bot
        .send_message(ChatId(1), "x".repeat(4097))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageIsTooLong)),
        "{err:?}"
    );
    bot.send_message(ChatId(1), "я".repeat(4096)).await.unwrap();
    assert_eq!(tg.requests("sendMessage").len(), 3);
    assert_eq!(tg.sent_messages(1).len(), 1);
}

#[tokio::test]
async fn edit_message_text() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let chat = group();
    let (_, users_msg) = tg.push_message(&chat, &alice(), "mine");
    let sent = bot.send_message(ChatId(chat.id), "draft").await.unwrap();
    let edited = bot
        .edit_message_text(ChatId(chat.id), sent.id, "final")
        .await
        .unwrap();
    assert_eq!(edited.id, sent.id);
    assert_eq!(edited.text(), Some("final"));
    assert!(edited.edit_date().is_some());

    let err = bot
        .edit_message_text(ChatId(chat.id), sent.id, "final")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageNotModified)),
        "{err:?}"
    );
    let err = bot
        .edit_message_text(ChatId(chat.id), MessageId(99), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageToEditNotFound)),
        "{err:?}"
    );
    let err = bot
        .edit_message_text(ChatId(chat.id), MessageId(users_msg), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageCantBeEdited)),
        "{err:?}"
    );

    let sent_messages = tg.sent_messages(chat.id);
    let texts: Vec<&Value> = sent_messages.iter().map(|m| &m["text"]).collect();
    assert_eq!(texts, [&json!("draft"), &json!("final")]);
    assert_eq!(
        tg.message(chat.id, sent.id.0).unwrap()["text"],
        json!("final")
    );
}

#[tokio::test]
async fn reactions_commands_and_trivial_methods() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let chat = group();
    let (_, mid) = tg.push_message(&chat, &alice(), "nice");
    bot.set_message_reaction(ChatId(chat.id), MessageId(mid))
        .reaction(vec![ReactionType::Emoji {
            emoji: "👍".into()
        }])
        .await
        .unwrap();
    let r = &tg.requests("setMessageReaction")[0];
    assert_eq!(r["message_id"], json!(mid));
    assert_eq!(r["reaction"][0]["type"], json!("emoji"));
    assert_eq!(r["reaction"][0]["emoji"], json!("👍"));

    bot.set_my_commands([BotCommand::new("ask", "Ask the keeper")])
        .language_code("ru")
        .await
        .unwrap();
    let r = &tg.requests("setMyCommands")[0];
    assert_eq!(r["language_code"], json!("ru"));
    assert_eq!(r["commands"][0]["command"], json!("ask"));
    assert_eq!(r["commands"][0]["description"], json!("Ask the keeper"));
    assert!(bot.get_my_commands().await.unwrap().is_empty());
    bot.delete_my_commands().await.unwrap();
    bot.delete_message(ChatId(chat.id), MessageId(mid))
        .await
        .unwrap();
    bot.send_chat_action(ChatId(chat.id), teloxide::types::ChatAction::Typing)
        .await
        .unwrap();
    let info = bot.get_webhook_info().await.unwrap();
    assert!(info.url.is_none());
    bot.delete_webhook().await.unwrap();
    for method in [
        "deleteMyCommands",
        "deleteMessage",
        "sendChatAction",
        "getMyCommands",
    ] {
        assert_eq!(tg.requests(method).len(), 1, "{method}");
    }
}

#[tokio::test]
async fn get_chat_member_statuses() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let chat = group();
    tg.push_message(&chat, &alice(), "hi");
    tg.set_chat_member_status(chat.id, alice().id, "administrator");
    tg.set_chat_member_status(chat.id, 7, "creator");
    tg.set_chat_member_status(chat.id, 8, "restricted");
    tg.set_chat_member_status(chat.id, 9, "left");
    tg.set_chat_member_status(chat.id, 10, "kicked");

    let admin = bot
        .get_chat_member(ChatId(chat.id), UserId(1001))
        .await
        .unwrap();
    assert!(admin.is_privileged());
    assert!(admin.is_administrator());
    assert_eq!(admin.user.id, UserId(1001));
    assert_eq!(admin.user.username.as_deref(), Some("alice")); // the user seen in updates

    let member = bot
        .get_chat_member(ChatId(chat.id), UserId(1002))
        .await
        .unwrap();
    assert!(!member.is_privileged());
    assert!(member.is_present());
    assert_eq!(member.user.id, UserId(1002));

    let owner = bot
        .get_chat_member(ChatId(chat.id), UserId(7))
        .await
        .unwrap();
    assert!(owner.is_owner() && owner.is_privileged());
    let restricted = bot
        .get_chat_member(ChatId(chat.id), UserId(8))
        .await
        .unwrap();
    assert!(restricted.is_restricted() && !restricted.is_privileged());
    let left = bot
        .get_chat_member(ChatId(chat.id), UserId(9))
        .await
        .unwrap();
    assert!(left.is_left());
    let banned = bot
        .get_chat_member(ChatId(chat.id), UserId(10))
        .await
        .unwrap();
    assert!(banned.is_banned());
    let me = bot
        .get_chat_member(ChatId(chat.id), UserId(BOT_ID as u64))
        .await
        .unwrap();
    assert!(me.user.is_bot);
    // Status is per chat.
    let elsewhere = bot.get_chat_member(ChatId(-1), UserId(1001)).await.unwrap();
    assert!(!elsewhere.is_privileged());
}

#[tokio::test]
async fn get_file_and_download() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    tg.add_file("file-1", bytes.clone());
    let file = bot.get_file(FileId("file-1".into())).await.unwrap();
    assert_eq!(file.id, FileId("file-1".into()));
    assert_eq!(file.size, 70_000);
    assert!(file.path.contains('/'), "{}", file.path);

    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .unwrap();
    assert_eq!(downloaded, bytes);
    assert_eq!(tg.downloads(), vec![file.path.clone()]);

    let err = bot.get_file(FileId("nope".into())).await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::FileIdInvalid)),
        "{err:?}"
    );
    let mut sink = Vec::new();
    assert!(bot
        .download_file("documents/missing.bin", &mut sink)
        .await
        .is_err());
}

#[tokio::test]
async fn send_document_multipart() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let chat = group();
    let (_, asked) = tg.push_message(&chat, &alice(), "/export");
    let content = b"line one\nline two\n".to_vec();
    let sent = bot
        .send_document(
            ChatId(chat.id),
            InputFile::memory(content.clone()).file_name("export.txt"),
        )
        .caption("Here you go")
        .reply_parameters(ReplyParameters::new(MessageId(asked)))
        .await
        .unwrap();
    let doc = sent.document().expect("document");
    assert_eq!(doc.file_name.as_deref(), Some("export.txt"));
    assert_eq!(doc.file.size as usize, content.len());
    assert_eq!(sent.caption(), Some("Here you go"));
    assert_eq!(sent.reply_to_message().unwrap().id, MessageId(asked));
    assert_eq!(sent.from.as_ref().unwrap().id, UserId(BOT_ID as u64));

    let r = &tg.requests("sendDocument")[0];
    assert_eq!(r["chat_id"], json!(chat.id));
    assert_eq!(r["caption"], json!("Here you go"));
    assert_eq!(
        r["document"],
        json!({ "file_name": "export.txt", "len": content.len() })
    );
    assert_eq!(r["reply_parameters"]["message_id"], json!(asked));
    assert_eq!(
        tg.sent_messages(chat.id)[0]["document"]["file_name"],
        json!("export.txt")
    );

    // The uploaded document can be fetched back.
    let file = bot.get_file(doc.file.id.clone()).await.unwrap();
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .unwrap();
    assert_eq!(downloaded, content);
}

/// A `width`×`height` PNG, as a chart upload would be.
fn png_bytes(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    writer
        .write_image_data(&vec![200; (width * height * 3) as usize])
        .unwrap();
    writer.finish().unwrap();
    out
}

#[tokio::test]
async fn send_photo_multipart() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    let chat = group();
    let (_, asked) = tg.push_message(&chat, &alice(), "/stats");
    let picture = png_bytes(30, 20);
    let sent = bot
        .send_photo(ChatId(chat.id), InputFile::memory(picture.clone()))
        .caption("📊 Stats")
        .reply_parameters(ReplyParameters::new(MessageId(asked)))
        .await
        .unwrap();
    let sizes = sent.photo().expect("photo");
    let largest = sizes.last().unwrap();
    assert_eq!((largest.width, largest.height), (30, 20));
    assert_eq!(largest.file.size as usize, picture.len());
    assert_eq!(sent.caption(), Some("📊 Stats"));
    assert_eq!(sent.reply_to_message().unwrap().id, MessageId(asked));
    assert_eq!(sent.from.as_ref().unwrap().id, UserId(BOT_ID as u64));

    let r = &tg.requests("sendPhoto")[0];
    assert_eq!(r["chat_id"], json!(chat.id));
    assert_eq!(r["photo"]["len"], json!(picture.len()));
    assert_eq!(tg.sent_photos(chat.id), vec![picture.clone()]);

    // Sent again by file id, the same bytes arrive.
    bot.send_photo(ChatId(chat.id), InputFile::file_id(largest.file.id.clone()))
        .await
        .unwrap();
    assert_eq!(tg.sent_photos(chat.id), vec![picture.clone(), picture]);
    assert!(tg.sent_photos(-1).is_empty());

    // What is not an image is refused as Telegram refuses it.
    let err = bot
        .send_photo(
            ChatId(chat.id),
            InputFile::memory(b"not a picture".to_vec()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::ImageProcessFailed)),
        "{err:?}"
    );
    assert_eq!(tg.sent_photos(chat.id).len(), 2);
}

#[tokio::test]
async fn fault_retry_after() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    tg.inject("sendMessage", Fault::RetryAfter(7));
    let err = bot.send_message(ChatId(1), "hi").await.unwrap_err();
    match err {
        RequestError::RetryAfter(secs) => assert_eq!(secs.seconds(), 7),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    // Used once: the next call succeeds, and both calls were recorded.
    bot.send_message(ChatId(1), "hi").await.unwrap();
    assert_eq!(tg.requests("sendMessage").len(), 2);
    assert_eq!(tg.sent_messages(1).len(), 1);
    // Faults on other methods are independent.
    bot.get_me().await.unwrap();
}

#[tokio::test]
async fn faults_are_used_in_order() {
    let tg = FakeTelegram::start().await;
    let bot = bot(&tg);
    tg.inject("getMe", Fault::RetryAfter(1));
    tg.inject("getMe", Fault::Malformed);
    assert!(matches!(
        bot.get_me().await,
        Err(RequestError::RetryAfter(_))
    ));
    assert!(matches!(
        bot.get_me().await,
        Err(RequestError::InvalidJson { .. })
    ));
    assert!(bot.get_me().await.is_ok());
}

#[tokio::test]
async fn fault_server_error() {
    let tg = FakeTelegram::start().await;
    let started = Instant::now();
    tg.inject("getMe", Fault::ServerError);
    let err = bot(&tg).get_me().await.unwrap_err();
    println!("ServerError -> {err:?} after {:?}", started.elapsed());
    // teloxide sleeps 10 s on any 5xx before parsing the body.
    assert!(started.elapsed() >= Duration::from_secs(10));
    match err {
        RequestError::Api(ApiError::Unknown(description)) => {
            assert_eq!(description, "Internal Server Error")
        }
        other => panic!("expected Api(Unknown), got {other:?}"),
    }
}

#[tokio::test]
async fn fault_bad_gateway() {
    let tg = FakeTelegram::start().await;
    tg.inject("getMe", Fault::BadGateway);
    let err = bot(&tg).get_me().await.unwrap_err();
    println!("BadGateway -> {err:?}");
    match err {
        RequestError::InvalidJson { raw, .. } => assert!(raw.contains("502 Bad Gateway"), "{raw}"),
        other => panic!("expected InvalidJson, got {other:?}"),
    }
}

#[tokio::test]
async fn fault_malformed() {
    let tg = FakeTelegram::start().await;
    tg.inject("sendMessage", Fault::Malformed);
    let err = bot(&tg).send_message(ChatId(1), "hi").await.unwrap_err();
    match err {
        RequestError::InvalidJson { raw, .. } => assert_eq!(&*raw, r#"{"ok": tru"#),
        other => panic!("expected InvalidJson, got {other:?}"),
    }
}

#[tokio::test]
async fn fault_slow() {
    let tg = FakeTelegram::start().await;
    tg.inject("getMe", Fault::Slow(Duration::from_millis(600)));
    let started = Instant::now();
    let me = bot(&tg).get_me().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(me.id, UserId(BOT_ID as u64));
}

#[tokio::test]
async fn wrong_token_is_invalid_token() {
    let tg = FakeTelegram::start().await;
    let wrong = Bot::new("999:WRONG").set_api_url(tg.url().parse().unwrap());
    let err = wrong.get_me().await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::InvalidToken)),
        "{err:?}"
    );
    assert!(tg.requests("getMe").is_empty());
}

#[tokio::test]
async fn unknown_method_is_404_and_recorded() {
    let tg = FakeTelegram::start().await;
    let response = reqwest::Client::new()
        .post(format!("{}bot{TOKEN}/banChatMember", tg.url()))
        .json(&json!({ "chat_id": -1, "user_id": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "ok": false, "error_code": 404, "description": "Not Found: method not found" })
    );
    assert_eq!(
        tg.requests("banChatMember"),
        [json!({ "chat_id": -1, "user_id": 5 })]
    );
    let err = bot(&tg)
        .ban_chat_member(ChatId(-1), UserId(5))
        .await
        .unwrap_err();
    println!("unknown method -> {err:?}");
    assert!(
        matches!(err, RequestError::Api(ApiError::Unknown(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn long_poll_wakes_on_push() {
    let tg = FakeTelegram::start().await;
    tg.set_long_poll_cap(Duration::from_secs(8));
    let bot = bot(&tg);
    let poll = tokio::spawn(async move {
        let started = Instant::now();
        let updates = bot.get_updates().timeout(10).await.unwrap();
        (updates, started.elapsed())
    });
    tg.wait_for("getUpdates", 1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    tg.push_message(&group(), &alice(), "wake up");
    let (updates, elapsed) = poll.await.unwrap();
    assert_eq!(updates.len(), 1);
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn long_poll_respects_cap() {
    let tg = FakeTelegram::start().await;
    tg.set_long_poll_cap(Duration::from_millis(300));
    let started = Instant::now();
    let updates = bot(&tg).get_updates().timeout(10).await.unwrap();
    let elapsed = started.elapsed();
    assert!(updates.is_empty());
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
#[should_panic(expected = "expected at least 1 call(s) of sendMessage")]
async fn wait_for_panics_with_context() {
    let tg = FakeTelegram::start().await;
    bot(&tg).get_me().await.unwrap();
    tg.wait_for("sendMessage", 1, Duration::from_millis(100))
        .await;
}

/// The real teloxide polling loop and dispatcher run against the fake: webhook check, long polls,
/// offset confirmation on shutdown.
#[tokio::test]
async fn teloxide_dispatcher_round_trip() {
    let tg = FakeTelegram::start().await;
    tg.set_long_poll_cap(Duration::from_millis(200));
    let handler = Update::filter_message().endpoint(|bot: Bot, msg: Message| async move {
        let text = format!("echo: {}", msg.text().unwrap_or_default());
        bot.send_message(msg.chat.id, text)
            .reply_parameters(ReplyParameters::new(msg.id))
            .await?;
        respond(())
    });
    let mut dispatcher = Dispatcher::builder(bot(&tg), handler).build();
    let shutdown = dispatcher.shutdown_token();
    let task = tokio::spawn(async move { dispatcher.dispatch().await });

    let chat = group();
    let (_, mid) = tg.push_message(&chat, &alice(), "ping");
    let sent = tg.wait_for("sendMessage", 1, WAIT).await;
    assert_eq!(sent[0]["text"], json!("echo: ping"));
    assert_eq!(sent[0]["reply_parameters"]["message_id"], json!(mid));
    // Method names are matched the way Telegram does, case-insensitively on the first letter.
    assert_eq!(tg.requests("SendMessage").len(), 1);
    let replies = tg.sent_messages(chat.id);
    assert_eq!(replies[0]["reply_to_message"]["text"], json!("ping"));

    shutdown.shutdown().expect("dispatcher is running").await;
    task.await.unwrap();
    assert_eq!(tg.pending_updates(), 0);
    assert_eq!(tg.confirmed_offset(), 2);
    assert_eq!(tg.requests("getMe").len(), 1);
    assert_eq!(tg.requests("getWebhookInfo").len(), 1);
    assert!(tg
        .requests("getUpdates")
        .iter()
        .any(|r| r["timeout"].as_u64() > Some(0)));
}
