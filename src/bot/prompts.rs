//! The prompts the reply engines answer: the chat's recent messages, the message answered, the
//! tone of the chat's mood, a hint of how the person answered writes, and the older messages a
//! reply remembers.

use super::ctx::Ctx;
use crate::recall;
use crate::reply::{Prompt, CONTEXT_MESSAGES};
use crate::store::{Message, MessageRef};
use crate::texts::Lang;
use std::cell::RefCell;
use std::collections::HashMap;

/// The prompt for a reply (`replying_to`) or a spontaneous post, in a tone that fits the chat's
/// mood and with a hint of how the person answered writes (unless they opted out of profiles);
/// for spontaneous posts, messages of users who opted out of mentions are left out. The context
/// is the recent messages of `topic` (in a forum, the topic the conversation is in). A reply
/// written by a language model also remembers the few older messages of this chat most related
/// to what was asked (none of people who opted out of mentions).
pub async fn prompt(
    ctx: &Ctx,
    chat_id: i64,
    topic: Option<i32>,
    chat_title: String,
    replying_to: Option<MessageRef>,
    lang: Lang,
    spontaneous: bool,
) -> anyhow::Result<Prompt> {
    let person = replying_to.as_ref().and_then(|m| m.user_id);
    // The offline engine reads no prompt text: only a model needs what is remembered.
    let asked = replying_to
        .as_ref()
        .filter(|_| !spontaneous && ctx.responder.has_language_model())
        .map(|m| (m.text.clone(), m.time));
    let now = chrono::Utc::now().timestamp();
    let (context, hint, remembered) = ctx
        .blocking(move |ctx| {
            let hint = match person {
                Some(user) if !ctx.profiles.opted_out(user) => ctx
                    .profiles
                    .get(chat_id, user)?
                    .and_then(|p| p.hint(ctx.config.bot.utc_offset_hours)),
                _ => None,
            };
            let mut context =
                ctx.store
                    .recent_in_topic(chat_id, topic, ctx.config.bot.context_messages)?;
            let hidden = RefCell::new(HashMap::new());
            let left_out = |m: &Message| -> anyhow::Result<bool> {
                let Some(user) = m.user_id else {
                    return Ok(false);
                };
                if let Some(&left_out) = hidden.borrow().get(&user) {
                    return Ok(left_out);
                }
                let left_out = ctx.settings.user(&ctx.store, user)?.no_mentions;
                hidden.borrow_mut().insert(user, left_out);
                Ok(left_out)
            };
            if spontaneous {
                let mut keep = Vec::with_capacity(context.len());
                for m in context {
                    if !left_out(&m)? {
                        keep.push(m);
                    }
                }
                context = keep;
            }
            let remembered = match asked {
                Some((text, time)) => {
                    // What the transcript shows of the context is not remembered again.
                    let shown = context.len().saturating_sub(CONTEXT_MESSAGES);
                    let before = context.get(shown).map_or(time, |m| m.time);
                    let mut names = ctx.config.bot.names.clone();
                    names.push(ctx.me.user.first_name.clone());
                    let found = recall::remembered(
                        &ctx.search,
                        chat_id,
                        topic,
                        &text,
                        &names,
                        before,
                        now,
                        |m| left_out(m).is_ok_and(|out| !out),
                    );
                    // Remembering is a bonus: a search that fails leaves the reply as it was.
                    found.unwrap_or_else(|e| {
                        tracing::warn!(chat = chat_id, error = %e, "no older messages for the reply");
                        Vec::new()
                    })
                }
                None => Vec::new(),
            };
            Ok((context, hint, remembered))
        })
        .await?;
    Ok(Prompt {
        persona: ctx.config.bot.persona.clone(),
        bot_name: ctx.me.user.first_name.clone(),
        chat_title,
        chat_id,
        context,
        remembered,
        utc_offset_secs: ctx.config.utc_offset_secs(),
        replying_to,
        language: lang.language(),
        hint,
        tone: ctx.mood(chat_id).tone(),
    })
}
