//! What the bot sends, and the record of it: Telegram does not send a bot its own messages as
//! updates, so each one is stored here as it is sent, and the history (context, statistics) has
//! both sides of the conversation.

use super::ctx::{Ctx, TgBot};
use super::record;
use crate::texts::{Lang, Phrase};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters, User};

/// The language to answer `user` in.
pub fn lang_of(user: Option<&User>) -> Lang {
    Lang::of(user.and_then(|u| u.language_code.as_deref()))
}

/// Replies to `msg` and records the reply.
pub async fn say(ctx: &Ctx, msg: &Message, text: impl Into<String>) -> anyhow::Result<()> {
    say_with(ctx, msg, text, None).await
}

/// Replies to `msg` with buttons under the reply, and records it.
pub async fn say_with(
    ctx: &Ctx,
    msg: &Message,
    text: impl Into<String>,
    keyboard: Option<InlineKeyboardMarkup>,
) -> anyhow::Result<()> {
    let mut request = reply_request(ctx, msg, text.into());
    if let Some(keyboard) = keyboard {
        request = request.reply_markup(keyboard);
    }
    let sent = ctx.call(request).await?;
    record_own(ctx, &sent).await
}

/// The request that replies to `msg` with `text`, in the forum topic `msg` is in.
pub fn reply_request(ctx: &Ctx, msg: &Message, text: String) -> <TgBot as Requester>::SendMessage {
    let request = ctx
        .bot
        .send_message(msg.chat.id, text)
        .reply_parameters(ReplyParameters::new(msg.id));
    match record::topic(msg) {
        Some(topic) => request.message_thread_id(topic),
        None => request,
    }
}

/// Answers an admin command: in a private chat directly; from a group, privately to the admin
/// (store-wide figures are not for every member), with a short note in the group.
pub async fn say_privately(
    ctx: &Ctx,
    msg: &Message,
    lang: Lang,
    text: String,
) -> anyhow::Result<()> {
    let Some(admin) = msg.from.as_ref() else {
        return Ok(());
    };
    if msg.chat.is_private() {
        return say(ctx, msg, text).await;
    }
    match ctx.call(ctx.bot.send_message(admin.id, text)).await {
        Ok(sent) => {
            record_own(ctx, &sent).await?;
            say(ctx, msg, Phrase::SentPrivately.text(lang)).await
        }
        Err(e) if cannot_reach_privately(&e) => {
            say(ctx, msg, Phrase::NeedsPrivateChat.text(lang)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Errors that mean the user never started a private chat with the bot (or blocked it).
pub fn cannot_reach_privately(e: &teloxide::RequestError) -> bool {
    use teloxide::ApiError::*;
    matches!(
        e,
        teloxide::RequestError::Api(
            CantInitiateConversation | BotBlocked | ChatNotFound | UserDeactivated
        )
    )
}

/// Replaces the text of the message a button was on (its question becomes the outcome); a
/// failure only leaves the old text.
pub async fn replace_text(ctx: &Ctx, message: Option<&Message>, text: &str) {
    if let Some(m) = message {
        let _ = ctx
            .call(ctx.bot.edit_message_text(m.chat.id, m.id, text))
            .await;
    }
}

/// Stores a message the bot sent.
pub async fn record_own(ctx: &Ctx, sent: &Message) -> anyhow::Result<()> {
    let message = record::to_stored(sent);
    ctx.blocking(move |ctx| Ok(ctx.store.save_message(message)?))
        .await
}

/// No link previews: results and summaries link many messages, and a preview of the first
/// would push the text down.
pub fn no_preview() -> LinkPreviewOptions {
    LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}
