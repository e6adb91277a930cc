//! The bot's commands (a derived [`BotCommands`] enum), their menu in Ukrainian and English, and
//! the inline buttons some of them show.

use super::handlers::record_own;
use super::settings::{self, ChatSettings, UserSettings};
use super::texts::{self, Lang, Phrase};
use super::{Ctx, TREND_WINDOW_SECS};
use crate::analyzer::trends::Summary;
use crate::chart::{ChartData, ChartLabels};
use crate::import::{self, ImportOptions, ProfileUpdate};
use crate::store::{SettingKey, Store};
use anyhow::Context as _;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{
    BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MaybeInaccessibleMessage,
    ReplyParameters, User,
};
use teloxide::utils::command::BotCommands;
use tokio::io::AsyncWriteExt;

type HandlerResult = anyhow::Result<()>;

/// Every command the bot answers. Descriptions live in [`texts::COMMANDS`] (two languages).
#[derive(BotCommands, Clone, Debug, PartialEq)]
#[command(rename_rule = "snake_case")]
pub enum Command {
    Start,
    Help,
    Stats,
    Top,
    Analytics(String),
    Words,
    Me,
    ForgetMe,
    Settings(String),
    Global,
    Health,
    Backup,
    Import,
    PurgeChat,
}

/// Sets the command menu for English and Ukrainian users. A failure is logged, not fatal: the
/// commands work without a menu.
pub async fn set_menu(ctx: &Ctx) {
    for lang in [Lang::En, Lang::Uk] {
        let commands: Vec<BotCommand> = texts::COMMANDS
            .iter()
            .map(|(command, uk, en)| BotCommand::new(*command, lang.pick(uk, en)))
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

/// The language to answer a message in.
fn lang_of(user: Option<&User>) -> Lang {
    Lang::of(user.and_then(|u| u.language_code.as_deref()))
}

/// Replies to `msg` and records the reply.
async fn say(ctx: &Ctx, msg: &Message, text: impl Into<String>) -> HandlerResult {
    say_with(ctx, msg, text, None).await
}

async fn say_with(
    ctx: &Ctx,
    msg: &Message,
    text: impl Into<String>,
    keyboard: Option<InlineKeyboardMarkup>,
) -> HandlerResult {
    let mut request = ctx
        .bot
        .send_message(msg.chat.id, text.into())
        .reply_parameters(ReplyParameters::new(msg.id));
    if let Some(keyboard) = keyboard {
        request = request.reply_markup(keyboard);
    }
    let sent = ctx.call(request).await?;
    record_own(ctx, &sent).await
}

/// Answers an admin command: in a private chat directly; from a group, privately to the admin
/// (store-wide figures are not for every member), with a short note in the group.
async fn say_privately(ctx: &Ctx, msg: &Message, lang: Lang, text: String) -> HandlerResult {
    let Some(admin) = msg.from.as_ref() else {
        return Ok(());
    };
    if msg.chat.is_private() {
        return say(ctx, msg, text).await;
    }
    match ctx.call(ctx.bot.send_message(admin.id, text)).await {
        Ok(sent) => {
            record_own(ctx, &sent).await?;
            say(ctx, msg, Phrase::SentPrivately.text(lang)).await
        }
        Err(e) if cannot_reach_privately(&e) => {
            say(ctx, msg, Phrase::NeedsPrivateChat.text(lang)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Errors that mean the user never started a private chat with the bot (or blocked it).
fn cannot_reach_privately(e: &teloxide::RequestError) -> bool {
    use teloxide::ApiError::*;
    matches!(
        e,
        teloxide::RequestError::Api(
            CantInitiateConversation | BotBlocked | ChatNotFound | UserDeactivated
        )
    )
}

/// After messages were deleted or imported (in one chat, or anywhere): the offline models and
/// the trends were built from the old history, so they are rebuilt.
async fn history_changed(ctx: &Ctx, chat: Option<i64>) -> anyhow::Result<()> {
    match chat {
        Some(chat) => {
            ctx.responder.offline().forget(chat);
        }
        None => {
            ctx.responder.offline().trim(0);
        }
    }
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || ctx.rebuild_trends(chat)).await?
}

/// Days of the per-day panel of `/stats`' chart.
const STATS_CHART_DAYS: usize = 30;

/// Sends the chart of the message's chat: activity by hour, messages per day of the last `days`,
/// and the given emotion mix. Rendered off the async runtime; a chat without history gets none.
async fn send_chart(
    ctx: &Ctx,
    msg: &Message,
    lang: Lang,
    emotions: [u32; 7],
    days: usize,
) -> HandlerResult {
    let chat = msg.chat.id.0;
    let now = chrono::Utc::now().timestamp();
    let offset = ctx.config.bot.utc_offset_hours;
    let store = ctx.store.clone();
    let png = ctx
        .painter
        .paint(move |canvas| {
            ChartData::from_store(&store, chat, emotions, now, days, offset)
                .map(|data| canvas.render_png(&data, &ChartLabels::new(lang)))
                .transpose()
        })
        .await??;
    let Some(png) = png else {
        return Ok(());
    };
    let photo = InputFile::memory(png).file_name("chart.png");
    ctx.call(ctx.bot.send_photo(msg.chat.id, photo)).await?;
    Ok(())
}

/// Runs blocking store work off the async runtime.
async fn blocking<T: Send + 'static>(
    ctx: &Ctx,
    work: impl FnOnce(Store) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let store = ctx.store.clone();
    tokio::task::spawn_blocking(move || work(store)).await?
}

/// `/start`.
pub async fn start(ctx: Ctx, msg: Message) -> HandlerResult {
    let lang = lang_of(msg.from.as_ref());
    say(&ctx, &msg, texts::start(lang, &ctx.me.user.first_name)).await
}

/// Every command but `/start`.
pub async fn handle(ctx: Ctx, msg: Message, command: Command) -> HandlerResult {
    let from = msg.from.as_ref();
    let lang = lang_of(from);
    let admin_only = matches!(
        command,
        Command::Global | Command::Health | Command::Backup | Command::Import | Command::PurgeChat
    );
    if admin_only && !ctx.is_admin(from) {
        return say(&ctx, &msg, Phrase::AdminOnly.text(lang)).await;
    }
    let chat = msg.chat.id.0;
    match command {
        Command::Start => start(ctx, msg).await,
        Command::Help => say(&ctx, &msg, texts::help(lang)).await,
        Command::Stats | Command::Top => {
            let top_only = command == Command::Top;
            let (me, offset) = (ctx.me.id.0 as i64, ctx.config.bot.utc_offset_hours);
            let text = blocking(&ctx, move |store| {
                Ok(stats_text(&store, me, offset, chat, lang, top_only))
            })
            .await?;
            say(&ctx, &msg, text).await?;
            if top_only {
                return Ok(());
            }
            let now = chrono::Utc::now().timestamp();
            let week = ctx.trends.summary(chat, now - TREND_WINDOW_SECS + 1, now);
            send_chart(&ctx, &msg, lang, week.emotions, STATS_CHART_DAYS).await
        }
        Command::Analytics(span) => {
            let week = matches!(span.trim(), "7d" | "7" | "week" | "тиждень");
            let now = chrono::Utc::now().timestamp();
            let hours = if week { 7 * 24 } else { 24 };
            let summary = ctx.trends.summary(chat, now - hours * 3600 + 1, now);
            say(&ctx, &msg, analytics_text(&summary, lang, week)).await?;
            if summary.messages == 0 {
                return Ok(());
            }
            send_chart(&ctx, &msg, lang, summary.emotions, 7).await
        }
        Command::Words => {
            let words = chat_words(&ctx, chat).await?;
            let text = if words.is_empty() {
                Phrase::NoStatsYet.text(lang).to_string()
            } else {
                let list: Vec<String> = words.iter().map(|(w, n)| format!("{w} ({n})")).collect();
                format!(
                    "🔤 {}: {}",
                    lang.pick("Слова дня", "Words of the day"),
                    list.join(", ")
                )
            };
            say(&ctx, &msg, text).await
        }
        Command::Me => {
            let Some(user) = from.map(|u| u.id.0 as i64) else {
                return Ok(());
            };
            let reader = ctx.clone();
            let (here, everywhere, profile) = tokio::task::spawn_blocking(move || {
                let store = &reader.store;
                let profiles = &reader.profiles;
                // `Err` when profiles are off for this person.
                let profile = if profiles.opted_out(user) {
                    Err(())
                } else {
                    Ok(profiles.get(chat, user)?)
                };
                anyhow::Ok((
                    store.user_total_in_chat(chat, user),
                    store.user_total(user),
                    profile,
                ))
            })
            .await??;
            let mut text = match lang {
                Lang::Uk => format!(
                    "Тут: {}. Усього в чатах, де я є: {}.",
                    texts::messages(lang, here),
                    texts::messages(lang, everywhere)
                ),
                Lang::En => format!(
                    "Here: {}. In all chats I'm in: {}.",
                    texts::messages(lang, here),
                    texts::messages(lang, everywhere)
                ),
            };
            text.push_str("\n\n");
            match profile {
                Err(()) => text.push_str(Phrase::ProfileOff.text(lang)),
                Ok(Some(p)) => {
                    text.push_str(&texts::profile(lang, &p, ctx.config.bot.utc_offset_hours));
                }
                Ok(None) => text.push_str(Phrase::ProfileEmpty.text(lang)),
            }
            say(&ctx, &msg, text).await
        }
        Command::ForgetMe => forget_me(&ctx, &msg, lang).await,
        Command::Settings(args) => settings_command(&ctx, &msg, lang, args.trim()).await,
        Command::Global => {
            let day_ago = chrono::Utc::now().timestamp() - 86_400;
            let (global, active) = blocking(&ctx, move |store| {
                Ok((store.global_stats(), store.active_chats(day_ago).len()))
            })
            .await?;
            let text = format!(
                "🌍 {} · {} · chats: {} (active in 24 h: {active}) · users: {}",
                texts::messages(lang, global.total_messages),
                lang.pick("службових", "service").to_string()
                    + &format!(": {}", global.service_messages),
                global.chats,
                global.users
            );
            say_privately(&ctx, &msg, lang, text).await
        }
        Command::Health => {
            let health = blocking(&ctx, |store| Ok(store.health())).await?;
            let text = health_text(&ctx, &health);
            say_privately(&ctx, &msg, lang, text).await
        }
        Command::Backup => backup(&ctx, &msg, lang).await,
        Command::Import => import_document(&ctx, &msg, lang).await,
        Command::PurgeChat => {
            let keyboard = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(
                lang.pick("🗑 Так, стерти", "🗑 Yes, erase"),
                format!("purge:{chat}"),
            )]]);
            let ask = lang.pick(
                "Стерти всю збережену історію цього чату? Це не можна скасувати.",
                "Erase all stored history of this chat? This cannot be undone.",
            );
            say_with(&ctx, &msg, ask, Some(keyboard)).await
        }
    }
}

/// `/stats` (totals, users, top 5, busiest hours in local time) or `/top` (top users with
/// shares). `me` is the bot's own id, `utc_offset` the chats' time zone.
fn stats_text(
    store: &Store,
    me: i64,
    utc_offset: i32,
    chat: i64,
    lang: Lang,
    top_only: bool,
) -> String {
    let Some(mut stats) = store.chat_stats(chat) else {
        return Phrase::NoStatsYet.text(lang).into();
    };
    // The store counts the bot's own replies like anyone's; people want to see people.
    let own = store.user_total_in_chat(chat, me);
    stats.total_messages -= own.min(stats.total_messages);
    stats.unique_users -= u64::from(own > 0).min(stats.unique_users);
    stats.top_users.retain(|u| u.user_id != me);
    if stats.total_messages == 0 {
        return Phrase::NoStatsYet.text(lang).into();
    }
    let mut out = String::new();
    let top = if top_only { 10 } else { 5 };
    if top_only {
        out.push_str(lang.pick("🏆 Найактивніші:", "🏆 Most active:"));
    } else {
        let title = if stats.title.is_empty() {
            lang.pick("цей чат", "this chat").to_string()
        } else {
            stats.title.clone()
        };
        let _ = write!(
            out,
            "📊 {title}\n{} · {}: {}\n{}",
            texts::messages(lang, stats.total_messages),
            lang.pick("учасників", "members"),
            stats.unique_users,
            lang.pick("Топ:", "Top:")
        );
    }
    for (i, user) in stats.top_users.iter().take(top).enumerate() {
        let share = 100.0 * user.messages as f64 / stats.total_messages as f64;
        let _ = write!(
            out,
            "\n{}. {} — {} ({share:.0}%)",
            i + 1,
            user.name,
            user.messages
        );
    }
    if !top_only {
        let mut hours: Vec<(usize, u64)> = stats
            .hour_histogram
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .collect();
        hours.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let busiest: Vec<String> = hours
            .iter()
            .take(3)
            .map(|&(h, _)| format!("{:02}:00", (h as i32 + utc_offset).rem_euclid(24)))
            .collect();
        let _ = write!(
            out,
            "\n{} {}",
            lang.pick("Найактивніші години:", "Busiest hours:"),
            busiest.join(", ")
        );
    }
    out
}

/// Messages of a chat's past that `/words` weighs the last day against.
const WORDS_HISTORY: usize = 3000;

/// The chat's keywords of the last 24 hours by TF-IDF against its recent history.
async fn chat_words(ctx: &Ctx, chat: i64) -> anyhow::Result<Vec<(String, u32)>> {
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let now = chrono::Utc::now().timestamp();
        let history = ctx.store.recent(chat, WORDS_HISTORY)?;
        let people = history
            .iter()
            .filter(|m| m.counts_for_users() && !m.is_bot && !m.text.starts_with('/'));
        let analyses = ctx
            .analysis
            .analyze_all(people.clone().map(|m| m.text.as_str()));
        let day_ago = now - 86_400;
        let recent: Vec<_> = people
            .zip(&analyses)
            .filter(|(m, _)| m.time >= day_ago)
            .map(|(_, a)| a.as_ref())
            .collect();
        let all: Vec<_> = analyses.iter().map(|a| a.as_ref()).collect();
        Ok(crate::analyzer::keywords::tf_idf(&recent, &all, 10))
    })
    .await?
}

