//! The command menu, `/start` and `/help`.

use super::lang::Lang;

/// The command menu: (command, Ukrainian description, English description). Admin commands are
/// listed too; others get a polite refusal when they use them. The bot's tests tie every command
/// it answers to exactly one row here.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("start", "Привітання і що я вмію", "Hello and what I can do"),
    ("help", "Усі команди", "All commands"),
    ("stats", "Статистика цього чату", "Statistics of this chat"),
    ("top", "Найактивніші учасники", "Most active members"),
    (
        "search",
        "Пошук в історії чату: /search слова (from:@нік, since:2025-03-01, \"фраза\", -слово)",
        "Search this chat's history: /search words (from:@user, since:2025-03-01, \"phrase\", -word)",
    ),
    (
        "catchup",
        "Що я пропустив: від твого останнього повідомлення (/catchup 6h, 3d)",
        "What did I miss: since your last message (/catchup 6h, 3d)",
    ),
    (
        "ask",
        "Запитати історію чату: /ask що вирішили щодо поїздки?",
        "Ask the chat's history: /ask what did we decide about the trip?",
    ),
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
        "Налаштування: реакції, згадки, відповіді, підсумок дня",
        "Settings: reactions, mentions, replies, daily digest",
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

/// The menu in `lang`: (command, description), in [`COMMANDS`] order.
pub fn menu(lang: Lang) -> impl Iterator<Item = (&'static str, &'static str)> {
    COMMANDS
        .iter()
        .map(move |&(command, uk, en)| (command, lang.pick(uk, en)))
}

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
    for (command, description) in menu(lang) {
        out.push_str(&format!("\n/{command} — {description}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
