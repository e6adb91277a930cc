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
    #[error("since is after until")]
    EmptyRange,
    #[error("nothing to look for besides filters and exclusions")]
    NothingToFind,
}

/// The filters a query may use, for the error that names them.
pub const FILTERS: [&str; 3] = ["from:", "since:", "until:"];

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
            if let Some(quoted) = rest.strip_prefix(['"', '“', '«', '„']) {
                let end = quoted
                    .find(['"', '”', '»', '“'])
                    .ok_or(QueryError::UnbalancedQuote)?;
                let words: Vec<String> = tokens::words(&quoted[..end]).map(tokens::fold).collect();
                match words.len() {
                    0 => {}
                    1 => query.words.extend(words.into_iter().map(|text| Word {
                        text,
                        prefix: false,
                    })),
                    _ => query.phrases.push(words),
                }
                let closing = quoted[end..].chars().next().map_or(0, char::len_utf8);
                rest = &quoted[end + closing..];
                first = false;
                continue;
            }
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let part = &rest[..end];
            rest = &rest[end..];
            if first && part.eq_ignore_ascii_case("all") {
                query.whole_chat = true;
                first = false;
                continue;
            }
            first = false;
            query.part(part)?;
        }
        let looked_for = query.words.len() + query.phrases.len();
        if looked_for + query.excluded.len() > MAX_PARTS {
            return Err(QueryError::TooManyParts);
        }
        if looked_for == 0 {
            let filtered = query.from.is_some() || query.since.is_some() || query.until.is_some();
            return Err(if filtered || !query.excluded.is_empty() {
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

    /// One whitespace-separated part outside quotes.
    fn part(&mut self, part: &str) -> Result<(), QueryError> {
        if let Some((key, value)) = filter(part) {
            let value_error = || QueryError::EmptyFilter(format!("{key}:"));
            match key.to_lowercase().as_str() {
                "from" => {
                    let name = value.trim_start_matches('@');
                    if name.is_empty() {
                        return Err(value_error());
                    }
                    self.from = Some(
                        if name.eq_ignore_ascii_case("me") && !value.starts_with('@') {
                            Author::Me
                        } else {
                            Author::Username(name.to_lowercase())
                        },
                    );
                }
                "since" | "until" => {
                    if value.is_empty() {
                        return Err(value_error());
                    }
                    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
                        .map_err(|_| QueryError::BadDate(value.to_string()))?;
                    if key.eq_ignore_ascii_case("since") {
                        self.since = Some(date);
                    } else {
                        self.until = Some(date);
                    }
                }
                _ => return Err(QueryError::UnknownFilter(format!("{key}:"))),
            }
            return Ok(());
        }
        if let Some(excluded) = part.strip_prefix('-') {
            self.excluded
                .extend(tokens::words(excluded).map(tokens::fold));
            return Ok(());
        }
        let prefix = part.ends_with('*');
        let words: Vec<&str> = tokens::words(part).collect();
        let last = words.len().saturating_sub(1);
        for (i, word) in words.into_iter().enumerate() {
            self.words.push(Word {
                text: tokens::fold(word),
                prefix: prefix && i == last,
            });
        }
        Ok(())
    }
}

/// `key:value` when `part` is written as a filter: a key of letters before the colon. Times
/// (`10:30`) and links (`https://…`) are words, not filters.
fn filter(part: &str) -> Option<(&str, &str)> {
    let (key, value) = part.split_once(':')?;
    let is_key = !key.is_empty() && key.chars().all(|c| c.is_alphabetic());
    (is_key && !value.starts_with("//")).then_some((key, value))
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
            ("слово from:@", QueryError::EmptyFilter("from:".into())),
            ("from:me", QueryError::NothingToFind),
            ("-дощ", QueryError::NothingToFind),
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