/// `/analytics`: the last day (or week) of a chat.
fn analytics_text(s: &Summary, lang: Lang, week: bool) -> String {
    if s.messages == 0 {
        return Phrase::NoStatsYet.text(lang).into();
    }
    let span = match (lang, week) {
        (Lang::Uk, false) => "Остання доба",
        (Lang::Uk, true) => "Останній тиждень",
        (Lang::En, false) => "Last 24 hours",
        (Lang::En, true) => "Last 7 days",
    };
    let topics: Vec<String> = s
        .top_topics
        .iter()
        .map(|(t, n)| format!("{} ({n})", texts::topic(lang, *t)))
        .collect();
    // A sparkline of activity: per hour for a day, per day for a week.
    let buckets: Vec<u32> = if week {
        s.per_hour.chunks(24).map(|day| day.iter().sum()).collect()
    } else {
        s.per_hour.clone()
    };
    let peak = buckets.iter().copied().max().unwrap_or(0).max(1);
    let bars: String = buckets
        .iter()
        .map(|&n| ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'][(n * 7 / peak) as usize])
        .collect();
    format!(
        "📈 {span}: {} · {}: {}\n{}: {} · {}: {:+.2}\n{}: {}\n{bars}",
        texts::messages(lang, u64::from(s.messages)),
        lang.pick("учасників", "members"),
        s.active_users,
        lang.pick("Настрій", "Mood"),
        texts::emotion(lang, s.dominant_emotion),
        lang.pick("тон", "tone"),
        s.mean_sentiment,
        lang.pick("Теми", "Topics"),
        if topics.is_empty() {
            "-".into()
        } else {
            topics.join(", ")
        },
    )
}

/// `/health`.
fn health_text(ctx: &Ctx, health: &crate::store::StoreHealth) -> String {
    let uptime = ctx.started.elapsed().as_secs();
    format!(
        "uptime {}h {}m · store {:.1} MB · commits {} (last {} µs, max {} µs) · batch flush mean {:.1} ms · updates {} · handlers running {} · replies {} · API errors {} · store errors {} · offline models {}",
        uptime / 3600,
        uptime % 3600 / 60,
        health.size_on_disk as f64 / 1e6,
        health.commits,
        health.last_commit_micros,
        health.max_commit_micros,
        ctx.metrics.flush_latency.mean().as_secs_f64() * 1e3,
        ctx.metrics.updates_received.load(Relaxed),
        ctx.metrics.handlers_in_flight.load(Relaxed),
        ctx.metrics.replies_total(),
        ctx.metrics.api_errors_total(),
        ctx.metrics.store_errors.load(Relaxed),
        ctx.responder.offline().models(),
    )
}

/// `/forget_me`: this chat at once; everywhere after a confirmation button.
async fn forget_me(ctx: &Ctx, msg: &Message, lang: Lang) -> HandlerResult {
    let Some(user) = msg.from.as_ref().map(|u| u.id.0 as i64) else {
        return Ok(());
    };
    let keyboard = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(
        Phrase::ForgetEverywhereButton.text(lang),
        format!("forget:{user}"),
    )]]);
    if msg.chat.is_private() {
        return say_with(
            ctx,
            msg,
            Phrase::ForgetEverywhereAsk.text(lang),
            Some(keyboard),
        )
        .await;
    }
    let chat = msg.chat.id.0;
    let forgetting = ctx.clone();
    let deleted = tokio::task::spawn_blocking(move || {
        let store = &forgetting.store;
        let n = store.delete_user_in_chat(user, chat)?;
        forgetting.profiles.forget(Some(chat), Some(user))?;
        store.flush()?;
        anyhow::Ok(n)
    })
    .await??;
    history_changed(ctx, Some(chat)).await?;
    let text = format!(
        "{} ({})",
        Phrase::ForgotHere.text(lang),
        texts::messages(lang, deleted)
    );
    say_with(ctx, msg, text, Some(keyboard)).await
}

