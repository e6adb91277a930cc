//! The prompts the reply engines answer: the chat's recent messages, the message answered, the
//! tone of the chat's mood and a hint of how the person answered writes.

use super::ctx::Ctx;
use crate::reply::Prompt;
use crate::store::MessageRef;
use crate::texts::Lang;
use std::collections::HashMap;

/// The prompt for a reply (`replying_to`) or a spontaneous post, in a tone that fits the chat's
/// mood and with a hint of how the person answered writes (unless they opted out of profiles);
/// for spontaneous posts, messages of users who opted out of mentions are left out. The context
/// is the recent messages of `topic` (in a forum, the topic the conversation is in).
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
    let (context, hint) = ctx
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
            if spontaneous {
                let mut hidden = HashMap::new();
                let mut keep = Vec::with_capacity(context.len());
                for m in context {
                    let left_out = match m.user_id {
                        Some(user) => match hidden.get(&user) {
                            Some(&left_out) => left_out,
                            None => {
                                let left_out = ctx.settings.user(&ctx.store, user)?.no_mentions;
                                hidden.insert(user, left_out);
                                left_out
                            }
                        },
                        None => false,
                    };
                    if !left_out {
                        keep.push(m);
                    }
                }
                context = keep;
            }
            Ok((context, hint))
        })
        .await?;
    Ok(Prompt {
        persona: ctx.config.bot.persona.clone(),
        bot_name: ctx.me.user.first_name.clone(),
        chat_title,
        chat_id,
        context,
        replying_to,
        language: lang.language(),
        hint,
        tone: ctx.mood(chat_id).tone(),
    })
}
