//! Fixed phrases: answers, button labels and chart captions.

use super::lang::Lang;

/// A fixed phrase; [`Phrase::text`] gives it in a language (each is written as a pair, so none
/// can lack one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    PurgeAsk,
    PurgeButton,
    PurgeDone,
    SettingsUsage,
    ButtonFailed,
    ProfileOff,
    ProfileEmpty,
    ToggleReactions,
    ToggleMentions,
    ToggleProfile,
    ToggleReplies,
    ToggleSpontaneous,
    ToggleDigest,
    ChartByHour,
    ChartPerDay,
    ChartEmotions,
    ChartNoData,
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
            PurgeAsk => (
                "Стерти всю збережену історію цього чату? Це не можна скасувати.",
                "Erase all stored history of this chat? This cannot be undone.",
            ),
            PurgeButton => ("🗑 Так, стерти", "🗑 Yes, erase"),
            PurgeDone => (
                "Історію цього чату стерто. Повідомлень видалено:",
                "This chat's history is erased. Messages deleted:",
            ),
            SettingsUsage => (
                "Для адміністраторів чату: /settings chance 0.05 — шанс відповіді без звертання; \
                 /settings quiet 23-8 або /settings quiet off — тихі години; /settings digest 9 \
                 або /settings digest off — підсумок дня о 9:00 чи без нього.",
                "For chat administrators: /settings chance 0.05 — chance of unprompted replies; \
                 /settings quiet 23-8 or /settings quiet off — quiet hours; /settings digest 9 \
                 or /settings digest off — a daily digest at 9:00, or none.",
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
            ToggleReactions => ("Реакції: перемкнути", "Reactions: toggle"),
            ToggleMentions => ("Згадки: перемкнути", "Mentions: toggle"),
            ToggleProfile => (
                "Профіль: перемкнути (вимкнення стирає)",
                "Profile: toggle (off deletes it)",
            ),
            ToggleReplies => ("Відповіді", "Replies"),
            ToggleSpontaneous => ("Спонтанні дописи", "Spontaneous posts"),
            ToggleDigest => ("Підсумок дня", "Daily digest"),
            ChartByHour => ("Повідомлення за годинами доби", "Messages by hour of day"),
            ChartPerDay => ("Повідомлення за днями", "Messages per day"),
            ChartEmotions => ("Емоції", "Emotion mix"),
            ChartNoData => ("немає даних", "no data"),
        };
        lang.pick(uk, en)
    }
}
