//! `/catchup` and `/ask`: the long memory, offline or with the language model.
//!
//! Both answer from this chat only (in a forum topic, `/catchup` covers that topic unless asked
//! `all`, and `/ask` ranks its messages first), read off the runtime, share the replies' rate
//! limits, and are not recorded as the bot's messages: a summary in the history would be
//! summarised and found again.

use crate::bot::ctx::Ctx;
use crate::bot::outbox::{no_preview, reply_request, say};
use crate::bot::record;
use crate::recall::cite::{self, Reading};
use crate::recall::{self, Catchup, Question, Scope, Window, MAX_SPAN_SECS};
use crate::search::{message_link, FindError, SearchError};
use crate::store::{ChatId, ChatInfo, Message as Stored};
use crate::texts::{self, Lang, Since};
use std::time::Instant;
use teloxide::prelude::*;
use teloxide::types::ParseMode;

/// The span of a catch-up when the asker has not written in the chat before.
const FIRST_TIME_SECS: i64 = 86_400;

/// Whether the asker may have another catch-up or answer now: each may read thousands of
/// messages and ask the language model, so they share the replies' limits. Past them the bot
/// stays silent, as with replies: a refusal each time would itself flood the chat.
fn allowed(ctx: &Ctx, msg: &Message) -> bool {
    let user = msg.from.as_ref().map(|u| u.id.0 as i64);
    ctx.limiter.allow(msg.chat.id.0, user, Instant::now())
}

/// `/catchup [span] [all]`.
pub async fn catchup(ctx: &Ctx, msg: &Message, lang: Lang, args: &str) -> anyhow::Result<()> {
    let args = match recall::parse_catchup_args(args) {
        Ok(args) => args,
        Err(e) => return say(ctx, msg, texts::catchup_refused(lang, &e)).await,
    };
    if !allowed(ctx, msg) {
        return Ok(());
    }
    let chat = msg.chat.id.0;
    let asker = msg.from.as_ref().map(|u| u.id.0 as i64);
    let command = msg.id.0;
    // The command's own date is "now": what came after it is not what was missed.
    let now = msg.date.timestamp();
    let scope = match args.whole_chat {
        true => Scope::Chat,
        false => Scope::Topic(record::topic(msg).map(|t| t.0 .0)),
    };
    let (since, catchup, info) = ctx
        .blocking(move |ctx| {
            let oldest = now - MAX_SPAN_SECS;
            let since = match (args.span, asker) {
                (Some(span), _) => Since::Span(span),
                (None, Some(asker)) => {
                    let store = &ctx.store;
                    match store.last_message_time(asker, chat, (oldest, now), command)? {
                        Some(last) => Since::LastMessage(last),
                        // The command itself is one of theirs.
                        None if store.user_total_in_chat(chat, asker) > 1 => Since::LongAgo,
                        None => Since::NoMessageYet,
                    }
                }
                (None, None) => Since::NoMessageYet,
            };
            let from = match since {
                Since::Span(span) => now - span,
                // Empty when they wrote in the command's second: nothing was missed.
                Since::LastMessage(last) => last + 1,
                Since::LongAgo => oldest,
                Since::NoMessageYet | Since::Digest => now - FIRST_TIME_SECS,
            };
            let window = Window {
                chat,
                scope,
                from,
                to: now,
            };
            let catchup = recall::catch_up(ctx.search.terms(), &ctx.store, &window, |_| true)?;
            Ok((since, catchup, ctx.store.chat_info(chat)))
        })
        .await?;
    let title = record::chat_info(&msg.chat).title;
    let text = render_catchup(ctx, lang, since, &catchup, &title, info.as_ref()).await;
    send_html(ctx, msg, text).await
}