/// `/settings`, `/settings chance X`, `/settings quiet A-B|off`.
async fn settings_command(ctx: &Ctx, msg: &Message, lang: Lang, args: &str) -> HandlerResult {
    let Some(from) = msg.from.as_ref() else {
        return Ok(());
    };
    if args.is_empty() {
        let (text, keyboard) = settings_view(ctx, msg.chat.id.0, &msg.chat, from, lang)?;
        return say_with(ctx, msg, text, Some(keyboard)).await;
    }
    if !can_change_chat(ctx, &msg.chat, from).await? {
        return say(ctx, msg, Phrase::ChatAdminsOnly.text(lang)).await;
    }
    let chat = msg.chat.id.0;
    let (what, value) = args.split_once(' ').unwrap_or((args, ""));
    let mut chat_settings = settings::chat(&ctx.store, chat)?;
    match what {
        "chance" | "шанс" => match value.trim().replace(',', ".").parse::<f64>() {
            Ok(chance) if (0.0..=1.0).contains(&chance) => {
                chat_settings.reply_chance = Some(chance)
            }
            _ => return say(ctx, msg, Phrase::SettingsUsage.text(lang)).await,
        },
        "quiet" | "тиша" => match settings::parse_quiet_hours(value) {
            Some(hours) => chat_settings.quiet_hours = hours,
            None => return say(ctx, msg, Phrase::SettingsUsage.text(lang)).await,
        },
        _ => return say(ctx, msg, Phrase::SettingsUsage.text(lang)).await,
    }
    ctx.store
        .put_setting(SettingKey::Chat(chat), &chat_settings)?;
    say(ctx, msg, Phrase::Saved.text(lang)).await
}

