//! `/search words`: ten results a page from this chat's history, with buttons to page on.
//!
//! The paging buttons carry only the offset: the query is read again from the `/search` message
//! the results reply to (Telegram sends it with the pressed message), so a button works for as
//! long as that message exists, and the asker of `from:me` stays the one who searched. Results
//! are not recorded as the bot's messages: a list of snippets in the history would be found by
//! the next search and would crowd replies' context.

use super::Command;
use crate::bot::buttons::Button;
use crate::bot::ctx::Ctx;
use crate::bot::outbox::{no_preview, reply_request, say};
use crate::bot::record;
use crate::search::{message_link, FindError, Found, Query, Request, SearchError};
use crate::texts::{self, Lang, ResultLine};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, ParseMode};
use teloxide::utils::command::BotCommands;

/// Results a page.
const PAGE: usize = 10;

/// `/search …`: the first page.
pub async fn search(ctx: &Ctx, msg: &Message, lang: Lang, args: &str) -> anyhow::Result<()> {
    let (text, keyboard) = match page(ctx, msg, lang, args, 0).await? {
        Ok(page) => page,
        Err(refusal) => return say(ctx, msg, refusal).await,
    };
    let mut request = reply_request(ctx, msg, text)
        .parse_mode(ParseMode::Html)
        .link_preview_options(no_preview());
    if let Some(keyboard) = keyboard {
        request = request.reply_markup(keyboard);
    }
    ctx.call(request).await?;
    Ok(())
}

/// A paging button under results: shows the page at `offset` in the same message.
pub async fn turn_page(
    ctx: &Ctx,
    message: Option<&Message>,
    lang: Lang,
    offset: usize,
) -> anyhow::Result<String> {
    let Some(results) = message else {
        return Ok(texts::search_expired(lang).into());
    };
    let asked = results.reply_to_message();
    let args = asked.and_then(|asked| {
        let text = asked.text()?;
        let username = ctx.me.user.username.as_deref().unwrap_or_default();
        match Command::parse(text, username) {
            Ok(Command::Search(args)) => Some(args),
            _ => None,
        }
    });
    let (Some(asked), Some(args)) = (asked, args) else {
        return Ok(texts::search_expired(lang).into());
    };
    let (text, keyboard) = match page(ctx, asked, lang, &args, offset).await? {
        Ok(page) => page,
        Err(refusal) => return Ok(refusal),
    };
    let mut request = ctx
        .bot
        .edit_message_text(results.chat.id, results.id, text)
        .parse_mode(ParseMode::Html)
        .link_preview_options(no_preview());
    if let Some(keyboard) = keyboard {
        request = request.reply_markup(keyboard);
    }
    match ctx.call(request).await {
        // The same page pressed twice: nothing to change.
        Err(teloxide::RequestError::Api(teloxide::ApiError::MessageNotModified)) | Ok(_) => {
            Ok(String::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// The results of `args` asked by `asked` at `offset`: the text and buttons, or why not.
async fn page(
    ctx: &Ctx,
    asked: &Message,
    lang: Lang,
    args: &str,
    offset: usize,
) -> anyhow::Result<Result<(String, Option<InlineKeyboardMarkup>), String>> {
    let query = match Query::parse(args) {
        Ok(query) => query,
        Err(e) => return Ok(Err(texts::search_refused(lang, &e))),
    };
    let chat = asked.chat.id.0;
    let asker = asked.from.as_ref().map(|u| u.id.0 as i64);
    let topic = record::topic(asked).map(|t| t.0 .0);
    let utc_offset_secs = ctx.config.utc_offset_secs();
    let searched = ctx
        .blocking(move |ctx| {
            let request = Request {
                query: &query,
                chat,
                asker,
                topic,
                now: chrono::Utc::now().timestamp(),
                utc_offset_secs,
                offset,
                limit: PAGE,
            };
            let found = match ctx.search.find(&request) {
                Ok(found) => found,
                Err(e) => return Ok(Err(e)),
            };
            let info = ctx.store.chat_info(chat);
            let links: Vec<Option<String>> = found
                .hits
                .iter()
                .map(|hit| {
                    let m = &hit.message;
                    message_link(chat, info.as_ref(), m.message_id, m.topic)
                })
                .collect();
            Ok(Ok((found, links)))
        })
        .await?;
    let (found, links): (Found, Vec<Option<String>>) = match searched {
        Ok(found) => found,
        Err(FindError::Query(e)) => return Ok(Err(texts::search_refused(lang, &e))),
        Err(FindError::Index(SearchError::Damaged(why))) => {
            ctx.note_error(format!("search: {why}"));
            return Ok(Err(texts::search_unavailable(lang).into()));
        }
        Err(FindError::Index(e)) => return Err(e.into()),
    };
    let lines: Vec<ResultLine> = found
        .hits
        .iter()
        .zip(links)
        .map(|(hit, link)| ResultLine { hit, link })
        .collect();
    let text = texts::search_results(lang, args, &found, &lines, offset, utc_offset_secs);
    let (back, more) = texts::search_page_buttons(lang);
    let mut row = Vec::new();
    if offset > 0 {
        let previous = Button::SearchPage {
            offset: offset.saturating_sub(PAGE) as u32,
        };
        row.push(InlineKeyboardButton::callback(back, previous.data()));
    }
    if found.more {
        let next = Button::SearchPage {
            offset: (offset + PAGE) as u32,
        };
        row.push(InlineKeyboardButton::callback(more, next.data()));
    }
    let keyboard = (!row.is_empty()).then(|| InlineKeyboardMarkup::new([row]));
    Ok(Ok((text, keyboard)))
}
