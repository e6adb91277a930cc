//! Answers built from figures: statistics, analytics, profiles, settings, health, imports.

use super::lang::Lang;
use super::names::{emotion, humour, language, messages, on_off, style, topic};
use super::phrases::Phrase;
use crate::analyzer::profile::Profile;
use crate::analyzer::trends::Summary;
use crate::import::{format_utc, ImportSummary};
use crate::store::{ChatStats, GlobalStats, StoreHealth};
use std::fmt::Write as _;

/// The lines `/stats` adds when asked in a forum topic: its share of the chat's recent
/// messages and who wrote most of them.
pub fn topic_stats(lang: Lang, messages: u64, lookback: usize, top: &[(String, u64)]) -> String {
    let mut out = match lang {
        Lang::Uk => format!("\n\n🧵 Ця тема: {messages} з останніх {lookback} повідомлень чату"),
        Lang::En => format!("\n\n🧵 This topic: {messages} of the chat's last {lookback} messages"),
    };
    if !top.is_empty() {
        let people: Vec<String> = top
            .iter()
            .map(|(name, n)| format!("{name} ({n})"))
            .collect();
        out.push_str(&format!(
            "\n{}: {}",
            lang.pick("Найактивніші тут", "Most active here"),
            people.join(", ")
        ));
    }
    out
}

/// `/stats`: totals, members, the top five and the three busiest hours, in local time
/// (`utc_offset` hours from UTC).
pub fn chat_stats(lang: Lang, stats: &ChatStats, utc_offset: i32) -> String {
    let title = if stats.title.is_empty() {
        lang.pick("цей чат", "this chat")
    } else {
        &stats.title
    };
    let mut out = format!(
        "📊 {title}\n{} · {}: {}\n{}",
        messages(lang, stats.total_messages),
        lang.pick("учасників", "members"),
        stats.unique_users,
        lang.pick("Топ:", "Top:")
    );
    push_top(&mut out, stats, 5);
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
    out
}

/// `/top`: the ten most active members with their shares.
pub fn top(lang: Lang, stats: &ChatStats) -> String {
    let mut out = lang.pick("🏆 Найактивніші:", "🏆 Most active:").to_string();
    push_top(&mut out, stats, 10);
    out
}

/// The first `n` of a chat's most active members, a line each.
fn push_top(out: &mut String, stats: &ChatStats, n: usize) {
    for (i, user) in stats.top_users.iter().take(n).enumerate() {
        let share = 100.0 * user.messages as f64 / stats.total_messages.max(1) as f64;
        let _ = write!(
            out,
            "\n{}. {} — {} ({share:.0}%)",
            i + 1,
            user.name,
            user.messages
        );
    }
}