/// The settings message and its toggle buttons.
fn settings_view(
    ctx: &Ctx,
    chat_id: i64,
    chat: &teloxide::types::Chat,
    user: &User,
    lang: Lang,
) -> anyhow::Result<(String, InlineKeyboardMarkup)> {
    let mine = settings::user(&ctx.store, user.id.0 as i64)?;
    let on_off = |on: bool| {
        lang.pick(
            if on { "увімк." } else { "вимк." },
            if on { "on" } else { "off" },
        )
    };
    let mut text = format!(
        "{}\n{} {}\n{} {}",
        lang.pick("Твої налаштування:", "Your settings:"),
        lang.pick(
            "Реакції на твої повідомлення:",
            "Reactions to your messages:"
        ),
        on_off(!mine.no_reactions),
        lang.pick(
            "Твої повідомлення у спонтанних дописах:",
            "Your messages in spontaneous posts:"
        ),
        on_off(!mine.no_mentions),
    );
    text.push_str(&format!(
        "\n{} {}",
        lang.pick(
            "Профіль (/me, підказки для відповідей):",
            "Profile (/me, hints for replies):"
        ),
        on_off(!mine.no_profile)
    ));
    let mut rows = vec![
        vec![InlineKeyboardButton::callback(
            lang.pick("Реакції: перемкнути", "Reactions: toggle"),
            "set:u:reactions",
        )],
        vec![InlineKeyboardButton::callback(
            lang.pick("Згадки: перемкнути", "Mentions: toggle"),
            "set:u:mentions",
        )],
        vec![InlineKeyboardButton::callback(
            lang.pick(
                "Профіль: перемкнути (вимкнення стирає)",
                "Profile: toggle (off deletes it)",
            ),
            "set:u:profile",
        )],
    ];
    if !chat.is_private() {
        let c = settings::chat(&ctx.store, chat_id)?;
        let chance = c.reply_chance.unwrap_or(ctx.config.bot.reply_chance);
        let quiet = match c.quiet_hours {
            Some((a, b)) => format!("{a}–{b}"),
            None => format!(
                "{}–{}",
                ctx.config.quiet_hours.start, ctx.config.quiet_hours.end
            ),
        };
        let _ = write!(
            text,
            "\n\n{}\n{} {} · {} {:.0}% · {} {quiet} · {} {}\n{}",
            lang.pick(
                "Чат (змінюють адміністратори):",
                "Chat (administrators change these):"
            ),
            lang.pick("Відповіді:", "Replies:"),
            on_off(c.replies),
            lang.pick("шанс без звертання", "unprompted chance"),
            chance * 100.0,
            lang.pick("тихі години", "quiet hours"),
            lang.pick("спонтанні дописи:", "spontaneous posts:"),
            on_off(c.spontaneous),
            Phrase::SettingsUsage.text(lang),
        );
        rows.push(vec![
            InlineKeyboardButton::callback(lang.pick("Відповіді", "Replies"), "set:c:replies"),
            InlineKeyboardButton::callback(
                lang.pick("Спонтанні дописи", "Spontaneous posts"),
                "set:c:spontaneous",
            ),
        ]);
    }
    Ok((text, InlineKeyboardMarkup::new(rows)))
}

