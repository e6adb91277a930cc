//! The bot's commands (a derived [`BotCommands`] enum) and its buttons, routed to the files of
//! their audience: statistics, search and the long memory for everyone, privacy, settings, and
//! the bot admins' commands.

mod admin;
mod privacy;
mod recall;
mod search;
mod settings;
mod stats;

pub use recall::render_catchup;

use super::buttons::Button;
use super::ctx::Ctx;
use super::outbox::{lang_of, say};
use crate::texts::{self, Lang, Phrase};
use teloxide::prelude::*;
use teloxide::types::{BotCommand, MaybeInaccessibleMessage};
use teloxide::utils::command::BotCommands;

/// Every command the bot answers. Descriptions live in [`texts::COMMANDS`] (two languages; a
/// test ties each variant to its row).
#[derive(BotCommands, Clone, Debug, PartialEq)]
#[command(rename_rule = "snake_case")]
pub enum Command {
    Start,
    Help,
    Stats,
    Top,
    Search(String),
    Catchup(String),
    Ask(String),
    Words,
    Analytics(String),
    Me,
    ForgetMe,
    Settings(String),
    Global,
    Health,
    Backup,
    Import,
    PurgeChat,
}

impl Command {
    /// Whether only the configured bot administrators may use it.
    fn admin_only(&self) -> bool {
        matches!(
            self,
            Command::Global
                | Command::Health
                | Command::Backup
                | Command::Import
                | Command::PurgeChat
        )
    }
}

/// Sets the command menu for English and Ukrainian users. A failure is logged, not fatal: the
/// commands work without a menu.
pub async fn set_menu(ctx: &Ctx) {
    for lang in [Lang::En, Lang::Uk] {
        let commands: Vec<BotCommand> = texts::menu(lang)
            .map(|(command, description)| BotCommand::new(command, description))
            .collect();
        let mut request = ctx.bot.set_my_commands(commands);
        if lang == Lang::Uk {
            request = request.language_code("uk");
        }
        if let Err(e) = ctx.call(request).await {
            tracing::warn!(error = %e, "could not set the command menu");
        }
    }
}

/// A command, routed to its audience's file.
pub async fn handle(ctx: Ctx, msg: Message, command: Command) -> anyhow::Result<()> {
    let lang = lang_of(msg.from.as_ref());
    if command.admin_only() && !ctx.is_admin(msg.from.as_ref()) {
        return say(&ctx, &msg, Phrase::AdminOnly.text(lang)).await;
    }
    match command {
        Command::Start => say(&ctx, &msg, texts::start(lang, &ctx.me.user.first_name)).await,
        Command::Help => say(&ctx, &msg, texts::help(lang)).await,
        Command::Stats => stats::stats(&ctx, &msg, lang).await,
        Command::Top => stats::top(&ctx, &msg, lang).await,
        Command::Search(args) => search::search(&ctx, &msg, lang, &args).await,
        Command::Catchup(args) => recall::catchup(&ctx, &msg, lang, &args).await,
        Command::Ask(question) => recall::ask(&ctx, &msg, lang, &question).await,
        Command::Analytics(span) => stats::analytics(&ctx, &msg, lang, &span).await,
        Command::Words => stats::words(&ctx, &msg, lang).await,
        Command::Me => stats::me(&ctx, &msg, lang).await,
        Command::ForgetMe => privacy::forget_me(&ctx, &msg, lang).await,
        Command::Settings(args) => settings::command(&ctx, &msg, lang, args.trim()).await,
        Command::Global => admin::global(&ctx, &msg, lang).await,
        Command::Health => admin::health(&ctx, &msg, lang).await,
        Command::Backup => admin::backup(&ctx, &msg, lang).await,
        Command::Import => admin::import(&ctx, &msg, lang).await,
        Command::PurgeChat => admin::ask_to_purge(&ctx, &msg, lang).await,
    }
}

/// An inline button was pressed: routed like the command that showed it, and always answered
/// (or the user's client keeps spinning).
pub async fn on_button(ctx: Ctx, query: CallbackQuery) -> anyhow::Result<()> {
    let lang = lang_of(Some(&query.from));
    let message = match &query.message {
        Some(MaybeInaccessibleMessage::Regular(m)) => Some(m.as_ref()),
        _ => None,
    };
    let pressed = query.data.as_deref().and_then(Button::parse);
    let answer = match pressed {
        Some(Button::ForgetEverywhere { user }) => {
            privacy::forget_everywhere(&ctx, &query.from, user, message, lang).await
        }
        Some(Button::PurgeChat { chat }) => {
            admin::purge(&ctx, &query.from, chat, message, lang).await
        }
        Some(Button::SearchPage { offset }) => {
            search::turn_page(&ctx, message, lang, offset as usize).await
        }
        Some(Button::Toggle(toggle)) => match message {
            Some(message) => settings::toggle(&ctx, message, &query.from, lang, toggle).await,
            None => Ok(String::new()),
        },
        None => Ok(String::new()),
    };
    let answer = answer.unwrap_or_else(|e| {
        ctx.note_error(format!("a button failed: {e:#}"));
        Phrase::ButtonFailed.text(lang).into()
    });
    let mut request = ctx.bot.answer_callback_query(query.id.clone());
    if !answer.is_empty() {
        request = request.text(answer);
    }
    ctx.call(request).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_one_description_in_both_languages() {
        let answered: Vec<String> = Command::bot_commands()
            .into_iter()
            .map(|c| c.command.trim_start_matches('/').to_string())
            .collect();
        let described: Vec<String> = texts::COMMANDS
            .iter()
            .map(|(command, _, _)| command.to_string())
            .collect();
        assert_eq!(answered, described, "Command and texts::COMMANDS disagree");
        for (command, uk, en) in texts::COMMANDS {
            assert!(!uk.is_empty() && !en.is_empty() && uk != en, "{command}");
        }
    }
}
