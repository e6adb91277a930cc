//! What `/catchup` takes after the command: a span (`6h`, `3d`, `2w`, `90m`, also in Ukrainian:
//! `6г`, `3д`, `2т`, `90хв`), and `all` for the whole chat in a forum topic.

/// The longest span a catch-up covers (and how far back "since your last message" looks).
pub const MAX_SPAN_SECS: i64 = 30 * 86_400;

/// What `/catchup` was asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatchupArgs {
    /// Seconds back from now; `None`: since the asker's last message.
    pub span: Option<i64>,
    /// `all`: the whole chat, not only the forum topic asked from.
    pub whole_chat: bool,
}

/// Why the arguments were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("{0:?} is not a span such as 6h, 3d or 2w")]
    NotASpan(String),
    #[error("a span is at most 30 days")]
    TooLong,
}

/// Parses `/catchup`'s arguments.
pub fn parse_catchup_args(args: &str) -> Result<CatchupArgs, SpanError> {
    let mut parsed = CatchupArgs::default();
    for part in args.split_whitespace() {
        let folded = part.to_lowercase();
        if matches!(folded.as_str(), "all" | "все" | "усе" | "всі") {
            parsed.whole_chat = true;
            continue;
        }
        let digits = folded.chars().take_while(char::is_ascii_digit).count();
        let (number, unit) = folded.split_at(digits);
        let unit_secs = match unit.trim() {
            "m" | "min" | "хв" => 60,
            "h" | "г" | "год" => 3_600,
            "d" | "д" | "дн" | "днів" | "дні" | "день" => 86_400,
            "w" | "т" | "тиж" => 7 * 86_400,
            _ => return Err(SpanError::NotASpan(part.to_string())),
        };
        let number: i64 = number
            .parse()
            .map_err(|_| SpanError::NotASpan(part.to_string()))?;
        let span = number.saturating_mul(unit_secs);
        if span == 0 {
            return Err(SpanError::NotASpan(part.to_string()));
        }
        if span > MAX_SPAN_SECS {
            return Err(SpanError::TooLong);
        }
        parsed.span = Some(span);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_in_both_languages_and_all() {
        let span = |args: &str| parse_catchup_args(args).map(|a| a.span);
        assert_eq!(span(""), Ok(None));
        assert_eq!(span("6h"), Ok(Some(6 * 3_600)));
        assert_eq!(span("3д"), Ok(Some(3 * 86_400)));
        assert_eq!(span("2т"), Ok(Some(14 * 86_400)));
        assert_eq!(span("90хв"), Ok(Some(5_400)));
        assert_eq!(
            parse_catchup_args("all 1d"),
            Ok(CatchupArgs {
                span: Some(86_400),
                whole_chat: true
            })
        );
        assert_eq!(span("5w"), Err(SpanError::TooLong));
        assert_eq!(span("0h"), Err(SpanError::NotASpan("0h".into())));
        assert_eq!(span("вчора"), Err(SpanError::NotASpan("вчора".into())));
        assert_eq!(span("h"), Err(SpanError::NotASpan("h".into())));
    }
}