/// `/analytics`: the last day (or `week`) of a chat.
pub fn analytics(lang: Lang, s: &Summary, week: bool) -> String {
    if s.messages == 0 {
        return Phrase::NoStatsYet.text(lang).into();
    }
    let span = match week {
        false => lang.pick("Остання доба", "Last 24 hours"),
        true => lang.pick("Останній тиждень", "Last 7 days"),
    };
    let topics: Vec<String> = s
        .top_topics
        .iter()
        .map(|(t, n)| format!("{} ({n})", topic(lang, *t)))
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
        messages(lang, u64::from(s.messages)),
        lang.pick("учасників", "members"),
        s.active_users,
        lang.pick("Настрій", "Mood"),
        emotion(lang, s.dominant_emotion),
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

/// `/words`: the day's keywords with their counts.
pub fn words(lang: Lang, words: &[(String, u32)]) -> String {
    if words.is_empty() {
        return Phrase::NoStatsYet.text(lang).into();
    }
    let list: Vec<String> = words.iter().map(|(w, n)| format!("{w} ({n})")).collect();
    format!(
        "🔤 {}: {}",
        lang.pick("Слова дня", "Words of the day"),
        list.join(", ")
    )
}

/// `/me`: someone's messages here and in every chat, then what their profile says (`None`: the
/// profile is off; `Some(None)`: there is none yet).
pub fn me(
    lang: Lang,
    here: u64,
    everywhere: u64,
    profile_text: Option<Option<&Profile>>,
    utc_offset_hours: i32,
) -> String {
    let totals = match lang {
        Lang::Uk => format!(
            "Тут: {}. Усього в чатах, де я є: {}.",
            messages(lang, here),
            messages(lang, everywhere)
        ),
        Lang::En => format!(
            "Here: {}. In all chats I'm in: {}.",
            messages(lang, here),
            messages(lang, everywhere)
        ),
    };
    let profile_text = match profile_text {
        None => Phrase::ProfileOff.text(lang).to_string(),
        Some(None) => Phrase::ProfileEmpty.text(lang).to_string(),
        Some(Some(p)) => profile(lang, p, utc_offset_hours),
    };
    format!("{totals}\n\n{profile_text}")
}

/// What the bot learned of how someone writes in a chat (hours are local, with
/// `utc_offset_hours`).
fn profile(lang: Lang, p: &Profile, utc_offset_hours: i32) -> String {
    let mut lines = vec![match lang {
        Lang::Uk => format!(
            "✍️ Середня довжина: {:.0} симв. · емодзі: {:.1} на повідомлення",
            p.average_length(),
            p.emoji_per_message()
        ),
        Lang::En => format!(
            "✍️ Average length: {:.0} characters · emoji: {:.1} per message",
            p.average_length(),
            p.emoji_per_message()
        ),
    }];
    let hours: Vec<String> = p
        .peak_hours(utc_offset_hours)
        .iter()
        .map(|h| format!("{h}:00"))
        .collect();
    if !hours.is_empty() {
        lines.push(format!(
            "🕐 {} {}",
            lang.pick("Найактивніші години:", "Most active hours:"),
            hours.join(", ")
        ));
    }
    let topics: Vec<&str> = p.top_topics().iter().map(|t| topic(lang, *t)).collect();
    if !topics.is_empty() {
        lines.push(format!(
            "💬 {} {}",
            lang.pick("Теми:", "Topics:"),
            topics.join(", ")
        ));
    }
    match (p.language(), p.humour()) {
        (Some(spoken), Some(jokes)) => {
            let (spoken, register, jokes) = (
                language(lang, spoken),
                style(lang, p.style()),
                humour(lang, jokes),
            );
            lines.push(match lang {
                Lang::Uk => format!("🗣 Мова: {spoken} · стиль: {register} · жартуєш: {jokes}"),
                Lang::En => format!("🗣 Language: {spoken} · style: {register} · jokes: {jokes}"),
            });
        }
        _ => lines.push(
            lang.pick(
                "🗣 Ще замало повідомлень, щоб судити про мову, стиль і гумор.",
                "🗣 Too few messages yet to tell your language, style and humour.",
            )
            .into(),
        ),
    }
    lines.join("\n")
}

/// `/global`: the store's totals and how many chats were active in the last day.
pub fn global(lang: Lang, global: &GlobalStats, active_chats: usize) -> String {
    match lang {
        Lang::Uk => format!(
            "🌍 {} · службових: {} · чатів: {} (активних за добу: {active_chats}) · людей: {}",
            messages(lang, global.total_messages),
            global.service_messages,
            global.chats,
            global.users
        ),
        Lang::En => format!(
            "🌍 {} · service: {} · chats: {} (active in 24 h: {active_chats}) · users: {}",
            messages(lang, global.total_messages),
            global.service_messages,
            global.chats,
            global.users
        ),
    }
}

/// The bot's own figures for `/health`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BotHealth {
    pub uptime_secs: u64,
    /// Mean time to store and flush a batch of updates.
    pub flush_mean_ms: f64,
    pub updates: u64,
    pub handlers_running: u64,
    pub replies: u64,
    pub api_errors: u64,
    pub store_errors: u64,
    pub offline_models: usize,
}

/// `/health`.
pub fn health(lang: Lang, store: &StoreHealth, bot: &BotHealth) -> String {
    let (hours, minutes) = (bot.uptime_secs / 3600, bot.uptime_secs % 3600 / 60);
    let size = store.size_on_disk as f64 / 1e6;
    let (commits, last, max) = (
        store.commits,
        store.last_commit_micros,
        store.max_commit_micros,
    );
    let BotHealth {
        flush_mean_ms: flush,
        updates,
        handlers_running: running,
        replies,
        api_errors,
        store_errors,
        offline_models: models,
        ..
    } = *bot;
    match lang {
        Lang::Uk => format!(
            "працюю {hours} год {minutes} хв · сховище {size:.1} МБ · записів {commits} (останній \
             {last} мкс, найдовший {max} мкс) · пакет оновлень зберігається в середньому \
             {flush:.1} мс · оновлень {updates} · обробників зараз {running} · відповідей \
             {replies} · помилок API {api_errors} · помилок сховища {store_errors} · \
             офлайн-моделей {models}"
        ),
        Lang::En => format!(
            "uptime {hours}h {minutes}m · store {size:.1} MB · commits {commits} (last {last} µs, \
             max {max} µs) · batch flush mean {flush:.1} ms · updates {updates} · handlers \
             running {running} · replies {replies} · API errors {api_errors} · store errors \
             {store_errors} · offline models {models}"
        ),
    }
}

/// Someone's own settings as `/settings` shows them (`true`: on).
#[derive(Clone, Copy, Debug)]
pub struct UserSettingsView {
    pub reactions: bool,
    pub mentions: bool,
    pub profile: bool,
}

