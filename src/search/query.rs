//! What a person types after `/search` (or to `chatkeeper search`), parsed: words, `word*`
//! prefixes, `"exact phrases"`, `-excluded` words, and the filters `from:@username`, `from:me`,
//! `since:2025-03-01` and `until:2025-03-31`. A leading `all` asks for the whole chat rather than
//! the forum topic the command was sent in.
//!
//! Parsing is separate from searching so that a bad query is refused with a reason, before any
//! index is read; the reasons are [`QueryError`]s, which `texts` words for people.

use crate::tokens;
use chrono::NaiveDate;

/// The longest query accepted, in characters: longer ones are pasted text, not a search.
pub const MAX_CHARS: usize = 300;
/// At most this many words, phrases and exclusions together.
pub const MAX_PARTS: usize = 16;

/// A parsed query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Words that should match (folded, not yet stemmed: the engine stems).
    pub words: Vec<Word>,
    /// Exact phrases: each the folded words of one quoted part.
    pub phrases: Vec<Vec<String>>,
    /// Words no result may contain.
    pub excluded: Vec<String>,
    /// Phrases no result may contain.
    pub excluded_phrases: Vec<Vec<String>>,
    pub from: Option<Author>,
    /// First day included (UTC dates; the caller shifts them to the chat's time zone).
    pub since: Option<NaiveDate>,
    /// Last day included.
    pub until: Option<NaiveDate>,
    /// `all`: the whole chat, not only the forum topic asked from.
    pub whole_chat: bool,
}

/// One word to match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// Typed as `word*`: any word that starts so matches.
    pub prefix: bool,
}

/// Whose messages to find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Author {
    /// The person searching.
    Me,
    /// A `@username` (without the `@`, lower case).
    Username(String),
    /// A person named in a question (`/ask`), found among the chat's people by the bot.
    User(crate::store::UserId),
}

/// Why a query was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the query is empty")]
    Empty,
    #[error("the query is {0} characters long")]
    TooLong(usize),
    #[error("the query has more than {MAX_PARTS} words")]
    TooManyParts,
    #[error("a quotation mark is not closed")]
    UnbalancedQuote,
    #[error("unknown filter {0:?}")]
    UnknownFilter(String),
    #[error("{0:?} is not a date like 2025-03-01")]
    BadDate(String),
    #[error("the filter {0:?} needs a value")]
    EmptyFilter(String),
    #[error("{0:?} is not a @username")]
    BadUsername(String),
    #[error("since is after until")]
    EmptyRange,
    #[error("nothing to look for besides filters and exclusions")]
    NothingToFind,
    /// Every word is one of the commonest (stop-words), which the index leaves out.
    #[error("only common words, which are in nearly every message")]
    OnlyCommonWords,
    /// No one who wrote in the chat has this `@username`.
    #[error("no one called @{0} has written here")]
    UnknownUser(String),
    /// `from:me` where there is no "me" (the command line).
    #[error("from:me needs a person asking; give from:@username")]
    NoOneAsking,
}

