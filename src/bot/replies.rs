//! What the bot does with an ordinary message: maybe a reaction, maybe a reply.

use super::ctx::Ctx;
use super::outbox::{record_own, reply_request};
use super::prompts::prompt;
use super::{api, record};
use crate::reply::EngineError;
use crate::store::MessageRef;
use crate::texts::Lang;
use crate::tokens;
use std::time::Instant;
use teloxide::prelude::*;
use teloxide::types::{Me, ReactionType};

/// Emoji the bot reacts with (all are among Telegram's allowed reactions).
const REACTIONS: [&str; 8] = ["👍", "❤", "🔥", "😁", "🤔", "👏", "🤝", "💯"];

/// An ordinary message (`stored`: as the batch stored it): maybe a reaction, maybe a reply.
pub async fn on_message(
    ctx: Ctx,
    msg: Message,
    stored: Option<MessageRef>,
    received: Instant,
) -> anyhow::Result<()> {
    let (Some(from), Some(stored)) = (msg.from.as_ref().filter(|u| !u.is_bot), stored) else {
        return Ok(());
    };
    // Messages from before start-up (minus the backlog window) are recorded, not answered.
    if msg.date.timestamp() < ctx.backlog_before {
        return Ok(());
    }
    let user = from.id.0 as i64;
    let chat = msg.chat.id.0;
    // From memory; the store is read (off the runtime) only for a chat or person not held.
    let (user_settings, chat_settings) = match ctx.settings.cached(user, chat) {
        Some(held) => held,
        None => {
            ctx.blocking(move |ctx| {
                let settings = &ctx.settings;
                Ok((
                    settings.user(&ctx.store, user)?,
                    settings.chat(&ctx.store, chat)?,
                ))
            })
            .await?
        }
    };
    let mood = ctx.mood(chat);
    if !user_settings.no_reactions
        && mood.reactions_fit()
        && rand::random::<f64>() < ctx.config.bot.reaction_chance
    {
        react(&ctx, &msg).await;
    }
    let reply = if msg.chat.is_private() {
        true
    } else if !chat_settings.replies {
        false
    } else if is_addressed(&ctx.me, &ctx.config.bot.names, &msg) {
        true
    } else {
        let quiet = chat_settings.quiet_hours_or(ctx.config.quiet_hours);
        let chance = mood.reply_chance(
            chat_settings
                .reply_chance
                .unwrap_or(ctx.config.bot.reply_chance),
        );
        !quiet.contains(ctx.config.local_hour(msg.date.timestamp()))
            && rand::random::<f64>() < chance
    };
    if !reply || !ctx.limiter.allow(chat, Some(user), Instant::now()) {
        return Ok(());
    }
    let lang = Lang::of(from.language_code.as_deref());
    let title = record::chat_info(&msg.chat).title;
    let topic = stored.topic;
    let prompt = prompt(&ctx, chat, topic, title, Some(stored), lang, false).await?;
    let reply = match ctx.responder.reply(&prompt).await {
        Ok(reply) => reply,
        // Too little history for the offline engine: staying silent is the right answer.
        Err(EngineError::NothingToSay) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    ctx.metrics.reply_latency.observe(received.elapsed());
    let sent = ctx.call(reply_request(&ctx, &msg, reply.text)).await?;
    ctx.metrics.reply_sent(reply.engine);
    record_own(&ctx, &sent).await
}

/// Whether the message speaks to the bot: a private chat, a reply to one of its messages, its
/// @username, or one of its configured names as a whole word.
fn is_addressed(me: &Me, names: &[String], msg: &Message) -> bool {
    if msg.chat.is_private() {
        return true;
    }
    if msg
        .reply_to_message()
        .and_then(|m| m.from.as_ref())
        .is_some_and(|u| u.id == me.id)
    {
        return true;
    }
    let text = tokens::fold(msg.text().or(msg.caption()).unwrap_or_default());
    if let Some(username) = me.username.as_deref() {
        if text.contains(&format!("@{}", username.to_lowercase())) {
            return true;
        }
    }
    calls_by_name(&text, names)
}

/// Whether folded `text` holds one of `names` as a word, also with a Ukrainian case ending
/// ("Кіпере", "Кіперу") or inside a compound ("Кіпер-бот").
fn calls_by_name(text: &str, names: &[String]) -> bool {
    let mut words = Vec::new();
    for word in tokens::words(text) {
        words.push(word);
        if word.contains('-') {
            words.extend(word.split('-'));
        }
    }
    names.iter().any(|name| {
        let name = tokens::fold(name);
        words.iter().any(|w| {
            *w == name || (w.starts_with(&name) && w.chars().count() <= name.chars().count() + 2)
        })
    })
}

/// Sets an emoji reaction; failures are counted, not retried (a reaction is not worth it).
async fn react(ctx: &Ctx, msg: &Message) {
    let emoji = REACTIONS[rand::random_range(0..REACTIONS.len())];
    let request = ctx
        .bot
        .set_message_reaction(msg.chat.id, msg.id)
        .reaction(vec![ReactionType::Emoji {
            emoji: emoji.into(),
        }]);
    match request.await {
        Ok(_) => {
            ctx.metrics.reactions_sent.inc();
        }
        Err(e) => ctx.metrics.api_error(api::error_kind(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_calls_the_bot_as_a_word_with_an_ending_or_in_a_compound() {
        let names = [
            "Кіпер".to_string(),
            "keeper".to_string(),
            "Бот-друг".to_string(),
        ];
        let calls = |text: &str| calls_by_name(&tokens::fold(text), &names);
        for text in [
            "Кіпер, привіт",
            "кіпере!",
            "Дякую, Кіперу",
            "Кіпер-бот, ну",
            "hey KEEPER",
        ] {
            assert!(calls(text), "{text}");
        }
        for text in [
            "Кіперчиками",
            "skeeper",
            "кіп ер",
            "про кіпарис",
            "бот друг",
        ] {
            assert!(!calls(text), "{text}");
        }
    }
}