/// A group's settings as `/settings` shows them, defaults filled in.
#[derive(Clone, Copy, Debug)]
pub struct ChatSettingsView {
    pub replies: bool,
    /// Chance of an unprompted reply, 0 to 1.
    pub chance: f64,
    /// Local quiet hours, from and to.
    pub quiet: (u8, u8),
    pub spontaneous: bool,
    /// The local hour of the daily digest, if it is on.
    pub digest: Option<u8>,
}

/// `/settings`: someone's own choices, and in a group the chat's.
pub fn settings_view(
    lang: Lang,
    mine: &UserSettingsView,
    chat: Option<&ChatSettingsView>,
) -> String {
    let mut text = format!(
        "{}\n{} {}\n{} {}\n{} {}",
        lang.pick("Твої налаштування:", "Your settings:"),
        lang.pick(
            "Реакції на твої повідомлення:",
            "Reactions to your messages:"
        ),
        on_off(lang, mine.reactions),
        lang.pick(
            "Твої повідомлення у спонтанних дописах:",
            "Your messages in spontaneous posts:"
        ),
        on_off(lang, mine.mentions),
        lang.pick(
            "Профіль (/me, підказки для відповідей):",
            "Profile (/me, hints for replies):"
        ),
        on_off(lang, mine.profile)
    );
    if let Some(c) = chat {
        let _ = write!(
            text,
            "\n\n{}\n{} {} · {} {:.0}% · {} {}–{} · {} {} · {} {}\n{}",
            lang.pick(
                "Чат (змінюють адміністратори):",
                "Chat (administrators change these):"
            ),
            lang.pick("Відповіді:", "Replies:"),
            on_off(lang, c.replies),
            lang.pick("шанс без звертання", "unprompted chance"),
            c.chance * 100.0,
            lang.pick("тихі години", "quiet hours"),
            c.quiet.0,
            c.quiet.1,
            lang.pick("спонтанні дописи:", "spontaneous posts:"),
            on_off(lang, c.spontaneous),
            lang.pick("підсумок дня:", "daily digest:"),
            match c.digest {
                Some(hour) => format!("{hour}:00"),
                None => on_off(lang, false).to_string(),
            },
            Phrase::SettingsUsage.text(lang),
        );
    }
    text
}

/// What `/import` answers when the import is done.
pub fn import_summary(lang: Lang, s: &ImportSummary) -> String {
    let skipped: u64 = s.skipped.values().sum();
    let mut out = match lang {
        Lang::Uk => format!(
            "✅ Імпортовано чатів: {}, {}, службових: {}",
            s.chats,
            messages(lang, s.messages),
            s.service_messages
        ),
        Lang::En => format!(
            "✅ Imported chats: {}, {}, service: {}",
            s.chats,
            messages(lang, s.messages),
            s.service_messages
        ),
    };
    if skipped > 0 {
        let reasons: Vec<String> = s
            .skipped
            .iter()
            .map(|(reason, n)| format!("{reason}: {n}"))
            .collect();
        let _ = write!(
            out,
            "\n{} {skipped} ({})",
            lang.pick("Пропущено:", "Skipped:"),
            reasons.join("; ")
        );
    }
    if let (Some(first), Some(last)) = (s.first_time, s.last_time) {
        let _ = write!(
            out,
            "\n{} {} — {}",
            lang.pick("Період:", "Time range:"),
            format_utc(first),
            format_utc(last)
        );
    }
    if s.times_taken_as_utc > 0 {
        let _ = write!(
            out,
            "\n{} {}",
            lang.pick(
                "Дата без часового поясу (прочитано як UTC):",
                "Dates without a time zone (read as UTC):"
            ),
            s.times_taken_as_utc
        );
    }
    if s.profiles > 0 {
        let _ = write!(
            out,
            "\n{} {}",
            lang.pick("Профілів оновлено:", "Profiles updated:"),
            s.profiles
        );
    }
    out
}

/// What `/import` answers when the file cannot be imported: why, as the importer says it (the
/// same words as `chatkeeper import`, in English).
pub fn import_failed(lang: Lang, error: &str) -> String {
    format!(
        "❌ {} {error}",
        lang.pick("Не вдалося імпортувати:", "The import failed:")
    )
}

/// How much of the last error an alert quotes.
const ALERT_ERROR_CHARS: usize = 1_000;

/// The admins' alert when errors pile up: `errors` within `minutes`, and the last one. In both
/// languages, one under the other: the bot does not know an admin's language.
pub fn alert(errors: usize, minutes: u64, last: &str) -> String {
    // Twice within Telegram's 4,096 characters, whatever the error says.
    let last = crate::reply::one_line(last, ALERT_ERROR_CHARS);
    format!(
        "⚠️ chatkeeper: помилок за останні {minutes} хв: {errors}; остання: {last}\n\
         ⚠️ chatkeeper: {errors} errors in the last {minutes} minutes; the last one: {last}"
    )
}