/// Chat settings are for the chat's administrators (anyone in a private chat).
async fn can_change_chat(
    ctx: &Ctx,
    chat: &teloxide::types::Chat,
    user: &User,
) -> anyhow::Result<bool> {
    if chat.is_private() || ctx.is_admin(Some(user)) {
        return Ok(true);
    }
    let member = ctx.call(ctx.bot.get_chat_member(chat.id, user.id)).await?;
    Ok(member.is_privileged())
}

/// An inline button was pressed.
pub async fn on_button(ctx: Ctx, query: CallbackQuery) -> HandlerResult {
    let lang = lang_of(Some(&query.from));
    // The button is always answered, or the user's client keeps spinning.
    let answer = match button(&ctx, &query, lang).await {
        Ok(answer) => answer,
        Err(e) => {
            ctx.note_error(format!("a button failed: {e:#}"));
            Phrase::ButtonFailed.text(lang).into()
        }
    };
    let mut request = ctx.bot.answer_callback_query(query.id.clone());
    if !answer.is_empty() {
        request = request.text(answer);
    }
    ctx.call(request).await?;
    Ok(())
}

/// What a button does; returns the short answer shown to the user.
async fn button(ctx: &Ctx, query: &CallbackQuery, lang: Lang) -> anyhow::Result<String> {
    let ctx = ctx.clone();
    let data = query.data.clone().unwrap_or_default();
    let message = match &query.message {
        Some(MaybeInaccessibleMessage::Regular(m)) => Some(m.as_ref().clone()),
        _ => None,
    };
    let answer = match data.split(':').collect::<Vec<_>>().as_slice() {
        ["forget", user] => {
            if user.parse::<u64>().ok() != Some(query.from.id.0) {
                Phrase::NotYourButton.text(lang).to_string()
            } else {
                let user = query.from.id.0 as i64;
                let forgetting = ctx.clone();
                let deleted = tokio::task::spawn_blocking(move || {
                    let store = &forgetting.store;
                    let n = store.delete_user(user)?;
                    forgetting.profiles.forget(None, Some(user))?;
                    // Their opt-outs stay, so that the bot keeps respecting them; nothing
                    // else of theirs does.
                    let kept = settings::user(store, user)?;
                    if kept == UserSettings::default() {
                        store.remove_setting(SettingKey::User(user))?;
                    }
                    store.flush()?;
                    anyhow::Ok(n)
                })
                .await??;
                history_changed(&ctx, None).await?;
                let text = format!(
                    "{} ({})",
                    Phrase::ForgotEverywhere.text(lang),
                    texts::messages(lang, deleted)
                );
                replace_text(&ctx, message.as_ref(), &text).await;
                text
            }
        }
        ["purge", chat] => {
            if !ctx.is_admin(Some(&query.from)) {
                Phrase::AdminOnly.text(lang).to_string()
            } else {
                let chat: i64 = chat.parse().context("a purge button without a chat id")?;
                let purging = ctx.clone();
                let deleted = tokio::task::spawn_blocking(move || {
                    let n = purging.store.purge_chat(chat)?;
                    purging.profiles.forget(Some(chat), None)?;
                    purging.store.flush()?;
                    anyhow::Ok(n)
                })
                .await??;
                history_changed(&ctx, Some(chat)).await?;
                let text = format!("{} {deleted}", Phrase::PurgeDone.text(lang));
                replace_text(&ctx, message.as_ref(), &text).await;
                text
            }
        }
        ["set", scope, what] => match &message {
            None => String::new(),
            Some(m) => toggle(&ctx, m, &query.from, lang, scope, what).await?,
        },
        _ => String::new(),
    };
    Ok(answer)
}

