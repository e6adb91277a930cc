//! What the bot does with an update once it is stored: commands, replies, reactions, buttons.
//! Routed by a dptree, as in teloxide's examples.

use super::commands::{self, Command};
use super::texts::Lang;
use super::{record, settings, Ctx};
use crate::reply::{EngineError, Prompt};
use crate::store::MessageRef;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use teloxide::dispatching::{DpHandlerDescription, HandlerExt, UpdateFilterExt};
use teloxide::prelude::*;
use teloxide::types::{Me, ReactionType, ReplyParameters};

type HandlerResult = anyhow::Result<()>;

/// Emoji the bot reacts with (all are among Telegram's allowed reactions).
const REACTIONS: [&str; 8] = ["👍", "❤", "🔥", "😁", "🤔", "👏", "🤝", "💯"];

/// Runs the handlers for one update; errors are counted and logged, never fatal.
pub async fn dispatch(ctx: Ctx, update: Update, received: Instant) {
    let _running = InFlight::new(&ctx.metrics.handlers_in_flight);
    let me = ctx.me.clone();
    let deps = dptree::deps![ctx.clone(), me, update, received];
    if let std::ops::ControlFlow::Break(Err(e)) = ctx.handlers.dispatch(deps).await {
        ctx.note_error(format!("handling an update: {e:#}"));
    }
}

/// Counts a running handler; the count drops even if the handler panics or is cancelled.
struct InFlight<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a std::sync::atomic::AtomicU64) -> Self {
        gauge.fetch_add(1, Relaxed);
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// The routing of updates; built once per run (see [`super::Shared::handlers`]).
pub type Tree = Handler<'static, HandlerResult, DpHandlerDescription>;

/// Builds the routing of updates to handlers.
pub fn tree() -> Tree {
    dptree::entry()
        .branch(
            Update::filter_message()
                .branch(
                    dptree::entry()
                        .filter_command::<Command>()
                        .endpoint(commands::handle),
                )
                // Unknown commands and commands for other bots are ignored, not sent to an LLM.
                .branch(
                    dptree::filter(|m: Message| m.text().is_some_and(|t| t.starts_with('/')))
                        .endpoint(|| async { Ok(()) }),
                )
                .endpoint(on_message),
        )
        .branch(Update::filter_callback_query().endpoint(commands::on_button))
}

/// An ordinary message: maybe a reaction, maybe a reply.
async fn on_message(ctx: Ctx, msg: Message, received: Instant) -> HandlerResult {
    let Some(from) = msg.from.as_ref().filter(|u| !u.is_bot) else {
        return Ok(());
    };
    // Messages from before start-up (minus the backlog window) are recorded, not answered.
    if msg.date.timestamp() < ctx.backlog_before {
        return Ok(());
    }
    let user = from.id.0 as i64;
    let chat = msg.chat.id.0;
    let user_settings = settings::user(&ctx.store, user)?;
    let mood = ctx.mood(chat);
    if !user_settings.no_reactions
        && mood.reactions_fit()
        && rand::random::<f64>() < ctx.config.bot.reaction_chance
    {
        react(&ctx, &msg).await;
    }
    let chat_settings = settings::chat(&ctx.store, chat)?;
    let addressed = is_addressed(&ctx.me, &ctx.config.bot.names, &msg);
    let reply = if msg.chat.is_private() {
        true
    } else if !chat_settings.replies {
        false
    } else if addressed {
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
    let replying_to = Arc::new(record::to_stored(&msg));
    let title = record::chat_info(&msg.chat).title;
    let prompt = prompt(&ctx, chat, title, Some(replying_to), lang, false).await?;
    let reply = match ctx.responder.reply(&prompt).await {
        Ok(reply) => reply,
        // Too little history for the offline engine: staying silent is the right answer.
        Err(EngineError::NothingToSay) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    ctx.metrics.reply_latency.observe(received.elapsed());
    let request = ctx
        .bot
        .send_message(msg.chat.id, reply.text)
        .reply_parameters(ReplyParameters::new(msg.id));
    let sent = ctx.call(request).await?;
    ctx.metrics.reply_sent(reply.engine);
    record_own(&ctx, &sent).await
}

/// Whether the message speaks to the bot: a private chat, a reply to one of its messages, its
/// @username, or one of its configured names as a whole word.
pub fn is_addressed(me: &Me, names: &[String], msg: &Message) -> bool {
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
    let text = msg
        .text()
        .or(msg.caption())
        .unwrap_or_default()
        .to_lowercase();
    if let Some(username) = me.username.as_deref() {
        if text.contains(&format!("@{}", username.to_lowercase())) {
            return true;
        }
    }
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’' || c == 'ʼ'))
        .filter(|w| !w.is_empty())
        .collect();
    names.iter().any(|name| {
        let name = name.to_lowercase();
        // A name may take Ukrainian case endings: "Кіпере", "Кіперу".
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
            ctx.metrics.reactions_sent.fetch_add(1, Relaxed);
        }
        Err(e) => ctx.metrics.api_error(super::error_kind(&e)),
    }
}

/// The prompt for a reply (`replying_to`) or a spontaneous post, in a tone that fits the chat's
/// mood and with a hint of how the person answered writes (unless they opted out of profiles);
/// for spontaneous posts, messages of users who opted out of mentions are left out.
pub async fn prompt(
    ctx: &Ctx,
    chat_id: i64,
    chat_title: String,
    replying_to: Option<MessageRef>,
    lang: Lang,
    spontaneous: bool,
) -> anyhow::Result<Prompt> {
    let store = ctx.store.clone();
    let n = ctx.config.bot.context_messages;
    let hinted = ctx.clone();
    let person = replying_to.as_ref().and_then(|m| m.user_id);
    let (context, hint) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let hint = match person {
            Some(user) if !hinted.profiles.opted_out(user) => hinted
                .profiles
                .get(chat_id, user)?
                .and_then(|p| p.hint(hinted.config.bot.utc_offset_hours)),
            _ => None,
        };
        let mut context = store.recent(chat_id, n)?;
        if spontaneous {
            let mut opted_out = std::collections::HashMap::new();
            let mut keep = Vec::with_capacity(context.len());
            for m in context {
                let hidden = match m.user_id {
                    Some(user) => match opted_out.get(&user) {
                        Some(&hidden) => hidden,
                        None => {
                            let hidden = settings::user(&store, user)?.no_mentions;
                            opted_out.insert(user, hidden);
                            hidden
                        }
                    },
                    None => false,
                };
                if !hidden {
                    keep.push(m);
                }
            }
            context = keep;
        }
        Ok((context, hint))
    })
    .await??;
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

/// Stores a message the bot sent (Telegram does not send bots their own messages as updates).
pub async fn record_own(ctx: &Ctx, sent: &Message) -> HandlerResult {
    let store = ctx.store.clone();
    let message = record::to_stored(sent);
    tokio::task::spawn_blocking(move || store.save_message(message)).await??;
    Ok(())
}
