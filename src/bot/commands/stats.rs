//! Everyone's commands about a chat and themselves: `/stats`, `/top`, `/words`, `/analytics`,
//! `/me`, and the charts that go with them.

use crate::analyzer::keywords;
use crate::bot::ctx::{Ctx, TREND_WINDOW_SECS};
use crate::bot::outbox::say;
use crate::bot::record;
use crate::chart::{ChartData, ChartLabels};
use crate::store::{ChatStats, MessageKind, TOPIC_LOOKBACK};
use crate::texts::{self, Lang, Phrase};
use teloxide::prelude::*;
use teloxide::types::InputFile;

/// Days of the per-day panel of `/stats`' chart.
const STATS_CHART_DAYS: usize = 30;
/// Messages of a chat's past that `/words` weighs the last day against.
const WORDS_HISTORY: usize = 3000;

/// `/stats`: the chat's totals, top five and busiest hours, then its chart.
pub async fn stats(ctx: &Ctx, msg: &Message, lang: Lang) -> anyhow::Result<()> {
    let mut text = match people_stats(ctx, msg.chat.id.0).await? {
        Some(stats) => texts::chat_stats(lang, &stats, ctx.config.bot.utc_offset_hours),
        None => Phrase::NoStatsYet.text(lang).into(),
    };
    if let Some(topic) = record::topic(msg) {
        let (messages, top) = topic_stats(ctx, msg.chat.id.0, topic.0 .0).await?;
        text.push_str(&texts::topic_stats(lang, messages, TOPIC_LOOKBACK, &top));
    }
    say(ctx, msg, text).await?;
    let now = chrono::Utc::now().timestamp();
    let week = ctx
        .trends
        .summary(msg.chat.id.0, now - TREND_WINDOW_SECS + 1, now);
    send_chart(ctx, msg, lang, week.emotions, STATS_CHART_DAYS).await
}

/// Of the chat's last [`TOPIC_LOOKBACK`] messages, how many people wrote in `topic` and who
/// wrote most of them (counters are per chat; a topic's figures come from its recent messages).
async fn topic_stats(
    ctx: &Ctx,
    chat: i64,
    topic: i32,
) -> anyhow::Result<(u64, Vec<(String, u64)>)> {
    let me = ctx.me.id.0 as i64;
    ctx.blocking(move |ctx| {
        let recent = ctx
            .store
            .recent_in_topic(chat, Some(topic), TOPIC_LOOKBACK)?;
        let mut by_person: std::collections::HashMap<i64, (String, u64)> = Default::default();
        let mut total = 0;
        for m in recent.iter().filter(|m| m.kind != MessageKind::Service) {
            let Some(user) = m.user_id.filter(|&u| u != me) else {
                continue;
            };
            total += 1;
            let entry = by_person
                .entry(user)
                .or_insert_with(|| (m.sender_name.clone(), 0));
            entry.1 += 1;
        }
        let mut top: Vec<(String, u64)> = by_person.into_values().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(3);
        Ok((total, top))
    })
    .await
}

/// `/top`: the ten most active members with their shares.
pub async fn top(ctx: &Ctx, msg: &Message, lang: Lang) -> anyhow::Result<()> {
    let text = match people_stats(ctx, msg.chat.id.0).await? {
        Some(stats) => texts::top(lang, &stats),
        None => Phrase::NoStatsYet.text(lang).into(),
    };
    say(ctx, msg, text).await
}

/// The chat's statistics without the bot's own messages (people want to see people); `None`
/// when nobody but the bot has written there.
async fn people_stats(ctx: &Ctx, chat: i64) -> anyhow::Result<Option<ChatStats>> {
    let me = ctx.me.id.0 as i64;
    ctx.blocking(move |ctx| {
        let Some(mut stats) = ctx.store.chat_stats(chat) else {
            return Ok(None);
        };
        let own = ctx.store.user_total_in_chat(chat, me);
        stats.total_messages -= own.min(stats.total_messages);
        stats.unique_users -= u64::from(own > 0).min(stats.unique_users);
        stats.top_users.retain(|u| u.user_id != me);
        Ok(Some(stats).filter(|s| s.total_messages > 0))
    })
    .await
}

/// `/analytics` (`/analytics 7d` for the week): mood, topics and activity, then the chart.
pub async fn analytics(ctx: &Ctx, msg: &Message, lang: Lang, span: &str) -> anyhow::Result<()> {
    let week = matches!(span.trim(), "7d" | "7" | "week" | "тиждень");
    let now = chrono::Utc::now().timestamp();
    let hours = if week { 7 * 24 } else { 24 };
    let summary = ctx
        .trends
        .summary(msg.chat.id.0, now - hours * 3600 + 1, now);
    say(ctx, msg, texts::analytics(lang, &summary, week)).await?;
    if summary.messages == 0 {
        return Ok(());
    }
    send_chart(ctx, msg, lang, summary.emotions, 7).await
}

/// `/words`: the chat's keywords of the last 24 hours by TF-IDF against its recent history.
pub async fn words(ctx: &Ctx, msg: &Message, lang: Lang) -> anyhow::Result<()> {
    let chat = msg.chat.id.0;
    let words = ctx
        .blocking(move |ctx| {
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
            Ok(keywords::tf_idf(&recent, &all, 10))
        })
        .await?;
    say(ctx, msg, texts::words(lang, &words)).await
}

/// `/me`: the sender's messages here and everywhere, and their profile of this chat.
pub async fn me(ctx: &Ctx, msg: &Message, lang: Lang) -> anyhow::Result<()> {
    let Some(user) = msg.from.as_ref().map(|u| u.id.0 as i64) else {
        return Ok(());
    };
    let chat = msg.chat.id.0;
    let (here, everywhere, profile) = ctx
        .blocking(move |ctx| {
            // `None` when profiles are off for this person.
            let profile = match ctx.profiles.opted_out(user) {
                true => None,
                false => Some(ctx.profiles.get(chat, user)?),
            };
            Ok((
                ctx.store.user_total_in_chat(chat, user),
                ctx.store.user_total(user),
                profile,
            ))
        })
        .await?;
    let offset = ctx.config.bot.utc_offset_hours;
    let text = texts::me(
        lang,
        here,
        everywhere,
        profile.as_ref().map(Option::as_ref),
        offset,
    );
    say(ctx, msg, text).await
}

/// Sends the chart of the message's chat: activity by hour, messages per day of the last `days`,
/// and the given emotion mix. Drawn (and its data read) on the painter's thread; a chat without
/// history gets none.
async fn send_chart(
    ctx: &Ctx,
    msg: &Message,
    lang: Lang,
    emotions: [u32; 7],
    days: usize,
) -> anyhow::Result<()> {
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
    let mut request = ctx.bot.send_photo(msg.chat.id, photo);
    if let Some(topic) = record::topic(msg) {
        request = request.message_thread_id(topic);
    }
    ctx.call(request).await?;
    Ok(())
}
