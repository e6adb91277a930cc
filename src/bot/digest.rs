//! The daily digest: at the local hour a chat's administrators chose in `/settings`, a
//! catch-up of the chat's last 24 hours, skipped when the day was quiet.

use super::commands::render_catchup;
use super::ctx::Ctx;
use super::outbox::no_preview;
use crate::recall::{self, Scope, Window};
use crate::reply::Language;
use crate::texts::{Lang, Since};
use teloxide::prelude::*;
use teloxide::types::ParseMode;

/// The span a digest covers.
const DAY: i64 = 86_400;

/// Posts the digest of every chat whose hour it is (by the bot's clock) and whose digest of
/// today is not done yet; returns the chats posted to. A chat whose day was quiet (fewer than
/// `digest.min_messages`) is marked done without a post.
pub async fn post_due(ctx: &Ctx) -> anyhow::Result<Vec<i64>> {
    let now = ctx.clock.now();
    let hour = ctx.config.local_hour(now);
    let offset = ctx.config.utc_offset_secs();
    // Once a local day: a digest moved to an earlier hour still comes the next day.
    let local_day = move |time: i64| (time + offset).div_euclid(DAY);
    let due: Vec<i64> = ctx
        .blocking(move |ctx| {
            let mut due = Vec::new();
            // Chats without a message for a day have nothing to digest.
            for chat in ctx.store.active_chats(now - DAY) {
                let settings = match ctx.settings.chat(&ctx.store, chat.chat_id) {
                    Ok(settings) => settings,
                    Err(e) => {
                        tracing::warn!(chat = chat.chat_id, error = %e, "no digest: its settings cannot be read");
                        continue;
                    }
                };
                let done_today = settings
                    .last_digest
                    .is_some_and(|last| local_day(last) == local_day(now));
                if settings.digest_hour == Some(hour) && !done_today {
                    due.push(chat.chat_id);
                }
            }
            Ok(due)
        })
        .await?;
    let mut posted = Vec::new();
    for chat in due {
        // Done for today before it is posted, whatever happens: a crash in between does not
        // post it twice, and a chat the bot cannot post to is not retried every minute.
        let marked = ctx
            .blocking(move |ctx| {
                ctx.settings
                    .change_chat(&ctx.store, chat, |c| c.last_digest = Some(now))?;
                Ok(())
            })
            .await;
        if let Err(e) = marked {
            ctx.note_error(format!(
                "the daily digest of chat {chat} cannot be marked: {e:#}"
            ));
            continue;
        }
        match post(ctx, chat, now).await {
            Ok(true) => posted.push(chat),
            Ok(false) => tracing::info!(chat, "a quiet day: no digest"),
            Err(e) => ctx.note_error(format!("the daily digest of chat {chat}: {e:#}")),
        }
    }
    Ok(posted)
}

/// Posts the digest of `chat` for the day before `now`; `false` when the day was quiet.
async fn post(ctx: &Ctx, chat: i64, now: i64) -> anyhow::Result<bool> {
    let window = Window {
        chat,
        scope: Scope::Chat,
        from: now - DAY,
        to: now,
    };
    let min_messages = ctx.config.digest.min_messages;
    let found = ctx
        .blocking(move |ctx| {
            // Nobody asked for it: people who opted out of mentions are not quoted.
            let catchup = recall::catch_up(ctx.search.terms(), &ctx.store, &window, |m| {
                m.user_id.is_none_or(|user| {
                    ctx.settings
                        .user(&ctx.store, user)
                        .is_ok_and(|s| !s.no_mentions)
                })
            })?;
            Ok((catchup, ctx.store.chat_info(chat)))
        })
        .await?;
    let (catchup, info) = found;
    if catchup.coverage.messages < min_messages {
        return Ok(false);
    }
    // The chat's own language: no one asked, so no one's Telegram language decides.
    let lang = match Language::detect(catchup.telling.iter().map(|m| m.text.as_str())) {
        Language::Ukrainian => Lang::Uk,
        Language::English => Lang::En,
    };
    let title = info.as_ref().map(|i| i.title.clone()).unwrap_or_default();
    let text = render_catchup(ctx, lang, Since::Digest, &catchup, &title, info.as_ref()).await;
    let request = ctx
        .bot
        .send_message(teloxide::types::ChatId(chat), text)
        .parse_mode(ParseMode::Html)
        .link_preview_options(no_preview());
    ctx.call(request).await?;
    Ok(true)
}
