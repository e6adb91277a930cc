//! The two languages the bot speaks.

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

    /// Picks the text of this language; only the texts module may.
    pub(super) fn pick<'a>(self, uk: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Uk => uk,
            Lang::En => en,
        }
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
}
