//! `/settings`: someone's own choices (reactions, mentions, profile) as buttons, and a chat's
//! (replies, unprompted chance, quiet hours, spontaneous posts, the daily digest) for its
//! administrators.

use crate::bot::buttons::{Button, Toggle};
use crate::bot::ctx::Ctx;
use crate::bot::outbox::{say, say_with};
use crate::bot::settings::{self, ChatSettings, UserSettings};
use crate::texts::{self, ChatSettingsView, Lang, Phrase, UserSettingsView};
use teloxide::prelude::*;
use teloxide::types::{Chat, InlineKeyboardButton, InlineKeyboardMarkup, User};

/// `/settings` shows them; `/settings chance X`, `/settings quiet A-B|off` and
/// `/settings digest H|off` change the chat's.
pub async fn command(ctx: &Ctx, msg: &Message, lang: Lang, args: &str) -> anyhow::Result<()> {
    let Some(from) = msg.from.as_ref() else {
        return Ok(());
    };
    if args.is_empty() {
        let (text, keyboard) = view(ctx, &msg.chat, from, lang).await?;
        return say_with(ctx, msg, text, Some(keyboard)).await;
    }
    if !can_change_chat(ctx, &msg.chat, from).await? {
        return say(ctx, msg, Phrase::ChatAdminsOnly.text(lang)).await;
    }
    let (what, value) = args.split_once(' ').unwrap_or((args, ""));
    let change: Box<dyn FnOnce(&mut ChatSettings) + Send> = match what {
        "chance" | "шанс" => match value.trim().replace(',', ".").parse::<f64>() {
            Ok(chance) if (0.0..=1.0).contains(&chance) => {
                Box::new(move |c| c.reply_chance = Some(chance))
            }
            _ => return say(ctx, msg, Phrase::SettingsUsage.text(lang)).await,
        },
        "quiet" | "тиша" => match settings::parse_quiet_hours(value) {
            Some(hours) => Box::new(move |c| c.quiet_hours = hours),
            None => return say(ctx, msg, Phrase::SettingsUsage.text(lang)).await,
        },
        "digest" | "підсумок" => match settings::parse_digest_hour(value) {
            Some(hour) => Box::new(move |c| c.digest_hour = hour),
            None => return say(ctx, msg, Phrase::SettingsUsage.text(lang)).await,
        },
        _ => return say(ctx, msg, Phrase::SettingsUsage.text(lang)).await,
    };
    change_chat(ctx, msg.chat.id.0, change).await?;
    say(ctx, msg, Phrase::Saved.text(lang)).await
}

/// A settings button; redraws the settings message and returns the short answer.
pub async fn toggle(
    ctx: &Ctx,
    message: &Message,
    user: &User,
    lang: Lang,
    toggle: Toggle,
) -> anyhow::Result<String> {
    let flip_mine: fn(&mut UserSettings) = match toggle {
        Toggle::Reactions => |s| s.no_reactions = !s.no_reactions,
        Toggle::Mentions => |s| s.no_mentions = !s.no_mentions,
        Toggle::Profile => |s| s.no_profile = !s.no_profile,
        Toggle::Replies | Toggle::Spontaneous | Toggle::Digest => {
            if !can_change_chat(ctx, &message.chat, user).await? {
                return Ok(Phrase::ChatAdminsOnly.text(lang).into());
            }
            let flip_chat: fn(&mut ChatSettings) = match toggle {
                Toggle::Replies => |c| c.replies = !c.replies,
                Toggle::Digest => |c| {
                    c.digest_hour = match c.digest_hour {
                        Some(_) => None,
                        None => Some(settings::DEFAULT_DIGEST_HOUR),
                    }
                },
                _ => |c| c.spontaneous = !c.spontaneous,
            };
            change_chat(ctx, message.chat.id.0, Box::new(flip_chat)).await?;
            return redraw(ctx, message, user, lang).await;
        }
    };
    let id = user.id.0 as i64;
    // Read, flip, store and apply in one step under the profiles lock, so that quick presses
    // apply in order; turning profiles off deletes them at once.
    ctx.blocking(move |ctx| {
        ctx.profiles.change_opt_out(id, || {
            let mine = ctx.settings.change_user(&ctx.store, id, flip_mine)?;
            anyhow::Ok(mine.no_profile)
        })
    })
    .await?;
    redraw(ctx, message, user, lang).await
}