impl Query {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let text = text.trim();
        let chars = text.chars().count();
        if chars > MAX_CHARS {
            return Err(QueryError::TooLong(chars));
        }
        let mut query = Query::default();
        let mut rest = text;
        let mut first = true;
        while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
            rest = &rest[start..];
            // `-word`, `-"a phrase"`; a dash that a phone typed for the hyphen counts too.
            let negated = rest
                .strip_prefix(['-', '–', '—'])
                .filter(|after| after.starts_with(|c: char| !c.is_whitespace()));
            let body = negated.unwrap_or(rest);
            if let Some((inside, after)) = quoted(body)? {
                let words: Vec<String> = tokens::words(inside).map(tokens::fold).collect();
                match (negated.is_some(), words.len()) {
                    (_, 0) => {}
                    (true, 1) => query.excluded.extend(words),
                    (true, _) => query.excluded_phrases.push(words),
                    (false, 1) => query.words.extend(words.into_iter().map(|text| Word {
                        text,
                        prefix: false,
                    })),
                    (false, _) => query.phrases.push(words),
                }
                rest = after;
                first = false;
                continue;
            }
            let end = body.find(char::is_whitespace).unwrap_or(body.len());
            let part = &body[..end];
            rest = &body[end..];
            if negated.is_some() {
                query.excluded.extend(tokens::words(part).map(tokens::fold));
            } else if first && part.eq_ignore_ascii_case("all") {
                query.whole_chat = true;
            } else {
                query.part(part)?;
            }
            first = false;
        }
        let looked_for = query.words.len() + query.phrases.len();
        let excluded = query.excluded.len() + query.excluded_phrases.len();
        if looked_for + excluded > MAX_PARTS {
            return Err(QueryError::TooManyParts);
        }
        if looked_for == 0 {
            let filtered = query.from.is_some() || query.since.is_some() || query.until.is_some();
            return Err(if filtered || excluded > 0 {
                QueryError::NothingToFind
            } else {
                QueryError::Empty
            });
        }
        if let (Some(since), Some(until)) = (query.since, query.until) {
            if since > until {
                return Err(QueryError::EmptyRange);
            }
        }
        Ok(query)
    }

    /// One whitespace-separated part outside quotes, not excluded.
    fn part(&mut self, part: &str) -> Result<(), QueryError> {
        if let Some((filter, key, value)) = filter(part)? {
            let value_error = || QueryError::EmptyFilter(format!("{key}:"));
            if value.is_empty() {
                return Err(value_error());
            }
            match filter {
                Filter::From => {
                    if value.eq_ignore_ascii_case("me") || value == "я" {
                        self.from = Some(Author::Me);
                        return Ok(());
                    }
                    let name = value.strip_prefix('@').unwrap_or(value);
                    // Telegram usernames are Latin letters, digits and underscores.
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(QueryError::BadUsername(value.to_string()));
                    }
                    self.from = Some(Author::Username(name.to_lowercase()));
                }
                Filter::Since | Filter::Until => {
                    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
                        .map_err(|_| QueryError::BadDate(value.to_string()))?;
                    if filter == Filter::Since {
                        self.since = Some(date);
                    } else {
                        self.until = Some(date);
                    }
                }
            }
            return Ok(());
        }
        let words: Vec<&str> = tokens::words(part).collect();
        let last = words.len().saturating_sub(1);
        // A one-letter prefix matches half the vocabulary: it is a word.
        let prefix = part.ends_with('*') && words.last().is_some_and(|w| w.chars().count() >= 2);
        for (i, word) in words.into_iter().enumerate() {
            self.words.push(Word {
                text: tokens::fold(word),
                prefix: prefix && i == last,
            });
        }
        Ok(())
    }
}

/// The filters, by the keys people type (English and Ukrainian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    From,
    Since,
    Until,
}

/// The filter `part` is written as (`key:value`), with its key and value. A known key is a
/// filter even with an empty value (an error then); an unknown key of Latin letters with a value
/// is a mistyped filter (`form:@x`); anything else with a colon is words: "Увага:", "10:30",
/// `https://…`, "ой:(".
fn filter(part: &str) -> Result<Option<(Filter, &str, &str)>, QueryError> {
    let Some((key, value)) = part.split_once(':') else {
        return Ok(None);
    };
    let filter = match key.to_lowercase().as_str() {
        "from" | "від" => Filter::From,
        "since" | "з" | "після" => Filter::Since,
        "until" | "до" => Filter::Until,
        _ if !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphabetic())
            && !value.is_empty()
            && !value.starts_with("//") =>
        {
            return Err(QueryError::UnknownFilter(format!("{key}:")));
        }
        _ => return Ok(None),
    };
    Ok(Some((filter, key, value)))
}