/// Replaces the text of the message a button was on (its question becomes the outcome); a
/// failure only leaves the old text.
async fn replace_text(ctx: &Ctx, message: Option<&Message>, text: &str) {
    if let Some(m) = message {
        let _ = ctx
            .call(ctx.bot.edit_message_text(m.chat.id, m.id, text))
            .await;
    }
}

/// A settings toggle; redraws the settings message.
async fn toggle(
    ctx: &Ctx,
    message: &Message,
    user: &User,
    lang: Lang,
    scope: &str,
    what: &str,
) -> anyhow::Result<String> {
    let chat = message.chat.id.0;
    match scope {
        "u" => {
            let id = user.id.0 as i64;
            let flip: fn(&mut UserSettings) = match what {
                "reactions" => |s| s.no_reactions = !s.no_reactions,
                "mentions" => |s| s.no_mentions = !s.no_mentions,
                "profile" => |s| s.no_profile = !s.no_profile,
                _ => return Ok(String::new()),
            };
            // Read, flip, store and apply in one step under the profiles lock, so that quick
            // presses apply in order; turning profiles off deletes them at once.
            let toggling = ctx.clone();
            tokio::task::spawn_blocking(move || {
                toggling.profiles.change_opt_out(id, || {
                    let mut mine = settings::user(&toggling.store, id)?;
                    flip(&mut mine);
                    toggling.store.put_setting(SettingKey::User(id), &mine)?;
                    anyhow::Ok(mine.no_profile)
                })
            })
            .await??;
        }
        "c" => {
            if !can_change_chat(ctx, &message.chat, user).await? {
                return Ok(Phrase::ChatAdminsOnly.text(lang).into());
            }
            let mut c: ChatSettings = settings::chat(&ctx.store, chat)?;
            match what {
                "replies" => c.replies = !c.replies,
                "spontaneous" => c.spontaneous = !c.spontaneous,
                _ => return Ok(String::new()),
            }
            ctx.store.put_setting(SettingKey::Chat(chat), &c)?;
        }
        _ => return Ok(String::new()),
    }
    let (text, keyboard) = settings_view(ctx, chat, &message.chat, user, lang)?;
    let _ = ctx
        .call(
            ctx.bot
                .edit_message_text(message.chat.id, message.id, text)
                .reply_markup(keyboard),
        )
        .await;
    Ok(Phrase::Saved.text(lang).into())
}

