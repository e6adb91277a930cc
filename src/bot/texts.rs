//! Everything the bot says, in Ukrainian and English. One table, so that a new message is added
//! in both languages at once and the command menu, `/help` and the replies cannot drift apart.

use crate::analyzer::profile::{Humour, Profile};
use crate::analyzer::{Emotion, Language as TextLanguage, Style, Topic};
use crate::reply::Language;

/// The language of a reply: Ukrainian for users whose Telegram speaks Ukrainian (or Russian:
/// the bot's chats are Ukrainian-speaking), English for everyone else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Uk,
    En,
}

impl Lang {
    /// The language for a user's `language_code`.
    pub fn of(language_code: Option<&str>) -> Lang {
        match language_code.map(|c| c.split(['-', '_']).next().unwrap_or(c)) {
            Some("uk") | Some("ru") | Some("be") => Lang::Uk,
            _ => Lang::En,
        }
    }

    /// The same language for the reply engines.
    pub fn language(self) -> Language {
        match self {
            Lang::Uk => Language::Ukrainian,
            Lang::En => Language::English,
        }
    }

    /// Picks the text of this language.
    pub fn pick<'a>(self, uk: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Uk => uk,
            Lang::En => en,
        }
    }
}

/// The command menu: (command, Ukrainian description, English description). Admin commands are
/// listed too; others get a polite refusal when they use them.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("start", "Привітання і що я вмію", "Hello and what I can do"),
    ("help", "Усі команди", "All commands"),
    ("stats", "Статистика цього чату", "Statistics of this chat"),
    ("top", "Найактивніші учасники", "Most active members"),
    (
        "words",
        "Слова дня в цьому чаті",
        "Words of the day in this chat",
    ),
    (
        "analytics",
        "Настрій і теми чату за добу (/analytics 7d — за тиждень)",
        "Mood and topics of this chat, last day (/analytics 7d: week)",
    ),
    (
        "me",
        "Твої повідомлення тут і всюди",
        "Your messages here and everywhere",
    ),
    (
        "forget_me",
        "Видалити твої повідомлення",
        "Delete your messages",
    ),
    (
        "settings",
        "Налаштування: реакції, згадки, відповіді",
        "Settings: reactions, mentions, replies",
    ),
    (
        "global",
        "Адміністратор: загальна статистика",
        "Admin: global statistics",
    ),
    ("health", "Адміністратор: стан бота", "Admin: bot health"),
    (
        "backup",
        "Адміністратор: резервна копія зараз",
        "Admin: back up now",
    ),
    (
        "import",
        "Адміністратор: імпорт експорту (відповіддю на файл)",
        "Admin: import an export (reply to the file)",
    ),
    (
        "purge_chat",
        "Адміністратор: стерти історію цього чату",
        "Admin: erase this chat's history",
    ),
];

/// `/start`.
pub fn start(lang: Lang, bot_name: &str) -> String {
    match lang {
        Lang::Uk => format!(
            "Привіт! Я {bot_name}. Я запам'ятовую розмови чатів, де я є, відповідаю, коли до \
             мене звертаються, і рахую статистику. /help — усі команди, /settings — \
             налаштування, /forget_me — видалити свої повідомлення."
        ),
        Lang::En => format!(
            "Hi! I'm {bot_name}. I remember the conversations of the chats I'm in, answer when \
             I'm addressed and keep statistics. /help lists the commands, /settings has your \
             options, /forget_me deletes your messages."
        ),
    }
}

/// `/help`: the menu with descriptions.
pub fn help(lang: Lang) -> String {
    let mut out = lang.pick("Команди:", "Commands:").to_string();
    for (command, uk, en) in COMMANDS {
        out.push_str(&format!("\n/{command} — {}", lang.pick(uk, en)));
    }
    out
}

/// Fixed phrases.
pub enum Phrase {
    AdminOnly,
    NoStatsYet,
    ForgotHere,
    ForgetEverywhereButton,
    ForgetEverywhereAsk,
    ForgotEverywhere,
    NotYourButton,
    ChatAdminsOnly,
    Saved,
    BackupStarted,
    BackupTooLarge,
    NeedsPrivateChat,
    SentPrivately,
    BackupNotSent,
    ImportNeedsDocument,
    ImportTooLarge,
    ImportStarted,
    PurgeDone,
    SettingsUsage,
    ButtonFailed,
    ProfileOff,
    ProfileEmpty,
}

