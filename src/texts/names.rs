//! Names of what the analyzer finds, and counts with their nouns.

use super::lang::Lang;
use crate::analyzer::profile::Humour;
use crate::analyzer::{Emotion, Language as TextLanguage, Style, Topic};

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
pub(super) fn topic(lang: Lang, topic: Topic) -> &'static str {
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

/// A language's name.
pub(super) fn language(lang: Lang, language: TextLanguage) -> &'static str {
    match language {
        TextLanguage::Ukrainian => lang.pick("українська", "Ukrainian"),
        TextLanguage::Russian => lang.pick("російська", "Russian"),
        TextLanguage::English => lang.pick("англійська", "English"),
        TextLanguage::Other => lang.pick("інша", "other"),
    }
}

/// A register's name.
pub(super) fn style(lang: Lang, style: Option<Style>) -> &'static str {
    match style {
        Some(Style::Formal) => lang.pick("офіційний", "formal"),
        Some(Style::Friendly) => lang.pick("дружній", "friendly"),
        Some(Style::Casual) => lang.pick("невимушений", "casual"),
        None => lang.pick("без вираженого", "no clear one"),
    }
}

/// How often someone jokes.
pub(super) fn humour(lang: Lang, humour: Humour) -> &'static str {
    match humour {
        Humour::Often => lang.pick("часто", "often"),
        Humour::Sometimes => lang.pick("іноді", "sometimes"),
        Humour::Rare => lang.pick("рідко", "rarely"),
    }
}

/// "on" or "off".
pub(super) fn on_off(lang: Lang, on: bool) -> &'static str {
    match on {
        true => lang.pick("увімк.", "on"),
        false => lang.pick("вимк.", "off"),
    }
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
    fn ukrainian_plurals() {
        assert_eq!(messages(Lang::Uk, 1), "1 повідомлення");
        assert_eq!(messages(Lang::Uk, 3), "3 повідомлення");
        assert_eq!(messages(Lang::Uk, 11), "11 повідомлень");
        assert_eq!(messages(Lang::Uk, 25), "25 повідомлень");
        assert_eq!(messages(Lang::En, 1), "1 message");
    }
}
