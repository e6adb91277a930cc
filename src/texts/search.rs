//! What `/search` says when it cannot search: the reason and what to type instead.

use super::lang::Lang;
use crate::search::query::{QueryError, MAX_CHARS, MAX_PARTS};

/// Why a query was refused, and how to write it so that it works.
pub fn search_refused(lang: Lang, error: &QueryError) -> String {
    const FILTERS_UK: &str = "from:@нік (або from:me), since:2025-03-01, until:2025-03-31";
    const FILTERS_EN: &str = "from:@username (or from:me), since:2025-03-01, until:2025-03-31";
    match error {
        QueryError::Empty => lang
            .pick(
                "Що шукати? Напишіть слова після /search, наприклад: /search похід Карпати",
                "What should I look for? Write words after /search, e.g. /search hiking Carpathians",
            )
            .to_string(),
        QueryError::TooLong(chars) => match lang {
            Lang::Uk => format!(
                "Запит задовгий ({chars} символів, можна до {MAX_CHARS}): залиште кілька ключових слів."
            ),
            Lang::En => format!(
                "The query is too long ({chars} characters, up to {MAX_CHARS}): keep a few key words."
            ),
        },
        QueryError::TooManyParts => match lang {
            Lang::Uk => format!("Забагато слів (можна до {MAX_PARTS}): залиште найважливіші."),
            Lang::En => format!("Too many words (up to {MAX_PARTS}): keep the important ones."),
        },
        QueryError::UnbalancedQuote => lang
            .pick(
                "Лапки не закриті: фразу беріть у лапки з обох боків, наприклад \"у Карпати\".",
                "A quotation mark is not closed: put a phrase between two, e.g. \"hiking trip\".",
            )
            .to_string(),
        QueryError::UnknownFilter(key) => match lang {
            Lang::Uk => format!("Не знаю фільтра {key}. Є такі: {FILTERS_UK}."),
            Lang::En => format!("There is no filter {key}. These work: {FILTERS_EN}."),
        },
        QueryError::BadDate(value) => match lang {
            Lang::Uk => format!("«{value}» — не дата. Пишіть рік-місяць-день: since:2025-03-01."),
            Lang::En => format!("\"{value}\" is not a date. Write year-month-day: since:2025-03-01."),
        },
        QueryError::EmptyFilter(key) => match lang {
            Lang::Uk => format!("Після {key} потрібне значення, наприклад: {FILTERS_UK}."),
            Lang::En => format!("{key} needs a value, e.g. {FILTERS_EN}."),
        },
        QueryError::BadUsername(value) => match lang {
            Lang::Uk => format!("«{value}» — не нік. Пишіть from:@нік (латиницею) або from:me."),
            Lang::En => format!("\"{value}\" is not a username. Write from:@username or from:me."),
        },
        QueryError::EmptyRange => lang
            .pick(
                "Дата since: пізніша за until: — поміняйте їх місцями.",
                "The since: date is after the until: date: swap them.",
            )
            .to_string(),
        QueryError::NothingToFind => lang
            .pick(
                "Крім фільтрів і виключень потрібне хоча б одне слово, яке шукати.",
                "Besides filters and exclusions, give at least one word to look for.",
            )
            .to_string(),
        QueryError::OnlyCommonWords => lang
            .pick(
                "Такі слова є майже в кожному повідомленні: додайте слово рідше, наприклад назву чи ім'я.",
                "Those words are in nearly every message: add a rarer one, such as a name or a place.",
            )
            .to_string(),
        QueryError::UnknownUser(name) => match lang {
            Lang::Uk => format!("Тут не писав ніхто з ніком @{name}. Перевірте нік або пишіть from:me."),
            Lang::En => format!("No one called @{name} has written here. Check the username, or write from:me."),
        },
        QueryError::NoOneAsking => lang
            .pick(
                "from:me працює в чаті; тут вкажіть from:@нік.",
                "from:me works in a chat; here, give from:@username.",
            )
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_says_why_in_both_languages_and_quotes_what_was_typed() {
        // Each refusal, with what it must quote back.
        let errors = [
            (QueryError::Empty, None),
            (QueryError::TooLong(2_000), Some("2000")),
            (QueryError::TooManyParts, None),
            (QueryError::UnbalancedQuote, None),
            (QueryError::UnknownFilter("form:".into()), Some("form:")),
            (QueryError::BadDate("вчора".into()), Some("вчора")),
            (QueryError::EmptyFilter("since:".into()), Some("since:")),
            (QueryError::BadUsername("@Оксана".into()), Some("@Оксана")),
            (QueryError::EmptyRange, None),
            (QueryError::NothingToFind, None),
            (QueryError::OnlyCommonWords, None),
            (QueryError::UnknownUser("oksana_k".into()), Some("@oksana_k")),
            (QueryError::NoOneAsking, None),
        ];
        let mut seen = std::collections::HashSet::new();
        for (error, quoted) in &errors {
            let uk = search_refused(Lang::Uk, error);
            let en = search_refused(Lang::En, error);
            assert_ne!(uk, en, "{error:?}");
            assert!(
                seen.insert(uk.clone()) && seen.insert(en.clone()),
                "{error:?}"
            );
            if let Some(quoted) = quoted {
                assert!(
                    uk.contains(quoted) && en.contains(quoted),
                    "{error:?}: {uk} / {en}"
                );
            }
        }
    }
}
