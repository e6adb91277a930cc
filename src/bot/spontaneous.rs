//! Posts the bot makes on its own, into chats where people are actually talking right now.

use super::ctx::Ctx;
use super::outbox::record_own;
use super::prompts::prompt;
use crate::reply::EngineError;
use crate::store::MessageKind;
use crate::texts::Lang;
use teloxide::prelude::*;
use teloxide::types::{MessageId, ThreadId};
use teloxide::RequestError;

/// Looks for one eligible chat and posts into it. Returns the chat posted to, if any.
///
/// A chat is eligible when it is a group, had at least `min_messages` within the window (real
/// activity, not merely a chat once seen), allows spontaneous posts, is outside its quiet hours,
/// and its cooldown (kept in the store, so restarts do not reset it) has passed. Among eligible
/// chats the busiest, or one whose mood turned negative, is chosen (see
/// [`super::policy::Mood::spontaneous_priority`]); ties are drawn at random.
pub async fn post_once(ctx: &Ctx) -> anyhow::Result<Option<i64>> {
    let config = &ctx.config.spontaneous;
    let now = chrono::Utc::now().timestamp();
    let since = now - config.window_minutes as i64 * 60;
    let min_messages = config.min_messages.max(1);
    let cooldown = config.cooldown_hours as i64 * 3600;
    let quiet_default = ctx.config.quiet_hours;
    let local_hour = ctx.config.local_hour(now);
    let eligible = ctx.blocking(move |ctx| {
        let store = &ctx.store;
        let mut eligible = Vec::new();
        for chat in store.active_chats(since) {
            if chat.chat_id > 0 {
                continue;
            }
            let recent = store.recent(chat.chat_id, min_messages)?;
            let busy =
                recent.len() >= min_messages && recent.iter().all(|m| m.time >= since && !m.is_bot);
            if !busy {
                continue;
            }
            // In a forum, the post joins the topic of the newest message people wrote (a service
            // message may be the one that closed its topic).
            let topic = recent
                .iter()
                .rev()
                .find(|m| m.kind != MessageKind::Service)
                .and_then(|m| m.topic);
            let s = ctx.settings.chat(store, chat.chat_id)?;
            let quiet = s.quiet_hours_or(quiet_default);
            let cooled = s.last_spontaneous.is_none_or(|t| now - t >= cooldown);
            if s.spontaneous && s.replies && cooled && !quiet.contains(local_hour) {
                eligible.push((chat.chat_id, topic));
            }
        }
        Ok(eligible)
    });
    let eligible = eligible.await?;
    // A tense chat is worth a calm word only from a language model: the offline engine has none
    // and would only use up the chat's cooldown.
    let calm_words = ctx.responder.has_language_model();
    let moods: Vec<_> = eligible.iter().map(|&(chat, _)| ctx.mood(chat)).collect();
    let priorities: Vec<f64> = moods
        .iter()
        .map(|mood| {
            if mood.tense() && !calm_words {
                f64::NEG_INFINITY
            } else {
                mood.spontaneous_priority()
            }
        })
        .collect();
    let Some(best) = priorities
        .iter()
        .copied()
        .reduce(f64::max)
        .filter(|p| p.is_finite())
    else {
        return Ok(None);
    };
    let first: Vec<(i64, Option<i32>)> = eligible
        .iter()
        .zip(&priorities)
        .filter(|(_, &p)| p == best)
        .map(|(&chat, _)| chat)
        .collect();
    let (chat_id, topic) = first[rand::random_range(0..first.len())];
    // The cooldown is written before posting: a crash after the post must not post again.
    let title = ctx
        .blocking(move |ctx| {
            ctx.settings
                .change_chat(&ctx.store, chat_id, |s| s.last_spontaneous = Some(now))?;
            Ok(ctx.store.chat_info(chat_id).map(|info| info.title))
        })
        .await?
        .unwrap_or_default();
    let prompt = prompt(ctx, chat_id, topic, title, None, Lang::Uk, true).await?;
    let reply = match ctx.responder.reply(&prompt).await {
        Ok(reply) => reply,
        Err(EngineError::NothingToSay) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let request = ctx.bot.send_message(ChatId(chat_id), reply.text.clone());
    let sent = match topic {
        None => ctx.call(request).await?,
        Some(topic) => {
            let in_topic = request.message_thread_id(ThreadId(MessageId(topic)));
            match ctx.call(in_topic).await {
                // The topic was closed or deleted since: the post goes to the General topic
                // rather than the chat losing its turn.
                Err(RequestError::Api(e)) => {
                    tracing::info!(chat = chat_id, topic, error = %e, "topic refused a post");
                    ctx.call(ctx.bot.send_message(ChatId(chat_id), reply.text))
                        .await?
                }
                other => other?,
            }
        }
    };
    ctx.metrics.spontaneous_posts.inc();
    ctx.metrics.reply_sent(reply.engine);
    record_own(ctx, &sent).await?;
    tracing::info!(chat = chat_id, engine = reply.engine, "spontaneous post");
    Ok(Some(chat_id))
}
