//! What `/search` says when it cannot search: the reason and what to type instead.

use super::lang::Lang;
use crate::search::query::{QueryError, MAX_CHARS, MAX_PARTS};
use crate::search::{Found, Hit};

/// What a results message may take of Telegram's 4,096 UTF-16 units (the rest is for the
/// note that results may be missing).
const MAX_UNITS: usize = 3_900;

/// One result as `/search` shows it: the hit, and the link to its message if the chat has
/// links.
pub struct ResultLine<'a> {
    pub hit: &'a Hit,
    pub link: Option<String>,
}

/// A page of `/search` results in Telegram's HTML: a header with the query and the range shown,
/// then per result its number, date (a link to the message where there is one), author and the
/// snippet with the matched words in bold.
pub fn search_results(
    lang: Lang,
    query: &str,
    found: &Found,
    lines: &[ResultLine],
    offset: usize,
    utc_offset_secs: i64,
) -> String {
    let query = escape(query.trim());
    if lines.is_empty() {
        let mut text = match (lang, offset) {
            (Lang::Uk, 0) => format!("🔎 «{query}»: нічого не знайшов."),
            (Lang::En, 0) => format!("🔎 \"{query}\": nothing found."),
            (Lang::Uk, _) => format!("🔎 «{query}»: більше нічого."),
            (Lang::En, _) => format!("🔎 \"{query}\": nothing more."),
        };
        if offset == 0 {
            text.push_str(lang.pick(
                " Спробуйте інші слова, word* для початку слова або /search all у темі форуму.",
                " Try other words, word* for the start of a word, or /search all in a forum topic.",
            ));
        }
        push_incomplete(&mut text, lang, found);
        return text;
    }
    let (first, last) = (offset + 1, offset + lines.len());
    let mut text = match lang {
        Lang::Uk => format!("🔎 «{query}»: {first}–{last}"),
        Lang::En => format!("🔎 \"{query}\": {first}–{last}"),
    };
    if found.more {
        text.push_str(lang.pick(" (є ще)", " (more below)"));
    }
    text.push('\n');
    // Telegram takes up to 4,096 UTF-16 units. Snippets (160 characters) and names (40) are
    // short enough for ten results; should emoji-heavy ones still pass the limit, the page ends
    // early rather than fail to send.
    let mut units = text.encode_utf16().count();
    for (n, line) in lines.iter().enumerate() {
        let message = &line.hit.message;
        let date = chrono::DateTime::from_timestamp(message.time + utc_offset_secs, 0)
            .map(|t| t.format("%d.%m.%Y %H:%M").to_string())
            .unwrap_or_default();
        let date = match &line.link {
            Some(link) => format!("<a href=\"{}\">{date}</a>", escape(link)),
            None => date,
        };
        let author = if message.sender_name.is_empty() {
            "—".to_string()
        } else {
            escape(&message.sender_name.chars().take(40).collect::<String>())
        };
        let snippet = line.hit.snippet.render("<b>", "</b>", escape);
        let entry = format!("\n{}. {date} · {author}\n{snippet}\n", offset + n + 1);
        units += entry.encode_utf16().count();
        if units > MAX_UNITS {
            break;
        }
        text.push_str(&entry);
    }
    push_incomplete(&mut text, lang, found);
    text
}

/// Adds the note that results may be missing, when they may.
fn push_incomplete(text: &mut String, lang: Lang, found: &Found) {
    if found.incomplete {
        text.push_str(lang.pick(
            "\n⏳ Пошук ще читає історію чату: частини результатів може бракувати.",
            "\n⏳ Search is still reading the chat's history: some results may be missing.",
        ));
    }
}

/// The labels of the paging buttons under results.
pub fn search_page_buttons(lang: Lang) -> (&'static str, &'static str) {
    (
        lang.pick("◀ Назад", "◀ Back"),
        lang.pick("Далі ▶", "More ▶"),
    )
}

/// What a paging button says when the `/search` it belongs to is gone.
pub fn search_expired(lang: Lang) -> &'static str {
    lang.pick(
        "Цього пошуку вже немає: напишіть /search ще раз.",
        "That search is gone: send /search again.",
    )
}

/// What `/search` says when the index cannot answer now.
pub fn search_unavailable(lang: Lang) -> &'static str {
    lang.pick(
        "Пошук зараз перебудовує свій індекс. Спробуйте за кілька хвилин.",
        "Search is rebuilding its index. Try again in a few minutes.",
    )
}

/// Telegram HTML's three special characters escaped.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

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
            (
                QueryError::UnknownUser("oksana_k".into()),
                Some("@oksana_k"),
            ),
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