/// Redraws the settings message a button was on after a change.
async fn redraw(ctx: &Ctx, message: &Message, user: &User, lang: Lang) -> anyhow::Result<String> {
    let (text, keyboard) = view(ctx, &message.chat, user, lang).await?;
    let _ = ctx
        .call(
            ctx.bot
                .edit_message_text(message.chat.id, message.id, text)
                .reply_markup(keyboard),
        )
        .await;
    Ok(Phrase::Saved.text(lang).into())
}

/// Changes a chat's settings and stores them, off the runtime.
async fn change_chat(
    ctx: &Ctx,
    chat: i64,
    change: Box<dyn FnOnce(&mut ChatSettings) + Send>,
) -> anyhow::Result<()> {
    ctx.blocking(move |ctx| {
        ctx.settings.change_chat(&ctx.store, chat, change)?;
        Ok(())
    })
    .await
}

/// The settings message and its buttons: the user's own, and in a group the chat's.
async fn view(
    ctx: &Ctx,
    chat: &Chat,
    user: &User,
    lang: Lang,
) -> anyhow::Result<(String, InlineKeyboardMarkup)> {
    let (user_id, chat_id, group) = (user.id.0 as i64, chat.id.0, !chat.is_private());
    let (mine, theirs) = ctx
        .blocking(move |ctx| {
            let chat = match group {
                true => Some(ctx.settings.chat(&ctx.store, chat_id)?),
                false => None,
            };
            Ok((ctx.settings.user(&ctx.store, user_id)?, chat))
        })
        .await?;
    let mine = UserSettingsView {
        reactions: !mine.no_reactions,
        mentions: !mine.no_mentions,
        profile: !mine.no_profile,
    };
    let theirs = theirs.map(|c| ChatSettingsView {
        replies: c.replies,
        chance: c.reply_chance.unwrap_or(ctx.config.bot.reply_chance),
        quiet: c
            .quiet_hours
            .unwrap_or((ctx.config.quiet_hours.start, ctx.config.quiet_hours.end)),
        spontaneous: c.spontaneous,
        digest: c.digest_hour,
    });
    let button = |phrase: Phrase, toggle| {
        InlineKeyboardButton::callback(phrase.text(lang), Button::Toggle(toggle).data())
    };
    let mut rows = vec![
        vec![button(Phrase::ToggleReactions, Toggle::Reactions)],
        vec![button(Phrase::ToggleMentions, Toggle::Mentions)],
        vec![button(Phrase::ToggleProfile, Toggle::Profile)],
    ];
    if theirs.is_some() {
        rows.push(vec![
            button(Phrase::ToggleReplies, Toggle::Replies),
            button(Phrase::ToggleSpontaneous, Toggle::Spontaneous),
        ]);
        rows.push(vec![button(Phrase::ToggleDigest, Toggle::Digest)]);
    }
    let text = texts::settings_view(lang, &mine, theirs.as_ref());
    Ok((text, InlineKeyboardMarkup::new(rows)))
}

/// Chat settings are for the chat's administrators (anyone in a private chat).
async fn can_change_chat(ctx: &Ctx, chat: &Chat, user: &User) -> anyhow::Result<bool> {
    if chat.is_private() || ctx.is_admin(Some(user)) {
        return Ok(true);
    }
    let member = ctx.call(ctx.bot.get_chat_member(chat.id, user.id)).await?;
    Ok(member.is_privileged())
}