/// `/backup`: writes a backup now and sends it to the admin privately when small enough.
async fn backup(ctx: &Ctx, msg: &Message, lang: Lang) -> HandlerResult {
    let Some(admin) = msg.from.as_ref() else {
        return Ok(());
    };
    say(ctx, msg, Phrase::BackupStarted.text(lang)).await?;
    let dir = ctx.config.backup_dir();
    let summary_path = blocking(ctx, move |store| {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the backup directory {}", dir.display()))?;
        let file = dir.join(format!(
            "manual-{}.ckb",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ));
        let summary = store.backup(&file)?;
        Ok((summary, file))
    })
    .await?;
    let (summary, file) = summary_path;
    let described = format!(
        "{} · {} · {:.1} MB",
        file.display(),
        texts::messages(lang, summary.messages),
        summary.bytes as f64 / 1e6
    );
    // The path and the store's size are for the admin only.
    if summary.bytes > ctx.config.bot.max_backup_document_bytes {
        let text = format!("{} {described}", Phrase::BackupTooLarge.text(lang));
        return say_privately(ctx, msg, lang, text).await;
    }
    // Privately: a backup holds every chat, it must not land in a group.
    let sent = ctx
        .call(
            ctx.bot
                .send_document(admin.id, InputFile::file(&file))
                .caption(described.clone()),
        )
        .await;
    match sent {
        Ok(_) if msg.chat.is_private() => Ok(()),
        Ok(_) => say(ctx, msg, Phrase::SentPrivately.text(lang)).await,
        Err(e) => {
            tracing::warn!(error = %e, "could not send the backup to the admin");
            let phrase = if cannot_reach_privately(&e) {
                Phrase::NeedsPrivateChat
            } else {
                Phrase::BackupNotSent
            };
            say(ctx, msg, phrase.text(lang)).await
        }
    }
}