impl Phrase {
    /// The phrase in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        use Phrase::*;
        let (uk, en) = match self {
            AdminOnly => (
                "Вибач, ця команда лише для адміністраторів бота.",
                "Sorry, this command is for the bot's administrators only.",
            ),
            NoStatsYet => (
                "Тут ще нічого не записано.",
                "Nothing has been recorded here yet.",
            ),
            ForgotHere => (
                "Готово: твої повідомлення й профіль у цьому чаті видалено. Видалити також усюди?",
                "Done: your messages and profile in this chat are deleted. Delete them everywhere too?",
            ),
            ForgetEverywhereButton => ("🗑 Видалити всюди", "🗑 Delete everywhere"),
            ForgetEverywhereAsk => (
                "Видалити всі твої повідомлення в усіх чатах? Це не можна скасувати.",
                "Delete all your messages in every chat? This cannot be undone.",
            ),
            ForgotEverywhere => (
                "Готово: усі твої повідомлення, лічильники й профілі видалено (твої вибори в \
                 /settings лишаються, щоб я їх і далі поважав).",
                "Done: all your messages, counters and profiles are deleted (your choices in \
                 /settings stay, so that I keep respecting them).",
            ),
            NotYourButton => ("Ця кнопка не для тебе.", "This button is not yours."),
            ChatAdminsOnly => (
                "Налаштування чату змінюють лише його адміністратори.",
                "Only this chat's administrators can change its settings.",
            ),
            Saved => ("Збережено.", "Saved."),
            BackupStarted => ("Роблю резервну копію…", "Backing up…"),
            BackupTooLarge => (
                "Копія завелика для Telegram; вона збережена на сервері:",
                "The backup is too large for Telegram; it is kept on the server:",
            ),
            NeedsPrivateChat => (
                "Не можу написати тобі в особисті: спершу напиши мені /start у приватному чаті.",
                "I cannot message you privately: send me /start in a private chat first.",
            ),
            SentPrivately => ("Надіслав тобі в особисті.", "Sent to you privately."),
            BackupNotSent => (
                "Копію зроблено, але надіслати її не вдалося; вона збережена на сервері.",
                "The backup is written but could not be sent; it is kept on the server.",
            ),
            ImportNeedsDocument => (
                "Надішли result.json з експорту Telegram Desktop і відповідай на нього /import.",
                "Upload result.json from a Telegram Desktop export and reply to it with /import.",
            ),
            ImportTooLarge => (
                "Файл завеликий для імпорту через Telegram; скористайся `chatkeeper import` на сервері.",
                "The file is too large to import through Telegram; use `chatkeeper import` on the server.",
            ),
            ImportStarted => ("Імпортую…", "Importing…"),
            PurgeDone => (
                "Історію цього чату стерто. Повідомлень видалено:",
                "This chat's history is erased. Messages deleted:",
            ),
            SettingsUsage => (
                "Для адміністраторів чату: /settings chance 0.05 — шанс відповіді без звертання; \
                 /settings quiet 23-8 або /settings quiet off — тихі години.",
                "For chat administrators: /settings chance 0.05 — chance of unprompted replies; \
                 /settings quiet 23-8 or /settings quiet off — quiet hours.",
            ),
            ButtonFailed => (
                "Не вдалося, спробуй ще раз пізніше.",
                "That did not work; please try again later.",
            ),
            ProfileOff => (
                "Профіль вимкнено: я не збираю про тебе нічого, крім лічильників (/settings).",
                "Your profile is off: I keep nothing about you but counters (/settings).",
            ),
            ProfileEmpty => (
                "Профілю ще немає: я складаю його з нових повідомлень у цьому чаті.",
                "No profile yet: I build it from your new messages in this chat.",
            ),
        };
        lang.pick(uk, en)
    }
}

