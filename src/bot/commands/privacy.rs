//! `/forget_me`: someone's messages and profile deleted in this chat at once, and everywhere
//! after they confirm with a button.

use crate::bot::buttons::Button;
use crate::bot::ctx::Ctx;
use crate::bot::outbox::{replace_text, say_with};
use crate::search::Deletion;
use crate::texts::{self, Lang, Phrase};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, User};

/// `/forget_me`: this chat at once (in a group), then the button that deletes everywhere.
pub async fn forget_me(ctx: &Ctx, msg: &Message, lang: Lang) -> anyhow::Result<()> {
    let Some(user) = msg.from.as_ref().map(|u| u.id.0) else {
        return Ok(());
    };
    let keyboard = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(
        Phrase::ForgetEverywhereButton.text(lang),
        Button::ForgetEverywhere { user }.data(),
    )]]);
    if msg.chat.is_private() {
        let ask = Phrase::ForgetEverywhereAsk.text(lang);
        return say_with(ctx, msg, ask, Some(keyboard)).await;
    }
    let (chat, user) = (msg.chat.id.0, user as i64);
    let deleted = ctx
        .blocking(move |ctx| {
            let n = ctx.store.delete_user_in_chat(user, chat)?;
            ctx.profiles.forget(Some(chat), Some(user))?;
            ctx.store.flush()?;
            ctx.search.forget_deleted([chat], Deletion::Asked);
            Ok(n)
        })
        .await?;
    ctx.history_changed(Some(chat)).await?;
    let text = format!(
        "{} ({})",
        Phrase::ForgotHere.text(lang),
        texts::messages(lang, deleted)
    );
    say_with(ctx, msg, text, Some(keyboard)).await
}

/// The "delete everywhere" button of `user`, pressed by `by`; returns the short answer.
pub async fn forget_everywhere(
    ctx: &Ctx,
    by: &User,
    user: u64,
    message: Option<&Message>,
    lang: Lang,
) -> anyhow::Result<String> {
    if user != by.id.0 {
        return Ok(Phrase::NotYourButton.text(lang).into());
    }
    let user = user as i64;
    let deleted = ctx
        .blocking(move |ctx| {
            let store = &ctx.store;
            let chats: Vec<i64> = store
                .chats()
                .into_iter()
                .filter(|&chat| store.user_total_in_chat(chat, user) > 0)
                .collect();
            let n = store.delete_user(user)?;
            ctx.profiles.forget(None, Some(user))?;
            // Their opt-outs stay, so that the bot keeps respecting them; nothing else of
            // theirs does.
            ctx.settings.forget_user_if_default(store, user)?;
            store.flush()?;
            ctx.search.forget_deleted(chats, Deletion::Asked);
            Ok(n)
        })
        .await?;
    ctx.history_changed(None).await?;
    let text = format!(
        "{} ({})",
        Phrase::ForgotEverywhere.text(lang),
        texts::messages(lang, deleted)
    );
    replace_text(ctx, message, &text).await;
    Ok(text)
}