/// `/import` in reply to an uploaded `result.json`.
async fn import_document(ctx: &Ctx, msg: &Message, lang: Lang) -> HandlerResult {
    let Some(document) = msg.reply_to_message().and_then(|m| m.document()) else {
        return say(ctx, msg, Phrase::ImportNeedsDocument.text(lang)).await;
    };
    // teloxide reports an unknown size as u32::MAX; getFile below tells the real one.
    let known = document.file.size != u32::MAX;
    if known && u64::from(document.file.size) > ctx.config.bot.max_import_bytes {
        return say(ctx, msg, Phrase::ImportTooLarge.text(lang)).await;
    }
    say(ctx, msg, Phrase::ImportStarted.text(lang)).await?;
    let file = ctx.call(ctx.bot.get_file(document.file.id.clone())).await?;
    if u64::from(file.size) > ctx.config.bot.max_import_bytes {
        return say(ctx, msg, Phrase::ImportTooLarge.text(lang)).await;
    }
    let dir = ctx.config.data_dir.join("tmp");
    tokio::fs::create_dir_all(&dir).await?;
    let path = dir.join(format!("import-{}-{}.json", msg.chat.id.0, msg.id.0));
    let mut out = tokio::fs::File::create(&path).await?;
    let downloaded = match ctx.bot.download_file(&file.path, &mut out).await {
        // tokio writes in the background: the file is complete only once flushed.
        Ok(()) => out.flush().await.map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    drop(out);
    if let Err(e) = downloaded {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(e).context("downloading the export from Telegram");
    }
    let import_path = path.clone();
    let importer = ctx.clone();
    let result = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let progress = Arc::new(AtomicU64::new(0));
        let store = &importer.store;
        // `/me` should know the imported history too.
        let profiles = ProfileUpdate {
            profiles: &importer.profiles,
            analyzer: importer.analysis.analyzer(),
        };
        let summary = import::import_file(
            Some(store),
            Some(profiles),
            &import_path,
            &ImportOptions::default(),
            &progress,
        )?;
        store.flush()?;
        Ok(summary)
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    let _ = tokio::fs::remove_file(&path).await;
    match result {
        Ok(summary) => {
            history_changed(ctx, None).await?;
            say(ctx, msg, format!("✅ {summary}")).await
        }
        // Bad files are the user's to fix: tell them what is wrong, as the CLI would.
        Err(e) => say(ctx, msg, format!("❌ {e:#}")).await,
    }
}