/// When `text` starts with an opening quote: what is inside and what follows the closing one.
/// Each opening quote has its own closers, so that `"a «b» c"` is one phrase.
fn quoted(text: &str) -> Result<Option<(&str, &str)>, QueryError> {
    let mut chars = text.chars();
    let closers: &[char] = match chars.next() {
        Some('"') => &['"'],
        Some('«') => &['»'],
        Some('„') => &['“', '”'],
        Some('“') => &['”'],
        _ => return Ok(None),
    };
    let inside = chars.as_str();
    let end = inside.find(closers).ok_or(QueryError::UnbalancedQuote)?;
    let closing = inside[end..].chars().next().map_or(0, char::len_utf8);
    Ok(Some((&inside[..end], &inside[end + closing..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str) -> Word {
        Word {
            text: text.into(),
            prefix: false,
        }
    }

    #[test]
    fn words_phrases_exclusions_and_filters_are_told_apart() {
        let q = Query::parse(
            r#"Похід "у Карпати" -дощ від* from:@Oksana since:2025-03-01 until:2025-03-31"#,
        )
        .unwrap();
        assert_eq!(
            q.words,
            [
                word("похід"),
                Word {
                    text: "від".into(),
                    prefix: true
                }
            ]
        );
        assert_eq!(q.phrases, [vec!["у".to_string(), "карпати".to_string()]]);
        assert_eq!(q.excluded, ["дощ"]);
        assert_eq!(q.from, Some(Author::Username("oksana".into())));
        assert_eq!(q.since, NaiveDate::from_ymd_opt(2025, 3, 1));
        assert_eq!(q.until, NaiveDate::from_ymd_opt(2025, 3, 31));
        assert!(!q.whole_chat);

        let q = Query::parse("all зустріч from:me «о сьомій» 10:30 https://t.me/x").unwrap();
        assert!(q.whole_chat);
        assert_eq!(q.from, Some(Author::Me));
        assert_eq!(q.phrases, [vec!["о".to_string(), "сьомій".to_string()]]);
        // A time and a link are words, split as the tokenizer splits them.
        let words: Vec<&str> = q.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(words, ["зустріч", "10", "30", "https", "t", "me", "x"]);
        // Exclusions of phrases, dashes typed by phones, quotes inside quotes, Ukrainian keys,
        // and colons that are not filters.
        let q = Query::parse(
            r#"-"у Карпати" –дощ "a «b» c" від:@Oksana з:2025-03-01 до:2025-03-02 Увага: ціна:100 ой:( в*"#,
        )
        .unwrap();
        assert_eq!(
            q.excluded_phrases,
            [vec!["у".to_string(), "карпати".to_string()]]
        );
        assert_eq!(q.excluded, ["дощ"]);
        assert_eq!(
            q.phrases,
            [vec!["a".to_string(), "b".to_string(), "c".to_string()]]
        );
        assert_eq!(q.from, Some(Author::Username("oksana".into())));
        assert_eq!(q.since, NaiveDate::from_ymd_opt(2025, 3, 1));
        assert_eq!(q.until, NaiveDate::from_ymd_opt(2025, 3, 2));
        let words: Vec<&str> = q.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(words, ["увага", "ціна", "100", "ой", "в"]);
        assert!(
            q.words.iter().all(|w| !w.prefix),
            "a one-letter prefix is a word"
        );
        assert_eq!(Query::parse("слово від:я").unwrap().from, Some(Author::Me));
        // `all` later on is a word; `from:@me` is someone called "me".
        let q = Query::parse("все all from:@me").unwrap();
        assert!(!q.whole_chat);
        assert_eq!(q.from, Some(Author::Username("me".into())));
    }

    #[test]
    fn bad_queries_are_refused_with_a_reason() {
        let cases = [
            ("", QueryError::Empty),
            ("   ", QueryError::Empty),
            ("\"\"", QueryError::Empty),
            ("all", QueryError::Empty),
            ("\"у Карпати", QueryError::UnbalancedQuote),
            (
                "слово colour:red",
                QueryError::UnknownFilter("colour:".into()),
            ),
            ("слово since:вчора", QueryError::BadDate("вчора".into())),
            (
                "слово since:2025-02-30",
                QueryError::BadDate("2025-02-30".into()),
            ),
            ("слово from:", QueryError::EmptyFilter("from:".into())),
            ("слово from:@", QueryError::BadUsername("@".into())),
            (
                "слово from:@Оксана",
                QueryError::BadUsername("@Оксана".into()),
            ),
            (
                r#"слово from:"Оксана Петренко""#,
                QueryError::BadUsername("\"Оксана".into()),
            ),
            (
                "слово form:@oksana",
                QueryError::UnknownFilter("form:".into()),
            ),
            ("«у Карпати\"", QueryError::UnbalancedQuote),
            ("from:me", QueryError::NothingToFind),
            ("-дощ", QueryError::NothingToFind),
            ("-\"у Карпати\"", QueryError::NothingToFind),
            (
                "слово since:2025-03-02 until:2025-03-01",
                QueryError::EmptyRange,
            ),
        ];
        for (text, error) in cases {
            assert_eq!(Query::parse(text), Err(error), "{text:?}");
        }
        let long = "слово ".repeat(400);
        assert!(matches!(Query::parse(&long), Err(QueryError::TooLong(_))));
        let many = "слово ".repeat(MAX_PARTS + 1);
        assert_eq!(Query::parse(&many), Err(QueryError::TooManyParts));
        // Garbage never panics.
        for text in [
            "\"", "«»«", "-", "*", ":", "a:b:c", "\"a\"\"", "from:@@", "🙂*",
        ] {
            let _ = Query::parse(text);
        }
    }
}