/// An emotion's name.
pub fn emotion(lang: Lang, emotion: Emotion) -> &'static str {
    let (uk, en) = match emotion {
        Emotion::Joy => ("радість", "joy"),
        Emotion::Sadness => ("смуток", "sadness"),
        Emotion::Anger => ("злість", "anger"),
        Emotion::Fear => ("страх", "fear"),
        Emotion::Surprise => ("здивування", "surprise"),
        Emotion::Disgust => ("огида", "disgust"),
        Emotion::Neutral => ("спокій", "calm"),
    };
    lang.pick(uk, en)
}

/// A topic's name.
pub fn topic(lang: Lang, topic: Topic) -> &'static str {
    let (uk, en) = match topic {
        Topic::Tech => ("техніка", "tech"),
        Topic::WorkStudy => ("робота й навчання", "work and study"),
        Topic::DailyLife => ("побут", "daily life"),
        Topic::Entertainment => ("розваги", "entertainment"),
        Topic::WeatherNature => ("погода й природа", "weather and nature"),
        Topic::Relationships => ("стосунки", "relationships"),
        Topic::PoliticsNews => ("політика й новини", "politics and news"),
        Topic::Food => ("їжа", "food"),
        Topic::HealthSport => ("здоров'я і спорт", "health and sport"),
        Topic::Travel => ("подорожі", "travel"),
    };
    lang.pick(uk, en)
}

/// `/me`: what the bot learned of how someone writes in this chat (hours are local, with
/// `utc_offset_hours`).
pub fn profile(lang: Lang, p: &Profile, utc_offset_hours: i32) -> String {
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
        (Some(language), Some(humour)) => {
            let language = match language {
                TextLanguage::Ukrainian => lang.pick("українська", "Ukrainian"),
                TextLanguage::Russian => lang.pick("російська", "Russian"),
                TextLanguage::English => lang.pick("англійська", "English"),
                TextLanguage::Other => lang.pick("інша", "other"),
            };
            let style = match p.style() {
                Some(Style::Formal) => lang.pick("офіційний", "formal"),
                Some(Style::Friendly) => lang.pick("дружній", "friendly"),
                Some(Style::Casual) => lang.pick("невимушений", "casual"),
                None => lang.pick("без вираженого", "no clear one"),
            };
            let humour = match humour {
                Humour::Often => lang.pick("часто", "often"),
                Humour::Sometimes => lang.pick("іноді", "sometimes"),
                Humour::Rare => lang.pick("рідко", "rarely"),
            };
            lines.push(match lang {
                Lang::Uk => format!("🗣 Мова: {language} · стиль: {style} · жартуєш: {humour}"),
                Lang::En => format!("🗣 Language: {language} · style: {style} · jokes: {humour}"),
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

/// A count with its noun, e.g. "5 повідомлень" / "5 messages".
pub fn messages(lang: Lang, n: u64) -> String {
    match lang {
        Lang::Uk => {
            let noun = match (n % 10, n % 100) {
                (1, m) if m != 11 => "повідомлення",
                (2..=4, m) if !(12..=14).contains(&m) => "повідомлення",
                _ => "повідомлень",
            };
            format!("{n} {noun}")
        }
        Lang::En if n == 1 => "1 message".into(),
        Lang::En => format!("{n} messages"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_come_from_language_codes() {
        assert_eq!(Lang::of(Some("uk")), Lang::Uk);
        assert_eq!(Lang::of(Some("uk-UA")), Lang::Uk);
        assert_eq!(Lang::of(Some("en-US")), Lang::En);
        assert_eq!(Lang::of(None), Lang::En);
    }

    #[test]
    fn ukrainian_plurals() {
        assert_eq!(messages(Lang::Uk, 1), "1 повідомлення");
        assert_eq!(messages(Lang::Uk, 3), "3 повідомлення");
        assert_eq!(messages(Lang::Uk, 11), "11 повідомлень");
        assert_eq!(messages(Lang::Uk, 25), "25 повідомлень");
        assert_eq!(messages(Lang::En, 1), "1 message");
    }

    #[test]
    fn help_lists_every_command_in_both_languages() {
        for lang in [Lang::Uk, Lang::En] {
            let help = help(lang);
            for (command, _, _) in COMMANDS {
                assert!(help.contains(&format!("/{command} ")), "{help}");
            }
        }
    }
}
