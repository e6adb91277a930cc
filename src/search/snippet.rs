//! The part of a found message shown with a result, its matched words marked.

use std::ops::Range;

/// Characters of a message shown at most.
const SHOWN_CHARS: usize = 160;
/// Characters shown before the first match when the message is cut.
const LEAD_CHARS: usize = 50;

/// An excerpt of a message and where its matches are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    /// The excerpt, on one line, with `…` where it was cut.
    pub text: String,
    /// Byte ranges of `text` to mark, in order, not overlapping.
    pub marks: Vec<Range<usize>>,
}

impl Snippet {
    /// The excerpt of `text` around the first of `matches` (byte ranges of `text`, in order).
    pub fn new(text: &str, matches: &[Range<usize>]) -> Snippet {
        let first = matches.first().map_or(0, |m| m.start);
        let chars = text.chars().count();
        let (start, end) = if chars <= SHOWN_CHARS {
            (0, text.len())
        } else {
            // Back up LEAD_CHARS from the first match to a space, then take SHOWN_CHARS.
            let lead_start = text[..first]
                .char_indices()
                .rev()
                .nth(LEAD_CHARS.saturating_sub(1))
                .map_or(0, |(i, _)| i);
            let start = if lead_start == 0 {
                0
            } else {
                text[lead_start..first]
                    .find(char::is_whitespace)
                    .map_or(lead_start, |i| lead_start + i + 1)
            };
            let end = text[start..]
                .char_indices()
                .nth(SHOWN_CHARS)
                .map_or(text.len(), |(i, _)| start + i);
            // End at a space if one is near.
            let end = match text[start..end].rfind(char::is_whitespace) {
                Some(i) if end < text.len() && i > (end - start) * 3 / 4 => start + i,
                _ => end,
            };
            (start, end)
        };
        let mut out = String::with_capacity(end - start + 8);
        if start > 0 {
            out.push('…');
        }
        let shift = out.len();
        for c in text[start..end].chars() {
            // One line: a line break shows as a space (same byte length as `\n`, not `\r\n`).
            out.push(if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            });
        }
        if end < text.len() {
            out.push('…');
        }
        let marks = matches
            .iter()
            .filter(|m| m.start >= start && m.end <= end)
            .map(|m| m.start - start + shift..m.end - start + shift)
            .collect();
        Snippet { text: out, marks }
    }

    /// The excerpt with each mark between `open` and `close`, every part passed through
    /// `escape` (HTML for Telegram, nothing for a terminal).
    pub fn render(&self, open: &str, close: &str, escape: impl Fn(&str) -> String) -> String {
        let mut out = String::with_capacity(self.text.len() + self.marks.len() * 8);
        let mut at = 0;
        for mark in &self.marks {
            out.push_str(&escape(&self.text[at..mark.start]));
            out.push_str(open);
            out.push_str(&escape(&self.text[mark.clone()]));
            out.push_str(close);
            at = mark.end;
        }
        out.push_str(&escape(&self.text[at..]));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range_of(text: &str, word: &str) -> Range<usize> {
        let start = text.find(word).unwrap();
        start..start + word.len()
    }

    #[test]
    fn a_short_message_is_shown_whole_with_its_matches_marked() {
        let text = "Їдемо в Карпати\nу суботу";
        let snippet = Snippet::new(text, &[range_of(text, "Карпати")]);
        assert_eq!(snippet.text, "Їдемо в Карпати у суботу");
        assert_eq!(
            snippet.render("<b>", "</b>", str::to_string),
            "Їдемо в <b>Карпати</b> у суботу"
        );
    }

    #[test]
    fn a_long_message_is_cut_around_the_first_match_at_spaces() {
        let text = format!("{} Карпати {}", "слово ".repeat(100), "далі ".repeat(100));
        let snippet = Snippet::new(&text, &[range_of(&text, "Карпати")]);
        assert!(
            snippet.text.starts_with("…слово") && snippet.text.ends_with('…'),
            "{}",
            snippet.text
        );
        assert!(snippet.text.chars().count() <= SHOWN_CHARS + 2);
        assert_eq!(
            snippet
                .render("[", "]", str::to_string)
                .matches("[Карпати]")
                .count(),
            1
        );
    }

    #[test]
    fn rendering_escapes_every_part() {
        let text = "a<b & Карпати>";
        let snippet = Snippet::new(text, &[range_of(text, "Карпати")]);
        let html = snippet.render("<b>", "</b>", |s| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        });
        assert_eq!(html, "a&lt;b &amp; <b>Карпати</b>&gt;");
    }
}