/// A catch-up as the bot posts it (for `/catchup` and the daily digest): the language model's
/// summary when one is configured and answers with citations of the messages it was given,
/// else the offline selection.
pub async fn render_catchup(
    ctx: &Ctx,
    lang: Lang,
    since: Since,
    catchup: &Catchup,
    title: &str,
    info: Option<&ChatInfo>,
) -> String {
    let offset = ctx.config.utc_offset_secs();
    if catchup.coverage.messages == 0 {
        return texts::catchup_nothing(lang, since, offset);
    }
    let chat = catchup.window.chat;
    let links = links_in(chat, info);
    if !catchup.telling.is_empty() {
        let request = cite::summary_request(title, &catchup.telling, lang.language(), offset);
        if let Some(Ok(text)) = ctx.responder.complete(&request).await {
            match cite::cited(&text, catchup.telling.len()) {
                Reading::Cited(summary) => {
                    let text = texts::catchup(lang, since, catchup, Some(&summary), &links, offset);
                    if texts::fits(&text) {
                        return text;
                    }
                    tracing::warn!(
                        chat,
                        "the summary is too long to send; showing the offline one"
                    );
                }
                Reading::NoAnswer | Reading::Uncited => tracing::warn!(
                    chat,
                    "the summary cited no message it was given; showing the offline one"
                ),
            }
        }
    }
    texts::catchup(lang, since, catchup, None, &links, offset)
}

/// `/ask question`.
pub async fn ask(ctx: &Ctx, msg: &Message, lang: Lang, question: &str) -> anyhow::Result<()> {
    let question = question.trim().to_string();
    if question.is_empty() {
        return say(ctx, msg, texts::ask_usage(lang)).await;
    }
    if !allowed(ctx, msg) {
        return Ok(());
    }
    let chat = msg.chat.id.0;
    let topic = record::topic(msg).map(|t| t.0 .0);
    let now = msg.date.timestamp();
    let asked = question.clone();
    let found = ctx
        .blocking(move |ctx| {
            let question = Question {
                chat,
                text: &asked,
                topic,
                now,
            };
            let evidence = recall::evidence(&ctx.search, &question);
            Ok((evidence, ctx.store.chat_info(chat)))
        })
        .await?;
    let (evidence, info) = match found {
        (Ok(evidence), info) => (evidence, info),
        (Err(FindError::Index(SearchError::Damaged(why))), _) => {
            ctx.note_error(format!("search: {why}"));
            return say(ctx, msg, texts::search_unavailable(lang)).await;
        }
        (Err(e), _) => return Err(e.into()),
    };
    let offset = ctx.config.utc_offset_secs();
    let links = links_in(chat, info.as_ref());
    let mut text = None;
    if !evidence.context.is_empty() {
        let title = record::chat_info(&msg.chat).title;
        let asker = msg.from.as_ref().map(|u| u.full_name()).unwrap_or_default();
        let request = cite::answer_request(
            &title,
            &asker,
            &question,
            &evidence.context,
            lang.language(),
            offset,
        );
        if let Some(Ok(answer)) = ctx.responder.complete(&request).await {
            text = match cite::cited(&answer, evidence.context.len()) {
                Reading::NoAnswer => Some(texts::no_answer(
                    lang,
                    &question,
                    &evidence.hits,
                    &links,
                    evidence.incomplete,
                    offset,
                )),
                Reading::Cited(pieces) => Some(texts::answer(
                    lang,
                    &pieces,
                    &evidence.context,
                    &links,
                    offset,
                ))
                .filter(|text| texts::fits(text)),
                Reading::Uncited => {
                    tracing::warn!(
                        chat,
                        "the answer cited no message it was given; quoting instead"
                    );
                    None
                }
            };
        }
    }
    let text = text.unwrap_or_else(|| {
        texts::quotes(
            lang,
            &question,
            &evidence.hits,
            &links,
            evidence.incomplete,
            offset,
        )
    });
    send_html(ctx, msg, text).await
}

/// The links to this chat's messages (none in chats without message links).
fn links_in(chat: ChatId, info: Option<&ChatInfo>) -> impl Fn(&Stored) -> Option<String> + '_ {
    move |m: &Stored| message_link(chat, info, m.message_id, m.topic)
}

/// Replies in Telegram's HTML, without link previews, and not recorded.
async fn send_html(ctx: &Ctx, msg: &Message, text: String) -> anyhow::Result<()> {
    let request = reply_request(ctx, msg, text)
        .parse_mode(ParseMode::Html)
        .link_preview_options(no_preview());
    ctx.call(request).await?;
    Ok(())
}
