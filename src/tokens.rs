//! How chat text splits into words, emoji and marks, and how a word is folded for matching.
//!
//! One tokenizer serves everything that reads text: the analyzer, the Markov reply engine and the
//! check whether the bot was addressed. Two tokenizers used to disagree on apostrophes (Ukrainian
//! is typed with five of them) and on which symbols are emoji, so the same message counted
//! differently in statistics and in replies.

/// The apostrophes Ukrainian is typed with: ASCII, typographic, the modifier letter, the
/// backtick and the left quote (keyboards without an apostrophe key).
const APOSTROPHES: [char; 5] = ['\'', '’', 'ʼ', '`', '‘'];

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Letters and digits, joined by an apostrophe or a hyphen between them ("п'ять",
    /// "будь-ласка") and by a point between digits ("3.5").
    Word,
    /// Pictographs with the joiners, selectors and skin tones that combine them into pictures.
    Emoji,
    /// A run of sentence-ending marks: `.`, `?!`, `...`, `…`.
    SentenceEnd,
    /// A run of one clause mark: `,`, `;;`, `:`.
    ClauseMark,
    /// A run of one other symbol: `))`, `"`, `(`, `#`.
    Symbol,
}

/// One token: its kind and its text, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: Kind,
    pub text: &'a str,
}

/// Marks that end a sentence.
pub const SENTENCE_ENDS: [char; 4] = ['.', '!', '?', '…'];
/// Marks that divide a sentence (all ASCII).
pub const CLAUSE_MARKS: [char; 3] = [',', ';', ':'];

/// The tokens of `text`, in order; whitespace separates them and is not returned. Tokens never
/// span whitespace, so splitting a text at spaces first gives the same tokens.
pub fn tokens(text: &str) -> Tokens<'_> {
    Tokens { text, at: 0 }
}

/// The iterator [`tokens`] returns; it allocates nothing.
pub struct Tokens<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let mut chars = self.text[self.at..].chars();
        let first = loop {
            let c = chars.next()?;
            if !c.is_whitespace() {
                break c;
            }
        };
        let start = self.text.len() - chars.as_str().len() - first.len_utf8();
        let kind = if is_word_start(first) {
            let mut previous = first;
            loop {
                let before = chars.clone();
                let Some(c) = chars.next() else { break };
                if !is_word_char(c) {
                    // A joiner needs a word character on both sides; only then look ahead.
                    let joiner =
                        is_apostrophe(c) || c == '-' || (c == '.' && previous.is_ascii_digit());
                    let joins = joiner
                        && is_word_start(previous)
                        && chars.clone().next().is_some_and(|next| {
                            is_word_start(next) && (c != '.' || next.is_ascii_digit())
                        });
                    if !joins {
                        chars = before;
                        break;
                    }
                }
                previous = c;
            }
            Kind::Word
        } else if is_emoji(first) {
            run(&mut chars, |c| is_emoji(c) || is_emoji_joiner(c));
            Kind::Emoji
        } else if SENTENCE_ENDS.contains(&first) {
            run(&mut chars, |c| SENTENCE_ENDS.contains(&c));
            Kind::SentenceEnd
        } else {
            run(&mut chars, |c| c == first);
            if CLAUSE_MARKS.contains(&first) {
                Kind::ClauseMark
            } else {
                Kind::Symbol
            }
        };
        let end = self.text.len() - chars.as_str().len();
        self.at = end;
        Some(Token {
            kind,
            text: &self.text[start..end],
        })
    }
}

/// Consumes the characters that satisfy `keep`.
fn run(chars: &mut std::str::Chars, keep: impl Fn(char) -> bool) {
    while chars.as_str().starts_with(&keep) {
        chars.next();
    }
}

/// Whether `c` starts a word: a letter or a digit.
fn is_word_start(c: char) -> bool {
    is_letter(c) || c.is_numeric()
}

/// Whether `c` continues a word: a letter, a digit, or a combining mark (a stress mark in
/// "за́мок", the dots of a decomposed "ї").
fn is_word_char(c: char) -> bool {
    is_word_start(c) || matches!(c, '\u{0300}'..='\u{036F}')
}

/// Whether `c` is one of the apostrophes of [`APOSTROPHES`].
pub fn is_apostrophe(c: char) -> bool {
    APOSTROPHES.contains(&c)
}

/// Whether `c` is a Cyrillic letter.
pub fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04FF}')
}

/// Whether `c` is a letter, deciding Latin and Cyrillic without Unicode's slow tables.
pub fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || is_cyrillic(c) || (!c.is_ascii() && c.is_alphabetic())
}

/// Whether `c` is a pictograph: the emoji blocks, the symbols and dingbats, and the few emoji
/// among punctuation, technical symbols, shapes and arrows (‼ ⁉ ⌚ ⏰ ▶ ⬅ ⭐ ⭕). Skin tones and joiners are not pictographs
/// of their own (see [`is_emoji_joiner`]).
pub fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1F3FA | 0x1F400..=0x1FAFF | 0x2600..=0x27BF
        | 0x203C | 0x2049 | 0x2139 | 0x24C2 | 0x25AA | 0x25AB | 0x25B6 | 0x25C0 | 0x25FB..=0x25FE
        | 0x231A | 0x231B | 0x2328 | 0x23CF | 0x23E9..=0x23F3 | 0x23F8..=0x23FA
        | 0x2934 | 0x2935 | 0x2B05..=0x2B07 | 0x2B1B | 0x2B1C | 0x2B50 | 0x2B55
        | 0x3030 | 0x303D | 0x3297 | 0x3299)
}

/// Characters that combine pictographs into one picture: the zero-width joiner, the emoji
/// variation selector, the keycap, and the five skin tones.
pub fn is_emoji_joiner(c: char) -> bool {
    matches!(
        c,
        '\u{200D}' | '\u{FE0F}' | '\u{20E3}' | '\u{1F3FB}'..='\u{1F3FF}'
    )
}

/// Lower-cases `word` into `out` with every apostrophe made `'`: the form words are matched
/// by. The caller's buffer is reused so that analysing a message allocates almost nothing.
pub fn fold_into(word: &str, out: &mut String) {
    out.clear();
    for c in word.chars() {
        match c {
            c if is_apostrophe(c) => out.push('\''),
            // Fast paths for the scripts of the chats; Unicode's tables for the rest.
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            'a'..='z' | 'а'..='я' | 'ѐ'..='џ' | 'ґ' => out.push(c),
            'А'..='Я' => out.push(char::from_u32(c as u32 + 32).unwrap_or(c)),
            'Ѐ'..='Џ' => out.push(char::from_u32(c as u32 + 80).unwrap_or(c)),
            'Ґ' => out.push('ґ'),
            c => out.extend(c.to_lowercase()),
        }
    }
}

/// `word` folded (see [`fold_into`]) into a new string.
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    fold_into(word, &mut out);
    out
}

/// The words of `text`, in order.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    tokens(text)
        .filter(|token| token.kind == Kind::Word)
        .map(|token| token.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<(Kind, &str)> {
        tokens(text).map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn words_keep_inner_apostrophes_hyphens_and_decimal_points() {
        for apostrophe in APOSTROPHES {
            let word = format!("п{apostrophe}ять");
            assert_eq!(words(&word).collect::<Vec<_>>(), [word.as_str()]);
        }
        assert_eq!(
            words("будь-ласка, 3.5 кг! 'радий' -- так-").collect::<Vec<_>>(),
            ["будь-ласка", "3.5", "кг", "радий", "так"]
        );
        // Combining marks stay inside the word: a stress mark, a decomposed "ї".
        assert_eq!(
            words("за\u{301}мок i\u{308}жак").collect::<Vec<_>>(),
            ["за\u{301}мок", "i\u{308}жак"]
        );
        // A point between words ends a sentence; between digits it is a decimal point.
        assert_eq!(
            all("так.ні 2.5."),
            [
                (Kind::Word, "так"),
                (Kind::SentenceEnd, "."),
                (Kind::Word, "ні"),
                (Kind::Word, "2.5"),
                (Kind::SentenceEnd, ".")
            ]
        );
    }

    #[test]
    fn emoji_runs_marks_and_symbols_are_tokens() {
        assert_eq!(
            all("Ура!!😂😂 👍🏻 ну)) ,,, так?! «ні»"),
            [
                (Kind::Word, "Ура"),
                (Kind::SentenceEnd, "!!"),
                (Kind::Emoji, "😂😂"),
                (Kind::Emoji, "👍🏻"),
                (Kind::Word, "ну"),
                (Kind::Symbol, "))"),
                (Kind::ClauseMark, ",,,"),
                (Kind::Word, "так"),
                (Kind::SentenceEnd, "?!"),
                (Kind::Symbol, "«"),
                (Kind::Word, "ні"),
                (Kind::Symbol, "»"),
            ]
        );
        assert_eq!(all("👨‍👩‍👧"), [(Kind::Emoji, "👨‍👩‍👧")]);
        assert!(tokens("  \n ").next().is_none());
    }

    #[test]
    fn emoji_are_pictographs_not_their_modifiers() {
        for c in ['😀', '🇺', '☀', '⭐', '❤', '⌚', '⬅', '🫠', '‼', '⁉', '▶'] {
            assert!(is_emoji(c), "{c}");
        }
        for c in ['a', 'я', '!', '\u{1F3FB}', '\u{200D}', '€', '→', '©'] {
            assert!(!is_emoji(c), "{c}");
        }
    }

    #[test]
    fn splitting_at_spaces_first_gives_the_same_tokens() {
        let text = "Привіт, як справи?! 😂😂 п'ять-шість 3.5... ну))";
        let whole = all(text);
        let chunked: Vec<_> = text.split_whitespace().flat_map(all).collect();
        assert_eq!(whole, chunked);
    }

    #[test]
    fn folding_lower_cases_and_unifies_apostrophes() {
        assert_eq!(fold("П’ЯТЬ"), "п'ять");
        assert_eq!(fold("Ґанок ЇЖАК Ёлка"), "ґанок їжак ёлка");
        // The fast paths agree with Unicode's tables.
        for c in ('\u{0400}'..='\u{04FF}')
            .chain('A'..='Z')
            .chain('a'..='z')
            .chain("ĄŻÉßΑΒΓİ".chars())
        {
            assert_eq!(
                fold(&c.to_string()),
                c.to_lowercase().collect::<String>(),
                "{c:?}"
            );
        }
    }
}
